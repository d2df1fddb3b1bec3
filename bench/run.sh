#!/usr/bin/env bash
# bench/run.sh: Gatehouse against direct-to-upstream, in one run, as ratios.
#
#   bash bench/run.sh [BUILD_DIR] [--rounds N] [--secs S] [--out FILE]
#
# Starts (and stops, by PID) on loopback: a gh-upstream serving a fixed
# 1 KiB body, the test OpenID Provider (certificate-bound tokens), and four
# gateways in front of the same upstream:
#   mtls        route with authz off (mTLS only), strict decision log
#   full_strict mTLS + bound token + policy, strict log (response waits for COMMIT,
#               fsync per group commit: decision_log.sync full)
#   full_strict_nofsync  same, decision_log.sync normal (commit, no fsync)
#   full_async  same checks, async log (committed within 50 ms)
#   full_noop   same checks, decision rows not written (bench-only knob
#               GATEHOUSE_BENCH_NOOP_LOG=1): the cost of the checks alone
# then runs gatehouse-bench in interleaved rounds (A B C D A B C D ...),
# keep-alive with 64 connections for every target, and new-connection /
# resumed-session modes (16 connections) for direct and full_strict.
# Prints medians, ratios and server CPU per request; --out writes the
# markdown table. Every run is bounded by -d; nothing leaves loopback.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
rounds=3 secs=5 out=""
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
. "$top/bench/lib-bench.sh"
GB_BIN=$build/bench/gatehouse-bench
GB_OUT=$(mktemp -d /tmp/gh-bench.XXXXXX)
export GB_BIN GB_OUT
pki=$GB_OUT/pki
bash "$top/tests/integration/pki.sh" "$pki" >/dev/null
bash "$top/tests/integration/idp/install.sh" >/dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$GB_OUT"; }
trap cleanup EXIT
wait_line() { for _ in $(seq 100); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout waiting for $2 in $1" >&2; cat "$1" >&2; return 1; }

"$build/tests/tools/gh-upstream" --listen 127.0.0.1:0 --name bench > "$GB_OUT/up.log" 2>&1 &
pids+=($!); up_pid=$!
wait_line "$GB_OUT/up.log" "listening on" || exit 1
up_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$GB_OUT/up.log" | grep -o '[0-9]*$')
node "$top/tests/integration/idp/server.mjs" --port 0 --cert "$pki/idp.crt" --key "$pki/idp.key" \
    --client-ca "$pki/client-ca.crt" --state "$GB_OUT/idp" --audience gatehouse --access-ttl 3600 \
    > "$GB_OUT/idp.log" 2>&1 &
pids+=($!)
wait_line "$GB_OUT/idp.log" "idp listening on" || exit 1
idp=$(grep -o 'https://127.0.0.1:[0-9]*' "$GB_OUT/idp.log" | head -1)
tok=$(bash "$top/tests/integration/idp/get-token.sh" "$idp" "$pki/alice.crt" "$pki/alice.key" "$pki/idp-ca.crt" alice)
echo "Authorization: Bearer $tok" > "$GB_OUT/token.hdr"
cat > "$GB_OUT/policy.yaml" <<'YAML'
version: 1
rules:
  - id: app-engineering
    effect: allow
    routes: [app]
    when:
      - claim: groups
        contains: engineering
YAML

start_gw() { # name authz(true|false) mode [env...]
    local name=$1 authz=$2 mode=$3 port
    shift 3
    port=$(gb_free_port)
    cat > "$GB_OUT/$name.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
  workers: 2
  log_level: warn
tls:
  cert: $pki/server.crt
  key: $pki/server.key
  client_ca: $pki/client-ca.crt
issuer:
  url: $idp
  audiences: [gatehouse]
  ca: $pki/idp-ca.crt
policy: $GB_OUT/policy.yaml
routes:
  - id: app
    host: "*"
    path_prefix: /
    authz: $authz
    upstream:
      url: http://127.0.0.1:$up_port
decision_log:
  path: $GB_OUT/$name.db
  mode: $mode
  sync: ${SYNC:-full}
admin:
  socket: $GB_OUT/$name.sock
YAML
    env "$@" "$build/gateway/gatehouse" serve -c "$GB_OUT/$name.yaml" > "$GB_OUT/$name.log" 2>&1 &
    pids+=($!)
    eval "${name}_pid=$!; ${name}_port=$port"
    gb_wait_port "$port" 10 || { cat "$GB_OUT/$name.log"; exit 1; }
}
start_gw mtls false strict
start_gw full_strict true strict
SYNC=normal start_gw full_strict_nofsync true strict
start_gw full_async true async
start_gw full_noop true async GATEHOUSE_BENCH_NOOP_LOG=1
sleep 1

tls=(--ca "$pki/server-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key")
auth=(--header-file "$GB_OUT/token.hdr")
# correctness gate: every target answers 200 before anything is measured
for t in mtls full_strict full_strict_nofsync full_async full_noop; do
    port_var=${t}_port
    code=$(curl -sS --cacert "$pki/server-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key" \
        -H "@$GB_OUT/token.hdr" "https://127.0.0.1:${!port_var}/fixed1k" -o /dev/null -w '%{http_code}')
    [ "$code" = 200 ] || { echo "$t answered $code, not 200; see $GB_OUT/$t.log" >&2; cat "$GB_OUT/$t.log" >&2; exit 1; }
done

ka() { local t=$1 url=$2; shift 2; GB_SERVER_PIDS=${GBP:-} gb_bench "$t" --url "$url" -c 64 -d "$secs" --warmup 1 --expect-status 200 "$@"; }
b_direct_ka() { GBP=$up_pid ka direct_keepalive "http://127.0.0.1:$up_port/fixed1k"; }
b_mtls_ka() { GBP="$mtls_pid $up_pid" ka mtls_keepalive "https://127.0.0.1:$mtls_port/fixed1k" "${tls[@]}"; }
b_strict_ka() { GBP="$full_strict_pid $up_pid" ka full_strict_keepalive "https://127.0.0.1:$full_strict_port/fixed1k" "${tls[@]}" "${auth[@]}"; }
b_nofsync_ka() { GBP="$full_strict_nofsync_pid $up_pid" ka full_strict_nofsync_keepalive "https://127.0.0.1:$full_strict_nofsync_port/fixed1k" "${tls[@]}" "${auth[@]}"; }
b_async_ka() { GBP="$full_async_pid $up_pid" ka full_async_keepalive "https://127.0.0.1:$full_async_port/fixed1k" "${tls[@]}" "${auth[@]}"; }
b_noop_ka() { GBP="$full_noop_pid $up_pid" ka full_noop_keepalive "https://127.0.0.1:$full_noop_port/fixed1k" "${tls[@]}" "${auth[@]}"; }
b_direct_nc() { GB_SERVER_PIDS=$up_pid gb_bench direct_newconn --url "http://127.0.0.1:$up_port/fixed1k" -c 16 -d "$secs" --mode newconn --expect-status 200; }
b_strict_nc() { GB_SERVER_PIDS="$full_strict_pid $up_pid" gb_bench full_strict_newconn --url "https://127.0.0.1:$full_strict_port/fixed1k" "${tls[@]}" "${auth[@]}" -c 16 -d "$secs" --mode newconn --expect-status 200; }
b_strict_res() { GB_SERVER_PIDS="$full_strict_pid $up_pid" gb_bench full_strict_resume --url "https://127.0.0.1:$full_strict_port/fixed1k" "${tls[@]}" "${auth[@]}" -c 16 -d "$secs" --mode resume --expect-status 200; }

gb_interleave "$rounds" b_direct_ka b_mtls_ka b_strict_ka b_nofsync_ka b_async_ka b_noop_ka b_direct_nc b_strict_nc b_strict_res ||
    echo "some rounds failed (see above)" >&2

med() { gb_median "$1" "$2"; }
d_ka=$(med direct_keepalive rps); d_nc=$(med direct_newconn rps); n_ka=$(med full_noop_keepalive rps)
row() { # label name base
    local r; r=$(med "$2" rps)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$r" "$(gb_ratio "$r" "$3")" \
        "$(med "$2" p50_us)" "$(med "$2" p99_us)" "$(med "$2" srv_cpu_us_per_req)" "$(med "$2" errors)"
}
{
    echo "| target | req/s | ratio | p50 µs | p99 µs | server CPU µs/req | errors |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    row "direct upstream, keep-alive (ceiling)" direct_keepalive "$d_ka"
    row "gateway mTLS only, strict log, keep-alive (vs direct)" mtls_keepalive "$d_ka"
    row "gateway full checks, strict log, keep-alive (vs direct)" full_strict_keepalive "$d_ka"
    row "gateway full checks, strict log without fsync (sync: normal), keep-alive (vs direct)" full_strict_nofsync_keepalive "$d_ka"
    row "gateway full checks, async log, keep-alive (vs direct)" full_async_keepalive "$d_ka"
    row "gateway full checks, no-op log, keep-alive (vs direct)" full_noop_keepalive "$d_ka"
    row "direct upstream, new connection per request" direct_newconn "$d_nc"
    row "gateway full strict, new TLS connection per request (vs direct newconn)" full_strict_newconn "$d_nc"
    row "gateway full strict, resumed TLS sessions (vs direct newconn)" full_strict_resume "$d_nc"
    echo
    s=$(med full_strict_keepalive rps); a=$(med full_async_keepalive rps)
    sn=$(med full_strict_nofsync_keepalive rps)
    echo "strict (fsync) vs async: $(gb_ratio "$s" "$a")x; strict (sync: normal) vs async: $(gb_ratio "$sn" "$a")x; async vs no-op log: $(gb_ratio "$a" "$n_ka")x; resumed: $(med full_strict_resume resumed_pct)%"
    echo "medians of $rounds interleaved rounds of ${secs}s; 64 keep-alive / 16 new-connection clients; $(nproc) cores; $(date -u +%Y-%m-%d)"
    echo "command: bash bench/run.sh BUILD --rounds $rounds --secs $secs"
} > "$GB_OUT/table.md"
cat "$GB_OUT/table.md"
[ -n "$out" ] && cp "$GB_OUT/table.md" "$out"
for t in mtls full_strict full_async; do
    echo "$t decision rows written: $(sqlite3 "$GB_OUT/$t.db" "select count(*) from decisions" 2>/dev/null || echo '?')"
done
