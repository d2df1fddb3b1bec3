#!/usr/bin/env bash
# t_upstream_pool.sh: the upstream keep-alive pool (issue 8). A request is
# served over an idle pooled connection when there is one; a released
# connection is kept while the worker's pool for that route holds fewer than
# routes[].upstream.pool_size, and closed otherwise; pool_size 0 means a new
# connection per request. The gateway's own count
# (gatehouse_upstream_connections_opened_total, /v1/stats upstream.*) must
# agree with what the real upstream saw: gh-upstream logs "conn=ID" for every
# request, so distinct IDs = connections the gateway opened.
# shellcheck disable=SC2154,SC2034 # up_PORT from start_upstream; GW_ROUTES_YAML is read by write_gw_config
. "$(dirname "$0")/lib.sh"
gh_init upstream_pool "$@"

start_upstream up
# Slow enough that N requests started together overlap even on a loaded CI
# machine (curl start + TLS handshake is tens of ms).
SLOW="/slow?ms=2000"

distinct_conns() { # how many upstream connections carried requests so far
    sed -n 's/.* conn=\([0-9][0-9]*\) req=.*/\1/p' "$T/up.requests" | sort -u | wc -l
}
metric_opened() {
    curl -sS --max-time 10 --unix-socket "$GW_SOCK" http://gw/metrics |
        sed -n 's/^gatehouse_upstream_connections_opened_total \([0-9][0-9]*\)$/\1/p'
}
stats_opened() {
    curl -sS --max-time 10 --unix-socket "$GW_SOCK" http://gw/v1/stats | json_get '.upstream.connections_opened'
}
parallel_get() { # N PATH: N client connections at once, each one request; all must get 200
    local n=$1 path=$2 i pids=() bad=0
    for i in $(seq "$n"); do
        ccurl alice -o /dev/null -w '%{http_code}\n' "$(gw_url "$path")" >"$T/par.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || bad=1
    done
    for i in $(seq "$n"); do
        [ "$(cat "$T/par.$i")" = 200 ] || bad=1
    done
    return $bad
}
serial_get() { # N PATH: N client connections one after another, each one request
    local i
    for i in $(seq "$1"); do
        [ "$(ccurl alice -o /dev/null -w '%{http_code}' "$(gw_url "$2")")" = 200 ] || return 1
    done
}
restart_gw() { # POOL_SIZE|default WORKERS: a fresh gateway and an empty upstream log
    local pool=$1 workers=$2 extra=""
    if [ -n "$(bg_pid gw 2>/dev/null)" ]; then
        stop_bg gw
    fi
    [ "$pool" = default ] || extra="
      pool_size: $pool"
    GW_ROUTES_YAML="routes:
  - id: app
    host: \"*\"
    path_prefix: \"/\"
    authz: false
    upstream:
      url: \"http://127.0.0.1:$up_PORT\"$extra"
    write_gw_config "$T/gw.yaml"
    sed -i "s/^  workers: .*/  workers: $workers/" "$T/gw.yaml"
    rm -f "$T"/gatehouse.db*
    : >"$T/up.requests"
    start_gw "$T/gw.yaml"
}

# --- pool_size 2, one worker: the cap is exact ------------------------------
restart_gw 2 1
check "5 overlapping requests are all served" parallel_get 5 "$SLOW"
check_eq "5 overlapping requests need 5 upstream connections" 5 "$(distinct_conns)"
check "5 requests one after another are served" serial_get 5 /hello
check_eq "requests one after another reuse a pooled connection (none opened)" 5 "$(distinct_conns)"
check_eq "gateway counts the 5 connections it opened (metrics)" 5 "$(metric_opened)"
check_eq "gateway counts the 5 connections it opened (/v1/stats)" 5 "$(stats_opened)"
# 3 of the first 5 were closed on release (pool full at 2): a second burst
# of 5 takes the 2 pooled connections and opens 3.
check "a second burst of 5 is served" parallel_get 5 "$SLOW"
check_eq "the second burst reuses the 2 pooled connections and opens 3" 8 "$(distinct_conns)"
check_eq "metrics agree with the upstream (8 opened)" 8 "$(metric_opened)"

# --- pool_size 0: a new connection per request ------------------------------
restart_gw 0 1
check "4 requests without a pool are served" serial_get 4 /hello
check_eq "pool_size 0 opens one upstream connection per request" 4 "$(distinct_conns)"
check_eq "metrics count 4 opened" 4 "$(metric_opened)"

# --- the default: a burst wider than the old default (32) is kept -----------
# One worker, two bursts of 40 overlapping requests: the second must find
# every connection of the first in the pool. With a pool smaller than 40 the
# surplus is closed on release and reopened by the next burst (churn: a
# connect per request and a TIME_WAIT socket on the gateway each time).
restart_gw default 1
check "40 overlapping requests are served" parallel_get 40 "$SLOW"
first=$(distinct_conns)
check_match "40 overlapping requests opened at most 40 connections" '^([1-9]|[1-3][0-9]|40)$' "$first"
check "a second burst of 40 is served" parallel_get 40 "$SLOW"
check_match "the second burst reuses the pool: at most 40 connections in all" \
    '^([1-9]|[1-3][0-9]|40)$' "$(distinct_conns)"
second=$(distinct_conns)
check "20 requests one after another are served" serial_get 20 /hello
check_eq "no connection opened for 20 more requests" "$second" "$(distinct_conns)"
check_eq "metrics agree with the upstream" "$second" "$(metric_opened)"
check_eq "no upstream error counted" 0 \
    "$(curl -sS --max-time 10 --unix-socket "$GW_SOCK" http://gw/v1/stats | json_get '.upstream.errors')"

gh_finish
