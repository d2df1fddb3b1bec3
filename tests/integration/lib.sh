# shellcheck shell=bash
# shellcheck disable=SC2034 # T, PKI, GATEHOUSECTL, GW_URL... are set for the tests
# lib.sh: the harness every tests/integration/t_*.sh sources.
#
# Why one library: every integration test starts real processes (gatehouse,
# gh-upstream, openssl s_server, the test IdP) on loopback, talks to them
# with curl, and must leave nothing running whatever happens. Doing that
# right once (ports that parallel tests never share, processes stopped by
# PID only, logs shown when a test fails, failures that can never be lost)
# is the point of this file. docs/TESTING.md describes it for test writers.
#
# Owns: the per-test directory $T, the processes started through start_bg
# (recorded in $T/.pids as "NAME PID STARTTIME" and stopped by PID, never by
# name), port reservations under ${TMPDIR:-/tmp}/gatehouse-ports, the check
# results in $T/.results.
# Must not: kill anything it did not start, touch the network beyond
# loopback, or make a failed check look like a pass.
#
# Error model: gh_init sets `set -uo pipefail` but NOT `-e`: tests run
# commands that are meant to fail (a refused handshake is curl exit 35), so a
# failing command does not end the test; checks decide. Setup helpers
# (start_upstream, start_gw, write_gw_config...) end the test with gh_fatal
# when they cannot do their job. Results are appended to a file, so a check
# inside a subshell or a `... | while read` loop still counts.
#
# Typical test:
#   . "$(dirname "$0")/lib.sh"
#   gh_init mytest "$@"
#   start_upstream up
#   write_gw_config "$T/gw.yaml"
#   start_gw "$T/gw.yaml"
#   check_eq "alice gets 200" 200 "$(ccurl alice -o /dev/null -w '%{http_code}' "$(gw_url /)")"
#   gh_finish

if [ -n "${GH_LIB_LOADED:-}" ]; then
    return 0
fi
GH_LIB_LOADED=1

GH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GH_PORT_DIR=${TMPDIR:-/tmp}/gatehouse-ports
GH_FINISHED=0
GH_TIMEOUT_SCALE=${GH_TIMEOUT_SCALE:-}
GH_TMPDIRS=()

# ---------------------------------------------------------------------------
# Set-up and tear-down.

# gh_init NAME [BUILD_DIR]: start a test. BUILD_DIR is used when GH_BUILD is
# not in the environment (ctest sets GH_BUILD and GH_SRC; pass "$@" so the
# script also runs by hand as `bash t_x.sh BUILD_DIR`).
gh_init() {
    local name=${1:?usage: gh_init NAME [BUILD_DIR]}
    set -uo pipefail
    GH_TEST=$name
    if [ -z "${GH_BUILD:-}" ]; then
        GH_BUILD=${2:-}
    fi
    if [ -z "${GH_BUILD:-}" ] || [ ! -d "$GH_BUILD" ]; then
        echo "FATAL: $name: no build dir (set GH_BUILD or pass it as the first argument)" >&2
        exit 1
    fi
    GH_BUILD=$(cd "$GH_BUILD" && pwd)
    GH_SRC=${GH_SRC:-$(cd "$GH_LIB_DIR/../.." && pwd)}
    export GH_BUILD GH_SRC
    T=$GH_BUILD/itest/$name
    PKI=$GH_BUILD/test-pki
    GATEHOUSE=$GH_BUILD/gateway/gatehouse
    GATEHOUSECTL=$GH_BUILD/tui/gatehousectl
    UPSTREAM_BIN=$GH_BUILD/tests/tools/gh-upstream
    if [ -z "$GH_TIMEOUT_SCALE" ]; then
        GH_TIMEOUT_SCALE=1
        if grep -qs '^GH_SANITIZE:BOOL=ON' "$GH_BUILD/CMakeCache.txt"; then
            GH_TIMEOUT_SCALE=3
        fi
    fi

    # A previous run killed by a timeout may have left processes behind:
    # stop those, and only those, before wiping its directory.
    gh_reap_pidfile "$T/.pids" KILL
    rm -rf "$T"
    mkdir -p "$T" "$GH_PORT_DIR"
    find "$GH_PORT_DIR" -mindepth 1 -maxdepth 1 -mmin +120 -exec rm -rf {} + 2>/dev/null
    GH_RESULTS=$T/.results
    : >"$GH_RESULTS"
    : >"$T/.pids"
    : >"$T/.ports"
    GH_MAIN_PID=$$
    trap gh_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    echo "=== $name (T=$T)"
    if [ ! -f "$PKI/.done" ]; then
        gh_fatal "no test PKI in $PKI (the integration/setup fixture runs tests/integration/pki.sh)"
    fi
}

