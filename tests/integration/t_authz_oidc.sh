#!/usr/bin/env bash
# authz against a real OpenID Provider (issue 3): certificate-bound tokens
# from oidc-provider over mTLS client_credentials, identity headers and the
# signed assertion at the upstream, binding to the connection's certificate,
# policy allow/deny, hostile tokens that must never reach the upstream, key
# rotation without restart, and serving from cached keys with the OP down.
source "$(dirname "$0")/lib.sh"
gh_init authz_oidc
IDP_DIR="$GH_SRC/tests/integration/idp"
FORGE="node $GH_SRC/tests/integration/forge.mjs"

start_bg idp node "$IDP_DIR/server.mjs" --port 0 --cert "$PKI/idp.crt" --key "$PKI/idp.key" \
    --client-ca "$PKI/client-ca.crt" --state "$T/idp-state" --audience gatehouse
wait_log idp "idp listening on" 20
IDP_URL=$(grep -o 'https://127.0.0.1:[0-9]*' "$T/idp.log" | head -1)
token() { bash "$IDP_DIR/get-token.sh" "$IDP_URL" "$PKI/$1.crt" "$PKI/$1.key" "$PKI/idp-ca.crt" "$2"; }

start_upstream up
GW_PORT=$(free_port)
cat > "$T/policy.yaml" <<'YAML'
version: 1
rules:
  - id: app-engineering
    effect: allow
    routes: [app]
    when:
      - claim: groups
        contains: engineering
  - id: deploy-ci
    effect: allow
    routes: [app]
    methods: [POST]
    paths: ["/deploy/**"]
    when:
      - cert: san_uri
        equals: "spiffe://example.org/ci/deployer"
      - claim: groups
        contains: deployers
YAML
cat > "$T/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$GW_PORT"
  workers: 2
tls:
  cert: $PKI/server.crt
  key: $PKI/server.key
  client_ca: $PKI/client-ca.crt
issuer:
  url: $IDP_URL
  audiences: [gatehouse]
  ca: $PKI/idp-ca.crt
  jwks_refresh: 60
  jwks_min_refresh: 1
policy: $T/policy.yaml
assertion:
  key: $T/assertion.key
routes:
  - id: app
    host: "*"
    path_prefix: /
    upstream:
      url: http://127.0.0.1:$up_PORT
decision_log:
  path: $T/gw.db
  mode: strict
admin:
  socket: $T/admin.sock
YAML
check "check-config accepts the config" "$GATEHOUSE" check-config -c "$T/gw.yaml"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "issuer keys refreshed" 15
URL="https://127.0.0.1:$GW_PORT"

ALICE=$(token alice alice); check "alice got a token" test -n "$ALICE"
BOB=$(token bob bob); check "bob got a token" test -n "$BOB"
req() { # cert token path -> "status" (body to $T/body)
    local auth=(); [ "$2" != "-" ] && auth=(-H "Authorization: Bearer $2")
    ccurl "$1" "${auth[@]}" "$URL$3" -o "$T/body" -w '%{http_code}' -D "$T/hdrs"
}
last_reason() { sqlite3 "$T/gw.db" "select reason from decisions order by id desc limit 1"; }

