#!/usr/bin/env bash
# gatehousectl showing what clients chose (docs/CONSOLE.md "Output safety"),
# against a real gateway, the test OpenID Provider and the console in tmux.
# Tokens are re-signed with the IdP's own key (as forge.mjs does), so the
# gateway accepts subjects and claims a hostile client could get an IdP to
# issue: a subject with a zero-width space, bidi and C1 characters, a long
# non-ASCII one, a 233-byte one, and an auth_time of 1e13.
#
# Proves: the decision tail hides only the console's own successful admin
# reads, never a user route that happens to be called "admin" nor a denied
# admin request; invisible characters show as '?'; `decisions --follow`
# cuts identities by width with a '~' and never splits UTF-8; --json output
# is pure ASCII; a NumericDate claim far outside time shows "out of range";
# the session detail and the revoke confirmation show long values whole.
# shellcheck disable=SC2154 # up_PORT is set by start_upstream (lib.sh)
source "$(dirname "$0")/lib.sh"
gh_init console_untrusted "$@"
IDP_DIR="$GH_SRC/tests/integration/idp"
[ -x "$GATEHOUSECTL" ] || gh_fatal "$GATEHOUSECTL not built"
command -v tmux >/dev/null || gh_fatal "tmux is not installed"

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
write_idp_gw_config "$T/gw.yaml"
# A user route called "admin" (examples/gatehouse.yaml has one: the ops
# team's own admin web app). No policy rule allows it: every request is
# denied, with a user-route reason.
sed -i "/^routes:\$/a\\
  - id: admin\\
    host: admin.test.local\\
    path_prefix: /\\
    upstream:\\
      url: http://127.0.0.1:$up_PORT" "$T/gw.yaml"
check_match "the config has the user route admin" 'id: admin' "$(cat "$T/gw.yaml")"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "issuer keys refreshed" 15 || gh_fatal "the gateway did not fetch the issuer keys"
URL="https://127.0.0.1:$GW_PORT"
ADMIN_URL="https://admin.test.local:$GW_PORT"
RESOLVE=(--resolve "admin.test.local:$GW_PORT:127.0.0.1")
ctl() { "$GATEHOUSECTL" --socket "$SOCK" "$@"; }

ALICE=$(token alice alice)
check "alice got a token" test -n "$ALICE"

