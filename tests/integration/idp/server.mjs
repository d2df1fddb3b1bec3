#!/usr/bin/env node
// Test OpenID Provider for the Gatehouse integration tests.
//
// A real oidc-provider 8.x instance behind a node HTTPS server that asks every
// client for a certificate. It issues RFC 8705 certificate-bound JWT access
// tokens (RFC 9068, typ "at+jwt") to `tls_client_auth` clients through the
// client_credentials grant, so the gateway is tested against the tokens a real
// OP mints, not against tokens the test suite forges itself.
//
// Why it is built this way:
// - The TLS handshake never fails on a bad client certificate
//   (rejectUnauthorized: false). oidc-provider decides: features.mTLS asks
//   certificateAuthorized() (chain verified against --client-ca by node) and
//   certificateSubjectMatches() (the registered tls_client_auth_* value), and
//   answers invalid_client with a JSON body, which is what tests assert on.
// - oidc-provider reads its keystore once, when a Provider is constructed. Key
//   rotation (POST /test/rotate) therefore builds a new Provider with the new
//   JWKS and swaps the request handler in-process; the listening socket, the
//   port and the issuer stay the same. Access tokens are self-contained JWTs,
//   so nothing is lost by the swap.
// - The signing keys live in --state DIR/keys.json (a private JWKS, newest key
//   first), so a restarted IdP keeps its kids.
// - /test/* are test-only helpers outside the OIDC paths, answered only to
//   loopback peers: key rotation and minting back-channel logout tokens.
//
// Usage: node server.mjs --port P [--issuer https://127.0.0.1:P] --cert idp.crt
//          --key idp.key --client-ca client-ca.crt [--audience gatehouse]
//          --state DIR [--access-ttl 300] [--alg ES256|RS256] [--host 127.0.0.1]
//          [--clients clients.json]
// Prints "idp listening on https://HOST:PORT" once it accepts requests.
// --port 0 picks a free port; the issuer is then https://HOST:<that port>.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

import Provider from 'oidc-provider';

const EVENT_BCL = 'http://schemas.openid.net/event/backchannel-logout';
const MAX_TEST_BODY = 16 * 1024;

// Subjects are those tests/integration/pki.sh issues ("/O=Gatehouse Test/CN=NAME"),
// written as RFC 4514 strings (least significant RDN first) as RFC 8705 2.1.2 asks.
const ORG = 'O=Gatehouse Test';

// Built-in clients. client_id is the certificate CN, except the CI service whose
// certificate carries a SPIFFE URI SAN and is registered by that SAN.
const DEFAULT_CLIENTS = [
    {
        client_id: 'alice', subject_dn: `CN=alice,${ORG}`,
        groups: ['engineering'], email: 'alice@example.com',
    },
    {
        client_id: 'bob', subject_dn: `CN=bob,${ORG}`,
        groups: ['sales'], email: 'bob@example.com',
    },
    {
        client_id: 'carol', subject_dn: `CN=carol,${ORG}`,
        groups: ['ops', 'engineering'], email: 'carol@example.com',
    },
    {
        client_id: 'ci-deployer', san_uri: 'spiffe://example.org/ci/deployer',
        groups: ['deployers'], email: 'ci-deployer@example.com',
    },
];

function die(msg) {
    process.stderr.write(`idp: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const opts = {
        host: '127.0.0.1', audience: 'gatehouse', accessTtl: 300, alg: 'ES256',
    };
    const names = {
        '--port': 'port', '--issuer': 'issuer', '--cert': 'cert', '--key': 'key',
        '--client-ca': 'clientCa', '--audience': 'audience', '--state': 'state',
        '--access-ttl': 'accessTtl', '--alg': 'alg', '--host': 'host',
        '--clients': 'clients',
    };
    for (let i = 0; i < argv.length; i += 1) {
        const name = names[argv[i]];
        if (!name) {
            die(`unknown option ${argv[i]}`);
        }
        if (i + 1 >= argv.length) {
            die(`${argv[i]} needs a value`);
        }
        opts[name] = argv[i + 1];
        i += 1;
    }
    for (const req of ['port', 'cert', 'key', 'clientCa', 'state']) {
        if (opts[req] === undefined) {
            die(`--${req.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
        }
    }
    opts.port = Number(opts.port);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
        die('--port must be 0..65535');
    }
    opts.accessTtl = Number(opts.accessTtl);
    if (!Number.isInteger(opts.accessTtl) || opts.accessTtl < 1) {
        die('--access-ttl must be a positive integer (seconds)');
    }
    if (opts.alg !== 'ES256' && opts.alg !== 'RS256') {
        die('--alg must be ES256 or RS256');
    }
    return opts;
}

