#!/usr/bin/env bash
# Admin API (issue 5, docs/ADMIN-API.md) against the real binary: the Unix
# socket (mode 0600, SO_PEERCRED: a non-owner is refused even when the file
# mode is loosened), the mTLS listener (admin CA only: a user certificate
# fails the handshake, an admin-CA certificate outside the allow-list gets
# 403), every endpoint's JSON shape, the live decision stream, limits
# (2 MiB body -> 413, garbage, slow head -> 408, more than 64 clients ->
# 503) with the daemon still answering afterwards, and one decision row
# with route 'admin' for every admin request -- refused ones included.
# shellcheck disable=SC2154 # T, PKI, GATEHOUSE, up_URL... come from lib.sh
source "$(dirname "$0")/lib.sh"
gh_init admin_api "$@"

start_upstream up
GW_PORT=$(free_port)
ADMIN_PORT=$(free_port)
GW_DB=$T/gatehouse.db
# The socket lives in a 0755 directory so that user nobody can reach the
# file at all; the file's own mode (0600) and SO_PEERCRED must stop it.
gh_short_tmpdir
chmod 0755 "$GH_SHORT_TMP"
SOCK=$GH_SHORT_TMP/admin.sock
ADMIN_URL=https://localhost:$ADMIN_PORT
U=http://localhost # host part of URLs sent over the Unix socket

cat >"$T/policy-v1.yaml" <<'EOF'
version: 1
rules:
  - id: app-all
    effect: allow
    routes: [app]
EOF
cat >"$T/policy-v2.yaml" <<'EOF'
version: 1
rules:
  - id: app-read
    effect: allow
    routes: [app]
    methods: [GET, HEAD]
EOF
printf 'version: 1\nrules:\n  - id: broken\n    effect: maybe\n' >"$T/policy-bad.yaml"
cp "$T/policy-v1.yaml" "$T/policy.yaml"

write_config() { # FILE SOCKET_PATH
    cat >"$1" <<EOF
server:
  listen: "127.0.0.1:$GW_PORT"
  workers: 2
tls:
  cert: "$PKI/server.crt"
  key: "$PKI/server.key"
  client_ca: "$PKI/client-ca.crt"
  crl: "$PKI/client-ca.crl"
routes:
  - id: app
    host: "*"
    path_prefix: "/"
    authz: false
    upstream:
      url: "$up_URL"
policy: "$T/policy.yaml"
decision_log:
  path: "$GW_DB"
  mode: strict
admin:
  socket: "$2"
  listen: "127.0.0.1:$ADMIN_PORT"
  client_ca: "$PKI/admin-ca.crt"
  allowed_subjects: ["CN=ops-admin"]
EOF
}

# --- start-up: a non-socket file at the socket path is never clobbered -------
write_config "$T/bad.yaml" "$T/not-a-socket"
echo "precious" >"$T/not-a-socket"
out=$(timeout 20 "$GATEHOUSE" serve -c "$T/bad.yaml" 2>&1)
check_eq "a regular file at admin.socket stops the start" 1 "$?"
check_match "and the error says why" "exists and is not a socket" "$out"
check_eq "the file is left alone" "precious" "$(cat "$T/not-a-socket")"

write_config "$T/gw.yaml" "$SOCK"
start_gw "$T/gw.yaml"
wait_port "$ADMIN_PORT" 10 || gh_fatal "admin listener did not come up"
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

# Every admin request this test makes is counted here; at the end the
# decision log must hold exactly that many rows with route 'admin'.
: >"$T/admin.calls"
count() { printf '%s\n' "${1:-1}" >>"$T/admin.calls"; }
ucurl() { count; curl -sS --max-time 30 --unix-socket "$SOCK" "$@"; }
tcurl() { count; ccurl admin "$@"; } # mTLS with the admin certificate
# shellcheck disable=SC2317 # called through check
json_ok() { node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))'; }

# A slow client (slowloris) started now, checked at the end: the head never
# completes, so after 10 s it gets 408 and is closed.
count
node -e '
const s = require("net").connect(process.argv[1]);
s.on("connect", () => s.write("GET /v1/health HTTP/1.1\r\nHost: x\r\n"));
let d = ""; s.on("data", x => d += x);
s.on("close", () => { console.log(d.split("\r\n")[0] + " closed"); process.exit(0); });
setTimeout(() => { console.log("still open"); process.exit(1); }, 20000);
' "$SOCK" >"$T/slow.out" 2>&1 &
slow_pid=$!