# forge CLAIMS_JSON: alice's token with CLAIMS_JSON merged into its claims,
# signed with the IdP's current key (bound to alice's certificate still).
cat >"$T/resign.js" <<'JS'
const crypto = require('crypto'), fs = require('fs');
const [token, keysFile, extra] = process.argv.slice(2);
const b64u = (b) => Buffer.from(b).toString('base64url');
const [h, p] = token.split('.');
const header = JSON.parse(Buffer.from(h, 'base64url').toString());
const claims = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), ...JSON.parse(extra) };
const keys = JSON.parse(fs.readFileSync(keysFile)).keys.filter((k) => k.d);
const jwk = keys.find((k) => k.kid === header.kid) || keys[0];
const hp = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
const sig = crypto.sign('sha256', Buffer.from(hp),
    { key: crypto.createPrivateKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' });
process.stdout.write(`${hp}.${b64u(sig)}`);
JS
forge() { node "$T/resign.js" "$ALICE" "$T/idp-state/keys.json" "$1"; }
get_as() { # get_as TOKEN URL [CURL ARGS...] -> status
    local t=$1 u=$2
    shift 2
    ccurl alice -H "Authorization: Bearer $t" "$@" "$u" -o /dev/null -w '%{http_code}'
}

LONG_SUB="operator-$(printf '0123456789%.0s' $(seq 1 22))-END"
ZW_SUB=$'ad\u200bmin-zw'
UNI_SUB=$'operator-j\u00fcrgen-xm\u00fcller-1'
EVIL_SUB=$'evil\u202e\u0085x'
T_LONG=$(forge "{\"sub\":\"$LONG_SUB\",\"auth_time\":10000000000000}")
T_ZW=$(forge '{"sub":"ad\u200bmin-zw"}')
T_UNI=$(forge '{"sub":"operator-j\u00fcrgen-xm\u00fcller-1"}')
T_EVIL=$(forge '{"sub":"evil\u202e\u0085x"}')
check_eq "a 233-byte subject" 233 "${#LONG_SUB}"
check_eq "the gateway accepts the long subject" 200 "$(get_as "$T_LONG" "$URL/long")"
check_eq "...the zero-width one" 200 "$(get_as "$T_ZW" "$URL/zw")"
check_eq "...the bidi and C1 one" 200 "$(get_as "$T_EVIL" "$URL/evil")"

# --- decisions --follow: identities cut by width, marked, never split --------------
start_bg follow "$GATEHOUSECTL" --socket "$SOCK" decisions --follow --limit 1
start_bg followjson "$GATEHOUSECTL" --socket "$SOCK" decisions --follow --json --limit 1
sleep 1
check_eq "the non-ASCII subject passes" 200 "$(get_as "$T_UNI" "$URL/followed")"
get_as "$T_EVIL" "$URL/followed-evil" >/dev/null
wait_log follow 'GET /followed-evil' 10
wait_log followjson '/followed-evil' 10
line=$(grep -a 'GET /followed$' "$T/follow.log")
# 20 columns: 19 of the subject and the mark. A 20-byte cut would end in
# half of the second "ü" and look like a complete name.
check_match "--follow cuts the subject at 20 columns with a '~'" \
    $'  operator-j\u00fcrgen-xm\u00fc~  app ' "$line"
check "--follow prints valid UTF-8" iconv -f UTF-8 -t UTF-8 "$T/follow.log"
check_match "--follow shows the bidi and C1 characters as '?'" 'evil\?\?x ' \
    "$(grep -a 'GET /followed-evil' "$T/follow.log")"
# shellcheck disable=SC2317 # called through check
ascii_only() { [ "$(LC_ALL=C tr -d '\000-\177' <"$1" | wc -c)" -eq 0 ]; }
check "--follow --json is pure ASCII" ascii_only "$T/followjson.log"
check "...with the bidi override escaped" grep -qiF '"token_sub":"evil\u202e\u0085x"' \
    "$T/followjson.log"
stop_bg follow INT
stop_bg followjson INT

# --- --json: every non-ASCII character escaped, the strings unchanged ------------
ctl decisions --subject "$EVIL_SUB" --json >"$T/evil.json"
check_eq "decisions --json for the hostile subject exits 0" 0 "$?"
check "decisions --json is pure ASCII" ascii_only "$T/evil.json"
check "...the override is written as \\u202e" grep -qi 'evil\\u202e\\u0085x' "$T/evil.json"
check_eq "...and parses back to the same subject" "$EVIL_SUB" \
    "$(json_get '.decisions[0].token_sub' <"$T/evil.json")"
check_eq "a subject with a zero-width space is found by its real bytes" "/zw" \
    "$(ctl decisions --subject "$ZW_SUB" --json | json_get '.decisions[0].path')"
ctl sessions --json >"$T/sessions.json"
check "sessions --json is pure ASCII" ascii_only "$T/sessions.json"
check_match "...and lists the non-ASCII subject" "$UNI_SUB" \
    "$(json_get '.sessions.map(s => s.subject).join(",")' <"$T/sessions.json")"

# --- the console -------------------------------------------------------------------
start_console 100 50
# The screen as one line without blanks (inside a popup's frame only, when
# there is one): a value wrapped over several lines reads as itself again.
# shellcheck disable=SC2317 # called through check
joined() { screen | sed -e 's/^[^│]*│\(.*\)│[^│]*$/\1/' -e 's/ //g' | tr -d '\n'; }
# shellcheck disable=SC2317 # called through check
has_whole() { joined | grep -qF -- "$1"; }

check "the console starts" wait_screen '1 Sessions +2 Decisions' 10

# Denied GETs on the user route "admin": without a token, and with one the
# policy does not allow there. Then a denied GET of the admin API itself.
check_eq "GET on the user route admin without a token -> 401" 401 \
    "$(ccurl alice "${RESOLVE[@]}" "$ADMIN_URL/ops-panel" -o /dev/null -w '%{http_code}')"
check_eq "GET on the user route admin with a token -> 403" 403 \
    "$(get_as "$ALICE" "$ADMIN_URL/ops-denied" "${RESOLVE[@]}")"
check_eq "an unknown admin API path -> 404" 404 \
    "$(curl -sS --unix-socket "$SOCK" http://localhost/v1/no-such-thing -o /dev/null -w '%{http_code}')"
keys 2
check "the tail shows the denied GET on the user route admin" \
    wait_screen 'deny +401 +token_missing .* admin +GET /ops-panel' 5
check "...and the policy's deny there" wait_screen 'deny +403 +[a-z_]+ .* admin +GET /ops-denied' 3
check "...and the denied GET of the admin API" \
    wait_screen 'deny +404 +admin_bad_request .* admin +GET /v1/no-such-thing' 3
check "the zero-width space shows as '?'" wait_screen 'allow +200 +allow +ad\?min-zw +app +GET /zw' 3
check_no_match "the console's own reads stay hidden" 'admin_ok .*GET /v1/' "$(screen)"
check_match "...and the title says so" 'admin reads hidden' "$(cat "$T/screen.txt")"
keys a
check "a shows them" wait_screen 'allow +200 +admin_ok .* admin +GET /v1/' 5
keys a
check "a hides them again" wait_screen 'admin reads hidden' 3

# --- session detail: a claim far outside time, a long subject shown whole --------------
keys 1 /
check "the sessions filter opens" wait_screen 'Filter sessions' 3
keys "operator-0123" Enter
check "the long-subject session is found" wait_screen 'Sessions +1 shown' 5
keys Enter
check "its detail opens" wait_screen 'Session [0-9a-f]{32}' 5
check "auth_time 1e13 shows as out of range" \
    wait_screen 'auth_time +10000000000000 \(out of range\)' 5
check "the 233-byte subject is shown whole (wrapped)" has_whole "user$LONG_SUB"
check "...in the claims too" has_whole "sub$LONG_SUB"
check "...continuation lines are indented to the value column" grep -qE '^ {15}[0-9]' "$T/screen.txt"

# --- the revoke confirmation names the user in full --------------------------------------
keys u
check "u asks for a reason" wait_screen 'Reason to lock user' 3
keys Enter
check "the confirmation opens" wait_screen 'Lock this user' 3
screen >"$T/confirm-lock.txt" # kept for inspection, like t_console.sh's screens
check "...with the whole 233-byte subject" has_whole "user$LONG_SUB"
keys n
check "n cancels" wait_screen 'cancelled; nothing changed' 3
check_eq "nothing was revoked" "0" "$(ctl revocations --json | json_get '.revocations.length')"

keys q
for _ in $(seq 1 30); do
    [ -s "$T/console.exit" ] && break
    sleep 0.1
done
check_eq "q quits the console with status 0" "exit 0" "$(cat "$T/console.exit" 2>/dev/null)"
check_eq "the console wrote nothing to stderr" "" "$(cat "$T/console.err")"
"${TM[@]}" kill-server 2>/dev/null
gh_finish
