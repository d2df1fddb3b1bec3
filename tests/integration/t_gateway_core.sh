#!/usr/bin/env bash
# Gateway core (issue 2): mTLS handshake policy, strict HTTP/1.1 parsing,
# limits and timeouts, upstream errors, streaming with flat memory, cert
# rotation on SIGHUP under a live keep-alive connection, and SIGTERM drain.
# Real binary, real upstream (gh-upstream), real curl/openssl clients.
source "$(dirname "$0")/lib.sh"
gh_init gateway_core

start_upstream up
GW_PORT=$(free_port)
cp "$PKI/server.crt" "$T/server.crt"; cp "$PKI/server.key" "$T/server.key"
cat > "$T/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$GW_PORT"
  workers: 2
tls:
  cert: $T/server.crt
  key: $T/server.key
  client_ca: $PKI/client-ca.crt
  crl: $PKI/client-ca.crl
  reload_check: 0
limits:
  max_header_bytes: 8192
  max_headers: 50
  max_uri_bytes: 2048
timeouts:
  handshake: 3000
  header: 1000
  idle: 5000
  drain: 5000
routes:
  - id: app
    host: "*"
    path_prefix: /
    authz: false
    max_body_bytes: -1
    upstream:
      url: http://127.0.0.1:$up_PORT
      connect_timeout: 1000
      read_timeout: 3000
  - id: small
    host: small.test.local
    path_prefix: /
    authz: false
    max_body_bytes: 1000
    upstream:
      url: http://127.0.0.1:$up_PORT
  - id: down
    host: down.test.local
    path_prefix: /
    authz: false
    upstream:
      url: http://127.0.0.1:$(free_port)
      connect_timeout: 1000
decision_log:
  path: $T/gw.db
  mode: strict
admin:
  socket: $T/admin.sock
YAML

check "check-config accepts the config" "$GATEHOUSE" check-config -c "$T/gw.yaml"
start_bg gw "$GATEHOUSE" serve -c "$T/gw.yaml"
wait_log gw "listening on" 10
URL="https://127.0.0.1:$GW_PORT"

# --- mTLS -----------------------------------------------------------------
out=$(ccurl alice "$URL/" -w ' %{http_code}' | tr '\n' ' ')
check_match "valid cert reaches upstream" "hello from up  200$" "$out"
check "no client cert is refused" bash -c "! curl -sS --cacert $PKI/server-ca.crt $URL/ >/dev/null 2>&1"
check "untrusted CA is refused" bash -c "! curl -sS --cacert $PKI/server-ca.crt --cert $PKI/rogue.crt --key $PKI/rogue.key $URL/ >/dev/null 2>&1"
check "expired cert is refused" bash -c "! curl -sS --cacert $PKI/server-ca.crt --cert $PKI/expired.crt --key $PKI/expired.key $URL/ >/dev/null 2>&1"
check "CRL-revoked cert is refused" bash -c "! curl -sS --cacert $PKI/server-ca.crt --cert $PKI/revoked.crt --key $PKI/revoked.key $URL/ >/dev/null 2>&1"
sleep 0.5
reasons=$(sqlite3 "$T/gw.db" "select group_concat(reason) from (select distinct reason from decisions where status=0 order by reason)")
check_match "refused handshakes logged with reasons" "tls_cert_expired.*tls_cert_revoked.*tls_no_cert.*tls_untrusted_ca" "$reasons"