# --- the socket ----------------------------------------------------------------
check_eq "socket file mode is 0600" 600 "$(stat -c %a "$SOCK")"
check_eq "socket is owned by the gateway's user" "$(id -u)" "$(stat -c %u "$SOCK")"
check_eq "health over the socket" '{"ok":true}' "$(ucurl "$U/v1/health")"

out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' "$U/v1/health" 2>&1)
check_match "nobody cannot even connect to the 0600 socket" "Permission denied|Couldn't connect|^000" "$out"
# Loosen the mode by hand (an operator mistake): SO_PEERCRED still refuses.
chmod 0666 "$SOCK"
count
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    curl -sS --max-time 10 --unix-socket "$SOCK" -w ' %{http_code}' "$U/v1/health" 2>&1)
chmod 0600 "$SOCK"
check_match "nobody on a loosened socket gets 403 admin_denied" '"reason":"admin_denied".* 403$' "$out"

# --- read endpoints: valid JSON with the documented keys --------------------------
stats=$(ucurl "$U/v1/stats")
check "stats is JSON" json_ok <<<"$stats"
for k in name version uptime_s requests allowed denied req_per_s deny_rate live_connections \
    active_sessions workers log.committed log.batches log.commit_us log.wal_checkpoints log.queue_depth log.healthy keys.count; do
    check "stats has $k" json_get ".$k" <<<"$stats"
done
hdrs=$(ucurl -D - -o "$T/metrics.txt" "$U/metrics")
check_match "metrics content type" "Content-Type: text/plain; version=0.0.4" "$hdrs"
check "metrics has gatehouse_ series" grep -q '^gatehouse_[a-z_]* ' "$T/metrics.txt"
check "metrics counts decision-log commits" grep -qE '^gatehouse_decision_log_commits_total [1-9][0-9]*$' "$T/metrics.txt"
check "metrics has the time spent committing" \
    grep -qE '^gatehouse_decision_log_commit_seconds_total [0-9]+\.[0-9]{6}$' "$T/metrics.txt"
# Admin calls above were logged decisions, so the writer has committed.
check "stats: the writer committed and the commits took time" \
    test "$(json_get .log.batches <<<"$stats")" -gt 0 -a "$(json_get .log.commit_us <<<"$stats")" -gt 0
for series in $(grep -o '^gatehouse_[a-z_]*' "$T/metrics.txt" | sort -u); do
    check "metrics series $series is documented in ADMIN-API.md" \
        grep -q "\`$series" "$GH_SRC/docs/ADMIN-API.md"
done
sessions=$(ucurl "$U/v1/sessions?limit=10")
check_eq "sessions is a list" array "$(json_get '.sessions.constructor.name.toLowerCase()' <<<"$sessions")"
out=$(ucurl -w ' %{http_code}' "$U/v1/sessions?limit=0")
check_match "sessions limit=0 -> 400" '"reason":"admin_bad_request".* 400$' "$out"
out=$(ucurl -w ' %{http_code}' "$U/v1/sessions/00000000000000000000000000000000")
check_match "unknown session -> 404" '"error":"no such session".* 404$' "$out"
revs=$(ucurl "$U/v1/revocations")
check_eq "revocations is a list" 0 "$(json_get '.revocations.length' <<<"$revs")"
out=$(ucurl -w ' %{http_code}' "$U/v1/health/x")
check_match "unknown path -> 404 JSON" '^\{"error":"no such admin endpoint","reason":"admin_bad_request"\}.* 404$' "$out"
out=$(ucurl -i -X PUT "$U/v1/revocations")
check_match "wrong method -> 405" "^HTTP/1.1 405" "$out"
check_match "405 carries Allow" "Allow: GET, POST" "$out"
out=$(ucurl -w ' %{http_code}' "$U/v1/decisions?decision=maybe")
check_match "bad decision filter -> 400" "allow or deny.* 400$" "$out"
out=$(ucurl -w ' %{http_code}' "$U/v1/decisions?colour=red")
check_match "unknown query parameter -> 400" "unknown query parameter 'colour'.* 400$" "$out"

# --- revocations ------------------------------------------------------------------
out=$(ucurl -w '\n%{http_code}' -H 'Content-Type: application/json' \
    -d '{"kind":"subject","target":"mallory","reason":"offboarding","expires_in_s":3600}' \
    "$U/v1/revocations")
