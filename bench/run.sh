#!/usr/bin/env bash
# bench/run.sh: Gatehouse vs direct-to-upstream, in one run, as ratios.
#
#   bash bench/run.sh [BUILD_DIR] [--rounds N] [--secs S] [--out FILE]
#
# Starts (and stops, by PID) a gh-upstream serving a fixed 1 KiB body and a
# gatehouse in front of it with a generated PKI, then runs gatehouse-bench
# in interleaved rounds (direct, gateway, direct, gateway, ...) for each
# mode: keep-alive (64 connections), a new TLS connection per request (16
# connections) and resumed TLS sessions (16 connections). Prints medians and
# the gateway/direct ratio, and writes a markdown table to --out (default:
# stdout only). Loopback only; every run is bounded by -d.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
rounds=3 secs=5 out="" log_mode=strict
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --log-mode) log_mode=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
. "$top/bench/lib-bench.sh"
GB_BIN=$build/bench/gatehouse-bench
GB_OUT=$(mktemp -d /tmp/gh-bench.XXXXXX)
export GB_BIN GB_OUT
pki=$GB_OUT/pki
bash "$top/tests/integration/pki.sh" "$pki" >/dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

"$build/tests/tools/gh-upstream" --listen 127.0.0.1:0 --name bench > "$GB_OUT/up.log" 2>&1 &
pids+=($!)
up_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$GB_OUT/up.log" && break; sleep 0.1; done
up_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$GB_OUT/up.log" | grep -o '[0-9]*$')
gw_port=$(gb_free_port)
cat > "$GB_OUT/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$gw_port"
  workers: 2
  log_level: warn
tls:
  cert: $pki/server.crt
  key: $pki/server.key
  client_ca: $pki/client-ca.crt
routes:
  - id: app
    host: "*"
    path_prefix: /
    authz: false
    upstream:
      url: http://127.0.0.1:$up_port
decision_log:
  path: $GB_OUT/gw.db
  mode: $log_mode
admin:
  socket: $GB_OUT/admin.sock
YAML
"$build/gateway/gatehouse" serve -c "$GB_OUT/gw.yaml" > "$GB_OUT/gw.log" 2>&1 &
pids+=($!)
gw_pid=$!
gb_wait_port "$gw_port" 10 || { cat "$GB_OUT/gw.log"; exit 1; }

tls=(--ca "$pki/server-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key")
direct_ka() { GB_SERVER_PIDS=$up_pid gb_bench direct_keepalive --url "http://127.0.0.1:$up_port/fixed1k" -c 64 -d "$secs" --warmup 1 --expect-status 200; }
gw_ka() { GB_SERVER_PIDS="$gw_pid $up_pid" gb_bench gateway_keepalive --url "https://127.0.0.1:$gw_port/fixed1k" "${tls[@]}" -c 64 -d "$secs" --warmup 1 --expect-status 200; }
direct_nc() { GB_SERVER_PIDS=$up_pid gb_bench direct_newconn --url "http://127.0.0.1:$up_port/fixed1k" -c 16 -d "$secs" --mode newconn --expect-status 200; }
gw_nc() { GB_SERVER_PIDS="$gw_pid $up_pid" gb_bench gateway_newconn --url "https://127.0.0.1:$gw_port/fixed1k" "${tls[@]}" -c 16 -d "$secs" --mode newconn --expect-status 200; }
gw_res() { GB_SERVER_PIDS="$gw_pid $up_pid" gb_bench gateway_resume --url "https://127.0.0.1:$gw_port/fixed1k" "${tls[@]}" -c 16 -d "$secs" --mode resume --expect-status 200; }

gb_interleave "$rounds" direct_ka gw_ka direct_nc gw_nc gw_res || echo "some rounds failed (see $GB_OUT)" >&2

med() { gb_median "$1" "$2"; }
{
    echo "| mode | direct req/s | gateway req/s | ratio (gateway/direct) | gateway p50 µs | gateway p99 µs | server CPU µs/req (gw+upstream) |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for m in keepalive newconn; do
        d=$(med direct_$m rps); g=$(med gateway_$m rps)
        echo "| $m | $d | $g | $(gb_ratio "$g" "$d") | $(med gateway_$m p50_us) | $(med gateway_$m p99_us) | $(med gateway_$m srv_cpu_us_per_req) |"
    done
    d=$(med direct_newconn rps); g=$(med gateway_resume rps)
    echo "| resume (vs direct newconn) | $d | $g | $(gb_ratio "$g" "$d") | $(med gateway_resume p50_us) | $(med gateway_resume p99_us) | $(med gateway_resume srv_cpu_us_per_req) |"
    echo
    echo "resumed handshakes: $(med gateway_resume resumed_pct)%; medians of $rounds interleaved rounds of ${secs}s; decision log: $log_mode; $(nproc) cores; $(date -u +%Y-%m-%d)"
} > "$GB_OUT/table.md"
cat "$GB_OUT/table.md"
if [ -n "$out" ]; then cp "$GB_OUT/table.md" "$out"; fi
rows=$(sqlite3 "$GB_OUT/gw.db" "select count(*) from decisions" 2>/dev/null || echo "?")
echo "decision rows written during the run: $rows"