# Scaled timeout: ASan builds run slower, so every wait gets longer there.
gh_timeout() {
    echo $(($1 * GH_TIMEOUT_SCALE))
}

# Start time of PID in clock ticks (field 22 of /proc/PID/stat), or empty.
gh_starttime() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo "${20}"
}

# Is PID alive, not a zombie, and (if given) the same process (start time)?
gh_alive() {
    local pid=$1 start=${2:-} stat rest
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [ "$1" != Z ] || return 1
    [ -z "$start" ] || [ "${20}" = "$start" ]
}

# Stop every still-running process listed in a pidfile (SIGNAL first, then
# KILL after 5 s). Identity is PID + start time, so a recycled PID is never hit.
gh_reap_pidfile() {
    local file=$1 sig=${2:-TERM} name pid start i
    [ -f "$file" ] || return 0
    while read -r name pid start; do
        if gh_alive "$pid" "$start"; then
            kill -s "$sig" "$pid" 2>/dev/null
        fi
    done <"$file"
    while read -r name pid start; do
        for ((i = 0; i < 50; i++)); do
            gh_alive "$pid" "$start" || break
            sleep 0.1
        done
        if gh_alive "$pid" "$start"; then
            echo "note: $name (pid $pid) ignored SIG$sig; sending KILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done <"$file"
    return 0
}