// ---------------------------------------------------------------------------
// Keys: a private JWKS in STATE/keys.json, newest first. The active signing
// key for an alg is the first key with that alg.

function b64u(buf) {
    return Buffer.from(buf).toString('base64url');
}

// RFC 7638 JWK thumbprint, the same kid oidc-provider would compute itself.
function jwkThumbprint(jwk) {
    const members = jwk.kty === 'EC'
        ? { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y }
        : { e: jwk.e, kty: 'RSA', n: jwk.n };
    return b64u(crypto.createHash('sha256').update(JSON.stringify(members)).digest());
}

function generateJwk(alg) {
    const pair = alg === 'ES256'
        ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = pair.privateKey.export({ format: 'jwk' });
    jwk.kid = jwkThumbprint(jwk);
    jwk.alg = alg;
    jwk.use = 'sig';
    return jwk;
}

function keysPath(opts) {
    return path.join(opts.state, 'keys.json');
}

function saveKeys(opts, jwks) {
    const file = keysPath(opts);
    const tmp = `${file}.tmp${process.pid}`;
    fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
}

function loadOrCreateKeys(opts) {
    fs.mkdirSync(opts.state, { recursive: true, mode: 0o700 });
    let jwks = { keys: [] };
    if (fs.existsSync(keysPath(opts))) {
        jwks = JSON.parse(fs.readFileSync(keysPath(opts), 'utf8'));
        if (!jwks || !Array.isArray(jwks.keys)) {
            die(`${keysPath(opts)}: not a JWKS`);
        }
    }
    let changed = false;
    if (!jwks.keys.some((k) => k.alg === 'ES256')) {
        jwks.keys.push(generateJwk('ES256'));
        changed = true;
    }
    if (opts.alg === 'RS256' && !jwks.keys.some((k) => k.alg === 'RS256')) {
        jwks.keys.unshift(generateJwk('RS256'));
        changed = true;
    }
    if (changed) {
        saveKeys(opts, jwks);
    }
    return jwks;
}

function activeKey(jwks, alg) {
    const jwk = jwks.keys.find((k) => k.alg === alg);
    if (!jwk) {
        throw new Error(`no ${alg} key in the keystore`);
    }
    return jwk;
}

function publicJwks(jwks) {
    return {
        keys: jwks.keys.map((k) => {
            const pub = crypto.createPublicKey({ key: k, format: 'jwk' }).export({ format: 'jwk' });
            return { ...pub, kid: k.kid, alg: k.alg, use: k.use };
        }),
    };
}

// ---------------------------------------------------------------------------
// Client certificate checks used by features.mTLS.

// RFC 4514 string -> [[TYPE, value], ...] most significant RDN first (the order
// in the certificate). Handles backslash escapes (\, \+ \" \\ \XX hex).
function parseRfc4514(dn) {
    const rdns = [];
    let cur = '';
    const parts = [];
    for (let i = 0; i < dn.length; i += 1) {
        const c = dn[i];
        if (c === '\\' && i + 1 < dn.length) {
            cur += c + dn[i + 1];
            i += 1;
        } else if (c === ',') {
            parts.push(cur);
            cur = '';
        } else {
            cur += c;
        }
    }
    parts.push(cur);
    for (const part of parts) {
        const eq = part.indexOf('=');
        if (eq < 1) {
            return null;
        }
        const type = part.slice(0, eq).trim().toUpperCase();
        const raw = part.slice(eq + 1).trim();
        const value = raw.replace(/\\([0-9a-fA-F]{2}|.)/g, (m, e) => (
            e.length === 2 ? String.fromCharCode(parseInt(e, 16)) : e));
        rdns.push([type, value]);
    }
    return rdns.reverse();
}

