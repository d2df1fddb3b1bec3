#!/usr/bin/env bash
# cpu-breakdown.sh: where a running gateway's CPU goes, by component.
#
#   bash bench/cpu-breakdown.sh PID [SECONDS] [US_PER_REQUEST]
#
# Samples the gatehouse process PID with `perf record -F 2000` for SECONDS
# (default 2) while you drive load at it (e.g. gatehouse-bench in another
# shell), then groups the samples by thread and by library or symbol
# prefix into the components of docs/BENCHMARKS.md ("Where a keep-alive
# request's CPU goes"). With US_PER_REQUEST (server CPU per request from
# the same kind of run, e.g. bench/peers' "server CPU µs/req") it also
# prints each component's share in µs per request. Prints a Markdown table.
# Owns: one temporary directory, removed at exit. Needs perf and root (or
# perf_event_paranoid <= 1). Benchmarks are not tests: nothing is asserted.
set -euo pipefail
pid=${1:?usage: cpu-breakdown.sh PID [SECONDS] [US_PER_REQUEST]}
secs=${2:-2}
us=${3:-}
command -v perf >/dev/null || { echo "cpu-breakdown: perf not found (apt-get install linux-perf)" >&2; exit 1; }
kill -0 "$pid" 2>/dev/null || { echo "cpu-breakdown: no process $pid" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perf record -q -F 2000 -p "$pid" -o "$tmp/perf.data" -- sleep "$secs" >/dev/null 2>&1
perf report -i "$tmp/perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null |
    awk -v us="$us" '
function cat(comm, dso, sym) {
    if (comm == "gh-logwriter" || comm == "gh-checkpoint")
        return "decision log: writer thread (SQLite insert, 6 indexes, hash chain, commit, fsync) + WAL checkpointer"
    if (comm != "gh-worker") return "other threads (control, key fetch)"
    if (dso ~ /kernel/) return "kernel on the workers: TCP on loopback both sides, epoll, wake-ups and preemption"
    if (dso ~ /^libc/) return "libc on the workers: copies, locks, formatting"
    if (dso ~ /^lib(ssl|crypto)/ || sym ~ /^(gw_transport|ra_)/)
        return "TLS record crypto and framing (BoringSSL)"
    if (dso ~ /^libhttp_parser/ || sym ~ /^(gw_http|on_)/)
        return "HTTP parsing: head scanner + http-parser, request and response"
    if (dso ~ /^libevent/) return "libevent"
    if (sym ~ /^(az_pol|pol_)/ || sym ~ /policy/) return "policy evaluation"
    if (sym ~ /^(az_|gw_authz|gw_revset|gw_session)/ || sym ~ /token|bearer/)
        return "authz: bearer syntax, token cache, binding, session, revocation lookup"
    if (sym ~ /^(db_log|gw_log|row_request|row_base|copy_str|terminate_fields)/)
        return "building and handing the row to the writer (worker side)"
    if (sym ~ /^gh_pool/) return "buffer pools (gateway/base/pool.c)"
    return "proxy: connection state machine, upstream pool, header rewriting"
}
/^ +[0-9.]+%/ {
    pct = $1; sub(/%/, "", pct)
    comm = $2; dso = $3
    sym = $0; sub(/^.*\[[.k]\] +/, "", sym)
    c = cat(comm, dso, sym)
    share[c] += pct
}
END {
    if (us != "") { print "| component | share | ≈ µs per request |"; print "| --- | --- | --- |" }
    else { print "| component | share |"; print "| --- | --- |" }
    n = 0
    for (c in share) keys[++n] = c
    for (i = 1; i <= n; i++)            # sort by share, descending
        for (j = i + 1; j <= n; j++)
            if (share[keys[j]] > share[keys[i]]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
    for (i = 1; i <= n; i++) {
        c = keys[i]
        if (us != "") printf "| %s | %.1f %% | %.1f |\n", c, share[c], share[c] * us / 100
        else printf "| %s | %.1f %% |\n", c, share[c]
    }
}'
