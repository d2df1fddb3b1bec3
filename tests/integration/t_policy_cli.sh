#!/usr/bin/env bash
# t_policy_cli.sh: `gatehouse policy check|test` against examples/policy.yaml,
# through the real binary: exit codes (0 allow / 1 deny / 2 error), the
# printed verdict and rule, --json, and file:line:col errors for a bad file.
# Scenarios are data: identity, request, expected exit, expected rule.
# shellcheck disable=SC2154 # T, GATEHOUSE come from lib.sh
. "$(dirname "$0")/lib.sh"
gh_init policy_cli "$@"

# GH_GATEHOUSE_BIN: run another build of the binary (default: $GATEHOUSE).
GH=${GH_GATEHOUSE_BIN:-$GATEHOUSE}
POLICY=$GH_SRC/examples/policy.yaml

out=$("$GH" policy check -p "$POLICY" 2>&1)
rc=$?
check_eq "check: example policy is valid (exit 0)" 0 "$rc"
check_match "check: prints rule count and version" '^ok: 5 rules, policy_version [0-9a-f]{64}$' "$out"
want_version=$(sha256sum "$POLICY" | cut -d' ' -f1)
check_match "check: version is the SHA-256 of the file" "$want_version" "$out"

out=$("$GH" policy check -p "$POLICY" --routes wiki,admin 2>&1)
check_eq "check --routes: unknown route refused (exit 2)" 2 "$?"
check_match "check --routes: names the rule and position" \
    "policy.yaml:[0-9]+:[0-9]+: rule 'ci-deployer' names unknown route 'deploy'" "$out"

# --- identities -------------------------------------------------------------
cat >"$T/alice.json" <<'EOF'
{"cert": {"subject": "CN=alice,O=Example", "cn": "alice",
          "issuer": "CN=Example Employee Device CA,O=Example"},
 "claims": {"sub": "alice", "email": "alice@example.com", "groups": ["engineering"]}}
EOF
cat >"$T/olga.json" <<'EOF'
{"cert": {"subject": "CN=olga,O=Example", "issuer": "CN=Example Employee Device CA,O=Example"},
 "claims": {"sub": "olga", "email": "olga@example.com", "groups": ["ops"],
            "scope": "openid admin", "amr": ["pwd"]}}
EOF
cat >"$T/mallory.json" <<'EOF'
{"cert": {"subject": "CN=mallory,O=Contractor"},
 "claims": {"sub": "mallory", "email": "mallory@example.com",
            "groups": ["engineering", "contractors-blocked"]}}
EOF
cat >"$T/deployer.json" <<'EOF'
{"cert": {"subject": "CN=ci-deployer", "san_uri": ["spiffe://example.org/ci/deployer"],
          "thumbprint": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}}
EOF

# --- scenarios: identity | request | exit | rule ------------------------------
# Monday 2026-11-23; the admin rule uses +01:00 office hours 08:00-18:00.
while IFS='|' read -r ident req want_rc want_rule; do
    [ -z "$ident" ] && continue
    case $ident in \#*) continue ;; esac
    out=$("$GH" policy test -p "$POLICY" --identity "@$T/$ident.json" --request "$req" 2>&1)
    rc=$?
    check_eq "test $ident $req: exit $want_rc" "$want_rc" "$rc"
    check_eq "test $ident $req: rule $want_rule" "$want_rule" \
        "$(printf '%s\n' "$out" | sed -n 's/^rule: //p')"
