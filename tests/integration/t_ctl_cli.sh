#!/usr/bin/env bash
# gatehousectl subcommands against a real gateway (issue 5): every command
# in text and --json form, the documented exit statuses (2 usage, 3 cannot
# reach the gateway, 1 refused / not found / invalid / tampered), remote
# admin over mTLS, and `revoke session` closing a client's live keep-alive
# connection, after which the same token gets 401 session_revoked.
# shellcheck disable=SC2154 # up_PORT is set by start_upstream (lib.sh)
source "$(dirname "$0")/lib.sh"
gh_init ctl_cli "$@"
IDP_DIR="$GH_SRC/tests/integration/idp"
[ -x "$GATEHOUSECTL" ] || gh_fatal "$GATEHOUSECTL not built"

# --- a gateway with a real OpenID Provider (as t_authz_oidc.sh) -------------
start_bg idp node "$IDP_DIR/server.mjs" --port 0 --cert "$PKI/idp.crt" --key "$PKI/idp.key" \
    --client-ca "$PKI/client-ca.crt" --state "$T/idp-state" --audience gatehouse
wait_log idp "idp listening on" 20 || gh_fatal "the IdP did not start"
IDP_URL=$(grep -o 'https://127.0.0.1:[0-9]*' "$T/idp.log" | head -1)
token() { bash "$IDP_DIR/get-token.sh" "$IDP_URL" "$PKI/$1.crt" "$PKI/$1.key" "$PKI/idp-ca.crt" "$2"; }

start_upstream up
GW_PORT=$(free_port)
ADMIN_PORT=$(free_port)
gh_short_tmpdir
SOCK=$GH_SHORT_TMP/admin.sock
cat >"$T/policy.yaml" <<'YAML'
version: 1
rules:
  - id: app-engineering
    effect: allow
    routes: [app]
    when:
      - claim: groups
        contains: engineering
YAML
# A second, valid policy (one more rule) and a broken one (error on line 4).
cat >"$T/policy2.yaml" <<'YAML'
version: 1
rules:
  - id: app-engineering
    effect: allow
    routes: [app]
    when:
      - claim: groups
        contains: engineering
  - id: app-sales-read
    effect: allow
    routes: [app]
    methods: [GET]
    when:
      - claim: groups
        contains: sales
YAML
cat >"$T/broken.yaml" <<'YAML'
version: 1
rules:
  - id: broken
    effect: maybe
    routes: [app]
YAML
write_idp_gw_config "$T/gw.yaml" "  listen: \"127.0.0.1:$ADMIN_PORT\"
  client_ca: $PKI/admin-ca.crt"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "issuer keys refreshed" 15 || gh_fatal "the gateway did not fetch the issuer keys"
wait_port "$ADMIN_PORT" 10 || gh_fatal "no admin listener"
URL="https://127.0.0.1:$GW_PORT"

ctl() { "$GATEHOUSECTL" --socket "$SOCK" "$@"; }
json_eval() { # json_eval JS_EXPR: evaluate EXPR with d = the JSON on stdin
    node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(String((new Function("d", "return (" + process.argv[1] + ")"))(d)) + "\n");' "$1"
}
rc() { # rc CMD...: the exit status of CMD (output to $T/rc.out)
    "$@" >"$T/rc.out" 2>&1
    echo $?
}

ALICE=$(token alice alice)
check "alice got a token" test -n "$ALICE"
check_eq "alice's request passes" 200 \
    "$(ccurl alice -H "Authorization: Bearer $ALICE" "$URL/hello" -o /dev/null -w '%{http_code}')"
check_eq "a request without a token is denied" 401 \
    "$(ccurl alice "$URL/nope" -o /dev/null -w '%{http_code}')"