// crypto.X509Certificate#subject: "C=..\nO=..\nCN=.." in certificate order.
function certSubjectRdns(x509) {
    return x509.subject.split('\n').filter((l) => l.length > 0).map((l) => {
        const eq = l.indexOf('=');
        return [l.slice(0, eq).toUpperCase(), l.slice(eq + 1)];
    });
}

// "DNS:a, URI:spiffe://x, IP Address:1.2.3.4, email:x@y" -> { dns: [..], uri: [..], ... }
function certSans(x509) {
    const out = { dns: [], uri: [], ip: [], email: [] };
    const map = {
        DNS: 'dns', URI: 'uri', 'IP Address': 'ip', email: 'email',
    };
    for (const entry of (x509.subjectAltName || '').split(', ')) {
        const colon = entry.indexOf(':');
        if (colon < 0) {
            continue;
        }
        const kind = map[entry.slice(0, colon)];
        if (kind) {
            let value = entry.slice(colon + 1);
            if (value.startsWith('"')) {
                try {
                    value = JSON.parse(value);
                } catch {
                    continue;
                }
            }
            out[kind].push(value);
        }
    }
    return out;
}

function peerCertificate(ctx) {
    const sock = ctx.req.socket;
    if (typeof sock.getPeerX509Certificate !== 'function') {
        return undefined;
    }
    return sock.getPeerX509Certificate() || undefined;
}

function subjectMatches(ctx, property, expected) {
    const x509 = peerCertificate(ctx);
    if (!x509) {
        return false;
    }
    if (property === 'tls_client_auth_subject_dn') {
        const want = parseRfc4514(expected);
        const have = certSubjectRdns(x509);
        return want !== null && want.length === have.length
            && want.every(([t, v], i) => t === have[i][0] && v === have[i][1]);
    }
    const sans = certSans(x509);
    switch (property) {
        case 'tls_client_auth_san_dns':
            return sans.dns.some((v) => v.toLowerCase() === String(expected).toLowerCase());
        case 'tls_client_auth_san_uri':
            return sans.uri.includes(expected);
        case 'tls_client_auth_san_ip':
            return sans.ip.includes(expected);
        case 'tls_client_auth_san_email':
            return sans.email.includes(expected);
        default:
            return false;
    }
}

// ---------------------------------------------------------------------------
// Clients.

function loadClients(opts) {
    let list = DEFAULT_CLIENTS;
    if (opts.clients) {
        list = JSON.parse(fs.readFileSync(opts.clients, 'utf8'));
        if (!Array.isArray(list)) {
            die(`${opts.clients}: expected a JSON array of clients`);
        }
    }
    const claims = new Map();
    const metadata = list.map((c) => {
        const md = {
            client_id: c.client_id,
            token_endpoint_auth_method: 'tls_client_auth',
            grant_types: ['client_credentials'],
            response_types: [],
            redirect_uris: [],
            tls_client_certificate_bound_access_tokens: true,
        };
        const dn = c.subject_dn;
        if (c.san_uri) {
            md.tls_client_auth_san_uri = c.san_uri;
        } else if (c.san_dns) {
            md.tls_client_auth_san_dns = c.san_dns;
        } else if (c.san_email) {
            md.tls_client_auth_san_email = c.san_email;
        } else if (dn !== undefined) {
            md.tls_client_auth_subject_dn = dn;
        } else {
            die(`client ${c.client_id}: needs subject_dn or a san_* value`);
        }
        claims.set(c.client_id, { groups: c.groups || [], email: c.email });
        return md;
    });
    return { metadata, claims };
}

// ---------------------------------------------------------------------------
// The Provider. Rebuilt (with the same clients and issuer) on key rotation.

// RFC 8707 resource indicators are absolute URIs; a plain audience such as
// "gatehouse" gets a URN standing for it.
function resourceIndicatorFor(audience) {
    const urn = `urn:gatehouse:audience:${encodeURIComponent(audience)}`;
    try {
        return new URL(audience).href === audience ? audience : urn;
    } catch {
        return urn;
    }
}