# --- the happy path: identity reaches the upstream -------------------------
check_eq "alice's bound token over alice's cert -> 200" 200 "$(req alice "$ALICE" /echo)"
echo_json=$(cat "$T/body")
check_match "upstream sees X-Gatehouse-User alice" '"x-gatehouse-user":\["alice"\]' "$echo_json"
check_match "upstream sees groups" '"x-gatehouse-groups":\["engineering"\]' "$echo_json"
check_match "upstream sees the cert thumbprint" "\"x-gatehouse-cert-thumbprint\":\\[\"$(cat "$PKI/alice.x5t")\"\\]" "$echo_json"
check "bearer token not forwarded to the upstream" bash -c "! grep -q '\"authorization\"' '$T/body'"
assertion=$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));process.stdout.write(j.headers["x-gatehouse-assertion"][0])' "$T/body")
ccurl alice "$URL/.well-known/gatehouse/jwks.json" -o "$T/gw-jwks.json"
claims=$($FORGE verify-assertion "$assertion" "$T/gw-jwks.json" app)
check_match "assertion verifies with the gateway JWKS and names alice" '"sub":"alice"' "$claims"
check_match "assertion carries the binding result" '"binding":"verified"' "$claims"
row=$(sqlite3 "$T/gw.db" "select decision||'|'||reason||'|'||rule_id||'|'||token_sub||'|'||length(policy_version) from decisions where token_sub='alice' order by id desc limit 1")
check_eq "allow row with rule and policy version" "allow|allow|app-engineering|alice|64" "$row"

# --- one keep-alive connection, two tokens ---------------------------------
# The identity headers are rendered once per connection and reused; a new
# token on the same connection must get a freshly signed assertion, and
# the cached block must be the one made for the token in use.
ALICE2=$(token alice alice); check "alice got a second token" test -n "$ALICE2"
kc=(--cacert "$PKI/server-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key")
curl -sS --max-time 30 "${kc[@]}" -H "Authorization: Bearer $ALICE" "$URL/echo?ka=1" -o "$T/ka1" \
    --next -sS --max-time 30 "${kc[@]}" -H "Authorization: Bearer $ALICE" "$URL/echo?ka=2" -o "$T/ka2" \
    --next -sS --max-time 30 "${kc[@]}" -H "Authorization: Bearer $ALICE2" "$URL/echo?ka=3" -o "$T/ka3" \
    --next -sS --max-time 30 "${kc[@]}" -H "Authorization: Bearer $ALICE" "$URL/echo?ka=4" -o "$T/ka4" \
    -w '%{num_connects}' > "$T/ka.connects" 2>"$T/ka.err"
check_eq "four requests reused one connection" 0 "$(cat "$T/ka.connects")"
ka_assert() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));process.stdout.write(j.headers["x-gatehouse-assertion"][0]+" "+j.headers["x-gatehouse-user"][0])' "$1"; }
a1=$(ka_assert "$T/ka1"); a2=$(ka_assert "$T/ka2"); a3=$(ka_assert "$T/ka3"); a4=$(ka_assert "$T/ka4")
check_match "keep-alive: user alice on every request" ' alice$' "$a3"
check_eq "same token, same connection: the assertion is reused" "$a1" "$a2"
check "new token on the connection: a new assertion" test "$a2" != "$a3"
check "back to the first token: signed again, not a stale block" test "$a3" != "$a4"
claims=$($FORGE verify-assertion "${a3% *}" "$T/gw-jwks.json" app)
check_match "the new assertion verifies and names alice" '"sub":"alice"' "$claims"