# --- usage errors exit 2, before any connection -----------------------------
check_eq "unknown command -> 2" 2 "$(rc ctl frobnicate)"
check_eq "revoke without a target -> 2" 2 "$(rc ctl revoke session)"
check_eq "revoke with an unknown kind -> 2" 2 "$(rc ctl revoke laptop x)"
check_eq "decisions --decision maybe -> 2" 2 "$(rc ctl decisions --decision maybe)"
check_eq "decisions --since yesterday -> 2" 2 "$(rc ctl decisions --since yesterday)"
check_eq "unrevoke abc -> 2" 2 "$(rc ctl unrevoke abc)"
check_eq "--connect without --cert/--key/--ca -> 2" 2 \
    "$(rc "$GATEHOUSECTL" --connect "127.0.0.1:$ADMIN_PORT" stats)"
check_eq "policy validate of a missing file -> 2" 2 "$(rc ctl policy validate "$T/nope.yaml")"
check_eq "--json without a command -> 2" 2 "$(rc "$GATEHOUSECTL" --socket "$SOCK" --json)"
check_match "--help lists the exit statuses" "3 cannot reach the gateway" \
    "$("$GATEHOUSECTL" --help)"

# --- cannot reach the gateway: 3 ---------------------------------------------
check_eq "no such socket -> 3" 3 "$(rc "$GATEHOUSECTL" --socket "$T/missing.sock" stats)"
check_match "...and says why" "cannot connect to unix:" "$(cat "$T/rc.out")"
check_eq "GATEHOUSE_SOCKET is used" 3 \
    "$(GATEHOUSE_SOCKET="$T/missing2.sock" rc "$GATEHOUSECTL" stats)"
check_match "...the one named there" "missing2.sock" "$(cat "$T/rc.out")"
check_eq "GATEHOUSE_SOCKET reaches the gateway" 0 \
    "$(GATEHOUSE_SOCKET="$SOCK" rc "$GATEHOUSECTL" health)"

# --- stats, metrics, health ---------------------------------------------------
out=$(ctl stats)
check_eq "stats exits 0" 0 "$?"
check_match "stats text shows requests" "requests +[0-9]+ \(allowed [0-9]+, denied [0-9]+\)" "$out"
check_match "stats text shows the log's commits and their mean time" \
    "log commits +[1-9][0-9]*, [0-9]+\.[0-9] rows each, mean [0-9]+\.[0-9]{2} ms" "$out"
json=$(ctl stats --json)
check_match "stats --json parses and counts requests" '^[1-9][0-9]*$' \
    "$(printf '%s' "$json" | json_get '.requests')"
check_match "stats --json has the log queue" '^[0-9]+$' \
    "$(printf '%s' "$json" | json_get '.log.queue_depth')"
check_match "metrics is Prometheus text" "# TYPE gatehouse_" "$(ctl metrics)"
check_match "metrics --json wraps the text" '"text": "# ' "$(ctl metrics --json)"
check_eq "health exits 0" 0 "$(rc ctl health)"
check_match "health --json parses" '^\{' "$(ctl health --json | json_get '')"

# --- sessions -------------------------------------------------------------------
out=$(ctl sessions)
check_match "sessions table has a header" "^ID +SUBJECT +CERT +CLIENT +CONNS +REQS +LAST SEEN +STATE" "$out"
check_match "sessions table shows alice" "alice +$(head -c 12 "$PKI/alice.sha256")" "$out"
json=$(ctl sessions --json)
SID=$(printf '%s' "$json" | json_get '.sessions.find(s => s.subject === "alice").id')
check_match "sessions --json gives alice's session id" '^[0-9a-f]{32}$' "$SID"
out=$(ctl session "$SID")
check_match "session ID shows the subject" "subject +alice" "$out"
check_match "session ID shows the certificate thumbprint" "cert sha256 +$(cat "$PKI/alice.sha256")" "$out"
check_match "session ID shows verified claims" "groups +\[\"engineering\"\]" "$out"
check_match "session ID lists recent decisions" "recent decisions:" "$out"
check_eq "session --json .id" "$SID" "$(ctl session "$SID" --json | json_get '.id')"
check_eq "unknown session -> 1" 1 "$(rc ctl session 0123456789abcdef0123456789abcdef)"
check_eq "sessions --limit 0 -> 2" 2 "$(rc ctl sessions --limit 0)"

