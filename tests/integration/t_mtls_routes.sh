#!/usr/bin/env bash
# t_mtls_routes.sh: routes with `authz: false` (mTLS only, no token) still
# answer to the policy when one is configured (POLICY.md section 4: token
# conditions are unknown there, so an allow needs certificate facts and a
# deny that needs token facts applies), and a path has one spelling, so a
# request cannot reach a looser route or slip past a path rule under another
# name (percent-encoded letters, '//', ';' parameters). Real gateway, real
# upstream, real curl with real certificates; every verdict is also checked
# in the decision log and in the upstream's own request log.
# shellcheck disable=SC2154 # up_PORT comes from lib.sh's start_upstream
. "$(dirname "$0")/lib.sh"
gh_init mtls_routes "$@"

start_upstream up
GW_PORT=$(free_port)
GW_DB=$T/gw.db
GW_SOCK=$T/admin.sock
cat >"$T/policy.yaml" <<'EOF'
version: 1
rules:
  - id: no-delete
    effect: deny
    routes: [app]
    methods: [DELETE]
  # A claim-based deny without `token: present`: on an mTLS-only route the
  # claim is unknown, so it applies to every request there (fail closed).
  - id: contractors-out
    effect: deny
    routes: [legacy]
    when:
      - claim: groups
        contains: contractors
  - id: alice-app
    effect: allow
    routes: [app, legacy]
    when:
      - cert: cn
        equals: alice
  - id: ops-admin
    effect: allow
    routes: [admin]
    when:
      - cert: cn
        equals: ops
  # Allows need definite facts: with no token, this never matches.
  - id: engineering-app
    effect: allow
    routes: [app]
    when:
      - claim: groups
        contains: engineering
EOF
cat >"$T/gw.yaml" <<EOF
server:
  listen: "127.0.0.1:$GW_PORT"
  workers: 2
tls:
  cert: "$PKI/server.crt"
  key: "$PKI/server.key"
  client_ca: "$PKI/client-ca.crt"
policy: "$T/policy.yaml"
routes:
  - id: admin
    host: "*"
    path_prefix: /admin
    authz: false
    upstream:
      url: "http://127.0.0.1:$up_PORT"
  - id: legacy
    host: "*"
    path_prefix: /legacy
    authz: false
    upstream:
      url: "http://127.0.0.1:$up_PORT"
  - id: app
    host: "*"
    path_prefix: /
    authz: false
    upstream:
      url: "http://127.0.0.1:$up_PORT"
decision_log:
  path: "$GW_DB"
  mode: strict
admin:
  socket: "$GW_SOCK"
EOF
start_gw "$T/gw.yaml"

code() { # CERT METHOD PATH: the status code (curl sends PATH as written)
    ccurl "$1" --path-as-is -o /dev/null -w '%{http_code}' -X "$2" "$(gw_url "$3")"
}
# last_row PATH: "decision|reason|rule_id|route|status" of the newest row for PATH
last_row() {
    sqlite3 -cmd '.timeout 5000' "$GW_DB" \
        "SELECT decision||'|'||reason||'|'||coalesce(rule_id,'')||'|'||coalesce(route,'')||'|'||status
           FROM decisions WHERE path = '$1' ORDER BY id DESC LIMIT 1"
}

# --- the policy decides on mTLS-only routes --------------------------------------
check_eq "alice (allowed by certificate) reaches the app" 200 "$(code alice GET /app/page)"
check_eq "and it is logged as allowed by her rule" "allow|allow|alice-app|app|200" "$(last_row /app/page)"
check_eq "bob (no rule allows his certificate) is refused" 403 "$(code bob GET /app/bob)"
check_eq "and it is logged as no policy match" "deny|policy_no_match||app|403" "$(last_row /app/bob)"
check_eq "an allow rule on token claims never matches without a token" 0 \
    "$(sqlite3 "$GW_DB" "SELECT count(*) FROM decisions WHERE rule_id = 'engineering-app'")"
check_eq "a deny rule applies on an mTLS-only route" 403 "$(code alice DELETE /app/thing)"
check_eq "and names its rule" "deny|policy_deny|no-delete|app|403" "$(last_row /app/thing)"
check_eq "a claim-based deny applies when there is no token (fail closed)" 403 \
    "$(code alice GET /legacy/report)"
check_eq "and names its rule" "deny|policy_deny|contractors-out|legacy|403" "$(last_row /legacy/report)"
check_eq "alice is refused on the admin route" 403 "$(code alice GET /admin/users)"
check_eq "none of the refused requests reached the upstream" 0 \
    "$(upstream_hits up ' /(app/bob|app/thing|legacy/report|admin/users) ')"
check_eq "the allowed one did" 1 "$(upstream_hits up '^GET /app/page ')"

# --- one spelling per path ------------------------------------------------------
# Each of these is /admin/users to an upstream that decodes %XX, merges
# slashes or strips ';' parameters; none may be routed to "app" (where alice
# is allowed).
for p in '/%61dmin/users' '/adm%69n/users' '//admin/users' '/admin/x/..%2Fusers' \
    '/admin%3Bx/users' '/admin;x/users' '/app/..;/admin/users' '/%2561dmin/users'; do
    check_eq "alice GET $p is refused as a bad request" 400 "$(code alice GET "$p")"
done
check_eq "none of them reached the upstream" 0 "$(upstream_hits up 'admin')"
check_eq "each was logged as http_bad_request" 8 \
    "$(sqlite3 "$GW_DB" "SELECT count(*) FROM decisions WHERE reason = 'http_bad_request'")"
check_eq "encoded reserved and non-ASCII octets are still fine" 200 \
    "$(code alice GET '/app/a%20b/%C3%A9t%C3%A9/%3A')"

# --- a reload that removes the issuer --------------------------------------------
# Valid when every route is mTLS-only; the key fetcher must stop fetching,
# not crash on the missing issuer (it used to, the moment the reload woke it).
stop_bg gw
sed -i "s|^policy: |issuer:\n  url: https://127.0.0.1:$(free_port)\n  audiences: [gatehouse]\n  ca: $PKI/idp-ca.crt\npolicy: |" "$T/gw.yaml"
start_gw "$T/gw.yaml"
check_eq "with an (unreachable) issuer configured, mTLS-only routes still serve" 200 \
    "$(code alice GET /app/with-issuer)"
sed -i '/^issuer:$/,/^  ca: /d' "$T/gw.yaml"
check_fail "the issuer section is gone from the config" grep -q '^issuer:' "$T/gw.yaml"
kill -HUP "$(bg_pid gw)"
wait_log gw "reload ok" 10
sleep 0.5
check "the gateway survives a reload that removes the issuer" kill -0 "$(bg_pid gw)"
check_eq "and still serves" 200 "$(code alice GET /app/after-issuer-removed)"

# --- no policy at all: mTLS only is the whole rule ------------------------------
stop_bg gw
sed -i '/^policy: /d' "$T/gw.yaml"
start_gw "$T/gw.yaml"
check_eq "without a policy file, bob's certificate is enough on an mTLS-only route" 200 \
    "$(code bob GET /app/nopolicy)"
check_eq "logged with the mtls-only rule" "allow|allow|mtls-only|app|200" "$(last_row /app/nopolicy)"

gh_finish
