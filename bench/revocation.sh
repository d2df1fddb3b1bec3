#!/usr/bin/env bash
# bench/revocation.sh: revocation latency under load (issue 5).
#
#   bash bench/revocation.sh [BUILD_DIR] [--idle N] [--samples K]
#
# Starts (and stops, by PID) on loopback the test OpenID Provider, an
# upstream and a gateway; opens N idle mTLS keep-alive connections with a
# bound token (default 10000) and keeps live keep-alive traffic running
# (16 connections); then K times (default 20): a fresh token is fetched, a
# client holds one keep-alive connection with it, the token's jti is revoked
# through the admin API, and the time from just before the admin call to
# the moment the client sees its connection closed is recorded (client-side
# clock, so it includes the admin round trip). Prints p50/p90/p99/max.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
idle=10000 samples=20
while [ $# -gt 0 ]; do
    case $1 in
    --idle) idle=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
. "$top/bench/lib-bench.sh"
W=$(mktemp -d /tmp/gh-revbench.XXXXXX)
pki=$W/pki
bash "$top/tests/integration/pki.sh" "$pki" >/dev/null
bash "$top/tests/integration/idp/install.sh" >/dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
wait_line() { for _ in $(seq 300); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done; echo "timeout: $2 in $1" >&2; tail "$1" >&2; return 1; }

"$build/tests/tools/gh-upstream" --listen 127.0.0.1:0 --name up > "$W/up.log" 2>&1 &
pids+=($!)
wait_line "$W/up.log" "listening on" || exit 1
up=$(grep -o '127.0.0.1:[0-9]*' "$W/up.log" | head -1)
node "$top/tests/integration/idp/server.mjs" --port 0 --cert "$pki/idp.crt" --key "$pki/idp.key" \
    --client-ca "$pki/client-ca.crt" --state "$W/idp" --audience gatehouse --access-ttl 3600 > "$W/idp.log" 2>&1 &
pids+=($!)
wait_line "$W/idp.log" "idp listening on" || exit 1
idp=$(grep -o 'https://127.0.0.1:[0-9]*' "$W/idp.log" | head -1)
tok() { bash "$top/tests/integration/idp/get-token.sh" "$idp" "$pki/alice.crt" "$pki/alice.key" "$pki/idp-ca.crt" alice; }
port=$(gb_free_port)
printf 'version: 1\nrules:\n  - id: eng\n    effect: allow\n    routes: [app]\n    when:\n      - claim: groups\n        contains: engineering\n' > "$W/policy.yaml"
cat > "$W/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
  workers: 2
  log_level: warn
tls:
  cert: $pki/server.crt
  key: $pki/server.key
  client_ca: $pki/client-ca.crt
timeouts:
  idle: 600000
issuer:
  url: $idp
  audiences: [gatehouse]
  ca: $pki/idp-ca.crt
policy: $W/policy.yaml
routes:
  - id: app
    host: "*"
    path_prefix: /
    upstream:
      url: http://$up
decision_log:
  path: $W/gw.db
  mode: async
admin:
  socket: $W/admin.sock
YAML
"$build/gateway/gatehouse" serve -c "$W/gw.yaml" > "$W/gw.log" 2>&1 &
pids+=($!)
gw_pid=$!
gb_wait_port "$port" 10 || { cat "$W/gw.log"; exit 1; }
echo "Authorization: Bearer $(tok)" > "$W/tok.hdr"
tls=(--ca "$pki/server-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key" --header-file "$W/tok.hdr")
"$build/bench/gatehouse-bench" --url "https://127.0.0.1:$port/fixed1k" "${tls[@]}" --idle "$idle" -d 600 > "$W/idle.log" 2>&1 &
pids+=($!)
wait_line "$W/idle.log" "HOLDING" || exit 1
"$build/bench/gatehouse-bench" --url "https://127.0.0.1:$port/fixed1k" "${tls[@]}" -c 16 -d 600 > "$W/live.log" 2>&1 &
pids+=($!)
sleep 1
live=$(curl -sS --unix-socket "$W/admin.sock" http://a/v1/stats | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(String(JSON.parse(s).live_connections)))')
echo "live connections at the gateway: $live (idle $idle + live traffic 16)"
now_ms() { date +%s.%N | awk '{printf "%.3f", $1 * 1000}'; }
: > "$W/lat.txt"
for i in $(seq 1 "$samples"); do
    t=$(tok)
    jti=$(node -e 'process.stdout.write(JSON.parse(Buffer.from(process.argv[1].split(".")[1],"base64url")).jti)' "$t")
    node "$top/tests/integration/holdconn.mjs" "$port" "$pki/alice.crt" "$pki/alice.key" "$pki/server-ca.crt" "$t" /fixed1k 30 > "$W/hold.$i" &
    h=$!
    for _ in $(seq 100); do grep -q STATUS "$W/hold.$i" && break; sleep 0.05; done
    t0=$(now_ms)
    curl -sS --unix-socket "$W/admin.sock" -X POST -d "{\"kind\":\"token\",\"target\":\"$jti\",\"reason\":\"bench\"}" \
        http://a/v1/revocations -o "$W/resp.$i" -w '%{time_total}\n' >> "$W/admin_s.txt"
    grep -o '"apply_us":[0-9]*' "$W/resp.$i" | cut -d: -f2 >> "$W/apply_us.txt"
    wait "$h"
    t1=$(awk '/CLOSED/ {print $2}' "$W/hold.$i")
    [ -n "$t1" ] && awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}' >> "$W/lat.txt"
done
sort -n "$W/lat.txt" > "$W/lat.s"
cnt=$(wc -l < "$W/lat.s")
pct() { awk -v q="$1" -v n="$cnt" 'NR == (int((n - 1) * q) + 1) {print; exit}' "$W/lat.s"; }
echo "revocation -> client sees close, $cnt samples with $live live connections and live traffic:"
echo "p50=$(pct 0.5) ms p90=$(pct 0.9) ms p99=$(pct 0.99) ms max=$(tail -1 "$W/lat.s") ms"
echo "admin call (persist + apply), seconds: $(sort -n "$W/admin_s.txt" | tr '\n' ' ')"
echo "apply inside the gateway (swap + all workers closed and acknowledged), us: $(sort -n "$W/apply_us.txt" | tr '\n' ' ')"
echo "RESULT revocation samples=$cnt live=$live p50_ms=$(pct 0.5) p90_ms=$(pct 0.9) p99_ms=$(pct 0.99) max_ms=$(tail -1 "$W/lat.s")"