# --- decisions --------------------------------------------------------------------
out=$(ctl decisions --limit 50)
check_match "decisions table has a header" "^TIME +DECISION +STATUS +REASON +WHO +ROUTE +REQUEST +ID" "$out"
check_match "decisions show alice's allowed request" "allow +200 +allow +alice +app +GET /hello" "$out"
check_match "decisions show the denied request" "deny +401 +token_missing" "$out"
json=$(ctl decisions --decision deny --json)
check_eq "--decision deny returns only denies" "true" \
    "$(printf '%s' "$json" | json_eval 'd.decisions.length > 0 && d.decisions.every(x => x.decision === "deny")')"
json=$(ctl decisions --subject alice --since 1h --json)
check_eq "--subject alice --since 1h returns only alice's rows" "true" \
    "$(printf '%s' "$json" | json_eval 'd.decisions.length > 0 && d.decisions.every(x => x.token_sub === "alice")')"
check_eq "--reason with an unknown reason -> 1 (the gateway refuses)" 1 \
    "$(rc ctl decisions --reason no_such_reason)"

# --follow streams new rows until interrupted.
start_bg follow "$GATEHOUSECTL" --socket "$SOCK" decisions --follow --json --limit 1
sleep 1
ccurl alice -H "Authorization: Bearer $ALICE" "$URL/followed-path" -o /dev/null
wait_log follow '"path":"/followed-path"' 10
check_match "decisions --follow prints a new row as it happens" '"path":"/followed-path"' \
    "$(cat "$T/follow.log")"
stop_bg follow INT
check_eq "decisions --follow ends with 0 on SIGINT" 0 "$GH_LAST_STATUS"

# --- policy ------------------------------------------------------------------------
out=$(ctl policy get)
check_match "policy get prints the YAML" "id: app-engineering" "$out"
V1=$(ctl policy get --json | json_get '.version')
check_match "policy get --json has the version" '^[0-9a-f]{64}$' "$V1"
check_eq "policy validate of a good file -> 0" 0 "$(rc ctl policy validate "$T/policy2.yaml")"
check_match "...and says ok" "policy2.yaml: ok" "$(cat "$T/rc.out")"
check_eq "policy validate of a broken file -> 1" 1 "$(rc ctl policy validate "$T/broken.yaml")"
check_match "...with file:line:col of the error" "$T/broken.yaml:4:[0-9]+: " "$(cat "$T/rc.out")"
check_eq "policy apply of a broken file -> 1" 1 "$(rc ctl policy apply "$T/broken.yaml")"
check_match "...with file:line:col" "$T/broken.yaml:4:[0-9]+: " "$(cat "$T/rc.out")"
check_match "...and says nothing changed" "not applied; the active policy is unchanged" \
    "$(cat "$T/rc.out")"
check_eq "the active version is unchanged" "$V1" "$(ctl policy get --json | json_get '.version')"
json=$(ctl policy apply "$T/policy2.yaml" --json)
V2=$(printf '%s' "$json" | json_get '.version')
check_match "policy apply of a good file gives a new version" '^[0-9a-f]{64}$' "$V2"
check "the new version differs" test "$V2" != "$V1"
check_eq "policy get shows the new version" "$V2" "$(ctl policy get --json | json_get '.version')"
BOB=$(token bob bob)
check_eq "the applied policy is enforced (bob may GET now)" 200 \
    "$(ccurl bob -H "Authorization: Bearer $BOB" "$URL/x" -o /dev/null -w '%{http_code}')"
out=$(ctl policy versions)
check_match "policy versions lists the active one" "${V2:0:12} .* \*" "$out"
json=$(ctl policy versions --json)
check_eq "policy versions --json marks the active one" "$V2" \
    "$(printf '%s' "$json" | json_get '.versions.find(v => v.active).version')"
