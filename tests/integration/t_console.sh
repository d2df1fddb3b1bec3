#!/usr/bin/env bash
# The ncurses admin console (issue 6), driven in tmux against a real gateway
# with real clients: a new session shows up within 2 s; revoking it from the
# console (r, reason, y) closes the client's keep-alive connection and the
# row turns "revoked"; the Decisions view shows a denied request with its
# reason; applying a broken policy file shows file:line:col and changes
# nothing; resizing to 120x40 and back redraws cleanly; killing the gateway
# shows "reconnecting" and a restart recovers by itself. Each view's screen
# is saved under $T/screens/ (docs/CONSOLE.md shows them).
# shellcheck disable=SC2154 # up_PORT is set by start_upstream (lib.sh)
source "$(dirname "$0")/lib.sh"
gh_init console "$@"
IDP_DIR="$GH_SRC/tests/integration/idp"
[ -x "$GATEHOUSECTL" ] || gh_fatal "$GATEHOUSECTL not built"
command -v tmux >/dev/null || gh_fatal "tmux is not installed"

# --- gateway + real OpenID Provider (as t_authz_oidc.sh) ---------------------
start_bg idp node "$IDP_DIR/server.mjs" --port 0 --cert "$PKI/idp.crt" --key "$PKI/idp.key" \
    --client-ca "$PKI/client-ca.crt" --state "$T/idp-state" --audience gatehouse
wait_log idp "idp listening on" 20 || gh_fatal "the IdP did not start"
IDP_URL=$(grep -o 'https://127.0.0.1:[0-9]*' "$T/idp.log" | head -1)
token() { bash "$IDP_DIR/get-token.sh" "$IDP_URL" "$PKI/$1.crt" "$PKI/$1.key" "$PKI/idp-ca.crt" "$2"; }

start_upstream up
GW_PORT=$(free_port)
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
cat >"$T/broken.yaml" <<'YAML'
version: 1
rules:
  - id: broken
    effect: maybe
    routes: [app]
YAML
write_idp_gw_config "$T/gw.yaml"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "issuer keys refreshed" 15 || gh_fatal "the gateway did not fetch the issuer keys"
URL="https://127.0.0.1:$GW_PORT"
ALICE=$(token alice alice)
check "alice got a token" test -n "$ALICE"
V1=$("$GATEHOUSECTL" --socket "$SOCK" policy get --json | json_get '.version')
check_match "the active policy version is known" '^[0-9a-f]{64}$' "$V1"

# --- the console in tmux --------------------------------------------------------
mkdir -p "$T/screens"
start_console 80 24

save() { screen >"$T/screens/$1.txt"; }

check "the console starts and shows the header" wait_screen '1 Sessions +2 Decisions' 10
check "the header shows the gateway's stats" wait_screen 'req/s .* deny [0-9.]+% .* sess [0-9]+ .* conn [0-9]+' 5
check "the status line says connected" wait_screen "connected: unix:$SOCK" 5

# --- a session from a curl client appears within 2 s ------------------------------
check_eq "curl as alice passes" 200 \
    "$(ccurl alice -H "Authorization: Bearer $ALICE" "$URL/from-curl" -o /dev/null -w '%{http_code}')"
t0=$(date +%s%N)
check "the new session is on screen within 2 s" wait_screen '^[0-9a-f]{7}… +alice +[0-9a-f]{8}' 2
echo "    session visible after $((($(date +%s%N) - t0) / 1000000)) ms"

# A client holding a keep-alive connection in the same session (same token).
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
setTimeout(() => { console.log('still open'); process.exit(1); }, 300000);
JS
start_bg holder node "$T/holder.js" "$GW_PORT" "$PKI/alice.crt" "$PKI/alice.key" \
    "$PKI/server-ca.crt" "$ALICE"
wait_log holder '^status 200' 10
check_match "the keep-alive client got 200" "status 200" "$(cat "$T/holder.log")"
check "the row counts its live connection" wait_screen ' alice .* 127\.0\.0\.1 +1 +[0-9]+ .* active' 5
# A second user, so selecting alice's row is a real choice.
CAROL=$(token carol carol)
ccurl carol -H "Authorization: Bearer $CAROL" "$URL/carol" -o /dev/null
check "carol's session shows too" wait_screen ' carol ' 3
save sessions

# --- select alice with the filter, r, reason, y ------------------------------------
keys /
check "/ opens the filter prompt" wait_screen 'Filter sessions' 3
keys "alice" Enter
check "the filter leaves alice's session only" wait_screen 'Sessions +1 shown of 2' 3
keys r
check "r asks for a reason" wait_screen 'Reason to revoke session' 3
keys "stolen laptop" Enter
check "the confirmation names the session, user and reason" \
    wait_screen 'reason +stolen laptop' 3