gh_on_exit() {
    local rc=$? f n_fail=0
    trap - EXIT INT TERM
    [ "$$" = "${GH_MAIN_PID:-}" ] || return "$rc"
    gh_reap_pidfile "$T/.pids" TERM
    if [ -f "$T/.ports" ]; then
        while read -r f; do
            rm -rf "${GH_PORT_DIR:?}/$f"
        done <"$T/.ports"
    fi
    for f in "${GH_TMPDIRS[@]}"; do
        rm -rf "$f"
    done
    [ -f "$GH_RESULTS" ] && n_fail=$(grep -c '^FAIL' "$GH_RESULTS")
    if [ "$GH_FINISHED" != 1 ]; then
        echo "FAIL - $GH_TEST ended (exit $rc) without gh_finish"
        [ "$rc" -eq 0 ] && rc=1
    fi
    if [ "$n_fail" -gt 0 ] && [ "$rc" -eq 0 ]; then
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then
        for f in "$T"/*.log "$T"/*.log.* "$T"/*.requests; do
            [ -f "$f" ] || continue
            echo "----- $f (last 80 lines) -----"
            tail -n 80 "$f"
        done
        echo "----- end of logs; test directory kept: $T"
    fi
    exit "$rc"
}

# gh_fatal MSG: record a failure and end the test now (logs are shown).
gh_fatal() {
    echo "FATAL - $*" >&2
    echo "FAIL fatal: $*" >>"${GH_RESULTS:-/dev/null}"
    exit 1
}

# A private short directory (for Unix sockets: sun_path holds 107 bytes),
# removed when the test ends. Call it in the main shell, not in $(...).
gh_short_tmpdir() {
    GH_SHORT_TMP=$(mktemp -d /tmp/gh.XXXXXX)
    GH_TMPDIRS+=("$GH_SHORT_TMP")
}

# ---------------------------------------------------------------------------
# Ports.

# free_port: print a TCP port on 127.0.0.1 that nothing uses and that no other
# test (of any build dir on this machine) has reserved. Ports come from below
# the kernel's ephemeral range, so they never collide with outgoing
# connections or with port-0 listeners (gh-upstream). Reservations are
# dropped when the test ends.
free_port() {
    local lo=20000 hi=45000 eph_lo used port try
    if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
        if [ "$eph_lo" -gt 22000 ] && [ "$eph_lo" -le 45001 ]; then
            hi=$((eph_lo - 1))
        fi
    fi
    used=" $(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); printf "%s ", a[n]}') "
    for ((try = 0; try < 500; try++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        case $used in *" $port "*) continue ;; esac
        if mkdir "$GH_PORT_DIR/$port" 2>/dev/null; then
            echo "$port" >>"$T/.ports"
            echo "$port"
            return 0
        fi
    done
    gh_fatal "free_port: no free port found"
}

# wait_port PORT [TIMEOUT_S]: until something listens on PORT (checked with
# ss, without connecting: a probe connection would be a logged handshake).
wait_port() {
    local port=$1 limit i
    limit=$(($(gh_timeout "${2:-10}") * 10))
    for ((i = 0; i < limit; i++)); do
        if [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "wait_port: nothing listens on port $port after ${2:-10} s (x$GH_TIMEOUT_SCALE)"
    return 1
}

# ---------------------------------------------------------------------------
# Background processes.

# start_bg NAME CMD...: start CMD (a program, not a shell function) in the
# background, stdout+stderr to $T/NAME.log (an earlier log of the same NAME is
# kept as NAME.log.1, .2, ...). Call it in the main shell.
start_bg() {
    local name=${1:?usage: start_bg NAME CMD...} pid i=1
    shift
    if [ -n "$(bg_pid "$name")" ]; then
        gh_fatal "start_bg: $name is already running"
    fi
    if [ -f "$T/$name.log" ]; then
        while [ -f "$T/$name.log.$i" ]; do
            i=$((i + 1))
        done
        mv "$T/$name.log" "$T/$name.log.$i"
    fi
    "$@" >"$T/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$name $pid $(gh_starttime "$pid")" >>"$T/.pids"
    return 0
}

# bg_pid NAME: PID of the running process started as NAME (empty if none).
bg_pid() {
    local name pid start out=""
    while read -r name pid start; do
        if [ "$name" = "$1" ] && gh_alive "$pid" "$start"; then
            out=$pid
        fi
    done <"$T/.pids"
    echo "$out"
}

# signal_bg NAME SIGNAL: send a signal (e.g. HUP for a reload) and return.
signal_bg() {
    local pid
    pid=$(bg_pid "$1")
    if [ -z "$pid" ]; then
        echo "signal_bg: $1 is not running"
        return 1
    fi
    kill -s "${2:?usage: signal_bg NAME SIGNAL}" "$pid"
}

# stop_bg NAME [SIGNAL]: send SIGNAL (default TERM), wait up to 10 s (scaled),
# then KILL. Returns the process's exit status (also in GH_LAST_STATUS; 128+N
# for death by signal N), or 1 if it was not running.
stop_bg() {
    local name=${1:?usage: stop_bg NAME [SIGNAL]} sig=${2:-TERM} pid start i limit
    pid=$(bg_pid "$name")
    GH_LAST_STATUS=1
    if [ -z "$pid" ]; then
        echo "stop_bg: $name is not running"
        return 1
    fi
    start=$(gh_starttime "$pid")
    kill -s "$sig" "$pid" 2>/dev/null
    limit=$(($(gh_timeout 10) * 10))
    for ((i = 0; i < limit; i++)); do
        gh_alive "$pid" "$start" || break
        sleep 0.1
    done
    if gh_alive "$pid" "$start"; then
        echo "stop_bg: $name (pid $pid) still running after SIG$sig; sending KILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    GH_LAST_STATUS=$?
    return "$GH_LAST_STATUS"
}

# wait_bg NAME [TIMEOUT_S]: wait (default 10 s, scaled) for NAME to exit by
# itself; returns its exit status (also in GH_LAST_STATUS), or 124 on
# timeout (the process is left running).
wait_bg() {
    local name=${1:?usage: wait_bg NAME [TIMEOUT_S]} n pid="" start="" p s i limit
    while read -r n p s; do
        if [ "$n" = "$name" ]; then
            pid=$p
            start=$s
        fi
    done <"$T/.pids"
    GH_LAST_STATUS=124
    if [ -z "$pid" ]; then
        echo "wait_bg: $name was never started"
        return 1
    fi
    limit=$(($(gh_timeout "${2:-10}") * 10))
    for ((i = 0; i < limit; i++)); do
        gh_alive "$pid" "$start" || break
        sleep 0.1
    done
    if gh_alive "$pid" "$start"; then
        echo "wait_bg: $name (pid $pid) still running after ${2:-10} s"
        return 124
    fi
    wait "$pid" 2>/dev/null
    GH_LAST_STATUS=$?
    return "$GH_LAST_STATUS"
}

# wait_exit NAME [TIMEOUT_S]: the same as wait_bg.
wait_exit() {
    wait_bg "$@"
}

# wait_log NAME|FILE REGEX [TIMEOUT_S]: until the log ($T/NAME.log, or FILE if
# the argument contains a slash) has a line matching the extended REGEX.
# Gives up early if NAME's process has exited.
wait_log() {
    local what=${1:?usage: wait_log NAME REGEX [TIMEOUT_S]} re=$2 file limit i
    case $what in
    */*) file=$what ;;
    *) file=$T/$what.log ;;
    esac
    limit=$(($(gh_timeout "${3:-10}") * 10))
    for ((i = 0; i < limit; i++)); do
        if grep -qE -- "$re" "$file" 2>/dev/null; then
            return 0
        fi
        case $what in
        */*) ;;
        *)
            if [ -z "$(bg_pid "$what")" ]; then
                grep -qE -- "$re" "$file" 2>/dev/null && return 0
                echo "wait_log: $what exited before logging /$re/"
                return 1
            fi
            ;;
        esac
        sleep 0.1
    done
    echo "wait_log: no line matching /$re/ in $file after ${3:-10} s (x$GH_TIMEOUT_SCALE)"
    return 1
}

# ---------------------------------------------------------------------------
# Upstreams.

# start_upstream NAME: gh-upstream on an ephemeral port. Sets NAME_PORT and
# NAME_URL (http://127.0.0.1:PORT), GW_UPSTREAM_URL (used by write_gw_config),
# and logs requests to $T/NAME.requests. NAME must be a shell identifier.
start_upstream() {
    local name=${1:?usage: start_upstream NAME} port
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || gh_fatal "start_upstream: bad name '$name'"
    [ -x "$UPSTREAM_BIN" ] || gh_fatal "start_upstream: $UPSTREAM_BIN not built"
    : >"$T/$name.requests"
    start_bg "$name" "$UPSTREAM_BIN" --listen 127.0.0.1:0 --log "$T/$name.requests" --name "$name"
    wait_log "$name" '^listening on ' 10 || gh_fatal "start_upstream: $name did not start"
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/$name.log" | head -n 1)
    [ -n "$port" ] || gh_fatal "start_upstream: cannot read the port of $name"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_URL" 'http://127.0.0.1:%s' "$port"
    GW_UPSTREAM_URL=http://127.0.0.1:$port
}

# upstream_hits NAME [REGEX]: how many requests in $T/NAME.requests (matching
# the extended REGEX, e.g. '^GET /admin '). 0 proves a request never arrived.
upstream_hits() {
    local n
    n=$(grep -cE -- "${2:-.}" "$T/$1.requests" 2>/dev/null)
    echo "${n:-0}"
}

# start_tls_upstream NAME: an HTTPS upstream that REQUIRES a client
# certificate from upstream-ca (the gateway presents gw-upstream.crt), made
# of `openssl s_server -WWW` serving files from $T/NAME.www (hello.txt holds
# "hello from NAME over tls"). s_server is a separate process, never linked
# into our binaries. Limits: one connection at a time, HTTP/1.0, the response
# is delimited by close. Its log ($T/NAME.log) shows the client certificate
# subject ("depth=0 ... CN = gatehouse") and each file served ("FILE:x").
# Sets NAME_PORT and NAME_URL (https://localhost:PORT).
start_tls_upstream() {
    local name=${1:?usage: start_tls_upstream NAME} port dir
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || gh_fatal "start_tls_upstream: bad name '$name'"
    dir=$T/$name.www
    mkdir -p "$dir"
    printf 'hello from %s over tls\n' "$name" >"$dir/hello.txt"
    cp "$dir/hello.txt" "$dir/index.html"
    port=$(free_port)
    # shellcheck disable=SC2016
    start_bg "$name" bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" \
        openssl s_server -accept "127.0.0.1:$port" \
        -cert "$PKI/upstream-server.crt" -key "$PKI/upstream-server.key" \
        -CAfile "$PKI/upstream-ca.crt" -Verify 1 -verify_return_error -WWW
    wait_port "$port" 10 || gh_fatal "start_tls_upstream: $name did not start"
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_URL" 'https://localhost:%s' "$port"
}

# ---------------------------------------------------------------------------
# The gateway.

# write_gw_config FILE [EXTRA_YAML]: a gateway config using the test PKI and
# the upstream last started (override with GW_UPSTREAM_URL). Sets GW_PORT (a
# free port unless already set), GW_URL, GW_DB and GW_SOCK. EXTRA_YAML is
# appended verbatim (more top-level keys). GW_ROUTES_YAML, when set,
# replaces the whole default `routes:` block; GW_LOG_MODE picks the
# decision-log mode (strict). This is the ONE place that knows the config
# layout (docs/CONFIG.md is the reference); adjust it here when it changes.
write_gw_config() {
    local file=${1:?usage: write_gw_config FILE [EXTRA_YAML]} extra=${2:-} routes
    [ -n "${GW_UPSTREAM_URL:-}" ] || gh_fatal "write_gw_config: start an upstream first"
    if [ -z "${GW_PORT:-}" ]; then
        GW_PORT=$(free_port)
    fi
    GW_URL=https://localhost:$GW_PORT
    GW_DB=$T/gatehouse.db
    GW_SOCK=$T/gatehouse.sock
    if [ "${#GW_SOCK}" -gt 100 ]; then
        gh_short_tmpdir
        GW_SOCK=$GH_SHORT_TMP/gatehouse.sock
    fi
    routes=${GW_ROUTES_YAML:-"routes:
  - id: app
    host: \"*\"
    path_prefix: \"/\"
    authz: false
    upstream:
      url: \"$GW_UPSTREAM_URL\""}
    cat >"$file" <<EOF
# written by tests/integration/lib.sh write_gw_config for $GH_TEST
server:
  listen: "127.0.0.1:$GW_PORT"
  workers: 2
tls:
  cert: "$PKI/server.crt"
  key: "$PKI/server.key"
  client_ca: "$PKI/client-ca.crt"
  crl: "$PKI/client-ca.crl"
$routes
decision_log:
  path: "$GW_DB"
  mode: ${GW_LOG_MODE:-strict}
admin:
  socket: "$GW_SOCK"
EOF
    if [ -n "$extra" ]; then
        printf '%s\n' "$extra" >>"$file"
    fi
}

# write_idp_gw_config FILE [ADMIN_EXTRA_YAML]: the gateway config of the
# tests that run the test OpenID Provider: listen on GW_PORT, the issuer at
# IDP_URL (audience gatehouse), policy $T/policy.yaml, one route "app" to
# http://127.0.0.1:$up_PORT, decision log $T/gw.db in strict mode, admin
# socket $SOCK. ADMIN_EXTRA_YAML (lines indented by two spaces) is appended
# under admin:. The caller sets those variables and writes the policy.
write_idp_gw_config() {
    local file=${1:?usage: write_idp_gw_config FILE [ADMIN_EXTRA_YAML]}
    cat >"$file" <<EOF
# written by tests/integration/lib.sh write_idp_gw_config for $GH_TEST
server:
  listen: "127.0.0.1:${GW_PORT:?write_idp_gw_config: GW_PORT}"
  workers: 2
tls:
  cert: $PKI/server.crt
  key: $PKI/server.key
  client_ca: $PKI/client-ca.crt
issuer:
  url: ${IDP_URL:?write_idp_gw_config: IDP_URL}
  audiences: [gatehouse]
  ca: $PKI/idp-ca.crt
policy: $T/policy.yaml
routes:
  - id: app
    host: "*"
    path_prefix: /
    upstream:
      url: http://127.0.0.1:${up_PORT:?write_idp_gw_config: up_PORT}
decision_log:
  path: $T/gw.db
  mode: strict
admin:
  socket: ${SOCK:?write_idp_gw_config: SOCK}
EOF
    if [ -n "${2:-}" ]; then
        printf '%s\n' "$2" >>"$file"
    fi
}

# start_gw [CONFIG] [NAME]: run `gatehouse serve -c CONFIG` as NAME (default
# gw) and wait until it listens on GW_PORT.
start_gw() {
    local cfg=${1:-$T/gw.yaml} name=${2:-gw}
    [ -x "$GATEHOUSE" ] || gh_fatal "start_gw: $GATEHOUSE not built"
    start_bg "$name" "$GATEHOUSE" serve -c "$cfg"
    if ! wait_port "$GW_PORT" 15; then
        gh_fatal "start_gw: gatehouse is not listening on $GW_PORT"
    fi
}

# gw_url PATH: https://localhost:GW_PORT/PATH
gw_url() {
    echo "https://localhost:${GW_PORT:?write_gw_config first}${1:-/}"
}

# ccurl CERTNAME ARGS...: curl trusting the test server CA, presenting
# $PKI/CERTNAME.{crt,key} ("-" for no client certificate). -sS, and a 30 s
# --max-time that a later --max-time in ARGS overrides.
ccurl() {
    local cert=${1:?usage: ccurl CERTNAME|- ARGS...}
    shift
    if [ "$cert" = - ]; then
        curl -sS --max-time 30 --cacert "$PKI/server-ca.crt" "$@"
    else
        curl -sS --max-time 30 --cacert "$PKI/server-ca.crt" \
            --cert "$PKI/$cert.crt" --key "$PKI/$cert.key" "$@"
    fi
}

# json_get EXPR: read JSON on stdin, print the value at the JavaScript
# accessor EXPR (e.g. '.headers["x-gatehouse-user"][0]'): strings raw, other
# values as JSON. Exit 1 if the input is not JSON or the value is undefined.
json_get() {
    node -e '
let d;
try { d = JSON.parse(require("fs").readFileSync(0, "utf8")); } catch (e) { process.exit(1); }
let v;
try { v = (new Function("d", "return d" + process.argv[1]))(d); } catch (e) { process.exit(1); }
if (v === undefined) process.exit(1);
process.stdout.write((typeof v === "string" ? v : JSON.stringify(v)) + "\n");
' "$1"
}

# ---------------------------------------------------------------------------
# The console (gatehousectl with no arguments) under tmux.

# start_console COLS ROWS: run the console against the admin socket $SOCK
# in a tmux server of its own ($TM, -L gh-NAME-PID), in a pane COLS x ROWS.
# A wrapper records its exit status in $T/console.exit and keeps the pane
# open so the last screen can be read; its stderr goes to $T/console.err.
# The tmux server is listed in .pids (stopped at exit, the console gets
# SIGHUP with its pane) and its socket file in GH_TMPDIRS.
start_console() {
    local cols=${1:?usage: start_console COLS ROWS} rows=${2:?usage: start_console COLS ROWS}
    TM=(tmux -L "gh-$GH_TEST-$$")
    cat >"$T/run-console.sh" <<EOF
#!/usr/bin/env bash
LANG=C.UTF-8 TERM=screen-256color '$GATEHOUSECTL' --socket '${SOCK:?start_console: SOCK}' 2>'$T/console.err'
echo "exit \$?" >'$T/console.exit'
exec sleep 600
EOF
    "${TM[@]}" kill-server 2>/dev/null
    "${TM[@]}" -f /dev/null new-session -d -x "$cols" -y "$rows" "bash '$T/run-console.sh'" ||
        gh_fatal "cannot start tmux"
    TMUX_PID=$("${TM[@]}" display-message -p '#{pid}')
    echo "tmux $TMUX_PID $(gh_starttime "$TMUX_PID")" >>"$T/.pids"
    GH_TMPDIRS+=("$("${TM[@]}" display-message -p '#{socket_path}')")
}

# screen: the console's screen now (also left in $T/screen.txt).
screen() { "${TM[@]}" capture-pane -p >"$T/screen.txt"; cat "$T/screen.txt"; }
# keys KEY...: tmux send-keys to the console.
keys() { "${TM[@]}" send-keys "$@"; }
# wait_screen REGEX [TIMEOUT_S]: until the screen matches (extended regex);
# on timeout prints the last screen and returns 1.
wait_screen() {
    local limit i
    limit=$(awk -v t="${2:-5}" -v s="$GH_TIMEOUT_SCALE" 'BEGIN { print int(t * s * 10) }')
    for ((i = 0; i <= limit; i++)); do
        if screen | grep -qE -- "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "wait_screen: /$1/ not on screen after ${2:-5} s; the screen:"
    sed 's/^/    | /' "$T/screen.txt"
    return 1
}

# ---------------------------------------------------------------------------
# Checks. Each prints "ok - NAME" or "FAIL - NAME: why", records the result in
# $GH_RESULTS (a file, so checks in subshells count), and returns 0 or 1.

gh_pass() {
    echo "ok   - $1"
    echo "PASS $1" >>"$GH_RESULTS"
    return 0
}

gh_fail() {
    echo "FAIL - $1: $2"
    echo "FAIL $1" >>"$GH_RESULTS"
    return 1
}

gh_clip() { # shorten a value for a message
    local s=$1
    if [ "${#s}" -gt 400 ]; then
        s="${s:0:400}...(${#1} chars)"
    fi
    printf '%s' "$s"
}

# check NAME CMD...: passes if CMD exits 0 (run in this shell; output kept
# in $T/.check.out and shown on failure).
check() {
    local name=${1:?usage: check NAME CMD...} rc
    shift
    "$@" >"$T/.check.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        gh_pass "$name"
        return 0
    fi
    gh_fail "$name" "\`$*\` exited $rc"
    sed -n '1,20s/^/    | /p' "$T/.check.out"
    return 1
}

# check_fail NAME CMD...: passes if CMD exits non-zero.
check_fail() {
    local name=${1:?usage: check_fail NAME CMD...} rc
    shift
    "$@" >"$T/.check.out" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        gh_pass "$name"
        return 0
    fi
    gh_fail "$name" "\`$*\` succeeded but should have failed"
    sed -n '1,20s/^/    | /p' "$T/.check.out"
    return 1
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$#" -ne 3 ]; then
        gh_fail "${1:-check_eq}" "check_eq needs NAME EXPECTED ACTUAL (got $# arguments)"
        return 1
    fi
    if [ "$2" = "$3" ]; then
        gh_pass "$1"
        return 0
    fi
    gh_fail "$1" "expected '$(gh_clip "$2")', got '$(gh_clip "$3")'"
}

# check_match NAME REGEX STRING: STRING matches the extended REGEX.
check_match() {
    if [ "$#" -ne 3 ]; then
        gh_fail "${1:-check_match}" "check_match needs NAME REGEX STRING (got $# arguments)"
        return 1
    fi
    if [[ $3 =~ $2 ]]; then
        gh_pass "$1"
        return 0
    fi
    gh_fail "$1" "/$2/ does not match '$(gh_clip "$3")'"
}

# check_no_match NAME REGEX STRING: STRING does not match REGEX.
check_no_match() {
    if [ "$#" -ne 3 ]; then
        gh_fail "${1:-check_no_match}" "check_no_match needs NAME REGEX STRING (got $#)"
        return 1
    fi
    if [[ $3 =~ $2 ]]; then
        gh_fail "$1" "/$2/ matches '$(gh_clip "$3")' but must not"
        return 1
    fi
    gh_pass "$1"
}

# gh_finish: print "NAME: N passed, N failed" and end the test; exit 1 if any
# check failed or if no check ran at all (a test that asserts nothing is
# broken).
gh_finish() {
    local p f
    p=$(grep -c '^PASS' "$GH_RESULTS")
    f=$(grep -c '^FAIL' "$GH_RESULTS")
    GH_FINISHED=1
    if [ $((p + f)) -eq 0 ]; then
        echo "FAIL - $GH_TEST ran no checks"
        echo "FAIL no-checks" >>"$GH_RESULTS"
        f=1
    fi
    echo "$GH_TEST: $p passed, $f failed"
    if [ "$f" -ne 0 ]; then
        exit 1
    fi
    exit 0
}