out=$(ctl policy diff --from "$V1" --to "$V2")
check_match "policy diff shows the added rule" '\+  - id: app-sales-read' "$out"
out=$(ctl policy diff "$T/policy.yaml")
check_match "policy diff FILE shows what applying it would remove" '-  - id: app-sales-read' "$out"
check_eq "policy diff with nothing to compare -> 2" 2 "$(rc ctl policy diff)"
check_eq "policy diff --from unknown -> 1" 1 "$(rc ctl policy diff --from ffffffffffff)"
out=$(ctl policy rollback "$V1")
check_eq "policy rollback exits 0" 0 "$?"
check_eq "rollback restored the first version" "$V1" "$(ctl policy get --json | json_get '.version')"
check_eq "rollback is enforced (bob denied again)" 403 \
    "$(ccurl bob -H "Authorization: Bearer $BOB" "$URL/x" -o /dev/null -w '%{http_code}')"
check_eq "rollback to an unknown version -> 1" 1 "$(rc ctl policy rollback ffffffffffff)"

# --- revoke session: the live keep-alive connection is closed -------------------------
# A client that holds one keep-alive TLS connection open and logs when it closes.
cat >"$T/holder.js" <<'JS'
const tls = require('tls'), fs = require('fs');
const [port, cert, key, ca, token] = process.argv.slice(2);
let seen = false, buf = '';
const s = tls.connect({host: '127.0.0.1', port: +port, servername: 'localhost',
    cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca)}, () => {
    s.write(`GET /held HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`);
});
s.on('data', d => {
    buf += d;
    const m = buf.match(/^HTTP\/1\.1 (\d{3})/);
    if (m && !seen) { seen = true; console.log('status ' + m[1]); }
});
s.on('close', () => { console.log('closed ' + Date.now()); process.exit(0); });
s.on('error', e => console.log('error ' + e.message));
setTimeout(() => { console.log('still open'); process.exit(1); }, 120000);
JS
start_bg holder node "$T/holder.js" "$GW_PORT" "$PKI/alice.crt" "$PKI/alice.key" \
    "$PKI/server-ca.crt" "$ALICE"
wait_log holder '^status 200' 10
check_match "the keep-alive client got 200" "status 200" "$(cat "$T/holder.log")"
sleep 0.3
check_eq "the keep-alive connection is still open" "" "$(grep closed "$T/holder.log")"
conns=$(ctl session "$SID" --json | json_get '.live_connections')
check_match "the session counts the live connection" '^[1-9]' "$conns"
t0=$(date +%s%3N)
out=$(ctl revoke session "$SID" --reason "ctl test")
check_eq "revoke session exits 0" 0 "$?"
check_match "revoke reports the closed connection" "revoked session $SID: revocation [0-9]+, [1-9][0-9]* live connections? closed" "$out"
wait_log holder '^closed ' 5
closed=$(sed -n 's/^closed //p' "$T/holder.log")
check_match "the client's keep-alive connection was closed" '^[0-9]+$' "$closed"
if [ -n "$closed" ]; then
    echo "    revoke -> connection closed: $((closed - t0)) ms (including gatehousectl start-up)"
    check "closed within 2 s of the revoke command" test $((closed - t0)) -lt 2000
fi
check_eq "the same token now gets 401" 401 \
    "$(ccurl alice -H "Authorization: Bearer $ALICE" "$URL/again" -o /dev/null -w '%{http_code}')"
json=$(ctl decisions --reason session_revoked --json)
check_eq "the decision log says session_revoked" "/again" \
    "$(printf '%s' "$json" | json_get '.decisions[0].path')"
check_eq "the session shows revoked" "revoked" "$(ctl session "$SID" --json | json_get '.state')"
RID=$(ctl revocations --json | json_get ".revocations.find(r => r.target === \"$SID\").id")
check_match "revocations --json lists it" '^[0-9]+$' "$RID"
out=$(ctl revocations)
check_match "revocations table shows it" "$RID +session +$SID +ctl test .* active" "$out"
check_eq "unrevoke of an unknown id -> 1" 1 "$(rc ctl unrevoke 999999)"

# --- lock user / block cert / revoke token, and lifting ---------------------------
CAROL=$(token carol carol)
check_eq "carol passes" 200 \
    "$(ccurl carol -H "Authorization: Bearer $CAROL" "$URL/c" -o /dev/null -w '%{http_code}')"
