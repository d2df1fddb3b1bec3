# lib-bench.sh: shell functions for benchmark scripts built on gatehouse-bench.
#
# Source it (bash): . bench/lib-bench.sh
#
# Owns: running gatehouse-bench and keeping its RESULT lines, interleaved
# rounds, medians, ratios, and server-side figures (CPU time per request
# from /proc/PID/stat, peak RSS from VmHWM). It never starts or stops a
# server: the caller does, and passes PIDs in.
#
# Results layout: one file per configuration name, OUTDIR/NAME.results, one
# RESULT line per round (gatehouse-bench's own keys, plus srv_* keys when a
# server PID was given); full output of each run in OUTDIR/NAME.rN.log.
#
# Typical use (bench/run.sh):
#   GB_BIN=$build/bench/gatehouse-bench; GB_OUT=$(mktemp -d)
#   gw()    { GB_SERVER_PIDS=$gw_pid    gb_bench gw    --url https://127.0.0.1:8443/ ...; }
#   peer()  { GB_SERVER_PIDS=$peer_pid  gb_bench peer  --url https://127.0.0.1:9443/ ...; }
#   gb_interleave 5 gw peer            # gw peer gw peer ... (A B A B, not A A B B)
#   gb_summary rps p50_us p99_us srv_cpu_us_per_req
#   gb_ratio "$(gb_median gw rps)" "$(gb_median peer rps)"
#
# Conventions: functions print their answer on stdout, diagnostics on
# stderr, and return non-zero on failure. Variables: GB_BIN (gatehouse-bench
# binary), GB_OUT (results directory), GB_PAUSE (seconds between runs,
# default 1), GB_SERVER_PIDS (space-separated PIDs measured by gb_bench).

# PID lists ($GB_SERVER_PIDS) and `set -- $rest` split on purpose.
# shellcheck disable=SC2086
: "${GB_PAUSE:=1}"

gb_die() {
    echo "lib-bench: $*" >&2
    return 1
}

# gb_field LINE KEY -> value of KEY=value in a RESULT line (empty if absent).
gb_field() {
    local line=$1 key=$2 kv
    for kv in $line; do
        if [ "${kv%%=*}" = "$key" ]; then
            printf '%s\n' "${kv#*=}"
            return 0
        fi
    done
    return 1
}

# gb_result < output -> the RESULT line (the last one if several).
gb_result() {
    grep '^RESULT ' | tail -n 1
}

# gb_clk_tck -> clock ticks per second used by /proc/PID/stat.
gb_clk_tck() {
    getconf CLK_TCK
}

# gb_cpu_ticks_split PID... -> "UTIME STIME" in clock ticks, each summed over
# the PIDs (all threads of each process; field 2, comm, may contain spaces,
# so the fields are counted from the last ')').
gb_cpu_ticks_split() {
    local u=0 s=0 pid stat rest
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { gb_die "no process $pid"; return 1; }
        rest=${stat##*) }
        # rest starts at field 3 (state); utime is field 14, stime 15.
        set -- $rest
        u=$((u + ${12}))
        s=$((s + ${13}))
    done
    echo "$u $s"
}

# gb_cpu_ticks PID... -> utime+stime in clock ticks, summed over the PIDs.
gb_cpu_ticks() {
    local us
    us=$(gb_cpu_ticks_split "$@") || return 1
    set -- $us
    echo $(($1 + $2))
}

# gb_peak_rss_kb PID... -> VmHWM (peak resident set) in kB, summed.
gb_peak_rss_kb() {
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        [ -n "$v" ] || { gb_die "no VmHWM for $pid"; return 1; }
        total=$((total + v))
    done
    echo "$total"
}

# gb_rss_kb PID... -> current VmRSS in kB, summed.
gb_rss_kb() {
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        [ -n "$v" ] || { gb_die "no VmRSS for $pid"; return 1; }
        total=$((total + v))
    done
    echo "$total"
}

# gb_pid_tree PID -> PID and all its descendants (e.g. nginx master + workers).
gb_pid_tree() {
    local pid=$1 child
    echo "$pid"
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        gb_pid_tree "$child"
    done
}

# gb_cpu_us_per_req TICKS_BEFORE TICKS_AFTER REQUESTS -> server CPU
# microseconds per request (3 decimals), "n/a" when REQUESTS is 0.
gb_cpu_us_per_req() {
    local before=$1 after=$2 reqs=$3 hz
    hz=$(gb_clk_tck)
    awk -v b="$before" -v a="$after" -v r="$reqs" -v hz="$hz" \
        'BEGIN { if (r <= 0) { print "n/a"; exit } printf "%.3f\n", (a - b) / hz * 1e6 / r }'
}

# gb_ratio A B [DECIMALS] -> A/B, "n/a" when B is 0 or either is empty.
gb_ratio() {
    awk -v a="$1" -v b="$2" -v d="${3:-2}" \
        'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "n/a"; exit }
                 printf "%." d "f\n", a / b }'
}