done <<'EOF'
alice|{"route":"wiki","method":"GET","path":"/wiki/Main","source":"10.1.2.3","time":"2026-11-23T10:00:00Z"}|0|wiki-engineering
alice|{"route":"wiki","method":"DELETE","path":"/wiki/Main","time":"2026-11-23T10:00:00Z"}|1|-
alice|{"route":"wiki","method":"GET","path":"/wiki/../admin","time":"2026-11-23T10:00:00Z"}|1|-
alice|{"route":"admin","method":"GET","path":"/","source":"198.51.100.7","time":"2026-11-23T10:00:00Z"}|1|-
olga|{"route":"admin","method":"GET","path":"/","source":"198.51.100.7","time":"2026-11-23T10:00:00+01:00"}|0|admin-ops-office-hours
olga|{"route":"admin","method":"GET","path":"/","source":"198.51.100.7","time":"2026-11-23T18:00:00+01:00"}|1|-
olga|{"route":"admin","method":"GET","path":"/","source":"192.0.2.1","time":"2026-11-23T10:00:00+01:00"}|1|-
olga|{"route":"admin","method":"GET","path":"/","source":"198.51.100.7","time":"2026-11-28T10:00:00+01:00"}|1|-
olga|{"route":"admin","method":"DELETE","path":"/u/1","source":"198.51.100.7","time":"2026-11-23T10:00:00+01:00"}|1|admin-delete-needs-mfa
mallory|{"route":"wiki","method":"GET","path":"/wiki/Main","time":"2026-11-23T10:00:00Z"}|1|block-contractors
mallory|{"route":"deploy","method":"POST","path":"/deploy/x","time":"2026-11-23T10:00:00Z"}|1|block-contractors
deployer|{"route":"deploy","method":"POST","path":"/deploy/app1","time":"2026-11-23T10:00:00Z"}|0|ci-deployer
deployer|{"route":"deploy","method":"GET","path":"/deploy/app1","time":"2026-11-23T10:00:00Z"}|1|-
deployer|{"route":"deploy","method":"POST","path":"/deploy/app1/extra","time":"2026-11-23T10:00:00Z"}|1|-
deployer|{"route":"wiki","method":"GET","path":"/wiki/Main","time":"2026-11-23T10:00:00Z"}|1|-
EOF

# --- output formats ------------------------------------------------------------
req='{"route":"wiki","method":"GET","path":"/wiki/Main","time":"2026-11-23T10:00:00Z"}'
out=$("$GH" policy test -p "$POLICY" --identity "@$T/alice.json" --request "$req")
check_match "test: text output has decision/reason/version" \
    $'decision: allow\nreason: allow\nrule: wiki-engineering\npolicy_version: '"$want_version" "$out"
check_match "test: why lists the matching rule" 'rule wiki-engineering \(allow, line [0-9]+\): match' "$out"
out=$("$GH" policy test -p "$POLICY" --identity "@$T/mallory.json" --request "$req" --json)
check_eq "test --json: exit 1 on deny" 1 "$?"
check_eq "test --json: decision" deny "$(printf '%s' "$out" | json_get .decision)"
check_eq "test --json: reason" policy_deny "$(printf '%s' "$out" | json_get .reason)"
check_eq "test --json: rule" block-contractors "$(printf '%s' "$out" | json_get .rule)"
check_eq "test --json: policy_version" "$want_version" "$(printf '%s' "$out" | json_get .policy_version)"
check_match "test --json: why is a list" '^\[' "$(printf '%s' "$out" | json_get .why)"
out=$("$GH" policy test -p "$POLICY" --identity '{}' --request '{"route":"nowhere"}')
check_match "test: no match reports policy_no_match" $'reason: policy_no_match\nrule: -' "$out"

# --- errors ------------------------------------------------------------------------
cat >"$T/bad.yaml" <<'EOF'
version: 1
rules:
  - id: a
    effect: alow
    routes: [wiki]
    sources: ["10.0.0.1/8"]
  - id: a
    effect: allow
    routes: [wiki]
    whne: []
EOF
out=$("$GH" policy check -p "$T/bad.yaml" 2>&1)
check_eq "check: bad policy exits 2" 2 "$?"
check_match "check: bad effect at 4:13" "bad.yaml:4:13: effect: expected allow or deny" "$out"
check_match "check: host bits at 6:15" "bad.yaml:6:15: sources: '10.0.0.1/8' has host bits set" "$out"
check_match "check: unknown key at 10:5" "bad.yaml:10:5: unknown key 'whne' in rule" "$out"
check_match "check: duplicate id at 7:5" "bad.yaml:7:5: duplicate rule id 'a'" "$out"
"$GH" policy test -p "$T/bad.yaml" --identity "@$T/alice.json" --request "$req" >/dev/null 2>&1
check_eq "test: bad policy exits 2" 2 "$?"
"$GH" policy test -p "$POLICY" --identity '{"claims":{"groups":"x"}}' --request "$req" >/dev/null 2>&1
check_eq "test: malformed identity exits 2" 2 "$?"
"$GH" policy test -p "$POLICY" --request "$req" >/dev/null 2>&1
check_eq "test: missing --identity exits 2" 2 "$?"
out=$("$GH" policy help 2>&1)
check_match "help: says claims are not verified" 'No token signature' "$out"

gh_finish