out=$(ctl revoke user carol --reason "locked by test" --expires 1h --json)
LOCK=$(printf '%s' "$out" | json_get '.revocation.id')
check_match "revoke user --json gives the revocation id" '^[0-9]+$' "$LOCK"
check_eq "locked user -> 401" 401 \
    "$(ccurl carol -H "Authorization: Bearer $CAROL" "$URL/c" -o /dev/null -w '%{http_code}')"
check_eq "unrevoke the lock -> 0" 0 "$(rc ctl unrevoke "$LOCK")"
check_eq "carol passes again" 200 \
    "$(ccurl carol -H "Authorization: Bearer $CAROL" "$URL/c" -o /dev/null -w '%{http_code}')"
check_eq "unrevoke the same lock again -> 1" 1 "$(rc ctl unrevoke "$LOCK")"
check_eq "revoke cert exits 0" 0 "$(rc ctl revoke cert "$(cat "$PKI/carol.sha256")" --reason lost)"
code=$(ccurl carol -H "Authorization: Bearer $CAROL" "$URL/c" -o /dev/null -w '%{http_code}')
check_match "blocked certificate is refused" '^(000|403)$' "$code"

# --- remote admin over mTLS ---------------------------------------------------------
remote=("$GATEHOUSECTL" --connect "127.0.0.1:$ADMIN_PORT" --cert "$PKI/admin.crt"
    --key "$PKI/admin.key" --ca "$PKI/server-ca.crt")
check_match "remote stats over mTLS" '^[0-9]+$' "$("${remote[@]}" stats --json | json_get '.requests')"
check_match "remote sessions over mTLS" "alice" "$("${remote[@]}" sessions)"
check_match "remote by host name (localhost)" '^[0-9]+$' \
    "$("$GATEHOUSECTL" --connect "localhost:$ADMIN_PORT" --cert "$PKI/admin.crt" \
        --key "$PKI/admin.key" --ca "$PKI/server-ca.crt" stats --json | json_get '.requests')"
check_eq "remote with the wrong CA for the server -> 3" 3 \
    "$(rc "$GATEHOUSECTL" --connect "127.0.0.1:$ADMIN_PORT" --cert "$PKI/admin.crt" \
        --key "$PKI/admin.key" --ca "$PKI/client-ca.crt" stats)"
check_match "...because the server certificate does not verify" "server certificate" \
    "$(cat "$T/rc.out")"
check_eq "a user certificate is refused by the admin listener -> 3" 3 \
    "$(rc "$GATEHOUSECTL" --connect "127.0.0.1:$ADMIN_PORT" --cert "$PKI/alice.crt" \
        --key "$PKI/alice.key" --ca "$PKI/server-ca.crt" stats)"
check_eq "a remote that does not listen -> 3" 3 \
    "$(rc "$GATEHOUSECTL" --connect "127.0.0.1:$(free_port)" --cert "$PKI/admin.crt" \
        --key "$PKI/admin.key" --ca "$PKI/server-ca.crt" stats)"

# --- audit verify (runs gatehouse) ---------------------------------------------------
check_eq "audit verify of the live log -> 0" 0 "$(rc ctl audit verify "$T/gw.db")"
stop_bg gw
cp "$T/gw.db" "$T/tampered.db"
# A tamperer with write access drops the append-only trigger first.
sqlite3 "$T/tampered.db" "drop trigger if exists decisions_append_only;
    update decisions set path = '/edited' where id = 2"
check_eq "the copy was edited" "/edited" "$(sqlite3 "$T/tampered.db" "select path from decisions where id = 2")"
check_eq "audit verify of an edited log -> 1 (tampered)" 1 \
    "$(rc ctl audit verify "$T/tampered.db")"
check_eq "audit verify of a missing file -> 4" 4 "$(rc ctl audit verify "$T/nope.db")"
check_eq "audit verify without DB -> 2" 2 "$(rc ctl audit verify)"

# --- the gateway is gone: 3 -----------------------------------------------------------
check_eq "stopped gateway -> 3" 3 "$(rc ctl sessions)"
gh_finish
