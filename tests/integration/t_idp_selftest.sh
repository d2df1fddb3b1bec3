#!/usr/bin/env bash
# Self-test of the test OpenID Provider (tests/integration/idp): the tokens
# every other integration test relies on really are RFC 9068 JWT access tokens,
# bound to the client certificate (RFC 8705 cnf.x5t#S256), refused to the wrong
# certificate, signed by a key published in the JWKS; key rotation really
# removes the old key; the back-channel logout helper mints a proper
# logout_token.
#
#   t_idp_selftest.sh BUILD_DIR      (env GH_SRC, GH_BUILD set by ctest)
#
# Uses the shared PKI in $GH_BUILD/test-pki (made by the setup fixture) or makes
# one in its temp dir with tests/integration/pki.sh. Prints `N passed, N failed`.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
GH_SRC=${GH_SRC:-$(cd "$here/../.." && pwd)}
GH_BUILD=${GH_BUILD:-${1:-$GH_SRC/build}}
idpdir=$GH_SRC/tests/integration/idp

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_idp_selftest.XXXXXX")
pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

pass=0
fail=0
ok() {
    pass=$((pass + 1))
    echo "ok   - $1"
}
not_ok() {
    fail=$((fail + 1))
    echo "FAIL - $1"
    shift
    local l
    for l in "$@"; do
        echo "       $l"
    done
}
# expect NAME GOT WANT
expect() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        not_ok "$1" "got:  $2" "want: $3"
    fi
}
# expect_true NAME CMD...
expect_true() {
    local name=$1
    shift
    if "$@" >"$tmp/cmd.out" 2>&1; then
        ok "$name"
    else
        not_ok "$name" "command failed: $*" "$(head -c 600 "$tmp/cmd.out")"
    fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
    exit $?
}
bail() {
    not_ok "$1" "${@:2}"
    finish
}

# --- JWT / JSON helper (node: always present, the IdP runs on it) ----------
cat >"$tmp/jwt.cjs" <<'EOF'
// jwt.cjs q JSON EXPR             evaluate EXPR with d = parsed JSON; print
//                                  strings raw, everything else as JSON
// jwt.cjs decode TOKEN            {"header":..,"payload":..} of a compact JWS
// jwt.cjs verify TOKEN JWKS_FILE  exit 0 iff the signature verifies with the
//                                  JWKS key named by kid, alg pinned to the key
const crypto = require('crypto');
const fs = require('fs');
const [cmd, a, b] = process.argv.slice(2);
const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
if (cmd === 'q') {
    const d = JSON.parse(a);
    const v = Function('d', `return (${b});`)(d);
    process.stdout.write(typeof v === 'string' ? v : String(JSON.stringify(v)));
} else if (cmd === 'decode') {
    const p = a.split('.');
    if (p.length !== 3) { console.error('not a compact JWS'); process.exit(1); }
    process.stdout.write(JSON.stringify({ header: part(p[0]), payload: part(p[1]) }));
} else if (cmd === 'verify') {
    const p = a.split('.');
    const header = part(p[0]);
    const jwks = JSON.parse(fs.readFileSync(b, 'utf8'));
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) { console.error(`kid ${header.kid} not in JWKS`); process.exit(1); }
    if (jwk.alg !== header.alg) {
        console.error(`alg ${header.alg} != key alg ${jwk.alg}`);
        process.exit(1);
    }
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    const data = Buffer.from(`${p[0]}.${p[1]}`);
    const sig = Buffer.from(p[2], 'base64url');
    let good;
    if (jwk.alg === 'ES256') {
        good = crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    } else if (jwk.alg === 'RS256') {
        good = crypto.verify('sha256', data, key, sig);
    } else {
        console.error(`unexpected alg ${jwk.alg}`); process.exit(1);
    }
    if (!good) { console.error('bad signature'); process.exit(1); }
} else {
    console.error('usage'); process.exit(2);
}
EOF
q() { node "$tmp/jwt.cjs" q "$1" "$2"; }
decode() { node "$tmp/jwt.cjs" decode "$1"; }
# shellcheck disable=SC2317  # called through expect_true
verify() {
    node "$tmp/jwt.cjs" verify "$1" "$2"
}
x5t_of() {
    openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary |
        basenc --base64url | tr -d '='
}