function buildProvider(opts, jwks, clients) {
    const signKid = activeKey(jwks, opts.alg).kid;
    const defaultResource = resourceIndicatorFor(opts.audience);
    const resourceServerInfo = (audience) => ({
        audience,
        scope: 'read write',
        accessTokenTTL: opts.accessTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: opts.alg, kid: signKid } },
    });

    const provider = new Provider(opts.issuer, {
        clients: clients.metadata,
        jwks: { keys: jwks.keys },
        clientDefaults: {
            grant_types: ['client_credentials'],
            response_types: [],
            token_endpoint_auth_method: 'tls_client_auth',
            id_token_signed_response_alg: opts.alg,
        },
        clientAuthMethods: ['tls_client_auth'],
        cookies: { keys: [b64u(crypto.randomBytes(32))] },
        features: {
            devInteractions: { enabled: false },
            clientCredentials: { enabled: true },
            introspection: { enabled: false },
            revocation: { enabled: false },
            mTLS: {
                enabled: true,
                certificateBoundAccessTokens: true,
                tlsClientAuth: true,
                getCertificate: peerCertificate,
                // node verified the chain against --client-ca (requestCert with
                // ca set); `authorized` is false for an unknown issuer, an expired
                // certificate or no certificate at all.
                certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
                certificateSubjectMatches: subjectMatches,
            },
            resourceIndicators: {
                enabled: true,
                // client_credentials without a resource parameter gets the
                // gateway audience.
                defaultResource: () => defaultResource,
                useGrantedResource: () => true,
                // The default resource maps to --audience; any other absolute
                // URI is its own audience (RFC 8707), so tests can mint tokens for
                // a wrong audience on purpose.
                getResourceServerInfo: (ctx, indicator) => resourceServerInfo(
                    indicator === defaultResource ? opts.audience : indicator,
                ),
            },
        },
        extraTokenClaims: (ctx, token) => {
            const c = clients.claims.get(token.clientId);
            if (!c) {
                return undefined;
            }
            return { groups: c.groups, ...(c.email ? { email: c.email } : {}) };
        },
        ttl: {
            ClientCredentials: (ctx, token) => (
                token.resourceServer?.accessTokenTTL || opts.accessTtl),
        },
        discovery: {
            // RFC 8705 section 5: this whole server requests client certificates,
            // so the mTLS alias of the token endpoint is the endpoint itself.
            mtls_endpoint_aliases: { token_endpoint: `${opts.issuer}/token` },
        },
        renderError: (ctx, out) => {
            ctx.type = 'json';
            ctx.body = out;
        },
    });
    provider.on('server_error', (ctx, err) => {
        process.stderr.write(`idp: server_error: ${err && err.stack ? err.stack : err}\n`);
    });
    provider.on('grant.error', (ctx, err) => {
        const detail = err.error_detail ? ` (${err.error_detail})` : '';
        process.stderr.write(`idp: grant.error: ${err.error}: ${err.error_description}${detail}\n`);
    });
    return { provider, callback: provider.callback(), signKid };
}

// ---------------------------------------------------------------------------
// Test-only helpers.

function signJwt(jwk, header, payload) {
    const h = b64u(JSON.stringify(header));
    const p = b64u(JSON.stringify(payload));
    const input = Buffer.from(`${h}.${p}`);
    const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
    const sig = jwk.alg === 'ES256'
        ? crypto.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
        : crypto.sign('sha256', input, key);
    return `${h}.${p}.${b64u(sig)}`;
}

function isLoopback(addr) {
    return addr === '::1' || /^(::ffff:)?127\./.test(addr || '');
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let size = 0;
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_TEST_BODY) {
                reject(new Error('body too large'));
                req.destroy();
                return;
            }
            chunks.push(c);
        });
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
    });
}

