#!/usr/bin/env bash
# t_infra_selftest.sh: proves the test infrastructure itself, so a failure in
# a gateway test means the gateway and never the harness: the generated PKI
# (pki.sh), the origin server (gh-upstream), the TLS upstream helper, and
# lib.sh (process control, ports, and checks that really fail).
# shellcheck disable=SC2154,SC2016 # NAME_PORT/NAME_URL come from lib.sh; inner bodies
. "$(dirname "$0")/lib.sh"
gh_init infra_selftest "$@"

# ---------------------------------------------------------------------------
# PKI

verify() { # CAFILE CERT [extra openssl verify args]
    local ca=$1 crt=$2
    shift 2
    openssl verify -CAfile "$PKI/$ca.crt" "$@" "$PKI/$crt.crt" 2>&1
}

for c in alice bob carol revoked svc-deployer; do
    check "pki: $c verifies against client-ca for TLS client use" \
        verify client-ca "$c" -purpose sslclient
done
out=$(verify client-ca expired -purpose sslclient)
check_match "pki: expired is refused as expired" 'certificate has expired' "$out"
check_match "pki: expired validity is entirely in the past" 'notAfter=' \
    "$(openssl x509 -in "$PKI/expired.crt" -noout -enddate)"
check "pki: expired notAfter < now" \
    test "$(date -d "$(openssl x509 -in "$PKI/expired.crt" -noout -enddate | cut -d= -f2)" +%s)" \
    -lt "$(date +%s)"
out=$(verify client-ca notyet -purpose sslclient)
check_match "pki: notyet is refused as not yet valid" 'not yet valid' "$out"

out=$(verify client-ca revoked -crl_check -CRLfile "$PKI/client-ca.crl")
check_match "pki: revoked is refused with client-ca.crl" 'certificate revoked' "$out"
check "pki: alice passes the CRL check" \
    verify client-ca alice -crl_check -CRLfile "$PKI/client-ca.crl"
check "pki: revoked passes with the empty CRL" \
    verify client-ca revoked -crl_check -CRLfile "$PKI/client-ca-empty.crl"
rserial=$(openssl x509 -in "$PKI/revoked.crt" -noout -serial | cut -d= -f2)
check_match "pki: client-ca.crl lists revoked's serial" "Serial Number: $rserial" \
    "$(openssl crl -in "$PKI/client-ca.crl" -noout -text)"
check_no_match "pki: client-ca-empty.crl lists nothing" 'Serial Number' \
    "$(openssl crl -in "$PKI/client-ca-empty.crl" -noout -text)"
check "pki: client-ca.crl is signed by client-ca" \
    openssl crl -in "$PKI/client-ca.crl" -noout -CAfile "$PKI/client-ca.crt"

out=$(verify client-ca rogue -purpose sslclient)
check_match "pki: rogue does NOT verify against client-ca" 'unable to get local issuer' "$out"
check "pki: rogue verifies against rogue-ca" verify rogue-ca rogue -purpose sslclient
check_eq "pki: rogue has alice's exact subject" \
    "$(openssl x509 -in "$PKI/alice.crt" -noout -subject)" \
    "$(openssl x509 -in "$PKI/rogue.crt" -noout -subject)"
alice_txt=$(openssl x509 -in "$PKI/alice.crt" -noout -text)
check_match "pki: alice has email SAN" 'email:alice@example.com' "$alice_txt"
check_match "pki: alice is EC P-256" 'ASN1 OID: prime256v1' "$alice_txt"
check_match "pki: alice is SHA-256 signed" 'ecdsa-with-SHA256' "$alice_txt"
check_match "pki: carol is RSA 2048" 'Public-Key: \(2048 bit\)' \
    "$(openssl x509 -in "$PKI/carol.crt" -noout -text)"
check_match "pki: svc-deployer has the SPIFFE URI SAN" 'URI:spiffe://example.org/ci/deployer' \
    "$(openssl x509 -in "$PKI/svc-deployer.crt" -noout -text)"
check_match "pki: bob is CN=bob" 'CN ?= ?bob' "$(openssl x509 -in "$PKI/bob.crt" -noout -subject)"

for h in localhost foo.test.local; do
    check "pki: server cert valid for $h" \
        verify server-ca server -purpose sslserver -verify_hostname "$h"