# --- fixture: PKI, npm packages ----------------------------------------------
pki=$GH_BUILD/test-pki
if [ ! -f "$pki/.done" ]; then
    pki=$tmp/pki
    bash "$GH_SRC/tests/integration/pki.sh" "$pki" >"$tmp/pki.log" 2>&1 ||
        bail "pki.sh" "$(tail -n 20 "$tmp/pki.log")"
fi
bash "$idpdir/install.sh" >"$tmp/install.log" 2>&1 ||
    bail "idp install.sh" "$(tail -n 20 "$tmp/install.log")"

# start_idp NAME [server options...]: starts the IdP on a free port; sets URL.
start_idp() {
    local name=$1
    shift
    node "$idpdir/server.mjs" --port 0 --cert "$pki/idp.crt" --key "$pki/idp.key" \
        --client-ca "$pki/client-ca.crt" "$@" >"$tmp/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    IDP_PID=$pid
    URL=
    for _ in $(seq 1 300); do
        URL=$(sed -n 's/^idp listening on //p' "$tmp/$name.log")
        [ -n "$URL" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "--- $name.log"
    cat "$tmp/$name.log"
    return 1
}
stop_idp() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

idp_curl() { # idp_curl CLIENT_NAME|- ARGS... (client cert from the PKI)
    local who=$1
    shift
    local c=()
    [ "$who" != - ] && c=(--cert "$pki/$who.crt" --key "$pki/$who.key")
    curl -sS --max-time 20 --cacert "$pki/idp-ca.crt" "${c[@]}" "$@"
}
token_for() { # token_for CERT_NAME CLIENT_ID [RESOURCE]
    bash "$idpdir/get-token.sh" "$URL" "$pki/$1.crt" "$pki/$1.key" "$pki/idp-ca.crt" "$2" ${3:+"$3"}
}
fetch_jwks() { # fetch_jwks FILE
    local uri
    uri=$(q "$(idp_curl - "$URL/.well-known/openid-configuration")" d.jwks_uri) &&
        idp_curl - -o "$1" "$uri"
}

state=$tmp/state
start_idp idp --state "$state" --audience gatehouse --access-ttl 300 ||
    bail "IdP starts and prints 'idp listening on'"
ok "IdP starts and prints 'idp listening on'"
case $URL in
https://127.0.0.1:*) ok "IdP listens on loopback over https" ;;
*) not_ok "IdP listens on loopback over https" "url: $URL" ;;
esac
if [ -f "$state/keys.json" ]; then
    ok "signing keys persisted in --state DIR/keys.json"
else
    not_ok "signing keys persisted in --state DIR/keys.json"
fi

# --- discovery, served by oidc-provider --------------------------------------
disc=$(idp_curl - "$URL/.well-known/openid-configuration")
expect "discovery issuer" "$(q "$disc" d.issuer)" "$URL"
expect "discovery mtls_endpoint_aliases.token_endpoint" \
    "$(q "$disc" d.mtls_endpoint_aliases.token_endpoint)" "$URL/token"
expect "discovery token_endpoint" "$(q "$disc" d.token_endpoint)" "$URL/token"
expect "discovery tls_client_certificate_bound_access_tokens" \
    "$(q "$disc" d.tls_client_certificate_bound_access_tokens)" "true"
expect "discovery token auth methods" \
    "$(q "$disc" 'd.token_endpoint_auth_methods_supported.join(" ")')" "tls_client_auth"