check_eq "revoke -> 201" 201 "$(tail -n 1 <<<"$out")"
rev_id=$(head -n 1 <<<"$out" | json_get '.revocation.id')
check_match "revoke returns the revocation id" '^[0-9]+$' "$rev_id"
check_eq "revocation actor is the socket user" "uid:$(id -u)" \
    "$(head -n 1 <<<"$out" | json_get '.revocation.actor')"
check "revoke reports closed_connections" json_get '.closed_connections' <<<"$(head -n 1 <<<"$out")"
check_eq "revocation is listed as active" true \
    "$(ucurl "$U/v1/revocations" | json_get ".revocations.find(r => r.id == $rev_id).active")"
check_eq "the list says it is complete" false "$(ucurl "$U/v1/revocations" | json_get '.truncated')"
ucurl -o /dev/null -d '{"kind":"token","target":"jti-page","reason":"t","expires_in_s":60}' \
    "$U/v1/revocations"
page=$(ucurl "$U/v1/revocations?limit=1")
check_eq "?limit=1 lists one revocation, the newest" "jti-page" "$(json_get '.revocations[0].target' <<<"$page")"
check_eq "and says there are more" true "$(json_get '.truncated' <<<"$page")"
check_match "?limit=0 is refused" " 400$" "$(ucurl -w ' %{http_code}' -o /dev/null "$U/v1/revocations?limit=0")"
# A cert target that could never match a certificate would look blocked and
# block nothing: only a SHA-256 thumbprint (64 hex or canonical base64url).
for bad in "$(printf 'g%.0s' $(seq 64))" "$(printf 'A%.0s' $(seq 42))B" "abc"; do
    out=$(ucurl -w ' %{http_code}' -d "{\"kind\":\"cert\",\"target\":\"$bad\",\"reason\":\"t\"}" \
        "$U/v1/revocations")
    check_match "cert target '${bad:0:12}...' refused with 400" "thumbprint.* 400$" "$out"
done
upper=$(printf 'AB%.0s' $(seq 32))
out=$(ucurl -d "{\"kind\":\"cert\",\"target\":\"$upper\",\"reason\":\"t\"}" "$U/v1/revocations")
check_eq "an upper-case hex thumbprint is stored in lower case" "$(tr 'A-F' 'a-f' <<<"$upper")" \
    "$(json_get '.revocation.target' <<<"$out")"
ucurl -o /dev/null -X DELETE "$U/v1/revocations/$(json_get '.revocation.id' <<<"$out")"
out=$(ucurl -w ' %{http_code}' -d '{"kind":"subject","target":"mallory"}' "$U/v1/revocations")
check_match "missing field -> 400 naming it" "missing field 'reason'.* 400$" "$out"
out=$(ucurl -w ' %{http_code}' -d '{"kind":"subject",' "$U/v1/revocations")
check_match "malformed JSON -> 400" "malformed JSON.* 400$" "$out"
out=$(ucurl -w ' %{http_code}' -d '{"kind":"person","target":"x","reason":"r"}' "$U/v1/revocations")
check_match "bad kind -> 400" "must be one of session.* 400$" "$out"
out=$(ucurl -w ' %{http_code}' -d '{"kind":"subject","target":"x","reason":"r","expires_in_s":"soon"}' \
    "$U/v1/revocations")
check_match "wrong type -> 400" "expires_in_s.* 400$" "$out"
check_eq "lift the revocation -> 200" 200 \
    "$(ucurl -o /dev/null -w '%{http_code}' -X DELETE "$U/v1/revocations/$rev_id")"
check_eq "lifting it again -> 404" 404 \
    "$(ucurl -o /dev/null -w '%{http_code}' -X DELETE "$U/v1/revocations/$rev_id")"
check_eq "non-numeric revocation id -> 400" 400 \
    "$(ucurl -o /dev/null -w '%{http_code}' -X DELETE "$U/v1/revocations/abc")"

# --- decisions and the live stream -------------------------------------------------
sleep 0.3
dec=$(ucurl "$U/v1/decisions?route=admin&decision=allow&limit=5")
check_eq "decisions query honours limit" 5 "$(json_get '.decisions.length' <<<"$dec")"
check_eq "decisions query honours filters" true \
    "$(json_get '.decisions.every(r => r.route == "admin" && r.decision == "allow")' <<<"$dec")"
