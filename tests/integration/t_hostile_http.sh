#!/usr/bin/env bash
# t_hostile_http.sh: hostile clients and a hostile upstream against the real
# gateway (async decision log, the mode where nothing waits for a commit).
# Each check is a bypass or crash found in review, reproduced first:
#   - a Host too long for the rewritten head made the gateway forward the
#     request BODY as the request (an attacker-written request, spoofed
#     identity headers, a decision row for another path);
#   - an obs-fold line split across two TLS records slipped past the scanner;
#   - 4,000 pipelined requests answered by the gateway itself recursed once
#     per request and crashed every worker (SIGSEGV);
#   - X-Gatehouse_User and friends reached CGI-style apps as identity headers,
#     and X-Real-IP / X-HTTP-Method-Override / X-Original-URL told the app
#     another client, method or URL than the policy judged;
#   - "Connection: host" from a client, "Connection: content-length" from an
#     upstream removed framing the other side needs;
#   - running out of descriptors made accept() spin at 100 % CPU and write a
#     warning per turn.
# shellcheck disable=SC2154 # up_PORT comes from lib.sh's start_upstream
. "$(dirname "$0")/lib.sh"
gh_init hostile_http "$@"

RAWTLS=$GH_SRC/tests/integration/rawtls.mjs
[ -f "$RAWTLS" ] || RAWTLS=$(dirname "$0")/rawtls.mjs

start_upstream up
# An upstream that names its own Content-Length in Connection, and keeps
# every byte it receives (to see exactly what the gateway forwards).
RAW_PORT=$(free_port)
start_bg rawup node -e '
const fs = require("fs");
require("net").createServer((s) => {
  let buf = "";
  s.on("data", (d) => {
    fs.appendFileSync(process.argv[2], d);
    buf += d.toString("latin1");
    for (;;) { // one answer per request: a GET head, or a chunked POST up to its last chunk
      const end = buf.startsWith("POST") ? buf.indexOf("\r\n0\r\n\r\n") : buf.indexOf("\r\n\r\n");
      if (end < 0) break;
      const early = buf.startsWith("GET /early ");
      buf = buf.slice(end + (buf.startsWith("POST") ? 7 : 4));
      if (early) // an interim response and the final one in a single write
        s.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
      else
        s.write("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nfirst");
    }
  });
  s.on("error", () => {});
}).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
' "$RAW_PORT" "$T/rawup.bytes"
wait_port "$RAW_PORT" 10 || gh_fatal "raw upstream did not start"

# lib.sh's gateway config (test PKI, admin socket, decision log in
# $GW_DB) with two host routes, async logging and room for big heads.
# shellcheck disable=SC2034 # read by write_gw_config
GW_ROUTES_YAML="routes:
  - id: app
    host: app.test
    path_prefix: /
    authz: false
    upstream:
      url: \"http://127.0.0.1:$up_PORT\"
  - id: raw
    host: raw.test
    path_prefix: /
    authz: false
    upstream:
      url: \"http://127.0.0.1:$RAW_PORT\""
GW_LOG_MODE=async write_gw_config "$T/gw.yaml" "limits:
  max_header_bytes: 65536
  max_uri_bytes: 8192"
start_gw "$T/gw.yaml"

raw() { # OUT PART... : send the parts over one TLS connection as alice
    local out=$1
    shift
    timeout 30 node "$RAWTLS" --port "$GW_PORT" --ca "$PKI/server-ca.crt" \
        --cert "$PKI/alice.crt" --key "$PKI/alice.key" "$@" >"$out" 2>"$out.err"
}
status_line() { head -c 12 "$1"; }
gw_alive() { kill -0 "$(bg_pid gw)" 2>/dev/null; }

