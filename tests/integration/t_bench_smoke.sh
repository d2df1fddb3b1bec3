#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2016 # check() runs functions and eval strings
# t_bench_smoke.sh: gatehouse-bench against real servers on loopback.
#
# Self-contained on purpose: a throwaway EC P-256 PKI made here with
# openssl, `openssl s_server -Verify 1 -verify_return_error -www` (which
# requires a client certificate from our CA; without -verify_return_error
# s_server would accept one from any CA) and `python3 -m http.server` for
# plain HTTP, each on a free loopback port. Checks every mode reports
# requests, no errors and a RESULT line; that resumption really resumes;
# that a missing or untrusted client certificate shows up as TLS errors and
# exit 3 under --expect-status; that the server certificate and name are
# verified; that -n and -d bound the run, even against a silent server; that
# bad usage exits 1; and that lib-bench.sh's helpers compute what they should.
#
# Usage: t_bench_smoke.sh BUILD_DIR   (or GH_BUILD in the environment)
set -u

build=${1:-${GH_BUILD:-}}
[ -n "$build" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=${GH_SRC:-$(cd "$here/../.." && pwd)}
bin="$build/bench/gatehouse-bench"
pass=0
fail=0
pids=()
tmp=$(mktemp -d /tmp/t_bench_smoke.XXXXXX)

cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
    pass=$((pass + 1))
    echo "ok   - $*"
}

nok() {
    fail=$((fail + 1))
    echo "FAIL - $*"
}