done
check "pki: server cert valid for 127.0.0.1" \
    verify server-ca server -purpose sslserver -verify_ip 127.0.0.1
check "pki: server cert valid for ::1" \
    verify server-ca server -purpose sslserver -verify_ip ::1
check_fail "pki: server cert not valid for a.b.test.local" \
    verify server-ca server -purpose sslserver -verify_hostname a.b.test.local
check "pki: server2 valid for localhost" \
    verify server-ca server2 -purpose sslserver -verify_hostname localhost
s1=$(openssl x509 -in "$PKI/server.crt" -noout -serial)
s2=$(openssl x509 -in "$PKI/server2.crt" -noout -serial)
check "pki: server and server2 serials differ ($s1 / $s2)" test "$s1" != "$s2"
check_fail "pki: server cert is not a client cert" verify server-ca server -purpose sslclient

check "pki: admin verifies against admin-ca" verify admin-ca admin -purpose sslclient
check_fail "pki: admin does not verify against client-ca" verify client-ca admin
check_match "pki: admin is CN=ops-admin" 'CN ?= ?ops-admin' \
    "$(openssl x509 -in "$PKI/admin.crt" -noout -subject)"
check "pki: upstream-server valid for localhost" \
    verify upstream-ca upstream-server -purpose sslserver -verify_hostname localhost
check "pki: upstream-server valid for 127.0.0.1" \
    verify upstream-ca upstream-server -purpose sslserver -verify_ip 127.0.0.1
check "pki: gw-upstream is a client cert from upstream-ca" \
    verify upstream-ca gw-upstream -purpose sslclient
check_match "pki: gw-upstream is CN=gatehouse" 'CN ?= ?gatehouse' \
    "$(openssl x509 -in "$PKI/gw-upstream.crt" -noout -subject)"
check "pki: idp valid for localhost" verify idp-ca idp -purpose sslserver -verify_hostname localhost
check "pki: idp valid for 127.0.0.1" verify idp-ca idp -purpose sslserver -verify_ip 127.0.0.1

