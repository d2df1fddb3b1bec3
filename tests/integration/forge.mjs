// forge.mjs: hostile-token workshop for the integration tests.
//   node forge.mjs KIND TOKEN [JWKS_JSON_FILE]
// Prints a token derived from a real, valid TOKEN that a correct gateway
// must refuse. KINDs: none, hs256-pubkey, tampered, truncated-sig,
// zero-sig, jku, x5u, jwk, x5c, crit, no-cnf, cnf-hex, cnf-padded,
// cnf-std-b64, segments2, segments4, oversized, nested, expired-unsigned.
//   node forge.mjs verify-assertion JWT JWKS_JSON_FILE AUD
// Verifies the gateway's ES256 X-Gatehouse-Assertion; prints its claims.
import crypto from 'node:crypto';
import fs from 'node:fs';

const b64u = (b) => Buffer.from(b).toString('base64url');
const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString());
const [kind, token, jwksFile, aud] = process.argv.slice(2);
const [h, p, s] = token.split('.');
const header = dec(h);
const payload = dec(p);
// With SIGN_WITH=STATE/keys.json (the test IdP's own key store), forged
// claims are re-signed with the issuer's real key, so the gateway's claim
// and binding checks are reached (not just the signature check).
const signKey = process.env.SIGN_WITH
  ? JSON.parse(fs.readFileSync(process.env.SIGN_WITH)).keys.find((k) => k.d)
  : null;
const join = (hh, pp, ss) => {
  const hp = `${b64u(JSON.stringify(hh))}.${b64u(JSON.stringify(pp))}`;
  if (!signKey) return `${hp}.${ss}`;
  const key = crypto.createPrivateKey({ key: signKey, format: 'jwk' });
  const sig = crypto.sign('sha256', Buffer.from(hp), { key, dsaEncoding: 'ieee-p1363' });
  return `${hp}.${b64u(sig)}`;
};

function out(t) { process.stdout.write(t); process.exit(0); }

switch (kind) {
case 'none': out(`${b64u(JSON.stringify({ ...header, alg: 'none' }))}.${p}.`);
case 'hs256-pubkey': {
  // The libjwt 1.10 trap: HMAC keyed with the issuer's public key PEM text.
  const jwks = JSON.parse(fs.readFileSync(jwksFile));
  const jwk = jwks.keys.find((k) => k.kid === header.kid) || jwks.keys[0];
  const pem = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const hh = b64u(JSON.stringify({ ...header, alg: 'HS256' }));
  const sig = crypto.createHmac('sha256', pem).update(`${hh}.${p}`).digest();
  out(`${hh}.${p}.${b64u(sig)}`);
}
case 'tampered': out(`${h}.${b64u(JSON.stringify({ ...payload, sub: 'admin' }))}.${s}`);
case 'truncated-sig': out(`${h}.${p}.${s.slice(0, 40)}`);
case 'zero-sig': out(`${h}.${p}.${b64u(Buffer.alloc(64))}`);
case 'jku': out(join({ ...header, jku: 'https://evil.example/jwks' }, payload, s));
case 'x5u': out(join({ ...header, x5u: 'https://evil.example/cert' }, payload, s));
case 'jwk': out(join({ ...header, jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } }, payload, s));
case 'x5c': out(join({ ...header, x5c: ['MIIB'] }, payload, s));
case 'crit': out(join({ ...header, crit: ['exp'] }, payload, s));
case 'no-cnf': { const q = { ...payload }; delete q.cnf; out(join(header, q, s)); }
case 'cnf-hex': out(join(header, { ...payload, cnf: { 'x5t#S256': Buffer.from(payload.cnf['x5t#S256'], 'base64url').toString('hex') } }, s));
case 'cnf-padded': out(join(header, { ...payload, cnf: { 'x5t#S256': payload.cnf['x5t#S256'] + '=' } }, s));
case 'cnf-std-b64': out(join(header, { ...payload, cnf: { 'x5t#S256': Buffer.from(payload.cnf['x5t#S256'], 'base64url').toString('base64') } }, s));
case 'segments2': out(`${h}.${p}`);
case 'segments4': out(`${h}.${p}.${s}.${s}`);
case 'oversized': out(`${h}.${b64u(JSON.stringify({ ...payload, pad: 'x'.repeat(9000) }))}.${s}`);
case 'nested': { let n = {}; for (let i = 0; i < 100; i++) n = { n }; out(join(header, { ...payload, n }, s)); }
case 'verify-assertion': {
  const jwks = JSON.parse(fs.readFileSync(jwksFile));
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) { console.error('no key for kid', header.kid); process.exit(1); }
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: crypto.createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!ok || header.alg !== 'ES256') { console.error('bad signature'); process.exit(1); }
  if (aud && payload.aud !== aud) { console.error('bad aud', payload.aud); process.exit(1); }
  out(JSON.stringify(payload));
}
default: console.error('unknown kind', kind); process.exit(2);
}