check "...and what will happen" wait_screen 'live connections are closed now' 1
check_match "...for alice" 'user +alice' "$(cat "$T/screen.txt")"
save confirm-revoke
check_eq "nothing is closed before y" "" "$(grep '^closed' "$T/holder.log")"
t0=$(date +%s%3N)
keys y
wait_log holder '^closed ' 5
closed=$(sed -n 's/^closed //p' "$T/holder.log")
check_match "confirming closed the client's keep-alive connection" '^[0-9]+$' "$closed"
[ -n "$closed" ] && echo "    y -> connection closed: $((closed - t0)) ms"
check "the row shows revoked with 0 connections" \
    wait_screen ' alice .* 127\.0\.0\.1 +0 +[0-9]+ .* revoked' 5
check "the status line reports the result" \
    wait_screen 'done: revoke session .* 1 live connection closed' 3
save sessions-revoked
keys /
keys C-u Enter
check "clearing the filter shows both sessions" wait_screen 'Sessions +2 shown of 2' 3

# --- the Decisions view shows a denied request with its reason ------------------------
check_eq "the revoked token now gets 401" 401 \
    "$(ccurl alice -H "Authorization: Bearer $ALICE" "$URL/revoked-req" -o /dev/null -w '%{http_code}')"
check_eq "no token -> 401" 401 "$(ccurl bob "$URL/no-token" -o /dev/null -w '%{http_code}')"
keys 2
check "Decisions shows the denied request with reason session_revoked" \
    wait_screen 'deny +401 +session_revoked +alice +app +GET /revoked-req' 5
check "...and the token_missing deny" wait_screen 'deny +401 +token_missing .* GET /no-token' 3
check "...and allowed requests" wait_screen 'allow +200 +allow +alice +app +GET /from-curl' 1
save decisions
keys /
check "the decisions filter prompt opens" wait_screen 'Filter \(subject=' 3
keys C-u "decision=deny" Enter
check "filter decision=deny is shown" wait_screen 'filter: decision=deny' 5
check "...and the allowed rows are gone" bash -c "sleep 1; ! tmux -L gh-test-$$ capture-pane -p | grep -q 'allow +200'"
check_match "...the denies stay" 'deny +401 +session_revoked' "$(screen)"
keys p
check "p pauses the tail" wait_screen 'PAUSED' 3
keys Up
check "Up selects the previous row" wait_screen 'PAUSED' 1
keys Enter
check "Enter opens the full row" wait_screen 'Decision #[0-9]+' 3
check_match "...with every field" 'reason +session_revoked' "$(screen)"
save decision-row
keys Escape
keys c
check "c clears the filters" wait_screen 'filters cleared' 3

# --- session detail --------------------------------------------------------------------
keys 1
check "back on Sessions" wait_screen 'Sessions +2 shown' 3
keys /
keys C-u "alice" Enter
wait_screen 'Sessions +1 shown of 2' 3
keys Enter
check "Enter opens the session detail" wait_screen 'Session [0-9a-f]{32} +\[revoked\]' 5
check "the detail shows the certificate" wait_screen "cert sha256 +$(cat "$PKI/alice.sha256")" 3
check "...and the verified claims" wait_screen 'groups +\["engineering"\]' 3
save detail
keys 1 /
keys C-u Enter

# --- revocations view --------------------------------------------------------------------
keys 4
check "Revocations lists the console's revocation" \
    wait_screen '^[0-9]+ +session +[0-9a-f]{8}.* stolen lap.* active' 5
save revocations

# --- policy: a broken file shows file:line:col and changes nothing --------------------------
keys 5
check "Policy shows the active version" wait_screen "Policy +active ${V1:0:12}" 5
check "...and its YAML" wait_screen 'id: app-engineering' 3
save policy
keys a
check "a asks for a file" wait_screen 'Apply policy file:' 3
keys "$T/broken.yaml" Enter
check "the broken file's error is shown with file:line:col" \
    wait_screen "broken\.yaml:4:[0-9]+: " 5
check_match "...and says the policy is unchanged" "NOT applied\. Active version ${V1:0:12} is unchanged" \
    "$(cat "$T/screen.txt")"
save policy-broken
keys Escape
check_eq "the active policy version is unchanged" "$V1" \
    "$("$GATEHOUSECTL" --socket "$SOCK" policy get --json | json_get '.version')"
check "the console still shows it" wait_screen "Policy +active ${V1:0:12}" 3

# A valid file: the confirmation shows the diff; n changes nothing, y applies.
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
keys a
wait_screen 'Apply policy file:' 3
keys "$T/policy2.yaml" Enter
check "a valid file asks for confirmation with the diff" wait_screen '^ *│ \+  - id: app-sales-read' 5
check_match "...naming both sides" "--- active ${V1:0:12}" "$(cat "$T/screen.txt")"
save policy-apply-confirm
keys n
check "n cancels" wait_screen 'cancelled; nothing changed' 3
check_eq "...and the version is unchanged" "$V1" \
    "$("$GATEHOUSECTL" --socket "$SOCK" policy get --json | json_get '.version')"