# Every key 0600, every key matches its certificate.
bad_modes=""
mismatch=""
for k in "$PKI"/*.key; do
    [ "$(stat -c %a "$k")" = 600 ] || bad_modes="$bad_modes $(basename "$k")"
    crt=${k%.key}.crt
    a=$(openssl x509 -in "$crt" -noout -pubkey | openssl dgst -sha256 -r)
    b=$(openssl pkey -in "$k" -pubout | openssl dgst -sha256 -r)
    [ "$a" = "$b" ] || mismatch="$mismatch $(basename "$k")"
done
check_eq "pki: all keys are mode 0600" "" "$bad_modes"
check_eq "pki: every key matches its certificate" "" "$mismatch"

# RFC 8705 section 3.1 thumbprints, recomputed independently.
for c in alice bob carol expired notyet revoked svc-deployer rogue admin gw-upstream; do
    x5t=$(cat "$PKI/$c.x5t")
    hex=$(cat "$PKI/$c.sha256")
    want_hex=$(openssl x509 -in "$PKI/$c.crt" -outform DER | sha256sum | cut -d' ' -f1)
    want_x5t=$(openssl x509 -in "$PKI/$c.crt" -outform DER | openssl dgst -sha256 -binary |
        basenc --base64url | tr -d '=\n')
    check_eq "pki: $c.x5t is 43 chars" 43 "$(wc -c <"$PKI/$c.x5t" | tr -d ' ')"
    check_eq "pki: $c.x5t matches recomputation" "$want_x5t" "$x5t"
    check_eq "pki: $c.sha256 matches recomputation" "$want_hex" "$hex"
done
# The two spellings are the same 32 bytes.
dec=$(printf '%s=' "$(cat "$PKI/alice.x5t")" | basenc --base64url -d | od -An -tx1 | tr -d ' \n')
check_eq "pki: alice.x5t decodes to alice.sha256" "$(cat "$PKI/alice.sha256")" "$dec"

# Idempotent: a second run changes nothing.
before=$(stat -c %Y "$PKI/alice.crt")
out=$(bash "$GH_SRC/tests/integration/pki.sh" "$PKI" 2>&1)
check_match "pki: second run is a no-op" 'up to date' "$out"
check_eq "pki: alice.crt untouched by the second run" "$before" "$(stat -c %Y "$PKI/alice.crt")"
# A fresh PKI is fast (budget: 20 s on a 2-core machine).
t0=$(date +%s%N)
check "pki: fresh generation works" bash "$GH_SRC/tests/integration/pki.sh" "$T/pki-fresh"
ms=$((($(date +%s%N) - t0) / 1000000))
check "pki: fresh generation took ${ms} ms (< 20000)" test "$ms" -lt 20000
check "pki: fresh PKI has its .done marker" test -f "$T/pki-fresh/.done"

# ---------------------------------------------------------------------------
# gh-upstream

check_no_match "upstream: binary links no OpenSSL (DESIGN.md section 8)" 'libssl|libcrypto' \
    "$(ldd "$UPSTREAM_BIN")"
start_upstream up
check_match "upstream: port was set" '^[0-9]+$' "$up_PORT"
U=$up_URL

check_eq "upstream: GET / says hello" "hello from up" "$(curl -sS "$U/")"
check_eq "upstream: unknown path says hello" "hello from up" "$(curl -sS "$U/no/such/thing")"
check_eq "upstream: /fixed1k is 1024 bytes" 1024 "$(curl -sS "$U/fixed1k" | wc -c | tr -d ' ')"
check_eq "upstream: /status/503" 503 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/status/503")"
check_eq "upstream: /status/204" 204 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/status/204")"
check_eq "upstream: /status/99 is refused" 400 \
    "$(curl -sS -o /dev/null -w '%{http_code}' "$U/status/99")"
hdrs=$(curl -sS -D - -o /dev/null "$U/close")
check_match "upstream: /close answers Connection: close" $'[Cc]onnection: close\r' "$hdrs"
t=$(curl -sS -o /dev/null -w '%{time_total}' "$U/slow?ms=400")
check "upstream: /slow?ms=400 took ${t}s (>= 0.4)" awk -v t="$t" 'BEGIN { exit !(t >= 0.4) }'

echo_json=$(curl -sS "$U/echo/sub?q=1" -H 'Authorization: Bearer abc' -H 'X-Gatehouse-User: alice' \
    -H 'X-Multi: one' -H 'X-Multi: two' --data-binary 'hello')
check_eq "upstream: echo method" POST "$(json_get .method <<<"$echo_json")"
check_eq "upstream: echo path is the raw target" "/echo/sub?q=1" "$(json_get .path <<<"$echo_json")"
check_eq "upstream: echo header value" alice \
    "$(json_get '.headers["x-gatehouse-user"][0]' <<<"$echo_json")"
check_eq "upstream: echo keeps repeated headers" '["one","two"]' \
    "$(json_get '.headers["x-multi"]' <<<"$echo_json")"
check_eq "upstream: echo body_bytes" 5 "$(json_get .body_bytes <<<"$echo_json")"
check_eq "upstream: echo body_sha256" "$(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(json_get .body_sha256 <<<"$echo_json")"
check_fail "upstream: echo has no header that was not sent" \
    json_get '.headers["x-not-sent"]' <<<"$echo_json"
two=$(curl -sS "$U/echo" "$U/echo")
check_match "upstream: keep-alive reuses the connection" '"conn_requests":2' "$two"

# Streaming: 1 GiB down with flat memory, chunked too.
size=$(curl -sS -o /dev/null -w '%{size_download}' "$U/bytes/1073741824")
check_eq "upstream: /bytes/1073741824 delivers 1 GiB" 1073741824 "$size"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$(bg_pid up)/status")
check "upstream: peak RSS ${hwm} kB stays under 64 MiB" test "$hwm" -lt 65536
size=$(curl -sS -o /dev/null -w '%{size_download}' "$U/bytes/3000000?chunked=1")
check_eq "upstream: chunked /bytes delivers all bytes" 3000000 "$size"
check_match "upstream: chunked /bytes is chunked" $'[Tt]ransfer-[Ee]ncoding: chunked\r' \
    "$(curl -sS -D - -o /dev/null "$U/bytes/10?chunked=1")"
alphabet=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_
check_eq "upstream: /bytes pattern" "${alphabet}0123" "$(curl -sS "$U/bytes/68")"

# Uploads: chunked and Content-Length, hashed while streaming.
head -c 3000017 /dev/urandom >"$T/upload.bin"
want=$(sha256sum "$T/upload.bin" | cut -d' ' -f1)
res=$(curl -sS -H 'Transfer-Encoding: chunked' --data-binary @"$T/upload.bin" "$U/upload")
check_eq "upstream: chunked upload sha256" "$want" "$(json_get .sha256 <<<"$res")"
check_eq "upstream: chunked upload bytes" 3000017 "$(json_get .bytes <<<"$res")"
res=$(curl -sS -T "$T/upload.bin" "$U/upload")
check_eq "upstream: PUT upload sha256" "$want" "$(json_get .sha256 <<<"$res")"
check_eq "upstream: GET /upload is 405" 405 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/upload")"

# Garbage gets a 400 and the server lives on.
raw() { # send bytes on a fresh connection, print the status line
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$up_PORT"
    printf '%b' "$1" >&3
    IFS= read -r -t 5 reply <&3
    exec 3<&-
    printf '%s\n' "${reply%$'\r'}"
}
check_eq "upstream: garbage is 400" "HTTP/1.1 400 Bad Request" "$(raw '\x01\x02garbage\r\n\r\n')"
check_eq "upstream: CL+TE is 400" "HTTP/1.1 400 Bad Request" \
    "$(raw 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n'\
'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n')"
check_eq "upstream: bad chunk size is 400" "HTTP/1.1 400 Bad Request" \
    "$(raw 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')"
big=$(head -c 70000 /dev/zero | tr '\0' a)
check_eq "upstream: 70 KB header is 431" "HTTP/1.1 431 Request Header Fields Too Large" \
    "$(raw "GET / HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\n\r\n")"
check_eq "upstream: still serving after garbage" "hello from up" "$(curl -sS "$U/")"

# The request log.
log=$T/up.requests
check "upstream: log has the echo request with identity fields" \
    grep -qE '^POST /echo/sub\?q=1 authorization=present x-gatehouse-user=alice headers=.*x-multi' \
    "$log"
check "upstream: log has header names" \
    grep -qE '^GET / authorization=absent x-gatehouse-user=- headers=host,user-agent,accept ' "$log"
check "upstream: log has bad requests" grep -q '^BAD 400 ' "$log"
check_eq "upstream_hits counts a path" 1 "$(upstream_hits up '^GET /status/503 ')"
check_eq "upstream_hits is 0 for a path never requested" 0 "$(upstream_hits up '^GET /never ')"

# ---------------------------------------------------------------------------
# HTTPS upstream helper (openssl s_server): requires the gateway's client cert.

start_tls_upstream tls
tcurl() {
    curl -sS --max-time 10 --cacert "$PKI/upstream-ca.crt" "$@"
}
check_eq "tls upstream: serves with gw-upstream cert" "hello from tls over tls" \
    "$(tcurl --cert "$PKI/gw-upstream.crt" --key "$PKI/gw-upstream.key" "$tls_URL/hello.txt")"
check_fail "tls upstream: refuses without client cert" tcurl "$tls_URL/hello.txt"
check_fail "tls upstream: refuses alice (other CA)" \
    tcurl --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$tls_URL/hello.txt"
check "tls upstream: log names the client certificate" grep -q 'CN = gatehouse' "$T/tls.log"

# ---------------------------------------------------------------------------
# lib.sh itself

p1=$(free_port)
p2=$(free_port)
check "lib: free_port gives two different ports ($p1, $p2)" test "$p1" != "$p2"
check "lib: free_port port is not listening" test -z "$(ss -Htln "sport = :$p1")"
check "lib: free_port reserved the port" test -d "$GH_PORT_DIR/$p1"
check "lib: wait_port sees the upstream" wait_port "$up_PORT" 2
check_fail "lib: wait_port times out on a closed port" wait_port "$p1" 1
start_bg sleeper sleep 300
spid=$(bg_pid sleeper)
check_match "lib: bg_pid knows the sleeper" '^[0-9]+$' "$spid"
stop_bg sleeper
check_eq "lib: stop_bg reports death by SIGTERM" 143 "$GH_LAST_STATUS"
check_fail "lib: sleeper is gone" kill -0 "$spid"
start_bg quitter sh -c 'echo ready; exit 3'
check "lib: wait_log sees output" wait_log quitter '^ready$' 5
wait_bg quitter 5
check_eq "lib: wait_bg returns the exit status" 3 "$GH_LAST_STATUS"
check_fail "lib: wait_log gives up when the process exits" wait_log quitter '^never$' 5

write_gw_config "$T/gw-extra.yaml" "extra_key: 1"
cfg=$(cat "$T/gw-extra.yaml")
check_match "lib: config has the listener" "listen: \"127.0.0.1:$GW_PORT\"" "$cfg"
check_match "lib: config routes to the upstream" "url: \"$GW_UPSTREAM_URL\"" "$cfg"
check_match "lib: config uses the PKI" "client_ca: \"$PKI/client-ca.crt\"" "$cfg"
check_match "lib: config carries the extra YAML" $'\nextra_key: 1$' "$cfg"
# The layout is the real one: the gateway's own loader accepts it, and
# start_gw + ccurl reach the upstream through it (mTLS-only route).
write_gw_config "$T/gw.yaml"
check "lib: write_gw_config output passes gatehouse check-config" \
    "$GATEHOUSE" check-config -c "$T/gw.yaml"
start_gw "$T/gw.yaml"
check_eq "lib: start_gw + ccurl alice reach the upstream" "hello from up" \
    "$(ccurl alice "$(gw_url /via-gw)")"
check_eq "lib: the request arrived at the upstream" 1 "$(upstream_hits up '^GET /via-gw ')"
gw_pid=$(bg_pid gw)
stop_bg gw
check_fail "lib: stop_bg stopped the gateway" kill -0 "$gw_pid"

# A failing check makes its subshell exit non-zero (recorded elsewhere so
# this test does not count the deliberate failure).
(
    GH_RESULTS=$T/sub.results
    check "deliberate failure (expected)" false
)
check_eq "lib: failing check makes the subshell exit 1" 1 "$?"
check "lib: the subshell's failure was recorded" grep -q '^FAIL deliberate' "$T/sub.results"
(
    GH_RESULTS=$T/sub2.results
    check_eq "deliberate mismatch (expected)" a b && check_match "x" '^a$' a
)
check_eq "lib: failing check_eq makes the subshell exit 1" 1 "$?"

# Whole inner tests in child processes: the exit code is what ctest sees.
inner() { # name body -> prints exit code
    local out rc
    out=$(GH_BUILD=$GH_BUILD GH_SRC=$GH_SRC bash -c ". '$GH_LIB_DIR/lib.sh'; gh_init $1; $2" 2>&1)
    rc=$?
    printf '%s\n' "$out" >"$T/inner-$1.out"
    echo "$rc"
}
check_eq "lib: inner test with a failing check exits 1" 1 \
    "$(inner infra_inner_fail 'check ok true; check "deliberate" false; gh_finish')"
check "lib: inner failure prints the summary" \
    grep -qx 'infra_inner_fail: 1 passed, 1 failed' "$T/inner-infra_inner_fail.out"
check_eq "lib: inner test with passing checks exits 0" 0 \
    "$(inner infra_inner_pass 'check ok true; check_eq same 1 1; gh_finish')"
check_eq "lib: inner test with no checks exits 1" 1 "$(inner infra_inner_none 'gh_finish')"
check_eq "lib: inner test ending without gh_finish exits 1" 1 \
    "$(inner infra_inner_nofinish 'check ok true; exit 0')"
check_eq "lib: failing check in a pipeline subshell still fails the test" 1 \
    "$(inner infra_inner_pipe 'check ok true
        echo x | while read -r l; do check deliberate false; done
        gh_finish')"
check_eq "lib: gh_fatal fails the test" 1 \
    "$(inner infra_inner_fatal 'check ok true; gh_fatal deliberate')"
# The EXIT trap stops what the test started, by PID.
rc=$(inner infra_inner_procs 'start_upstream u; bg_pid u >"$T/u.pid"; check ok true; gh_finish')
check_eq "lib: inner test with a process exits 0" 0 "$rc"
ipid=$(cat "$GH_BUILD/itest/infra_inner_procs/u.pid" 2>/dev/null)
check_match "lib: inner test recorded its upstream pid" '^[0-9]+$' "$ipid"
check_fail "lib: the EXIT trap stopped the inner upstream" kill -0 "${ipid:-999999999}"
rc=$(inner infra_inner_dump 'start_upstream u; check deliberate false; gh_finish')
check_eq "lib: inner failing test with a process exits 1" 1 "$rc"
check "lib: logs were dumped on failure" \
    grep -q 'listening on 127.0.0.1' "$T/inner-infra_inner_dump.out"

gh_finish