for k in id ts_us route method path decision reason status cert_subject client_addr detail; do
    check "decision rows have $k" json_get ".decisions[0].$k" <<<"$dec"
done
last_id=$(json_get '.decisions[0].id' <<<"$dec")
count # the stream request itself
curl -sS -N --max-time 4 --unix-socket "$SOCK" -D "$T/stream.hdr" \
    "$U/v1/decisions/stream?after_id=$last_id" >"$T/stream.out" 2>/dev/null &
stream_pid=$!
sleep 1
marker=marker$RANDOM$RANDOM
ucurl -o /dev/null "$U/v1/sessions/$marker"
wait "$stream_pid"
check_match "stream is chunked NDJSON" "Transfer-Encoding: chunked" "$(cat "$T/stream.hdr")"
check_match "stream content type" "Content-Type: application/x-ndjson" "$(cat "$T/stream.hdr")"
check "stream lines are JSON rows with increasing ids above after_id" node -e '
const after = Number(process.argv[1]);
const lines = require("fs").readFileSync(process.argv[2], "utf8").split("\n").filter(l => l);
if (lines.length < 2) throw new Error("only " + lines.length + " lines");
let prev = after;
for (const l of lines) { const r = JSON.parse(l);
  if (!(r.id > prev)) throw new Error("id " + r.id + " after " + prev); prev = r.id; }
' "$last_id" "$T/stream.out"
check "stream shows a request made while it ran" grep -q "\"path\":\"/v1/sessions/$marker\"" "$T/stream.out"

# --- policy ------------------------------------------------------------------------
v1=$(sha256sum "$T/policy-v1.yaml" | cut -d' ' -f1)
v2=$(sha256sum "$T/policy-v2.yaml" | cut -d' ' -f1)
pol=$(ucurl "$U/v1/policy")
check_eq "policy version is the file's hash" "$v1" "$(json_get '.version' <<<"$pol")"
check "policy returns its source" json_get '.source' <<<"$pol"
out=$(ucurl -w '\n%{http_code}' --data-binary @"$T/policy-v2.yaml" "$U/v1/policy/validate")
check_eq "validate a good policy -> 200" 200 "$(tail -n 1 <<<"$out")"
check_eq "validate says ok" true "$(head -n 1 <<<"$out" | json_get '.ok')"
out=$(ucurl -w '\n%{http_code}' --data-binary @"$T/policy-bad.yaml" "$U/v1/policy/validate")
check_eq "validate a bad policy -> 422" 422 "$(tail -n 1 <<<"$out")"
check_match "with file:line:col errors" 'policy.yaml:[0-9]+:[0-9]+' "$(head -n 1 <<<"$out" | json_get '.errors')"
check_eq "and the usual error reason" admin_bad_request "$(head -n 1 <<<"$out" | json_get '.reason')"
out=$(ucurl -w '\n%{http_code}' --data-binary @"$T/policy-bad.yaml" "$U/v1/policy/apply")
check_eq "apply a bad policy -> 422" 422 "$(tail -n 1 <<<"$out")"
check_eq "bad policy not applied" "$v1" "$(ucurl "$U/v1/policy" | json_get '.version')"
out=$(ucurl -w '\n%{http_code}' -H 'Expect: 100-continue' --data-binary @"$T/policy-v2.yaml" \
    "$U/v1/policy/apply")
check_eq "apply v2 (with 100-continue) -> 200" 200 "$(tail -n 1 <<<"$out")"
check_eq "apply returns the new version" "$v2" "$(head -n 1 <<<"$out" | json_get '.version')"
check_eq "apply returns the previous version" "$v1" "$(head -n 1 <<<"$out" | json_get '.previous')"
check_eq "v2 is active" "$v2" "$(ucurl "$U/v1/policy" | json_get '.version')"
vers=$(ucurl "$U/v1/policy/versions")
check_eq "versions lists v1 and v2" true \
    "$(json_get ".versions.some(x => x.version == '$v1') && d.versions.some(x => x.version == '$v2')" <<<"$vers")"
