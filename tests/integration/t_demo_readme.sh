#!/usr/bin/env bash
# `gatehouse demo` and the README's five-minute tour (issue 7).
#
# The tour commands are EXTRACTED from README.md and run verbatim, so the
# README cannot drift from the product: the ```sh blocks between
# `<!-- tour:start -->` and `<!-- tour:end -->`, each announced by a
# `<!-- tour:step NAME -->` marker (`<!-- tour:step NAME interactive -->`
# for the console, which is checked for but not run). The README's setup
# block (outside the markers) defines DEMO, PORT and PATH; this test defines
# them itself for its own temp directory and port block. Steps run in order
# in one bash, so variables such as $TOKEN carry over as they would in the
# reader's terminal. Each step's output is then checked against what the
# tour promises (status lines, identity, deny reasons), and the README's
# own shown output must start with the same HTTP status line.
#
# Around the tour: the demo PKI (modes, chains), the development issuer's
# refusals, Ctrl-C (SIGINT) ending everything with exit 0, a rerun reusing
# the directory, and `gatehouse serve` on the demo config NOT starting the
# development issuer.
source "$(dirname "$0")/lib.sh"
gh_init demo_readme "$@"
README=$GH_SRC/README.md

# Four consecutive free ports P..P+3 (gateway, issuer, app, remote admin).
port_block() {
    local try p i ok
    for ((try = 0; try < 50; try++)); do
        p=$(free_port)
        ok=1
        for i in 1 2 3; do
            if [ -n "$(ss -Htln "sport = :$((p + i))" 2>/dev/null)" ] ||
                ! mkdir "$GH_PORT_DIR/$((p + i))" 2>/dev/null; then
                ok=0
                break
            fi
            echo $((p + i)) >>"$T/.ports"
        done
        if [ "$ok" = 1 ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
PORT=$(port_block) || gh_fatal "no block of 4 free ports"
[ -n "$PORT" ] || gh_fatal "no block of 4 free ports"
DEMO=$T/demo
if [ "${#DEMO}" -gt 80 ]; then # the admin socket path must fit sun_path
    gh_short_tmpdir
    DEMO=$GH_SHORT_TMP/demo
fi
ISSUER=https://127.0.0.1:$((PORT + 1))
demo_ready() { # NAME: wait for the gateway to have the issuer's keys
    wait_log "$1" "issuer keys refreshed" 30 || gh_fatal "$1 did not get ready"
}

# --- start -------------------------------------------------------------------
start_bg demo "$GATEHOUSE" demo --dir "$DEMO" --port "$PORT"
demo_ready demo
log=$(cat "$T/demo.log")
check_match "the demo says it is development only" 'DEVELOPMENT ONLY' "$log"
check_match "it prints the token command with absolute paths" \
    "--cert $DEMO/pki/alice.crt --key $DEMO/pki/alice.key" "$log"
check_match "it prints the revoke command" "--socket $DEMO/gatehouse.sock revoke user alice" "$log"

# --- the demo directory --------------------------------------------------------
for f in server-ca server client-ca alice bob gateway-client admin-ca admin; do
    check "pki/$f.crt and .key exist" test -s "$DEMO/pki/$f.crt" -a -s "$DEMO/pki/$f.key"
done
modes=$(stat -c '%a %n' "$DEMO"/pki/*.key "$DEMO/state/assertion.key" | awk '$1 != "600"')
check_eq "every private key is mode 0600" "" "$modes"
check "alice.crt chains to the client CA" \
    openssl verify -CAfile "$DEMO/pki/client-ca.crt" "$DEMO/pki/alice.crt"
check "admin.crt chains to the admin CA" \
    openssl verify -CAfile "$DEMO/pki/admin-ca.crt" "$DEMO/pki/admin.crt"
check_fail "admin.crt does not chain to the client CA" \
    openssl verify -CAfile "$DEMO/pki/client-ca.crt" "$DEMO/pki/admin.crt"
check "server.crt is valid for 127.0.0.1" \
    openssl verify -CAfile "$DEMO/pki/server-ca.crt" -verify_ip 127.0.0.1 "$DEMO/pki/server.crt"
check_match "server.crt is valid for localhost" 'DNS:localhost' \
    "$(openssl x509 -in "$DEMO/pki/server.crt" -noout -ext subjectAltName 2>&1)"
check "the generated config passes check-config" "$GATEHOUSE" check-config -c "$DEMO/gatehouse.yaml"
check "the generated policy passes policy check" "$GATEHOUSE" policy check -p "$DEMO/policy.yaml"

# --- the development issuer ------------------------------------------------------
icurl() { # CERT ARGS...: curl to the dev issuer with a demo client certificate
    local c=$1
    shift
    curl -sS --max-time 20 --cacert "$DEMO/pki/server-ca.crt" --cert "$DEMO/pki/$c.crt" \
        --key "$DEMO/pki/$c.key" "$@"
}
disc=$(icurl alice "$ISSUER/.well-known/openid-configuration")
check_eq "discovery: issuer" "$ISSUER" "$(json_get .issuer <<<"$disc")"
check_eq "discovery: jwks_uri" "$ISSUER/jwks.json" "$(json_get .jwks_uri <<<"$disc")"
check_eq "discovery: token_endpoint" "$ISSUER/token" "$(json_get .token_endpoint <<<"$disc")"
check_eq "discovery: bound tokens" true \
    "$(json_get '.tls_client_certificate_bound_access_tokens' <<<"$disc")"
check_eq "JWKS: one ES256 key" ES256 "$(icurl alice "$ISSUER/jwks.json" | json_get '.keys[0].alg')"
check_fail "no client certificate: TLS refused" \
    curl -sS --max-time 20 --cacert "$DEMO/pki/server-ca.crt" "$ISSUER/jwks.json"
check_fail "an admin-CA certificate: TLS refused" icurl admin "$ISSUER/jwks.json"
code=$(icurl gateway-client -o "$T/tok.json" -w '%{http_code}' -d grant_type=client_credentials "$ISSUER/token")
check_eq "a CN without a development user -> 401" 401 "$code"
check_eq "... invalid_client" invalid_client "$(json_get .error <"$T/tok.json")"
code=$(icurl alice -o "$T/tok.json" -w '%{http_code}' -d grant_type=password "$ISSUER/token")
check_eq "grant_type=password -> 400 unsupported_grant_type" "400 unsupported_grant_type" \
    "$code $(json_get .error <"$T/tok.json")"
code=$(icurl alice -o "$T/tok.json" -w '%{http_code}' -d grant_type=client_credentials \
    -d client_id=bob "$ISSUER/token")
check_eq "alice's certificate with client_id=bob -> 401" 401 "$code"
code=$(icurl alice -o "$T/tok.json" -w '%{http_code}' \
    -d grant_type=client_credentials -d grant_type=client_credentials "$ISSUER/token")
check_eq "a repeated parameter -> 400 (RFC 6749 3.2)" 400 "$code"
code=$(icurl alice -o /dev/null -w '%{http_code}' "$ISSUER/token")
check_eq "GET /token -> 405" 405 "$code"
icurl alice -o "$T/tok.json" -d grant_type=client_credentials "$ISSUER/token"
tok=$(json_get .access_token <"$T/tok.json")
hdr=$(node -e 'process.stdout.write(Buffer.from(process.argv[1].split(".")[0],"base64url").toString())' "$tok")
payload=$(node -e 'process.stdout.write(Buffer.from(process.argv[1].split(".")[1],"base64url").toString())' "$tok")
check_eq "token header: ES256 at+jwt" "ES256 at+jwt" "$(json_get .alg <<<"$hdr") $(json_get .typ <<<"$hdr")"
check_eq "token kid is the JWKS key" "$(icurl alice "$ISSUER/jwks.json" | json_get '.keys[0].kid')" \
    "$(json_get .kid <<<"$hdr")"
alice_x5t=$(openssl x509 -in "$DEMO/pki/alice.crt" -outform DER | openssl dgst -sha256 -binary |
    basenc --base64url | tr -d '=')
check_eq "token cnf.x5t#S256 = SHA-256 of alice's certificate" "$alice_x5t" \
    "$(json_get '.cnf["x5t#S256"]' <<<"$payload")"
check_eq "token sub/aud/groups/email" 'alice gatehouse ["engineering"] alice@example.com' \
    "$(json_get .sub <<<"$payload") $(json_get .aud <<<"$payload") $(json_get .groups <<<"$payload") $(json_get .email <<<"$payload")"
check_eq "token lives 10 minutes" 600 \
    "$(($(json_get .exp <<<"$payload") - $(json_get .iat <<<"$payload")))"
check_match "the demo app is plain HTTP on loopback only" "^127\.0\.0\.1:$((PORT + 2))$" \
    "$(ss -Htln "sport = :$((PORT + 2))" | awk '{print $4}')"

# --- the README tour, verbatim --------------------------------------------------------
STEPS=$T/steps
OUT=$T/out
mkdir -p "$STEPS" "$OUT"
# Writes STEPS/NN-NAME.sh (the block), NN-NAME.expected (the README's shown
# output: the next fenced block that is not ```sh), NN-NAME.interactive.
awk -v dir="$STEPS" '
    /<!-- tour:start -->/ { on = 1; next }
    /<!-- tour:end -->/ { on = 0; next }
    !on { next }
    /<!-- tour:step [A-Za-z0-9_-]+( interactive)? -->/ {
        s = $0; sub(/.*<!-- tour:step /, "", s); sub(/ -->.*/, "", s)
        split(s, a, " "); n++; name = sprintf("%02d-%s", n, a[1]); want = "sh"
        if (a[2] == "interactive") { print "" > (dir "/" name ".interactive"); close(dir "/" name ".interactive") }
        next
    }
    inblk && /^```[ \t]*$/ { inblk = 0; close(file); if (kind == "sh") want = "out"; else want = ""; next }
    inblk { print > file; next }
    want == "sh" && /^```sh[ \t]*$/ { inblk = 1; kind = "sh"; file = dir "/" name ".sh"; next }
    want == "out" && /^```[a-z]*[ \t]*$/ { inblk = 1; kind = "out"; file = dir "/" name ".expected"; next }
    want == "out" && /[^ \t]/ { want = "" }
' "$README"
check "README.md has a tour (markers and steps)" ls "$STEPS"/*.sh
for s in token alice-ok stolen-token console revoke after-revoke; do
    check "README tour has step '$s'" compgen -G "$STEPS/[0-9][0-9]-$s.sh"
done

ctl_ok=0
if [ -x "$GATEHOUSECTL" ] && "$GATEHOUSECTL" --socket "$DEMO/gatehouse.sock" stats >"$T/ctl.out" 2>&1; then
    ctl_ok=1
fi
check_eq "gatehousectl is built and answers on the demo's admin socket (needed for the revoke step)" \
    1 "$ctl_ok"

# The remote admin API: mTLS with the admin CA only.
check "remote admin API with the admin certificate" "$GATEHOUSECTL" --connect "127.0.0.1:$((PORT + 3))" \
    --cert "$DEMO/pki/admin.crt" --key "$DEMO/pki/admin.key" --ca "$DEMO/pki/server-ca.crt" stats
check_fail "remote admin API refuses alice's certificate" "$GATEHOUSECTL" \
    --connect "127.0.0.1:$((PORT + 3))" --cert "$DEMO/pki/alice.crt" --key "$DEMO/pki/alice.key" \
    --ca "$DEMO/pki/server-ca.crt" stats

# One script, all steps in order, each step's output in OUT/NN-NAME.out. The
# steps from the first gatehousectl one on run only if gatehousectl works
# (if not, the check above already failed; the steps are not silently dropped:
# their checks below fail too).
runner=$T/tour.sh
{
    echo 'set +e'
    echo "cd $(printf '%q' "$GH_SRC")"
    echo "export DEMO=$(printf '%q' "$DEMO") PORT=$PORT"
    echo "export PATH=$(printf '%q' "$GH_BUILD/gateway:$GH_BUILD/tui:$PATH")"
    for f in "$STEPS"/*.sh; do
        name=$(basename "$f" .sh)
        [ -e "$STEPS/$name.interactive" ] && continue
        if [ "$ctl_ok" != 1 ] && grep -q gatehousectl "$f"; then
            echo "exit 0 # gatehousectl unavailable: the rest of the tour cannot run"
            break
        fi
        echo "{"
        cat "$f"
        echo "} >$(printf '%q' "$OUT/$name.out") 2>&1"
    done
} >"$runner"
bash "$runner" >"$T/tour.log" 2>&1 </dev/null

out_of() { # STEP: the output of the tour step named STEP ("" if it did not run)
    local f
    for f in "$OUT"/[0-9][0-9]-"$1".out; do
        [ -f "$f" ] && tr -d '\r' <"$f"
    done
}
first_line() { head -n 1 | tr -d '\r'; }

o=$(out_of token)
check_match "tour: alice's token claims show sub alice" '"sub":"alice"' "$o"
check_match "tour: the token is bound to a certificate" '"cnf":\{"x5t#S256":"[A-Za-z0-9_-]{43}"\}' "$o"
o=$(out_of thumbprint)
if [ -n "$o" ]; then
    check_eq "tour: the thumbprint step prints alice's x5t#S256" "$alice_x5t" "$o"
fi
o=$(out_of alice-ok)
check_eq "tour: alice through the gateway -> 200" "HTTP/1.1 200 OK" "$(first_line <<<"$o")"
check_match "tour: the app sees X-Gatehouse-User alice" 'X-Gatehouse-User +alice' "$o"
check_match "tour: the app sees alice's groups" 'X-Gatehouse-Groups +engineering' "$o"
check_match "tour: the app sees the cert thumbprint" "X-Gatehouse-Cert-Thumbprint +$alice_x5t" "$o"
check_match "tour: the app verified the assertion" 'signature VERIFIED' "$o"
check_match "tour: the assertion says binding verified" 'binding +verified' "$o"
o=$(out_of stolen-token)
check_eq "tour: alice's token with bob's cert -> 401" "HTTP/1.1 401 Unauthorized" "$(first_line <<<"$o")"
check_match "tour: ... because of the binding" 'binding_mismatch' "$o"
o=$(out_of bob-policy)
if [ -n "$(compgen -G "$STEPS/[0-9][0-9]-bob-policy.sh")" ]; then
    check_eq "tour: bob with his own token -> 403" "HTTP/1.1 403 Forbidden" "$(first_line <<<"$o")"
    check_match "tour: ... because no policy rule allows him" 'policy_no_match' "$o"
fi
if [ -n "$(compgen -G "$STEPS/[0-9][0-9]-decisions.sh")" ]; then
    o=$(out_of decisions)
    check_match "tour: the decision log shows the binding_mismatch deny" 'binding_mismatch' "$o"
    check_match "tour: the decision log shows the allow" 'allow' "$o"
fi
check_match "tour: the console step runs gatehousectl" 'gatehousectl --socket' \
    "$(cat "$STEPS"/[0-9][0-9]-console.sh 2>/dev/null)"
check_match "tour: revoke user alice succeeds" 'revoked' "$(out_of revoke)"
o=$(out_of after-revoke)
check_eq "tour: after the revocation alice -> 401" "HTTP/1.1 401 Unauthorized" "$(first_line <<<"$o")"
check_match "tour: ... because alice is locked" 'subject_locked' "$o"
rows=$(sqlite3 "$DEMO/gatehouse.db" "select reason from decisions where route = 'demo'" 2>&1 | sort -u | tr '\n' ' ')
check_match "decision rows: allow, binding_mismatch" '(^| )allow .*binding_mismatch' "$rows"
check_match "decision rows: subject_locked" 'subject_locked' "$rows"

# The README shows real output: its first line must be what the step prints
# now (HTTP status lines and the like).
for e in "$STEPS"/*.expected; do
    [ -f "$e" ] || continue
    name=$(basename "$e" .expected)
    want=$(first_line <"$e")
    case $want in
    HTTP/*) check_eq "README's shown status for $name is current" "$want" \
        "$(cat "$OUT/$name.out" 2>/dev/null | first_line)" ;;
    esac
done

# --- Ctrl-C, rerun, and `serve` without the issuer ---------------------------------
stop_bg demo INT
check_eq "SIGINT: the demo exits 0" 0 "$GH_LAST_STATUS"
check_match "SIGINT: the gateway drained" 'drained' "$(cat "$T/demo.log")"
check_match "SIGINT: helpers stopped" 'gatehouse demo stopped' "$(cat "$T/demo.log")"
check_eq "SIGINT: nothing listens on the issuer port any more" "" \
    "$(ss -Htln "sport = :$((PORT + 1))")"

before=$(cd "$DEMO/pki" && sha256sum ./*.crt ./*.key)
start_bg demo2 "$GATEHOUSE" demo --dir "$DEMO" --port "$PORT"
demo_ready demo2
check_match "rerun: the PKI is reused" 'all files reused' "$(cat "$T/demo2.log")"
check_eq "rerun: certificates and keys unchanged" "$before" "$(cd "$DEMO/pki" && sha256sum ./*.crt ./*.key)"
bob_tok=$(icurl bob -d grant_type=client_credentials "$ISSUER/token" | json_get .access_token)
code=$(curl -sS --max-time 20 --cacert "$DEMO/pki/server-ca.crt" --cert "$DEMO/pki/bob.crt" \
    --key "$DEMO/pki/bob.key" -H "Authorization: Bearer $bob_tok" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$PORT/hello")
check_eq "rerun: tokens verify again (bob: 403 by policy, not 401)" 403 "$code"
stop_bg demo2 TERM
check_eq "SIGTERM: the demo exits 0" 0 "$GH_LAST_STATUS"

start_bg serve "$GATEHOUSE" serve -c "$DEMO/gatehouse.yaml"
wait_port "$PORT" 15 || gh_fatal "serve did not listen"
sleep 1
check_eq "\`gatehouse serve\` on the demo config does not start the development issuer" "" \
    "$(ss -Htln "sport = :$((PORT + 1))")"
check_eq "... nor the demo app" "" "$(ss -Htln "sport = :$((PORT + 2))")"
stop_bg serve TERM

gh_finish