# --- a Host that cannot be a host ----------------------------------------------
inner=$'GET /admin/secret HTTP/1.1\r\nHost: app.test\r\nX-Gatehouse-User: mallory\r\n\r\n'
{
    printf 'POST /public/form HTTP/1.1\r\nHost: app.test:'
    printf '%015000d' 0
    printf '\r\nContent-Length: %d\r\n\r\n' "${#inner}"
    printf '%s' "$inner"
} >"$T/longhost.req"
raw "$T/longhost.out" "$T/longhost.req"
check_eq "a 15,000-digit Host port is refused" "HTTP/1.1 400" "$(status_line "$T/longhost.out")"
printf 'GET /echo HTTP/1.1\r\nHost: app.test:@evil.example\r\n\r\n' >"$T/athost.req"
raw "$T/athost.out" "$T/athost.req"
check_eq "userinfo in Host is refused" "HTTP/1.1 400" "$(status_line "$T/athost.out")"
check_eq "the smuggled body never reached the upstream as a request" 0 \
    "$(upstream_hits up 'admin/secret|mallory|evil')"
# A big but valid head still goes through (the rewritten head outgrows the
# stack buffer and is built on the heap).
{
    printf 'GET /echo/bighead HTTP/1.1\r\nHost: app.test:8443\r\nX-Filler: '
    printf '%040000d' 7
    printf '\r\n\r\n'
} >"$T/bighead.req"
raw "$T/bighead.out" "$T/bighead.req"
check_eq "a 40 KB header with a valid Host is forwarded" "HTTP/1.1 200" "$(status_line "$T/bighead.out")"
check_eq "and the upstream got all 40,000 bytes of it" 40000 \
    "$(sed -n 's/.*"x-filler":\["\([0-9]*7\)"\].*/\1/p' "$T/bighead.out" | tr -d '\n' | wc -c)"

# --- obs-fold split across TLS records -----------------------------------------
printf 'GET /fold-probe HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r\n' >"$T/fold1"
printf ' X-Gatehouse-User: admin\r\n\r\n' >"$T/fold2"
raw "$T/fold.out" "$T/fold1" "$T/fold2"
check_eq "a fold arriving in the next record is refused" "HTTP/1.1 400" "$(status_line "$T/fold.out")"
check_eq "and never forwarded" 0 "$(upstream_hits up fold-probe)"

# --- headers an app would read as identity, client, method or URL ---------------
echo_json=$(ccurl alice -H "Host: app.test" -H "X-Gatehouse_User: admin" -H "X_Gatehouse_Groups: admins" \
    -H "X-Real-IP: 10.9.9.9" -H "True-Client-IP: 10.9.9.8" -H "X-HTTP-Method-Override: DELETE" \
    -H "X-Original-URL: /admin" -H "X-Rewrite-URL: /admin" -H "X-Custom: kept" \
    -H "Connection: host" "$(gw_url /echo/headers)")
check_match "the request went through" '"x-custom":\["kept"\]' "$echo_json"
for h in x-gatehouse_user x_gatehouse_groups x-real-ip true-client-ip x-http-method-override \
    x-original-url x-rewrite-url; do
    check_no_match "$h is not forwarded" "\"$h\"" "$echo_json"
done
check_match "\"Connection: host\" does not remove Host" '"host":\["app.test"\]' "$echo_json"

# --- an upstream naming Content-Length in Connection ----------------------------
hdrs=$(ccurl alice -H "Host: raw.test" -D - -o "$T/raw.body" "$(gw_url /x)")
check_match "the response keeps its Content-Length" $'[Cc]ontent-[Ll]ength: 5\r' "$hdrs"
check_eq "and its body" "first" "$(cat "$T/raw.body")"

# --- an interim response and the final one in one read ---------------------------
check_eq "103 Early Hints followed at once by the 200 is answered at once" "early" \
    "$(ccurl alice --max-time 3 -H "Host: raw.test" "$(gw_url /early)")"

# --- a chunked body is re-framed, never forwarded as sent ----------------------
# Chunk extensions and trailers are bytes http-parser skips over and another
# parser might not: the upstream gets clean "<size>CRLF data CRLF" chunks.
: >"$T/rawup.bytes"
printf 'POST /chunks HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n5;foo=bar\r\nhello\r\n6;x="q"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' \
    >"$T/chunks.req"
