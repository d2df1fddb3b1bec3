#!/usr/bin/env bash
# Sessions and revocation (issue 5): a revoked session's live keep-alive
# connection is closed within 50 ms of the admin call and its token is
# refused; a fresh login starts a new session; lock user, block certificate
# and revoke token; revocations survive a restart; OIDC back-channel logout
# closes the session and forged/unsigned/expired logout tokens are refused.
source "$(dirname "$0")/lib.sh"
gh_init revocation
IDP_DIR="$GH_SRC/tests/integration/idp"
HOLD="node $GH_SRC/tests/integration/holdconn.mjs"

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
  - id: everyone-with-a-group
    effect: allow
    routes: [app]
    when:
      - claim: groups
        exists: true
YAML
SOCK=$T/admin.sock
write_idp_gw_config "$T/gw.yaml"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "issuer keys refreshed" 15
URL="https://127.0.0.1:$GW_PORT"
admin() { curl -sS --unix-socket "$SOCK" "$@"; }
req() { ccurl "$1" -H "Authorization: Bearer $2" "$URL/" -o /dev/null -w '%{http_code}'; }
last_reason() { sqlite3 "$T/gw.db" "select reason from decisions where route='app' order by id desc limit 1"; }
hold() { # name cert token -> background holder writing $T/NAME.hold
    $HOLD "$GW_PORT" "$PKI/$2.crt" "$PKI/$2.key" "$PKI/server-ca.crt" "$3" / 20 > "$T/$1.hold" &
    for _ in $(seq 50); do grep -q STATUS "$T/$1.hold" && return 0; sleep 0.1; done; return 1
}
now_ms() { date +%s.%N | awk '{printf "%.3f", $1 * 1000}'; }

ALICE=$(token alice alice)
check_eq "alice allowed" 200 "$(req alice "$ALICE")"
sid=$(admin "http://admin/v1/sessions" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const x=j.sessions.find(e=>e.subject==="alice");process.stdout.write(x?x.id:"")})')
check_match "alice has a session id" '^[0-9a-f]{32}$' "$sid"

# --- revoke session: the live connection drops within 50 ms ------------------
hold a1 alice "$ALICE"; check_match "holder connected" "STATUS 200" "$(cat "$T/a1.hold")"
t0=$(now_ms)
resp=$(admin -X POST -H 'Content-Type: application/json' \
    -d "{\"kind\":\"session\",\"target\":\"$sid\",\"reason\":\"test\"}" "http://admin/v1/revocations")
wait $! 2>/dev/null
for _ in $(seq 50); do grep -q CLOSED "$T/a1.hold" && break; sleep 0.1; done
t1=$(awk '/CLOSED/ {print $2}' "$T/a1.hold")
lat=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
echo "revocation -> client saw close: ${lat} ms (admin answer: $resp)"
check_match "admin reports a closed connection" '"closed_connections":[1-9]' "$resp"
check "keep-alive connection closed within 50 ms" awk -v l="$lat" 'BEGIN {exit !(l > 0 && l < 50)}'
check_eq "same token after session revocation -> 401" 401 "$(req alice "$ALICE")"
check_eq "reason session_revoked" session_revoked "$(last_reason)"
sleep 1.1
ALICE2=$(token alice alice)
check_eq "fresh token: a new session is allowed" 200 "$(req alice "$ALICE2")"
sid2=$(sqlite3 "$T/gw.db" "select session_id from decisions where token_sub='alice' and decision='allow' order by id desc limit 1")
check "the new session has a new id" test -n "$sid2" -a "$sid2" != "$sid"

# --- revoke token (jti) ---------------------------------------------------------
jti=$(node -e 'process.stdout.write(JSON.parse(Buffer.from(process.argv[1].split(".")[1],"base64url")).jti)' "$ALICE2")
admin -X POST -d "{\"kind\":\"token\",\"target\":\"$jti\",\"reason\":\"leaked\"}" "http://admin/v1/revocations" >/dev/null
check_eq "revoked jti -> 401" 401 "$(req alice "$ALICE2")"
check_eq "reason token_revoked" token_revoked "$(last_reason)"
ALICE3=$(token alice alice)
check_eq "a fresh token works after a token revocation" 200 "$(req alice "$ALICE3")"

# --- lock user: every session of the subject closed and refused ----------------
CAROL=$(token carol carol)
hold c1 carol "$CAROL"
hold c2 carol "$CAROL"
admin -X POST -d '{"kind":"subject","target":"carol","reason":"offboarding"}' "http://admin/v1/revocations" > "$T/lock.json"
for _ in $(seq 30); do grep -q CLOSED "$T/c1.hold" && grep -q CLOSED "$T/c2.hold" && break; sleep 0.1; done
check "both of carol's connections closed" bash -c "grep -q CLOSED '$T/c1.hold' && grep -q CLOSED '$T/c2.hold'"
check_eq "locked user refused" 401 "$(req carol "$(token carol carol)")"
check_eq "reason subject_locked" subject_locked "$(last_reason)"
lock_id=$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1])).revocation.id))' "$T/lock.json")
admin -X DELETE "http://admin/v1/revocations/$lock_id" -o /dev/null -w '%{http_code}' > "$T/unlock.code"
check_eq "lift the lock" 200 "$(cat "$T/unlock.code")"
check_eq "carol allowed after the lock is lifted" 200 "$(req carol "$(token carol carol)")"