diff=$(ucurl "$U/v1/policy/diff?from=$v1&to=$v2" | json_get '.diff')
check_match "diff shows the change" '\+    methods: \[GET, HEAD\]' "$diff"
out=$(ucurl -w ' %{http_code}' "$U/v1/policy/diff")
check_match "diff without from -> 400" "missing query parameter 'from'.* 400$" "$out"
out=$(ucurl -w '\n%{http_code}' -d "{\"version\":\"$v1\"}" "$U/v1/policy/rollback")
check_eq "rollback to v1 -> 200" 200 "$(tail -n 1 <<<"$out")"
check_eq "v1 is active again" "$v1" "$(ucurl "$U/v1/policy" | json_get '.version')"
out=$(ucurl -w ' %{http_code}' -d '{"version":true}' "$U/v1/policy/rollback")
check_match "rollback with a wrong type -> 400" "'version' must be a string or an integer.* 400$" "$out"

# --- limits: the offending client is closed, the daemon answers on --------------------
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/big.yaml"
out=$(ucurl -w ' %{http_code}' --data-binary @"$T/big.yaml" "$U/v1/policy/validate")
check_match "2 MiB body -> 413" '"reason":"http_body_too_large".* 413$' "$out"
out=$(ucurl -w ' %{http_code}' -H 'Expect:' --data-binary @"$T/big.yaml" "$U/v1/policy/apply")
check_match "2 MiB body sent without Expect -> 413" '"reason":"http_body_too_large".* 413$' "$out"
check_eq "the daemon answers the next request" '{"ok":true}' "$(ucurl "$U/v1/health")"