# A reload that renames the gateway (the assertion's iss) while a keep-alive
# connection stays open: its next request must not get the cached block.
coproc KA { timeout 30 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" -cert "$PKI/alice.crt" \
    -key "$PKI/alice.key" -CAfile "$PKI/server-ca.crt" 2>/dev/null; }
ka_get() { # one GET /echo on the open connection -> its JSON body in $KA_BODY
    printf 'GET /echo?ka=reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' "$ALICE" >&"${KA[1]}"
    local line
    KA_BODY=""
    while IFS= read -r -t 10 line <&"${KA[0]}"; do
        [[ "$line" == \{* ]] && { KA_BODY=$line; return 0; }
    done
    return 1
}
iss_of() { $FORGE verify-assertion "$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).headers["x-gatehouse-assertion"][0])' "$1")" "$T/gw-jwks.json" app; }
ka_get; before=$(iss_of "$KA_BODY")
check "keep-alive before the reload: a verified assertion" test -n "$before"
check "...not yet issued by the new name" bash -c "! grep -q gw-renamed <<<'$before'"
sed -i 's/^server:$/server:\n  name: gw-renamed/' "$T/gw.yaml"
kill -HUP "$(bg_pid gw)"
wait_log gw "reload ok" 10
ka_get; after=$(iss_of "$KA_BODY")
check_match "same connection after the reload: assertion re-signed by the new name" \
    '"iss":"gw-renamed"' "$after"
exec {KA[1]}>&-
wait "$KA_PID" 2>/dev/null || true

# A reload that narrows the audiences: a token verified (and cached) under
# the old list is checked again, not served from the cache.
reloads_done() { grep -c "reload ok" "$T/gw.log"; }
reload_gw() { # wait for one more "reload ok" than before
    local n
    n=$(reloads_done)
    kill -HUP "$(bg_pid gw)"
    for _ in $(seq 100); do
        [ "$(reloads_done)" -gt "$n" ] && return 0
        sleep 0.1
    done
    return 1
}
check_eq "alice's token passes (and is cached) before the audience change" 200 "$(req alice "$ALICE" /echo)"
sed -i 's/^  audiences: \[gatehouse\]$/  audiences: [another-api]/' "$T/gw.yaml"
check "reload with audiences [another-api]" reload_gw
check_eq "the cached token is refused after the reload" 401 "$(req alice "$ALICE" /echo)"
check_eq "reason token_bad_audience" token_bad_audience "$(last_reason)"
sed -i 's/^  audiences: \[another-api\]$/  audiences: [gatehouse]/' "$T/gw.yaml"
check "reload with audiences [gatehouse] again" reload_gw
check_eq "and accepted again once the audience is back" 200 "$(req alice "$ALICE" /echo)"
check_fail "an audience change keeps the issuer keys" grep -q "cached keys dropped" "$T/gw.log"

# A reload that changes where keys come from (here the CA file that pins the
# issuer) drops the old keys at once and fetches from the new settings.
cp "$PKI/idp-ca.crt" "$T/idp-ca-copy.crt"
sed -i "s|^  ca: $PKI/idp-ca.crt\$|  ca: $T/idp-ca-copy.crt|" "$T/gw.yaml"
check "reload with issuer.ca moved" reload_gw
check "the old keys are dropped on that reload" grep -q "cached keys dropped" "$T/gw.log"
ok_again=0
for _ in $(seq 50); do
    [ "$(req alice "$ALICE" /echo)" = 200 ] && { ok_again=1; break; }
    sleep 0.2
done
check_eq "keys fetched under the new settings verify alice's token again" 1 "$ok_again"

# --- binding: alice's token over bob's certificate -------------------------
hits_before=$(upstream_hits up 'x-gatehouse-user=alice' || true)
check_eq "alice's token with bob's cert -> 401" 401 "$(req bob "$ALICE" /echo)"
check_eq "reason binding_mismatch" binding_mismatch "$(last_reason)"
check_match "RFC 6750 invalid_token challenge" 'WWW-Authenticate: Bearer realm="gatehouse", error="invalid_token"' "$(cat "$T/hdrs")"

# --- other denials ----------------------------------------------------------
check_eq "no token -> 401" 401 "$(req alice - /echo)"
check_eq "reason token_missing" token_missing "$(last_reason)"
check_eq "bob (sales) -> 403" 403 "$(req bob "$BOB" /echo)"
check_eq "reason policy_no_match" policy_no_match "$(last_reason)"
check_match "insufficient_scope challenge" 'error="insufficient_scope"' "$(cat "$T/hdrs")"
check_eq "token in query -> 400" 400 "$(req alice - "/echo?access_token=$ALICE")"
check_eq "reason token_in_query_or_body" token_in_query_or_body "$(last_reason)"
code=$(ccurl alice -H "Authorization: Bearer $ALICE" -H "Authorization: Bearer $ALICE" "$URL/echo" -o /dev/null -w '%{http_code}')
check_eq "two Authorization headers -> 400" 400 "$code"

# --- machine to machine: SPIFFE workload certificate --------------------------
SVC=$(token svc-deployer ci-deployer); check "ci-deployer got a token" test -n "$SVC"
code=$(ccurl svc-deployer -H "Authorization: Bearer $SVC" -X POST "$URL/deploy/app1" -o /dev/null -w '%{http_code}')
check_eq "SPIFFE workload with bound token may POST /deploy" 200 "$code"
code=$(ccurl svc-deployer -H "Authorization: Bearer $SVC" "$URL/deploy/app1" -o /dev/null -w '%{http_code}')
check_eq "...but not GET (least privilege)" 403 "$code"

# --- hostile tokens: denied with the right reason, never reach the upstream --
jwks_uri=$(curl -sS --cacert "$PKI/idp-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$IDP_URL/.well-known/openid-configuration" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).jwks_uri))')
curl -sS --cacert "$PKI/idp-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$jwks_uri" -o "$T/idp-jwks.json"
hits0=$(upstream_hits up '.' || true)
hostile() { # kind expected-reason [resign]
    local t
    if [ "${3:-}" = resign ]; then
        t=$(SIGN_WITH="$T/idp-state/keys.json" $FORGE "$1" "$ALICE" "$T/idp-jwks.json")
    else
        t=$($FORGE "$1" "$ALICE" "$T/idp-jwks.json")
    fi
    local code; code=$(req alice "$t" /echo)
    check_match "hostile $1 -> 4xx" "^4(00|01|31)$" "$code"
    check_eq "hostile $1 reason" "$2" "$(last_reason)"
}
hostile none token_bad_alg
hostile hs256-pubkey token_bad_alg
hostile tampered token_bad_signature
hostile truncated-sig token_bad_signature
hostile zero-sig token_bad_signature
hostile jku token_forbidden_header
hostile x5u token_forbidden_header
hostile jwk token_forbidden_header
hostile x5c token_forbidden_header
hostile crit token_forbidden_header
hostile no-cnf binding_missing resign
hostile cnf-hex binding_malformed resign
hostile cnf-padded binding_malformed resign
hostile cnf-std-b64 binding_malformed resign
hostile no-cnf token_bad_signature
hostile segments2 token_malformed
hostile segments4 token_malformed
hostile oversized token_too_large
hostile nested token_malformed resign
hits1=$(upstream_hits up '.' || true)
check_eq "no hostile token reached the upstream" "$hits0" "$hits1"