# --- strict parsing: each smuggling vector gets 400 and a closed connection ----
raw() { # payload -> response (connection must close by itself within 5 s)
    printf "$1" | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" \
        -cert "$PKI/alice.crt" -key "$PKI/alice.key" -CAfile "$PKI/server-ca.crt" 2>/dev/null
    echo " rc=$?"
}
H="Host: x.test.local\r\n"
vec() { # name payload expected-status
    local r; r=$(raw "$2")
    check_match "$1 -> $3 and closed" "^HTTP/1.1 $3 .* rc=0 *$" "$(echo "$r" | tr '\r\n' '  ')"
}
vec "CL+TE" "POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" 400
vec "differing duplicate CL" "POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" 400
vec "TE not final chunked" "POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n" 400
vec "TE gzip only" "POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n" 400
vec "obs-fold" "GET / HTTP/1.1\r\n${H}X-A: 1\r\n continued\r\n\r\n" 400
vec "bare LF in header" "GET / HTTP/1.1\r\n${H}X-A: 1\nX-B: 2\r\n\r\n" 400
vec "bare CR in header" "GET / HTTP/1.1\r\n${H}X-A: 1\rX-B: 2\r\n\r\n" 400
vec "NUL in header" "GET / HTTP/1.1\r\n${H}X-A: a\\0b\r\n\r\n" 400
vec "invalid chunk size" "POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" 400
vec "absolute-form target" "GET http://evil/ HTTP/1.1\r\n${H}\r\n" 400
vec "missing Host" "GET / HTTP/1.1\r\n\r\n" 400
vec "URI too long" "GET /$(head -c 3000 /dev/zero | tr '\0' a) HTTP/1.1\r\n${H}\r\n" 414
vec "header too large" "GET / HTTP/1.1\r\n${H}X-Big: $(head -c 9000 /dev/zero | tr '\0' b)\r\n\r\n" 431
many=""; for i in $(seq 1 60); do many="${many}X-H$i: v\r\n"; done
vec "too many headers" "GET / HTTP/1.1\r\n${H}${many}\r\n" 431
out=$(ccurl alice -H "Host: small.test.local" --data-binary @<(head -c 5000 /dev/zero) "$URL/upload" -o /dev/null -w '%{http_code}')
check_eq "body over route limit -> 413" 413 "$out"
n_smug=$(sqlite3 "$T/gw.db" "select count(*) from decisions where reason in ('http_smuggling','http_bad_request') and status=400")
check "each 400 has a decision row (>= 11)" test "$n_smug" -ge 11