keys a
wait_screen 'Apply policy file:' 3
keys "$T/policy2.yaml" Enter
wait_screen '^ *│ \+  - id: app-sales-read' 5
keys y
check "y applies it" wait_screen 'applied .*policy2\.yaml: active policy version' 5
V2=$("$GATEHOUSECTL" --socket "$SOCK" policy get --json | json_get '.version')
check "the gateway has a new active version" test "$V2" != "$V1"
check "the view shows the new version" wait_screen "Policy +active ${V2:0:12}" 5
keys v
check "v lists the versions, the active one marked" wait_screen "^${V2:0:12} .* \*" 5
check_match "...with the earlier one" "${V1:0:12} [0-9]{4}-" "$(cat "$T/screen.txt")"
save policy-versions
keys Down r
check "rollback asks with the diff" wait_screen 'Roll back to version' 5
check_match "...that removes the new rule" '│ -  - id: app-sales-read' "$(cat "$T/screen.txt")"
save policy-rollback-confirm
keys y
check "y rolls back" wait_screen "rolled back: active policy version ${V1:0:12}" 5
check_eq "the gateway's active version is the first again" "$V1" \
    "$("$GATEHOUSECTL" --socket "$SOCK" policy get --json | json_get '.version')"
keys y

# --- resize to 120x40 and back ----------------------------------------------------------------
keys 1
wait_screen 'Sessions +2 shown' 3
"${TM[@]}" resize-window -x 120 -y 40
check "at 120x40 the header spans the width" wait_screen '1 Sessions +2 Decisions' 3
big=$(screen)
check_eq "the pane is 40 lines" 40 "$(printf '%s\n' "$big" | wc -l)"
check_match "the footer is on the last line" 'Enter detail +r revoke' "$(printf '%s\n' "$big" | tail -n 1)"
check_match "the title uses the new width" 'Sessions +2 shown of 2 {40,}sort: last seen desc' "$big"
save sessions-120x40
"${TM[@]}" resize-window -x 80 -y 24
sleep 0.5
small=$(screen)
check_eq "back at 80x24 the pane is 24 lines" 24 "$(printf '%s\n' "$small" | wc -l)"
check "no line is wider than 80 columns" \
    test "$(LC_ALL=C.UTF-8 wc -L <"$T/screen.txt")" -le 80
check_match "the footer is on line 24" 'Enter detail +r revoke' "$(printf '%s\n' "$small" | tail -n 1)"
# No garbage: the screen equals a full repaint (^L). Numbers are masked and
# the header and status lines left out: clocks tick and messages expire.
mask() { sed -E '1d; 23d; s/[0-9]+/#/g; s/ +/ /g' "$T/screen.txt"; }
m1=$(mask)
keys C-l
sleep 0.5
screen >/dev/null
m2=$(mask)
check_eq "the resized screen equals a full repaint" "$m1" "$m2"

# --- killing the gateway shows "reconnecting"; a restart recovers -----------------------------
stop_bg gw KILL
check "killing the gateway shows reconnecting" wait_screen 'reconnecting' 5
keys 2
check "the UI still answers keys while down" wait_screen 'Decisions +(live|PAUSED)' 2
keys 1
save reconnecting
start_bg gw2 "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw2 "listening on" 15
check "a restart recovers by itself" wait_screen "connected: unix:$SOCK" 10
check "...and the sessions come back" wait_screen ' alice ' 5

# Colours: allow green, deny red (SGR 32 / 31 in tmux's capture with -e).
keys 2
wait_screen 'Decisions +(live|PAUSED)' 3
"${TM[@]}" capture-pane -p -e >"$T/screen-e.txt"
check "deny rows are red" grep -q $'\e\\[31mdeny' "$T/screen-e.txt"
check "allow rows are green" grep -q $'\e\\[32mallow' "$T/screen-e.txt"
keys 1
check_eq "the console is still running" "" "$(cat "$T/console.exit" 2>/dev/null)"
keys q
for _ in $(seq 1 30); do
    [ -s "$T/console.exit" ] && break
    sleep 0.1
done
check_eq "q quits the console with status 0" "exit 0" "$(cat "$T/console.exit" 2>/dev/null)"
check_eq "the console wrote nothing to stderr" "" "$(cat "$T/console.err")"

# NO_COLOR: no colour at all; deny is still told apart (bold).
"${TM[@]}" new-window \
    "env NO_COLOR=1 LANG=C.UTF-8 TERM=screen-256color '$GATEHOUSECTL' --socket '$SOCK'; sleep 600"
keys 2
check "a NO_COLOR console starts" wait_screen 'Decisions +live' 5
check "...and shows the denies" wait_screen 'deny +401' 5
"${TM[@]}" capture-pane -p -e >"$T/screen-e.txt"
# shellcheck disable=SC2317 # called through check
no_colour() { ! grep -qE $'\e\\[(3[0-7]|4[0-7]|9[0-7]|38;|48;)' "$1"; }
check "NO_COLOR: no colour escape sequences" no_colour "$T/screen-e.txt"
check "NO_COLOR: deny is bold" grep -q $'\e\\[1mdeny' "$T/screen-e.txt"
keys q
"${TM[@]}" kill-server 2>/dev/null
gh_finish