# --- key rotation at the OP: new tokens work, removed keys stop working ------
old_kid=$(node -e 'process.stdout.write(JSON.parse(Buffer.from(process.argv[1].split(".")[0],"base64url")).kid)' "$ALICE")
curl -sS -X POST --cacert "$PKI/idp-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$IDP_URL/test/rotate" -o /dev/null
NEW=$(token alice alice)
new_kid=$(node -e 'process.stdout.write(JSON.parse(Buffer.from(process.argv[1].split(".")[0],"base64url")).kid)' "$NEW")
check "rotation produced a new kid" test "$old_kid" != "$new_kid"
ok=0; for _ in $(seq 1 20); do [ "$(req alice "$NEW" /)" = 200 ] && { ok=1; break; }; sleep 0.5; done
check_eq "token from the new key accepted without restart" 1 "$ok"
check_eq "token from the removed key refused" 401 "$(req alice "$ALICE" /)"
check_eq "reason token_unknown_kid" token_unknown_kid "$(last_reason)"

# --- OP stopped: cached keys keep serving; restart with the OP down too ------
stop_bg idp
sleep 1
check_eq "OP down: cached keys still verify" 200 "$(req alice "$NEW" /)"
stop_bg gw
start_bg gw2 "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw2 "listening on" 10
check_match "restart loads the persisted keys" "loaded [0-9]+ persisted issuer keys" "$(cat "$T/gw2.log")"
check_eq "restart with the OP down: persisted keys verify" 200 "$(req alice "$NEW" /)"
gh_finish