fetch_jwks "$tmp/jwks0.json" || bail "JWKS fetch" "$(cat "$tmp/jwks0.json" 2>/dev/null)"
jwks0=$(cat "$tmp/jwks0.json")
expect "JWKS has one ES256 P-256 key" "$(q "$jwks0" \
    'd.keys.map((k) => [k.kty, k.crv, k.alg, k.use].join("/")).join(",")')" "EC/P-256/ES256/sig"
expect "JWKS publishes no private parts" "$(q "$jwks0" 'd.keys.some((k) => "d" in k)')" "false"
kid0=$(q "$jwks0" 'd.keys[0].kid')

# --- alice: a certificate-bound RFC 9068 access token ------------------------
now=$(date +%s)
if tok=$(token_for alice alice 2>"$tmp/err"); then
    ok "get-token.sh alice with alice's certificate"
else
    bail "get-token.sh alice with alice's certificate" "$(cat "$tmp/err")"
fi
jwt=$(decode "$tok")
expect "header alg" "$(q "$jwt" d.header.alg)" "ES256"
expect "header typ" "$(q "$jwt" d.header.typ)" "at+jwt"
expect "header kid is the published key" "$(q "$jwt" d.header.kid)" "$kid0"
expect_true "signature verifies against the JWKS" verify "$tok" "$tmp/jwks0.json"
expect "iss" "$(q "$jwt" d.payload.iss)" "$URL"
expect "aud contains gatehouse" \
    "$(q "$jwt" '[].concat(d.payload.aud).includes("gatehouse")')" "true"
expect "sub" "$(q "$jwt" d.payload.sub)" "alice"
expect "client_id" "$(q "$jwt" d.payload.client_id)" "alice"
expect "groups" "$(q "$jwt" d.payload.groups)" '["engineering"]'
expect "email" "$(q "$jwt" d.payload.email)" "alice@example.com"
expect "jti present" "$(q "$jwt" '/^[A-Za-z0-9_-]{16,}$/.test(d.payload.jti)')" "true"
expect "exp in the future" "$(q "$jwt" "d.payload.exp > $now")" "true"
expect "iat is now" "$(q "$jwt" "Math.abs(d.payload.iat - $now) <= 5")" "true"
expect "lifetime is --access-ttl" "$(q "$jwt" 'd.payload.exp - d.payload.iat')" "300"
alice_x5t=$(x5t_of "$pki/alice.crt")
expect "cnf.x5t#S256 is the SHA-256 of alice's certificate" \
    "$(q "$jwt" 'd.payload.cnf["x5t#S256"]')" "$alice_x5t"
if [ -f "$pki/alice.x5t" ]; then
    expect "cnf.x5t#S256 matches pki.sh's alice.x5t" "$alice_x5t" "$(cat "$pki/alice.x5t")"
fi

# --- the other clients -------------------------------------------------------
if tok=$(token_for carol carol 2>"$tmp/err"); then
    jwt=$(decode "$tok")
    expect "carol: sub" "$(q "$jwt" d.payload.sub)" "carol"
    expect "carol: groups" "$(q "$jwt" d.payload.groups)" '["ops","engineering"]'
    expect "carol: bound to carol's certificate" "$(q "$jwt" 'd.payload.cnf["x5t#S256"]')" \
        "$(x5t_of "$pki/carol.crt")"
else
    not_ok "get-token.sh carol" "$(cat "$tmp/err")"
fi
if tok=$(token_for svc-deployer ci-deployer 2>"$tmp/err"); then
    jwt=$(decode "$tok")
    expect "ci-deployer (SPIFFE SAN): sub" "$(q "$jwt" d.payload.sub)" "ci-deployer"
    expect "ci-deployer: groups" "$(q "$jwt" d.payload.groups)" '["deployers"]'
    expect "ci-deployer: bound to svc-deployer's certificate" \
        "$(q "$jwt" 'd.payload.cnf["x5t#S256"]')" "$(x5t_of "$pki/svc-deployer.crt")"