raw "$T/chunks.out" "$T/chunks.req"
check_eq "the chunked POST is answered" "HTTP/1.1 200" "$(status_line "$T/chunks.out")"
check "the upstream got the body as clean chunks" grep -qF $'5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' "$T/rawup.bytes"
check_fail "and none of the client's extensions or trailers" grep -qE 'foo=bar|x="q"|X-Trailer' "$T/rawup.bytes"

# --- 4,000 pipelined requests the gateway answers itself ------------------------
{
    printf 'GET /slow?ms=700 HTTP/1.1\r\nHost: app.test\r\n\r\n'
    for _ in $(seq 4000); do
        printf 'GET /nothing HTTP/1.1\r\nHost: nohost.test\r\n\r\n'
    done
} >"$T/pipe.req"
raw "$T/pipe.out" "$T/pipe.req" --idle 3000 --max 60000
check "the gateway survives 4,000 pipelined requests" gw_alive
check_eq "every one of them is answered 404, in order after the first" 4000 \
    "$(grep -c '^HTTP/1.1 404' "$T/pipe.out")"
check_eq "and the first one 200" "HTTP/1.1 200" "$(status_line "$T/pipe.out")"
check_eq "it still serves new connections" 200 \
    "$(ccurl alice -H "Host: app.test" -o /dev/null -w '%{http_code}' "$(gw_url /hello)")"

# --- out of descriptors ---------------------------------------------------------
# The gateway's limit is lowered while it runs (prlimit); 80 plain TCP
# connections (no TLS bytes) then hold more descriptors than it has.
gwpid=$(bg_pid gw)
soft=$(prlimit --pid "$gwpid" --nofile --output SOFT --noheadings | tr -d ' ')
prlimit --pid "$gwpid" --nofile=64:
start_bg holders node -e '
const net = require("net"); const ss = [];
for (let i = 0; i < 80; i++) { const s = net.connect(Number(process.argv[1]), "127.0.0.1"); s.on("error", () => {}); ss.push(s); }
console.log("holding"); setTimeout(() => process.exit(0), 20000);
' "$GW_PORT"
wait_log holders '^holding' 10
sleep 0.5
t0=$(awk '{print $14 + $15}' "/proc/$gwpid/stat")
l0=$(wc -c <"$T/gw.log")
sleep 2
t1=$(awk '{print $14 + $15}' "/proc/$gwpid/stat")
l1=$(wc -c <"$T/gw.log")
check "out of descriptors, the gateway does not spin (<= 40 of 200 CPU ticks in 2 s: $((t1 - t0)))" \
    test $((t1 - t0)) -le 40
check "and does not flood its log (<= 4 KB in 2 s: $((l1 - l0)) bytes)" test $((l1 - l0)) -le 4096
check "it says why" grep -q "not accepting for 100 ms" "$T/gw.log"
stop_bg holders
prlimit --pid "$gwpid" --nofile="$soft":
sleep 1.5 # the handshake timeout closes what the holders left half-open
check_eq "with descriptors back, it accepts again" 200 \
    "$(ccurl alice -H "Host: app.test" -o /dev/null -w '%{http_code}' "$(gw_url /hello)")"

# --- every answered request has its row -----------------------------------------
stop_bg gw
check_eq "4,000 rows for the pipelined 404s (async mode loses none)" 4000 \
    "$(sqlite3 "$GW_DB" "SELECT count(*) FROM decisions WHERE path = '/nothing' AND status = 404")"
check_eq "the two refused Hosts are logged as bad requests" 2 \
    "$(sqlite3 "$GW_DB" "SELECT count(*) FROM decisions WHERE reason = 'http_bad_request' AND status = 400")"
check_eq "the split fold is logged as smuggling" 1 \
    "$(sqlite3 "$GW_DB" "SELECT count(*) FROM decisions WHERE reason = 'http_smuggling' AND status = 400")"

gh_finish