function sendJson(res, status, obj) {
    const body = `${JSON.stringify(obj)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
}

function badRequest(res, description) {
    sendJson(res, 400, { error: 'invalid_request', error_description: description });
}

// ---------------------------------------------------------------------------

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const tlsOptions = {
        cert: fs.readFileSync(opts.cert),
        key: fs.readFileSync(opts.key),
        ca: fs.readFileSync(opts.clientCa),
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
    };
    let jwks = loadOrCreateKeys(opts);
    const clients = loadClients(opts);
    let current = null;

    async function rotate(keep) {
        const fresh = generateJwk(opts.alg);
        const old = jwks.keys.map((k) => k.kid);
        const next = { keys: keep ? [fresh, ...jwks.keys] : [fresh] };
        // Build first: a Provider that refuses the keys leaves the old one serving.
        const built = buildProvider(opts, next, clients);
        saveKeys(opts, next);
        jwks = next;
        current = built;
        return {
            kid: fresh.kid,
            alg: fresh.alg,
            removed: keep ? [] : old,
            jwks: publicJwks(jwks),
        };
    }

    async function testHandler(req, res, url) {
        if (!isLoopback(req.socket.remoteAddress)) {
            sendJson(res, 403, { error: 'forbidden', error_description: 'loopback only' });
            return;
        }
        if (req.method !== 'POST') {
            sendJson(res, 405, { error: 'method_not_allowed' });
            return;
        }
        if (url.pathname === '/test/rotate') {
            const keep = ['1', 'true', 'yes'].includes(url.searchParams.get('keep') || '');
            const out = await rotate(keep);
            process.stdout.write(`idp: rotated signing key -> ${out.kid} (keep=${keep})\n`);
            sendJson(res, 200, out);
            return;
        }
        if (url.pathname === '/test/logout-token') {
            const text = await readBody(req);
            let body;
            try {
                body = text.length ? JSON.parse(text) : {};
            } catch {
                badRequest(res, 'body is not JSON');
                return;
            }
            if (body === null || typeof body !== 'object' || Array.isArray(body)) {
                badRequest(res, 'body must be an object');
                return;
            }
            const { header: extraHeader, ...claims } = body;
            if (claims.sub === undefined && claims.sid === undefined) {
                badRequest(res, 'sub or sid required');
                return;
            }
            const now = Math.floor(Date.now() / 1000);
            const payload = {
                iss: opts.issuer,
                aud: opts.audience,
                iat: now,
                exp: now + 120,
                jti: b64u(crypto.randomBytes(16)),
                events: { [EVENT_BCL]: {} },
                ...claims,
            };
            // A null value removes a claim (negative tests: no events, no jti...).
            for (const k of Object.keys(payload)) {
                if (payload[k] === null) {
                    delete payload[k];
                }
            }
            const jwk = activeKey(jwks, opts.alg);
            const header = {
                alg: jwk.alg, typ: 'logout+jwt', kid: jwk.kid,
                ...(extraHeader && typeof extraHeader === 'object' ? extraHeader : {}),
            };
            const token = signJwt(jwk, header, payload);
            res.writeHead(200, { 'content-type': 'application/jwt', 'cache-control': 'no-store' });
            res.end(token);
            return;
        }
        sendJson(res, 404, { error: 'not_found' });
    }

    const server = https.createServer(tlsOptions, (req, res) => {
        const url = new URL(req.url, 'https://idp.invalid');
        if (url.pathname.startsWith('/test/')) {
            testHandler(req, res, url).catch((err) => {
                process.stderr.write(`idp: test helper failed: ${err.stack || err}\n`);
                if (!res.headersSent) {
                    sendJson(res, 500, { error: 'server_error', error_description: err.message });
                } else {
                    res.destroy();
                }
            });
            return;
        }
        current.callback(req, res);
    });
    server.on('tlsClientError', () => {});

    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, resolve);
    });
    const { port } = server.address();
    const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    if (!opts.issuer) {
        opts.issuer = `https://${hostPart}:${port}`;
    }
    opts.issuer = opts.issuer.replace(/\/+$/, '');
    current = buildProvider(opts, jwks, clients);

    const stop = () => {
        server.close();
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);

    process.stdout.write(`idp: issuer ${opts.issuer} alg ${opts.alg} kid ${current.signKid}\n`);
    process.stdout.write(`idp listening on https://${hostPart}:${port}\n`);
}

main().catch((err) => {
    process.stderr.write(`idp: ${err.stack || err}\n`);
    process.exit(1);
});