check() { # check DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

if [ ! -x "$bin" ]; then
    nok "binary $bin exists"
    finish
fi
. "$src/bench/lib-bench.sh" || { nok "source lib-bench.sh"; finish; }

# --- throwaway PKI -----------------------------------------------------------
pki() {
    local d=$tmp/pki
    mkdir -p "$d" && cd "$d" || return 1
    ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ec ca.key && openssl req -x509 -new -key ca.key -subj /CN=smoke-ca -days 1 -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || return 1
    ec other-ca.key && openssl req -x509 -new -key other-ca.key -subj /CN=other-ca -days 1 \
        -out other-ca.pem -addext basicConstraints=critical,CA:TRUE 2>/dev/null || return 1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > srv.ext
    printf 'extendedKeyUsage=clientAuth\n' > cli.ext
    ec srv.key && openssl req -new -key srv.key -subj /CN=localhost -out srv.csr 2>/dev/null &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
            -extfile srv.ext -out srv.pem 2>/dev/null || return 1
    ec cli.key && openssl req -new -key cli.key -subj /CN=smoke-client -out cli.csr 2>/dev/null &&
        openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
            -extfile cli.ext -out cli.pem 2>/dev/null || return 1
    # A client certificate from a CA the server does not trust.
    ec rogue.key && openssl req -new -key rogue.key -subj /CN=rogue -out rogue.csr 2>/dev/null &&
        openssl x509 -req -in rogue.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial \
            -days 1 -extfile cli.ext -out rogue.pem 2>/dev/null || return 1
    cd - > /dev/null || return 1
}
if ! pki; then
    nok "throwaway PKI generated"
    finish
fi
P=$tmp/pki

# start_server NAME COMMAND... with @PORT@ replaced by a free port; sets
# $port. Retries on a port race.
start_server() {
    local name=$1 pid
    shift
    for _ in 1 2 3 4 5; do
        port=$(gb_free_port) || return 1
        local args=()
        local a
        for a in "$@"; do
            args+=("${a//@PORT@/$port}")
        done
        "${args[@]}" > "$tmp/$name.log" 2>&1 &
        pid=$!
        if gb_wait_port "$port" 10 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
            pids+=("$pid")
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    return 1
}

if ! start_server s_server openssl s_server -accept 127.0.0.1:@PORT@ -cert "$P/srv.pem" \
    -key "$P/srv.key" -CAfile "$P/ca.pem" -Verify 1 -verify_return_error -www -quiet; then
    nok "openssl s_server started"
    finish
fi
tls_port=$port
mkdir -p "$tmp/www" && echo "hello from the smoke test" > "$tmp/www/index.html"
if ! start_server http python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" @PORT@; then
    nok "python3 http.server started"
    finish
fi
http_port=$port

url="https://127.0.0.1:$tls_port/"
mtls=(--ca "$P/ca.pem" --cert "$P/cli.pem" --key "$P/cli.key")

# run NAME ARGS...: runs the bench (bounded by timeout), sets $rc, $line,
# $elapsed (seconds, wall); the output stays in $tmp/NAME.out.
run() {
    local name=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    timeout 60 "$bin" "$@" > "$tmp/$name.out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    line=$(gb_result < "$tmp/$name.out")
}

field() { gb_field "$line" "$1"; }
gt0() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { exit !(v > 0) }'; }
eq() { [ "$1" = "$2" ]; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# --- each mode, with a client certificate: works, no errors --------------------
for mode in keepalive newconn resume; do
    run "$mode" --url "$url" "${mtls[@]}" -c 2 -d 2 --mode "$mode" --expect-status 200
    check "$mode: exit 0 (rc=$rc)" eq "$rc" 0
    check "$mode: RESULT line" test -n "$line"
    check "$mode: mode=$mode in RESULT" eq "$(field mode)" "$mode"
    check "$mode: requests > 0 ($(field reqs))" gt0 "$(field reqs)"
    check "$mode: 0 errors ($(field errors))" eq "$(field errors)" 0
    check "$mode: all 2xx" eq "$(field status_2xx)" "$(field reqs)"
    check "$mode: TLS handshakes counted" gt0 "$(field handshakes)"
    check "$mode: p50 latency reported" gt0 "$(field p50_us)"
    check "$mode: -d 2 stopped it in time (${elapsed}s)" lt "$elapsed" 8
done
# resume must really resume; newconn must not.
run resume2 --url "$url" "${mtls[@]}" -c 1 -n 40 --mode resume
check "resume: resumed_pct > 50 ($(field resumed_pct))" \
    awk -v v="$(field resumed_pct)" 'BEGIN { exit !(v > 50) }'
run newconn2 --url "$url" "${mtls[@]}" -c 1 -n 20 --mode newconn
check "newconn: resumed_pct = 0 ($(field resumed_pct))" eq "$(field resumed_pct)" 0.0

# --- no client certificate against -Verify 1: TLS errors --------------------
run nocert --url "$url" --ca "$P/ca.pem" -c 2 -d 1 --expect-status 200
check "no client cert: RESULT line" test -n "$line"
check "no client cert: errors > 0 ($(field errors))" gt0 "$(field errors)"
check "no client cert: counted as tls_handshake" gt0 "$(field err_tls_handshake)"
check "no client cert: 0 requests" eq "$(field reqs)" 0
check "no client cert: exit 3 under --expect-status (rc=$rc)" eq "$rc" 3
run nocert12 --url "$url" --ca "$P/ca.pem" --tls-version 1.2 -c 1 -d 1
check "no client cert, TLS 1.2: tls_handshake errors" gt0 "$(field err_tls_handshake)"
check "no client cert, no --expect-status: exit 0 (rc=$rc)" eq "$rc" 0
run rogue --url "$url" --ca "$P/ca.pem" --cert "$P/rogue.pem" --key "$P/rogue.key" -c 1 -d 1
check "untrusted client cert: tls errors, no requests" \
    eval 'gt0 "$(field err_tls_handshake)" && eq "$(field reqs)" 0'
# The server's certificate is checked too.
run badca --url "$url" --ca "$P/other-ca.pem" "${mtls[@]:2}" -c 1 -d 1
check "server cert from an untrusted CA: tls_handshake errors" gt0 "$(field err_tls_handshake)"
run badname --url "$url" "${mtls[@]}" --sni wrong.example -c 1 -d 1
check "server cert without the name: tls_handshake errors" gt0 "$(field err_tls_handshake)"
check "server cert without the name: names the failure" \
    grep -q CERTIFICATE_VERIFY_FAILED "$tmp/badname.out"

# --- bounds ------------------------------------------------------------------
run nbound --url "$url" "${mtls[@]}" -c 3 -n 25 -d 30 --mode resume
check "-n 25: exactly 25 requests ($(field reqs))" eq "$(field reqs)" 25
check "-n 25: ended long before -d 30 (${elapsed}s)" lt "$elapsed" 20
run dbound --url "http://127.0.0.1:$http_port/" -c 2 -d 1
check "-d 1: ended in time (${elapsed}s)" lt "$elapsed" 5
check "-d 1: secs close to 1 ($(field secs))" \
    awk -v v="$(field secs)" 'BEGIN { exit !(v > 0.9 && v < 1.3) }'
# A server that accepts and never answers: -d still ends it, nothing counted.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(60)' > "$tmp/blackhole.port" &
bh=$!
pids+=("$bh")
for _ in $(seq 50); do [ -s "$tmp/blackhole.port" ] && break; sleep 0.1; done
run blackhole --url "http://127.0.0.1:$(cat "$tmp/blackhole.port")/" -c 2 -d 1 \
    --timeout-ms 60000 --expect-status 200
check "silent server: -d 1 still ends it (${elapsed}s)" lt "$elapsed" 5
check "silent server: RESULT with 0 requests" eq "$(field reqs)" 0
check "silent server: exit 3 under --expect-status (rc=$rc)" eq "$rc" 3
run bhtimeout --url "http://127.0.0.1:$(cat "$tmp/blackhole.port")/" -c 1 -d 1 \
    --timeout-ms 200
check "silent server: --timeout-ms 200 counts timeouts" gt0 "$(field err_timeout)"

# --- plain HTTP --------------------------------------------------------------
run plain --url "http://127.0.0.1:$http_port/index.html" -c 2 -d 2 --expect-status 200
check "http://: exit 0, requests > 0, 0 errors" \
    eval 'eq "$rc" 0 && gt0 "$(field reqs)" && eq "$(field errors)" 0'
check "http://: no TLS handshakes" eq "$(field handshakes)" 0
run plain404 --url "http://127.0.0.1:$http_port/missing" -n 3 --expect-status 200
check "http:// 404 with --expect-status 200: exit 3 (rc=$rc)" eq "$rc" 3
check "http:// 404: status_4xx=3" eq "$(field status_4xx)" 3
printf 'Authorization: Bearer %s\n' "$(head -c 3000 /dev/zero | tr '\0' a)" > "$tmp/hdr"
run hdrfile --url "http://127.0.0.1:$http_port/index.html" --header-file "$tmp/hdr" -n 3 \
    --expect-status 200
check "--header-file with a 3 KB bearer token works (rc=$rc)" eq "$rc" 0

# --- idle connections ------------------------------------------------------------
run idle --url "http://127.0.0.1:$http_port/index.html" --idle 5 -d 1
check "--idle 5: HOLDING line" grep -q '^HOLDING open=5' "$tmp/idle.out"
check "--idle 5: 5 responses" eq "$(field reqs)" 5
check "--idle 5: mode=idle" eq "$(field mode)" idle

# --- usage errors exit 1 ----------------------------------------------------
for bad in "--url ftp://x" "--url http://127.0.0.1:1/ -c 0" "--url https://127.0.0.1:1/" \
    "--url http://127.0.0.1:1/ --mode warp" "--url http://127.0.0.1:1/ -H NoColon"; do
    # shellcheck disable=SC2086
    timeout 10 "$bin" $bad > /dev/null 2>&1
    rc=$?
    check "bad usage exits 1: $bad (rc=$rc)" eq "$rc" 1
done
timeout 10 "$bin" --url "$url" --insecure --cert "$tmp/nonexistent.pem" > /dev/null 2>&1
check "missing --cert file exits 1" eq "$?" 1

# --- no OpenSSL in the process ------------------------------------------------
check "gatehouse-bench does not link OpenSSL 3" \
    eval '! ldd "$bin" | grep -Eq "libssl\.so\.3|libcrypto\.so\.3"'

# --- lib-bench.sh helpers ------------------------------------------------------
GB_OUT=$tmp/lib
mkdir -p "$GB_OUT"
{
    echo 'RESULT label=x rps=10 p50_us=5'
    echo 'RESULT label=x rps=30 p50_us=7'
    echo 'RESULT label=x rps=20 p50_us=n/a'
} > "$GB_OUT/x.results"
check "gb_median of 10 30 20 is 20" eq "$(gb_median x rps)" 20
check "gb_median skips n/a, mean of middle two" eq "$(gb_median x p50_us)" 6
check "gb_ratio 3 4 = 0.75" eq "$(gb_ratio 3 4)" 0.75
check "gb_ratio by zero is n/a" eq "$(gb_ratio 3 0)" n/a
check "gb_cpu_ticks of this shell is a number" eval '[[ "$(gb_cpu_ticks $$)" =~ ^[0-9]+$ ]]'
check "gb_peak_rss_kb of this shell > 0" gt0 "$(gb_peak_rss_kb $$)"
check "gb_cpu_us_per_req 100 200 1000 (CLK_TCK 100 -> 1000 us)" \
    eval '[ "$(getconf CLK_TCK)" != 100 ] || [ "$(gb_cpu_us_per_req 100 200 1000)" = 1000.000 ]'
GB_BIN=$bin
GB_PAUSE=0
a() { gb_bench a --url "http://127.0.0.1:$http_port/index.html" -n 5; }
b() { GB_SERVER_PIDS=${pids[1]} gb_bench b --url "http://127.0.0.1:$http_port/index.html" -n 5; }
gb_interleave 2 a b 2> "$tmp/interleave.err"
check "gb_interleave ran A B A B" \
    eval '[ "$(grep -c "^== round" "$tmp/interleave.err")" = 4 ] &&
          [ "$(grep "^== round" "$tmp/interleave.err" | awk "{print \$4}" | tr -d "\n")" = abab ]'
check "gb_bench kept one RESULT per round" eq "$(wc -l < "$GB_OUT/a.results")" 2
check "gb_bench added server keys" grep -q 'srv_cpu_us_per_req=[0-9.]* srv_user_us_per_req=[0-9.]* srv_sys_us_per_req=[0-9.]* srv_hwm_kb=[0-9]' \
    "$GB_OUT/b.results"
check "gb_cpu_ticks_split of this shell is two numbers" eval '[[ "$(gb_cpu_ticks_split $$)" =~ ^[0-9]+\ [0-9]+$ ]]'

finish