# --- slowloris: 408 for the slow client while others are served -----------
( { printf "GET / HTTP/1.1\r\nHost: x\r\n"; sleep 3; } | timeout 6 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" \
    -cert "$PKI/bob.crt" -key "$PKI/bob.key" -CAfile "$PKI/server-ca.crt" > "$T/slow.out" 2>/dev/null ) &
slow=$!
sleep 0.3
out=$(ccurl alice "$URL/" -w '%{http_code}' -o /dev/null)
check_eq "other clients served during a slow header" 200 "$out"
wait $slow || true
check_match "slow header gets 408" "^HTTP/1.1 408" "$(head -1 "$T/slow.out")"

# --- upstream errors ------------------------------------------------------
out=$(ccurl alice -H "Host: down.test.local" "$URL/" -o /dev/null -w '%{http_code}')
check_eq "upstream down -> 502" 502 "$out"
out=$(ccurl alice "$URL/slow?ms=5000" -o /dev/null -w '%{http_code}')
check_eq "upstream read timeout -> 504" 504 "$out"

# --- upstream closes at once: while the row commits (strict) the gateway ---
# keeps reading the upstream; an EOF then must neither be lost (a
# close-delimited body ends there) nor leave a busy loop on the socket.
ok=0
for i in $(seq 1 20); do
    out=$(ccurl alice "$URL/eofbody" -w ' %{http_code}')
    [ "$out" = "body ends at close
 200" ] && ok=$((ok + 1))
    out=$(ccurl alice "$URL/close" -w ' %{http_code}')
    [ "$out" = "closing
 200" ] && ok=$((ok + 1))
done
check_eq "close-delimited and Connection: close upstream bodies arrive whole" 40 "$ok"
gwp=$(bg_pid gw)
t0=$(awk '{print $14 + $15}' "/proc/$gwp/stat")
sleep 1
t1=$(awk '{print $14 + $15}' "/proc/$gwp/stat")
echo "gateway CPU in 1 s idle after upstream EOFs: $((t1 - t0)) ticks"
check "no busy loop after upstream EOFs (< 30 ticks of CPU in 1 s idle)" test $((t1 - t0)) -lt 30

# --- headers: X-Forwarded-* replaced, hop-by-hop and identity spoofing removed
echo_json=$(ccurl alice -H "X-Forwarded-For: 6.6.6.6" -H "X-Gatehouse-User: mallory" \
    -H "Connection: keep-alive, X-Secret" -H "X-Secret: s" -H "Keep-Alive: 5" "$URL/echo")
check_match "XFF replaced with the peer" '"x-forwarded-for":\["127.0.0.1"\]' "$echo_json"
check "spoofed X-Gatehouse-User not forwarded" bash -c "! grep -q mallory <<<'$echo_json'"
check "Connection-named header removed" bash -c "! grep -qi x-secret <<<'$echo_json'"
check "Keep-Alive removed" bash -c "! grep -qi '\"keep-alive\"' <<<'$echo_json'"
check_match "X-Forwarded-Proto https" '"x-forwarded-proto":\["https"\]' "$echo_json"

# --- Expect: 100-continue and chunked upload ------------------------------
head -c 300000 /dev/urandom > "$T/blob"
want=$(sha256sum "$T/blob" | cut -d' ' -f1)
out=$(ccurl alice -H "Expect: 100-continue" --data-binary @"$T/blob" "$URL/upload")
check_match "100-continue upload arrives intact" "$want" "$out"
out=$(ccurl alice -H "Transfer-Encoding: chunked" --data-binary @"$T/blob" "$URL/upload")
check_match "chunked upload arrives intact" "$want" "$out"

# --- 1 GiB each way with flat memory ---------------------------------------
# Under ASan (about 10x slower, allocator quarantine inflates RSS) the same
# streams run with 256 MiB and the RSS bound is asserted by the release run.
GW_PID=$(bg_pid gw)
SIZE=1073741824; ASAN=0
if ldd "$GATEHOUSE" | grep -q libasan; then SIZE=268435456; ASAN=1; fi
n=$(ccurl alice --max-time 300 "$URL/bytes/$SIZE" -o /dev/null -w '%{size_download}')
check_eq "$SIZE-byte download streamed" "$SIZE" "$n"
out=$(head -c "$SIZE" /dev/zero | ccurl alice --max-time 300 -T - "$URL/upload")
check_match "$SIZE-byte chunked upload streamed" "\"bytes\":$SIZE" "$out"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$GW_PID/status)
echo "gateway peak RSS after streaming 2 x $SIZE bytes: ${hwm} kB (asan=$ASAN)"
if [ "$ASAN" = 0 ]; then
    check "gateway RSS stays under 64 MiB" test "$hwm" -lt 65536
else
    echo "note: RSS bound not asserted in the ASan build (quarantine); the release run asserts it"
fi

# --- SIGHUP certificate rotation with a live keep-alive connection --------
serial() { echo | timeout 5 openssl s_client -connect "127.0.0.1:$GW_PORT" -cert "$PKI/alice.crt" \
    -key "$PKI/alice.key" -CAfile "$PKI/server-ca.crt" 2>/dev/null | openssl x509 -noout -serial; }
s1=$(serial)
coproc KA { timeout 20 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" -cert "$PKI/alice.crt" \
    -key "$PKI/alice.key" -CAfile "$PKI/server-ca.crt" 2>/dev/null; }
printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&"${KA[1]}"
# (coproc fds are not visible in $(...) subshells: read into a variable)
RESP=""
read_resp() { local line; RESP=""; while IFS= read -r -t 5 line <&"${KA[0]}"; do
    [[ "$line" == hello* ]] && { RESP=$line; return 0; }; done; return 1; }
read_resp; r1=$RESP
check_match "keep-alive request before rotation" "hello from up" "$r1"
cp "$PKI/server2.crt" "$T/server.crt"; cp "$PKI/server2.key" "$T/server.key"
kill -HUP "$GW_PID"
wait_log gw "reload ok" 5
printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&"${KA[1]}"
read_resp; r2=$RESP
check_match "same keep-alive connection still served after rotation" "hello from up" "$r2"
s2=$(serial)
check "new connections see the new server certificate" test "$s1" != "$s2"
[ -n "${KA[1]:-}" ] && eval "exec ${KA[1]}>&-"
# a bad file keeps the old material
echo garbage > "$T/server.crt"
kill -HUP "$GW_PID"
wait_log gw "reload refused" 5
out=$(ccurl alice "$URL/" -w '%{http_code}' -o /dev/null)
check_eq "bad cert file: old material kept, still serving" 200 "$out"

# --- SIGTERM drains in-flight requests, then exits 0 ------------------------
( ccurl alice "$URL/slow?ms=1500" -o /dev/null -w '%{http_code}' > "$T/drain.out" ) &
inflight=$!
sleep 0.4
kill -TERM "$GW_PID"
wait $inflight || true
check_eq "in-flight request completes during drain" 200 "$(cat "$T/drain.out")"
rc=0; wait_exit gw 8 || rc=$?
check_eq "gateway exits 0 after drain" 0 "$rc"

total=$(sqlite3 "$T/gw.db" "select count(*) from decisions")
echo "decision rows: $total"
check "decision log has rows" test "$total" -gt 20
gh_finish