# --- block certificate: refused even with a valid fresh token ------------------
BOB=$(token bob bob)
check_eq "bob allowed before the block" 200 "$(req bob "$BOB")"
admin -X POST -d "{\"kind\":\"cert\",\"target\":\"$(cat "$PKI/bob.sha256")\",\"reason\":\"stolen laptop\"}" "http://admin/v1/revocations" >/dev/null
check "blocked device: handshake or request refused" bash -c "[ \"\$(curl -sS --cacert $PKI/server-ca.crt --cert $PKI/bob.crt --key $PKI/bob.key -H 'Authorization: Bearer $(token bob bob)' $URL/ -o /dev/null -w '%{http_code}' 2>/dev/null)\" != 200 ]"
sleep 0.3
check_match "cert_blocked logged" "cert_blocked" "$(sqlite3 "$T/gw.db" "select group_concat(reason) from decisions where reason='cert_blocked'")"

# --- restart: revocations still enforced --------------------------------------
stop_bg gw
start_bg gw2 "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw2 "listening on" 10
sleep 0.5
check_eq "after restart: revoked session's token still refused" 401 "$(req alice "$ALICE")"
check_eq "after restart: revoked jti still refused" 401 "$(req alice "$ALICE2")"
check "after restart: blocked cert still refused" bash -c "[ \"\$(curl -sS --cacert $PKI/server-ca.crt --cert $PKI/bob.crt --key $PKI/bob.key $URL/ -o /dev/null -w '%{http_code}' 2>/dev/null)\" != 200 ]"
check_eq "after restart: alice's current token works" 200 "$(req alice "$ALICE3")"

# --- OIDC back-channel logout ----------------------------------------------------
LOGOUT_URL="$URL/.well-known/gatehouse/backchannel-logout"
hold a2 alice "$ALICE3"
lt=$(curl -sS -X POST --cacert "$PKI/idp-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" \
    -H 'Content-Type: application/json' -d '{"sub":"alice","aud":"gatehouse"}' "$IDP_URL/test/logout-token")
code=$(ccurl alice --data-urlencode "logout_token=$lt" "$LOGOUT_URL" -o /dev/null -w '%{http_code}')
check_eq "back-channel logout accepted" 200 "$code"
for _ in $(seq 30); do grep -q CLOSED "$T/a2.hold" && break; sleep 0.1; done
check_match "logout closed alice's live connection" CLOSED "$(cat "$T/a2.hold")"
check_eq "alice's token refused after logout" 401 "$(req alice "$ALICE3")"
forged=$(node -e 'const [h,p,s]=process.argv[1].split(".");const q=JSON.parse(Buffer.from(p,"base64url"));q.sub="bob";process.stdout.write(h+"."+Buffer.from(JSON.stringify(q)).toString("base64url")+"."+s)' "$lt")
check_eq "forged logout token refused" 400 "$(ccurl alice --data-urlencode "logout_token=$forged" "$LOGOUT_URL" -o /dev/null -w '%{http_code}')"
unsigned=$(node -e 'const [h,p]=process.argv[1].split(".");const H=JSON.parse(Buffer.from(h,"base64url"));H.alg="none";process.stdout.write(Buffer.from(JSON.stringify(H)).toString("base64url")+"."+p+".")' "$lt")
check_eq "unsigned logout token refused" 400 "$(ccurl alice --data-urlencode "logout_token=$unsigned" "$LOGOUT_URL" -o /dev/null -w '%{http_code}')"
expired=$(curl -sS -X POST --cacert "$PKI/idp-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" \
    -H 'Content-Type: application/json' -d "{\"sub\":\"alice\",\"iat\":1000000000,\"exp\":1000000600}" "$IDP_URL/test/logout-token")
check_eq "expired logout token refused" 400 "$(ccurl alice --data-urlencode "logout_token=$expired" "$LOGOUT_URL" -o /dev/null -w '%{http_code}')"
# The body in a TLS record of its own (as an IdP's HTTP client may send it):
# the gateway must keep reading it, not stall until the header timeout.
body="logout_token=$forged"
printf 'POST /.well-known/gatehouse/backchannel-logout HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n' \
    "${#body}" >"$T/lo-head"
printf '%s' "$body" >"$T/lo-body"
timeout 30 node "$GH_SRC/tests/integration/rawtls.mjs" --port "$GW_PORT" --ca "$PKI/server-ca.crt" \
    --cert "$PKI/alice.crt" --key "$PKI/alice.key" --idle 1000 "$T/lo-head" "$T/lo-body" >"$T/lo.out" 2>&1
check_eq "a logout body arriving after its head is read and judged" "HTTP/1.1 400" "$(head -c 12 "$T/lo.out")"
check_match "invalid logouts logged" "backchannel_logout_invalid" "$(sqlite3 "$T/gw.db" "select group_concat(distinct reason) from decisions where reason like 'backchannel%'")"
gh_finish