else
    not_ok "get-token.sh ci-deployer with svc-deployer's certificate" "$(cat "$tmp/err")"
fi
if tok=$(token_for alice alice https://other.example/api 2>"$tmp/err"); then
    expect "explicit resource indicator becomes aud" "$(q "$(decode "$tok")" d.payload.aud)" \
        "https://other.example/api"
else
    not_ok "get-token.sh with a resource indicator" "$(cat "$tmp/err")"
fi

# --- refusals ----------------------------------------------------------------
# refused NAME CERT_NAME|- CLIENT_ID: HTTP 401 invalid_client and no token.
refused() {
    local body code
    body=$(idp_curl "$2" -w '\n%{http_code}' "$URL/token" \
        -d grant_type=client_credentials -d "client_id=$3")
    code=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$code" = 401 ] && [ "$(q "$body" d.error)" = invalid_client ] &&
        [ "$(q "$body" '"access_token" in d')" = false ]; then
        ok "$1"
    else
        not_ok "$1" "HTTP $code: $body"
    fi
}
refused "bob's certificate for client alice is refused" bob alice
refused "no client certificate is refused" - alice
refused "alice's certificate for ci-deployer (SAN mismatch) is refused" alice ci-deployer
refused "unknown client is refused" alice mallory
if [ -f "$pki/rogue.crt" ]; then
    refused "look-alike alice certificate from a rogue CA is refused" rogue alice
fi
if bash "$idpdir/get-token.sh" "$URL" "$pki/bob.crt" "$pki/bob.key" "$pki/idp-ca.crt" alice \
    >"$tmp/out" 2>"$tmp/err"; then
    not_ok "get-token.sh fails for bob's certificate as alice" "printed: $(cat "$tmp/out")"
else
    if [ ! -s "$tmp/out" ] && grep -q invalid_client "$tmp/err"; then
        ok "get-token.sh fails for bob's certificate as alice, error body on stderr"
    else
        not_ok "get-token.sh fails for bob's certificate as alice, error body on stderr" \
            "stdout: $(cat "$tmp/out")" "stderr: $(cat "$tmp/err")"
    fi
fi
code=$(idp_curl - -o /dev/null -w '%{http_code}' -X GET "$URL/test/rotate")
expect "test helpers accept POST only" "$code" "405"

# --- back-channel logout helper ----------------------------------------------
now=$(date +%s)
if lt=$(idp_curl - -f -X POST -H 'content-type: application/json' \
    -d '{"sub":"alice","sid":"s-123","aud":"gatehouse"}' "$URL/test/logout-token" \
    2>"$tmp/err"); then
    jwt=$(decode "$lt")
    expect "logout_token typ" "$(q "$jwt" d.header.typ)" "logout+jwt"
    expect "logout_token alg/kid" "$(q "$jwt" 'd.header.alg + " " + d.header.kid')" "ES256 $kid0"
    expect_true "logout_token signature verifies against the JWKS" verify "$lt" "$tmp/jwks0.json"
    expect "logout_token events" "$(q "$jwt" d.payload.events)" \
        '{"http://schemas.openid.net/event/backchannel-logout":{}}'
    expect "logout_token iss/aud/sub/sid" \
        "$(q "$jwt" '[d.payload.iss, d.payload.aud, d.payload.sub, d.payload.sid].join(" ")')" \
        "$URL gatehouse alice s-123"
    expect "logout_token iat/exp/jti, no nonce" "$(q "$jwt" \
        "Math.abs(d.payload.iat - $now) <= 5 && d.payload.exp > d.payload.iat &&
         d.payload.jti.length >= 16 && !('nonce' in d.payload)")" "true"
else
    not_ok "POST /test/logout-token" "$(cat "$tmp/err")"
fi
lt=$(idp_curl - -X POST -d '{"sid":"s-1","events":null,"nonce":"n"}' "$URL/test/logout-token")
expect "logout_token overrides: null removes a claim, others are added" \
    "$(q "$(decode "$lt")" '[("events" in d.payload), d.payload.nonce, d.payload.sid].join(" ")')" \
    "false n s-1"
code=$(idp_curl - -o /dev/null -w '%{http_code}' -X POST -d '{"aud":"gatehouse"}' \
    "$URL/test/logout-token")
expect "logout_token without sub and sid is refused" "$code" "400"

# --- key rotation --------------------------------------------------------------
rot=$(idp_curl - -f -X POST "$URL/test/rotate")
kid1=$(q "$rot" d.kid)
fetch_jwks "$tmp/jwks1.json"
jwks1=$(cat "$tmp/jwks1.json")
expect "rotate: new kid differs" "$([ -n "$kid1" ] && [ "$kid1" != "$kid0" ] && echo yes)" "yes"
expect "rotate: JWKS is exactly the new key" \
    "$(q "$jwks1" 'd.keys.map((k) => k.kid).join(",")')" "$kid1"
expect "rotate: old kid removed from the JWKS" \
    "$(q "$jwks1" "d.keys.some((k) => k.kid === '$kid0')")" "false"
tok=$(token_for alice alice)
expect "rotate: new tokens carry the new kid" "$(q "$(decode "$tok")" d.header.kid)" "$kid1"
expect_true "rotate: new token verifies against the new JWKS" verify "$tok" "$tmp/jwks1.json"
expect "rotate: issuer unchanged" \
    "$(q "$(idp_curl - "$URL/.well-known/openid-configuration")" d.issuer)" "$URL"

rot=$(idp_curl - -f -X POST "$URL/test/rotate?keep=1")
kid2=$(q "$rot" d.kid)
fetch_jwks "$tmp/jwks2.json"
expect "rotate keep=1: JWKS holds new and old key" \
    "$(q "$(cat "$tmp/jwks2.json")" 'd.keys.map((k) => k.kid).join(",")')" "$kid2,$kid1"
tok=$(token_for alice alice)
expect "rotate keep=1: tokens signed with the new key" \
    "$(q "$(decode "$tok")" d.header.kid)" "$kid2"

# --- restart keeps the keys --------------------------------------------------
stop_idp "$IDP_PID"
start_idp idp-restart --state "$state" || bail "IdP restarts on the same state"
fetch_jwks "$tmp/jwks3.json"
expect "restart: same JWKS from keys.json" \
    "$(q "$(cat "$tmp/jwks3.json")" 'd.keys.map((k) => k.kid).join(",")')" "$kid2,$kid1"
tok=$(token_for alice alice)
expect "restart: signs with the active key" "$(q "$(decode "$tok")" d.header.kid)" "$kid2"
stop_idp "$IDP_PID"

# --- RS256 variant -------------------------------------------------------------
start_idp idp-rs --state "$tmp/state-rs" --alg RS256 --access-ttl 60 --audience gw-rs ||
    bail "IdP starts with --alg RS256"
if tok=$(token_for bob bob 2>"$tmp/err"); then
    jwt=$(decode "$tok")
    fetch_jwks "$tmp/jwks-rs.json"
    expect "RS256: header" "$(q "$jwt" 'd.header.alg + " " + d.header.typ')" "RS256 at+jwt"
    expect_true "RS256: signature verifies against the JWKS" verify "$tok" "$tmp/jwks-rs.json"
    expect "RS256: aud, sub, groups, ttl" \
        "$(q "$jwt" '[d.payload.aud, d.payload.sub, d.payload.groups.join("+"),
                      d.payload.exp - d.payload.iat].join(" ")')" \
        "gw-rs bob sales 60"
else
    not_ok "RS256: get-token.sh bob" "$(cat "$tmp/err")"
fi
stop_idp "$IDP_PID"

finish