# gb_arg_value NAME ARGS... -> value following option NAME in ARGS.
gb_arg_value() {
    local name=$1
    shift
    while [ $# -gt 0 ]; do
        if [ "$1" = "$name" ] && [ $# -ge 2 ]; then
            echo "$2"
            return 0
        fi
        shift
    done
    return 1
}

# gb_bench NAME ARGS... -> runs "$GB_BIN" --label NAME ARGS, keeps the full
# output in $GB_OUT/NAME.rN.log and appends the RESULT line to
# $GB_OUT/NAME.results. With GB_SERVER_PIDS set, adds to that line
# srv_cpu_us_per_req= (server CPU during the measured window, sampled after
# --warmup, divided by the window's requests; also split into
# srv_user_us_per_req= and srv_sys_us_per_req=) and srv_hwm_kb= (VmHWM after
# the run). Prints the RESULT line. Returns gatehouse-bench's exit code, or
# 1 when it printed no RESULT line.
gb_bench() {
    local name=$1
    shift
    if [ -z "${GB_BIN:-}" ] || [ ! -x "$GB_BIN" ]; then
        gb_die "GB_BIN not set or not executable"
        return 1
    fi
    [ -n "${GB_OUT:-}" ] || { gb_die "GB_OUT not set"; return 1; }
    mkdir -p "$GB_OUT" || return 1
    local n log rc line warm tfile before after reqs cpu hwm sampler=
    n=$(($( { wc -l < "$GB_OUT/$name.results"; } 2>/dev/null || echo 0) + 1))
    log="$GB_OUT/$name.r$n.log"
    tfile="$GB_OUT/.$name.r$n.t0"
    warm=$(gb_arg_value --warmup "$@") || warm=0
    if [ -n "${GB_SERVER_PIDS:-}" ]; then
        # Sample the server's CPU when the warmup ends, in the background.
        ( sleep "$warm"; gb_cpu_ticks_split $GB_SERVER_PIDS > "$tfile" ) &
        sampler=$!
    fi
    "$GB_BIN" --label "$name" "$@" > "$log" 2>&1
    rc=$?
    if [ -n "$sampler" ]; then
        wait "$sampler" # only our sampler: the caller's servers may be jobs too
    fi
    line=$(gb_result < "$log")
    if [ -z "$line" ]; then
        gb_die "$name: no RESULT line (exit $rc), see $log"
        tail -n 5 "$log" >&2
        return 1
    fi
    if [ -n "${GB_SERVER_PIDS:-}" ]; then
        before=$(cat "$tfile" 2>/dev/null)
        after=$(gb_cpu_ticks_split $GB_SERVER_PIDS) || after=
        hwm=$(gb_peak_rss_kb $GB_SERVER_PIDS) || hwm=
        reqs=$(gb_field "$line" reqs)
        local bu bs au as usr=n/a sys=n/a
        cpu=n/a
        if [ -n "$before" ] && [ -n "$after" ]; then
            read -r bu bs <<<"$before"
            read -r au as <<<"$after"
            cpu=$(gb_cpu_us_per_req $((bu + bs)) $((au + as)) "$reqs")
            usr=$(gb_cpu_us_per_req "$bu" "$au" "$reqs")
            sys=$(gb_cpu_us_per_req "$bs" "$as" "$reqs")
        fi
        line="$line srv_cpu_us_per_req=$cpu srv_user_us_per_req=$usr srv_sys_us_per_req=$sys"
        line="$line srv_hwm_kb=${hwm:-n/a}"
        rm -f "$tfile"
    fi
    echo "$line" >> "$GB_OUT/$name.results"
    echo "$line"
    return $rc
}

# gb_interleave ROUNDS FUNC... -> runs the functions in interleaved rounds
# (A B C A B C ...) so slow drift of the machine (thermal, other load) hits
# every configuration alike; each FUNC gets the round number as $1 and is
# expected to call gb_bench. Sleeps GB_PAUSE seconds between runs. Returns
# non-zero if any run failed (all rounds still run).
gb_interleave() {
    local rounds=$1 r f failed=0
    shift
    for r in $(seq 1 "$rounds"); do
        for f in "$@"; do
            echo "== round $r/$rounds: $f" >&2
            "$f" "$r" > /dev/null || { echo "lib-bench: $f round $r failed" >&2; failed=1; }
            sleep "$GB_PAUSE"
        done
    done
    return $failed
}

# gb_values NAME KEY -> the KEY values of every round of NAME, one a line.
gb_values() {
    local f="$GB_OUT/$1.results" line
    [ -f "$f" ] || { gb_die "no results for $1"; return 1; }
    while IFS= read -r line; do
        gb_field "$line" "$2"
    done < "$f"
}

# gb_median NAME KEY -> median of KEY over NAME's rounds (mean of the two
# middle values for an even count); non-numeric values (n/a) are skipped.
gb_median() {
    gb_values "$1" "$2" | grep -E '^-?[0-9]+(\.[0-9]+)?$' | sort -g |
        awk '{ v[NR] = $1 } END {
                 if (NR == 0) { print "n/a"; exit }
                 if (NR % 2) { m = v[(NR + 1) / 2] } else { m = (v[NR / 2] + v[NR / 2 + 1]) / 2 }
                 if (m == int(m)) { printf "%d\n", m } else { printf "%.3f\n", m } }'
}

# gb_summary KEY... -> a table: one row per NAME found in $GB_OUT, the
# number of rounds and the median of each KEY.
gb_summary() {
    local f name key
    printf '%-24s %6s' name rounds
    for key in "$@"; do
        printf ' %18s' "$key"
    done
    printf '\n'
    for f in "$GB_OUT"/*.results; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .results)
        printf '%-24s %6s' "$name" "$(wc -l < "$f")"
        for key in "$@"; do
            printf ' %18s' "$(gb_median "$name" "$key")"
        done
        printf '\n'
    done
}

# gb_compare KEY BASE NAME... -> median KEY of each NAME and its ratio to
# BASE's median ("x" factor), e.g. gb_compare rps nginx gw haproxy.
gb_compare() {
    local key=$1 base=$2 name b v
    shift 2
    b=$(gb_median "$base" "$key")
    printf '%-24s %14s %10s\n' name "$key" "vs $base"
    for name in "$base" "$@"; do
        v=$(gb_median "$name" "$key")
        printf '%-24s %14s %9sx\n' "$name" "$v" "$(gb_ratio "$v" "$b")"
    done
}

# gb_free_port -> a TCP port on 127.0.0.1 that was free a moment ago.
gb_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# gb_wait_port PORT [SECONDS] -> waits until 127.0.0.1:PORT accepts TCP.
gb_wait_port() {
    local port=$1 limit=${2:-10} i=0
    while [ "$i" -lt $((limit * 10)) ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    gb_die "127.0.0.1:$port not accepting after ${limit}s"
}