count
out=$(node -e '
const s = require("net").connect(process.argv[1]);
s.on("connect", () => s.write(Buffer.from("\x16\x03\x01\x00\xff\xfe GARBAGE\n\x00\r\n\r\n", "binary")));
let d = ""; s.on("data", x => d += x);
s.on("close", () => { console.log(d.split("\r\n")[0] + " | closed"); process.exit(0); });
setTimeout(() => { console.log("still open"); process.exit(1); }, 10000);
' "$SOCK")
check_match "garbage bytes -> 400 and the client is closed" "^HTTP/1.1 400 .* closed$" "$out"
check_eq "the daemon is alive after garbage" '{"ok":true}' "$(ucurl "$U/v1/health")"

# Keep-alive: two requests, one connection.
out=$(ucurl -w '%{num_connects}\n' "$U/v1/health" "$U/v1/health")
count # the second URL
check_eq "keep-alive: two answers over one connection" '{"ok":true}
1
{"ok":true}
0' "$out"

# --- the mTLS listener ---------------------------------------------------------------
check_eq "admin certificate: health over mTLS" '{"ok":true}' "$(tcurl "$ADMIN_URL/v1/health")"
check "admin certificate: stats over mTLS" json_get '.log.committed' <<<"$(tcurl "$ADMIN_URL/v1/stats")"
count
check_fail "a user certificate (alice, user CA) fails the admin handshake" \
    ccurl alice "$ADMIN_URL/v1/health"
count
check_fail "no client certificate fails the admin handshake" ccurl - "$ADMIN_URL/v1/health"
# An admin-CA certificate whose subject is not in admin.allowed_subjects.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/intruder.key" \
    -subj "/O=Gatehouse Test/CN=intruder" -out "$T/intruder.csr" 2>/dev/null
printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\n' >"$T/intruder.ext"
openssl x509 -req -in "$T/intruder.csr" -CA "$PKI/admin-ca.crt" -CAkey "$PKI/admin-ca.key" \
    -set_serial 4242 -days 2 -extfile "$T/intruder.ext" -out "$T/intruder.crt" 2>/dev/null
count
out=$(curl -sS --max-time 30 --cacert "$PKI/server-ca.crt" --cert "$T/intruder.crt" \
    --key "$T/intruder.key" -w ' %{http_code}' "$ADMIN_URL/v1/health" 2>&1)
check_match "admin-CA cert outside the allow-list -> 403" '"reason":"admin_denied".* 403$' "$out"

# --- the slow client -------------------------------------------------------------------
wait "$slow_pid"
check_match "a head not finished in 10 s -> 408 and closed" "^HTTP/1.1 408 .* closed$" \
    "$(cat "$T/slow.out")"

# 70 simultaneous clients (nothing else connected now): 64 are served, the
# rest get 503 JSON and are closed. They arrive while the gateway is stopped
# (SIGSTOP), so all 70 wait in the socket's backlog at once -- the worst
# burst, and deterministic (a backlog shallower than 70 made connect() fail
# with EAGAIN whenever the control thread was slow to accept).
sleep 0.5
count 70
gw_pid=$(bg_pid gw)
kill -STOP "$gw_pid"
node -e '
const net = require("net"); const path = process.argv[1]; const N = 70;
const socks = []; const st = {};
function open(i) {
  if (i == N) { console.error("connected " + N); return; } /* requests on SIGUSR1 */
  const s = net.connect(path, () => { socks.push(s); open(i + 1); });
  s.on("error", e => { if (socks.indexOf(s) < 0) { console.log("connect " + i + ": " + e.code); process.exit(1); } });
}
function go() {
  let left = N;
  socks.forEach(s => { let d = "";
    s.on("data", x => { d += x;
      const m = d.match(/^HTTP\/1.1 (\d+)[^]*\r\n\r\n\{[^]*\}\n/);
      if (m) { st[m[1]] = (st[m[1]] || 0) + 1; s.destroy(); if (--left == 0) done(); } });
    s.write("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"); });
}
function done() { console.log(Object.keys(st).sort().map(k => k + "x" + st[k]).join(" ")); process.exit(0); }
process.on("SIGUSR1", go);
setTimeout(() => { console.log("timeout " + JSON.stringify(st)); process.exit(1); }, 15000);
open(0);
' "$SOCK" >"$T/crowd.out" 2>"$T/crowd.log" &
crowd_pid=$!
# All 70 connect (queued), then the gateway resumes and accepts them; only
# then do they send their requests, so no served client leaves early and
# frees a slot for a 65th.
wait_log "$T/crowd.log" "connected 70" 10
kill -CONT "$gw_pid"
sleep 1
kill -USR1 "$crowd_pid"
wait "$crowd_pid"
out=$(cat "$T/crowd.out")
check_eq "64 admin clients served, 6 refused with 503" "200x64 503x6" "$out"
check_eq "the daemon answers after the crowd left" '{"ok":true}' "$(ucurl "$U/v1/health")"

# --- one decision row per admin request ---------------------------------------------------
check_eq "the daemon is alive at the end" '{"ok":true}' "$(ucurl "$U/v1/health")"
sleep 1
want=$(awk '{s += $1} END {print s}' "$T/admin.calls")
q() { sqlite3 -cmd '.timeout 5000' "$GW_DB" "$1"; }
check_eq "every admin request produced one row with route 'admin'" "$want" \
    "$(q "select count(*) from decisions where route='admin'")"
check_eq "refused socket peer logged as admin_denied" 1 \
    "$(q "select count(*) from decisions where route='admin' and reason='admin_denied' and cert_subject='uid:65534' and status=403")"
check_match "refused admin handshake logged (user CA)" "tls handshake refused: tls_untrusted_ca subject=CN=alice" \
    "$(q "select detail from decisions where route='admin' and reason='admin_denied' and status=0")"
check_eq "no-certificate handshake logged" 1 \
    "$(q "select count(*) from decisions where route='admin' and detail like 'tls handshake refused: tls_no_cert%'")"
check_eq "allow-list refusal logged with the subject" 1 \
    "$(q "select count(*) from decisions where route='admin' and reason='admin_denied' and cert_subject like 'CN=intruder%' and status=403")"
check_eq "mTLS admin rows carry the certificate subject and thumbprint" 2 \
    "$(q "select count(*) from decisions where route='admin' and cert_subject='CN=ops-admin,O=Gatehouse Test' and cert_thumb='$(cat "$PKI/admin.sha256" 2>/dev/null)' and client_addr='127.0.0.1'")"
check_eq "revoke row says what was revoked" 1 \
    "$(q "select count(*) from decisions where route='admin' and method='POST' and path='/v1/revocations' and status=201 and detail='revoke subject mallory' and decision='allow'")"
check_eq "413s logged" 2 \
    "$(q "select count(*) from decisions where route='admin' and reason='http_body_too_large' and status=413")"
check_eq "slow head logged as 408" 1 \
    "$(q "select count(*) from decisions where route='admin' and reason='http_request_timeout' and status=408")"
check_eq "crowd refusals logged as overloaded" 6 \
    "$(q "select count(*) from decisions where route='admin' and reason='overloaded' and status=503")"
check_eq "the query string is not logged as part of the path" 0 \
    "$(q "select count(*) from decisions where route='admin' and path like '%?%'")"

# --- the local socket has its own budget ------------------------------------------------
# Anyone who can reach the mTLS port can open connections and send nothing
# (each holds a handshake for up to 10 s). 82 of them must not shut root
# out of the Unix socket.
node -e '
const net = require("net"); const ss = []; let n = 0;
for (let i = 0; i < 82; i++) {
  const s = net.connect(Number(process.argv[1]), "127.0.0.1", () => { if (++n === 82) console.error("holding 82"); });
  s.on("error", () => {}); ss.push(s);
}
setTimeout(() => process.exit(0), 15000);
' "$ADMIN_PORT" 2>"$T/holders.log" &
holders=$!
wait_log "$T/holders.log" "holding 82" 10
sleep 0.5
check_eq "with 82 silent connections on the mTLS port, the Unix socket still answers" \
    '{"ok":true}' "$(ucurl "$U/v1/health")"
kill "$holders" 2>/dev/null
wait "$holders" 2>/dev/null

# --- admin changes and the decision log ------------------------------------------------
# Every admin action is a logged decision: a change is committed before its
# answer leaves, and refused (before it is made) while the log cannot
# take rows. Another process holds the database's write lock for a while:
# the writer's next commit fails and the log turns unhealthy.
healthy() { ucurl "$U/v1/stats" | json_get '.log.healthy'; }
# The locker says when it holds the lock: switching .output away from the
# flag file closes (flushes) it. A probe alone could be fooled by the
# gateway's own writer holding the lock for a moment.
(
    echo ".timeout 10000"
    echo "BEGIN IMMEDIATE;"
    echo ".output '$T/locked.flag'"
    echo ".print locked"
    echo ".output stdout"
    sleep 14
    echo "COMMIT;"
) | sqlite3 "$GW_DB" &
locker=$!
wait_log "$T/locked.flag" '^locked$' 15
locked() { ! sqlite3 -cmd '.timeout 0' "$GW_DB" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1; }
check "another process holds the database's write lock" locked
for _ in $(seq 120); do
    [ "$(healthy)" = false ] && break
    sleep 0.1
done
check_eq "with the database locked by another process, the log turns unhealthy" false "$(healthy)"
out=$(ucurl -w '\n%{http_code}' -d '{"kind":"subject","target":"log-down","reason":"test"}' \
    "$U/v1/revocations")
check_eq "a revocation is refused with 503 while the log is down" 503 "$(tail -n 1 <<<"$out")"
check_match "saying why" "decision log unavailable" "$(head -n 1 <<<"$out")"
wait "$locker"
for _ in $(seq 100); do
    [ "$(healthy)" = true ] && break
    sleep 0.1
done
check_eq "the log recovers once the lock is gone" true "$(healthy)"
check_eq "the refused revocation was never made" 0 \
    "$(sqlite3 -cmd '.timeout 5000' "$GW_DB" "select count(*) from revocations where target='log-down'")"
out=$(ucurl -w '\n%{http_code}' -d '{"kind":"subject","target":"log-up","reason":"test"}' \
    "$U/v1/revocations")
check_eq "with the log back, the revocation is made" 201 "$(tail -n 1 <<<"$out")"
# No wait: the row was committed before the 201 left.
check_eq "and its row is already committed when the answer arrives" 1 \
    "$(sqlite3 -cmd '.timeout 5000' "$GW_DB" "select count(*) from decisions where route='admin' and detail='revoke subject log-up' and status=201")"

# --- stop and restart ----------------------------------------------------------------
# A clean stop (under ASan this also runs the leak check at exit).
stop_bg gw
check_eq "clean stop exits 0" 0 "$GH_LAST_STATUS"
check_fail "clean stop removes the socket" test -e "$SOCK"
# A killed gateway leaves its socket behind; the next start replaces it.
start_gw "$T/gw.yaml" gw2
stop_bg gw2 KILL
check "the killed gateway left its socket behind" test -S "$SOCK"
start_gw "$T/gw.yaml" gw3
wait_log gw3 "removed stale socket" 10
check_eq "restart over a stale socket answers" '{"ok":true}' \
    "$(curl -sS --max-time 10 --unix-socket "$SOCK" "$U/v1/health")"
stop_bg gw3
check_eq "second clean stop exits 0" 0 "$GH_LAST_STATUS"

gh_finish
