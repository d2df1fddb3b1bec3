#!/usr/bin/env bash
# The decision log through the real gateway (issue 4): exactly one row per
# request, every answered request durable across kill -9 in strict mode,
# audit verify catching edits, deletions and truncation, a full disk failing
# closed (503) and recovering with no row lost, readers that do not block
# the writer, and retention that refuses to purge a broken chain (a gap or
# an edit inside the purged range must not vanish behind the anchor).
source "$(dirname "$0")/lib.sh"
gh_init decision_log
start_upstream up

gw_conf() { # file port db mode [sync]
    cat > "$1" <<YAML
server:
  listen: "127.0.0.1:$2"
  workers: 2
tls:
  cert: $PKI/server.crt
  key: $PKI/server.key
  client_ca: $PKI/client-ca.crt
routes:
  - id: app
    host: "*"
    path_prefix: /
    authz: false
    upstream:
      url: http://127.0.0.1:$up_PORT
decision_log:
  path: $3
  mode: $4
  sync: ${5:-full}
admin:
  socket: $(dirname "$3")/admin.sock
YAML
}
q() { sqlite3 "$1" "$2"; }

# backdate DB N DAYS: make rows 1..N of a log DAYS days older and recompute
# the whole chain (and the checkpoints) as if the gateway had decided them
# back then. Uses the serialization of docs/DECISION-LOG.md ("Hash chain"),
# written here independently of db/: audit verify accepting the result is
# also a check of that documentation.
backdate() {
    python3 - "$@" <<'PY'
import hashlib, sqlite3, struct, sys
path, n, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cols = [("id", 0), ("ts_us", 0), ("worker", 0), ("conn_id", 0), ("request_id", 0),
        ("session_id", 1), ("client_addr", 1), ("client_port", 0), ("cert_thumb", 1),
        ("cert_subject", 1), ("token_sub", 1), ("token_iss", 1), ("token_jti", 1),
        ("route", 1), ("method", 1), ("host", 1), ("path", 1), ("decision", 1),
        ("reason", 1), ("rule_id", 1), ("policy_version", 1), ("status", 0),
        ("bytes_in", 0), ("bytes_out", 0), ("latency_us", 0), ("detail", 1)]
con = sqlite3.connect(path)
con.text_factory = bytes  # hash TEXT as the bytes stored
trig = con.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                   "AND name = 'decisions_append_only'").fetchone()
con.execute("DROP TRIGGER IF EXISTS decisions_append_only")
con.execute("UPDATE decisions SET ts_us = ts_us - ? WHERE id <= ?", (days * 86400 * 10**6, n))
prev = bytes(32)
sel = "SELECT %s FROM decisions ORDER BY id" % ", ".join(c for c, _ in cols)
for row in con.execute(sel).fetchall():
    h = hashlib.sha256(prev + b"\x01")
    for (_, text), v in zip(cols, row):
        h.update(struct.pack(">I", len(v)) + v if text else struct.pack(">q", v))
    d = h.digest()
    con.execute("UPDATE decisions SET prev_hash = ?, row_hash = ? WHERE id = ?", (prev, d, row[0]))
    prev = d
con.execute("UPDATE chain_checkpoints SET row_hash = (SELECT row_hash FROM decisions "
            "WHERE id = row_id) WHERE row_id IN (SELECT id FROM decisions)")
if trig:
    con.execute(trig[0].decode())
con.commit()
PY
}

# --- 1. count equality: N mixed requests -> exactly N rows -------------------
P=$(free_port); mkdir -p "$T/a"; gw_conf "$T/a/gw.yaml" "$P" "$T/a/gw.db" strict
start_bg gwa "$GATEHOUSE" serve -c "$T/a/gw.yaml"
wait_log gwa "listening on" 10
URL="https://127.0.0.1:$P"
ok=0; nf=0; bad=0
for i in $(seq 1 60); do
    c=$(ccurl alice "$URL/ok/$i" -o /dev/null -w '%{http_code}'); [ "$c" = 200 ] && ok=$((ok + 1))
    c=$(ccurl alice "$URL/%2e%2e/x$i" -o /dev/null -w '%{http_code}'); [ "$c" = 400 ] && bad=$((bad + 1))
done
check_eq "60 allowed" 60 "$ok"
check_eq "60 refused as bad request" 60 "$bad"
for i in $(seq 1 30); do curl -sS --cacert "$PKI/server-ca.crt" "$URL/" -o /dev/null 2>/dev/null; done
sleep 0.5
check_eq "rows for allowed requests" 60 "$(q "$T/a/gw.db" "select count(*) from decisions where path like '/ok/%' and reason='allow' and status=200")"
check_eq "rows for 400s" 60 "$(q "$T/a/gw.db" "select count(*) from decisions where reason='http_bad_request' and status=400")"
check_eq "rows for refused handshakes" 30 "$(q "$T/a/gw.db" "select count(*) from decisions where reason='tls_no_cert'")"
check_eq "no other rows (exactly N)" 150 "$(q "$T/a/gw.db" "select count(*) from decisions where route<>'admin'")"
check_eq "the log file is owner-only" 600 "$(stat -c %a "$T/a/gw.db")"
stop_bg gwa
check "audit verify: untouched log is intact" "$GATEHOUSE" audit verify --db "$T/a/gw.db"

# --- 2. tamper evidence ---------------------------------------------------------
# An attacker with write access drops the append-only trigger first.
cp "$T/a/gw.db" "$T/edit.db"
q "$T/edit.db" "drop trigger decisions_append_only; update decisions set status=201 where id=17"
check_eq "the edit really happened" 201 "$(q "$T/edit.db" "select status from decisions where id=17")"
out=$("$GATEHOUSE" audit verify --db "$T/edit.db" 2>&1); rc=$?
check_eq "edited row: exit 1" 1 "$rc"
check_match "edited row reported with its id" "17" "$out"
cp "$T/a/gw.db" "$T/del.db"; q "$T/del.db" "drop trigger if exists decisions_append_delete; delete from decisions where id=40"
out=$("$GATEHOUSE" audit verify --db "$T/del.db" 2>&1); rc=$?
check_eq "deleted row: exit 1" 1 "$rc"
check_match "deleted row reported" "4[01]" "$out"
cp "$T/a/gw.db" "$T/tail.db"; q "$T/tail.db" "delete from decisions where id > 100"
out=$("$GATEHOUSE" audit verify --db "$T/tail.db" 2>&1); rc=$?
check_eq "truncated tail: exit 1" 1 "$rc"
check_match "truncation reported" "(trunc|checkpoint|tail)" "$out"

# --- 3. kill -9 under load in strict mode: every answered request has its row ---
# for both durability settings of strict mode (decision_log.sync full | normal)
for sync in full normal; do
P=$(free_port); rm -rf "$T/b"; mkdir -p "$T/b"; gw_conf "$T/b/gw.yaml" "$P" "$T/b/gw.db" strict "$sync"
start_bg "gwb$sync" "$GATEHOUSE" serve -c "$T/b/gw.yaml"
wait_log "gwb$sync" "listening on" 10
URL="https://127.0.0.1:$P"
loader() { # id -> appends "path" of every 200 to $T/b/ok.$1
    local n=0
    while [ $n -lt 2000 ]; do
        n=$((n + 1))
        c=$(curl -sS --max-time 5 --cacert "$PKI/server-ca.crt" --cert "$PKI/alice.crt" --key "$PKI/alice.key" \
            "$URL/crash/$1-$n" -o /dev/null -w '%{http_code}' 2>/dev/null) || break
        [ "$c" = 200 ] && echo "/crash/$1-$n" >> "$T/b/ok.$1"
    done
}
lpids=()
for k in 1 2 3 4; do loader "$k" & lpids+=($!); done
sleep 3
kill -9 "$(bg_pid "gwb$sync")"
wait "${lpids[@]}"
answered=$(cat "$T/b"/ok.* 2>/dev/null | sort -u | wc -l)
echo "sync=$sync: requests answered 200 before kill -9: $answered"
check "sync=$sync: load ran (>= 50 answered)" test "$answered" -ge 50
cat "$T/b"/ok.* | sort -u > "$T/b/answered.txt"
q "$T/b/gw.db" "select path from decisions where reason='allow'" | sort -u > "$T/b/rows.txt"
missing=$(comm -23 "$T/b/answered.txt" "$T/b/rows.txt" | wc -l)
check_eq "sync=$sync: every answered request has its row after kill -9" 0 "$missing"
check "sync=$sync: log still verifies after kill -9" "$GATEHOUSE" audit verify --db "$T/b/gw.db"
done

# --- 4. disk full: strict fails closed (503), recovers, no row lost -------------
mkdir -p "$T/full"
if mount -t tmpfs -o size=600k tmpfs "$T/full" 2>/dev/null; then
    P=$(free_port); gw_conf "$T/c.yaml" "$P" "$T/full/gw.db" strict
    sed -i "s#socket: .*#socket: $T/c-admin.sock#" "$T/c.yaml"
    start_bg gwc "$GATEHOUSE" serve -c "$T/c.yaml"
    wait_log gwc "listening on" 10
    URL="https://127.0.0.1:$P"
    got503=0
    for i in $(seq 1 4000); do
        c=$(ccurl alice "$URL/full/$i" -o /dev/null -w '%{http_code}')
        [ "$c" = 200 ] && echo "/full/$i" >> "$T/full-ok.txt"
        if [ "$c" = 503 ]; then got503=1; break; fi
    done
    check_eq "full disk: strict answers 503" 1 "$got503"
    check_match "full disk: logged loudly" "(unhealthy|fail|full)" "$(cat "$T/gwc.log")"
    mount -o remount,size=64m "$T/full"
    rec=0
    for _ in $(seq 1 50); do
        c=$(ccurl alice "$URL/after" -o /dev/null -w '%{http_code}')
        [ "$c" = 200 ] && { rec=1; break; }
        sleep 0.2
    done
    check_eq "recovers by itself once space returns" 1 "$rec"
    stop_bg gwc
    sort -u "$T/full-ok.txt" > "$T/full-ok.s"
    q "$T/full/gw.db" "select path from decisions where reason='allow'" | sort -u > "$T/full-rows.s"
    check_eq "no row lost across the full disk" 0 "$(comm -23 "$T/full-ok.s" "$T/full-rows.s" | wc -l)"
    check "log verifies after the full disk" "$GATEHOUSE" audit verify --db "$T/full/gw.db"
    umount "$T/full"
else
    check "tmpfs for the disk-full scenario (needs root and mount)" false
fi

# --- 5. readers do not block the writer ----------------------------------------
P=$(free_port); mkdir -p "$T/d"; gw_conf "$T/d/gw.yaml" "$P" "$T/d/gw.db" strict
start_bg gwd "$GATEHOUSE" serve -c "$T/d/gw.yaml"
wait_log gwd "listening on" 10
URL="https://127.0.0.1:$P"
ccurl alice "$URL/warm" -o /dev/null
# a reader holding a read transaction open for 3 s
( printf 'BEGIN;\nSELECT count(*) FROM decisions;\n'; sleep 3; printf 'COMMIT;\n' ) | sqlite3 "$T/d/gw.db" > /dev/null &
rdr=$!
sleep 0.3
t0=$(date +%s%N)
n=0; for i in $(seq 1 20); do [ "$(ccurl alice "$URL/r/$i" -o /dev/null -w '%{http_code}')" = 200 ] && n=$((n + 1)); done
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
echo "20 strict requests while a reader held a transaction: ${ms} ms"
check_eq "requests served while a reader holds a transaction" 20 "$n"
check "...without waiting for the reader (< 2500 ms for 20)" test "$ms" -lt 2500
wait "$rdr"
check_eq "their rows are committed" 20 "$(q "$T/d/gw.db" "select count(*) from decisions where path like '/r/%'")"
qout=$("$GATEHOUSE" decisions --db "$T/d/gw.db" --decision allow --limit 5 --json)
check_match "gatehouse decisions --json prints rows" '"path"' "$qout"

# --- 6. retention never purges a broken chain ----------------------------------
# The security review's case: rows 1..15 forty days old, the rest new. A gap
# or an edit among rows 1..15 must make `db retention --days 1` refuse --
# exit 1, naming the first bad row, deleting nothing -- so audit still
# reports the break. Before the fix retention anchored on row 15 and audit
# said "chain intact".
sqlite3 "$T/a/gw.db" ".backup '$T/ret.db'"
backdate "$T/ret.db" 15 40
check "backdated log verifies" "$GATEHOUSE" audit verify --db "$T/ret.db"
rows=$(q "$T/ret.db" "select count(*) from decisions")
check "more rows than the 15 old ones" test "$rows" -gt 15

cp "$T/ret.db" "$T/ret-gap.db"
q "$T/ret-gap.db" "delete from decisions where id between 5 and 7"
out=$("$GATEHOUSE" audit verify --db "$T/ret-gap.db" 2>&1); rc=$?
check_eq "gap: audit exit 1" 1 "$rc"
check_match "gap: audit names row 5" "CHAIN BROKEN at row 5" "$out"
out=$("$GATEHOUSE" db retention --db "$T/ret-gap.db" --days 1 2>&1); rc=$?
check_eq "gap: retention refuses with exit 1" 1 "$rc"
check_match "gap: retention names row 5" "retention: chain broken: rows 5\.\.7 are missing.*no rows deleted" "$out"
check_eq "gap: retention deleted nothing" $((rows - 3)) "$(q "$T/ret-gap.db" "select count(*) from decisions")"
check_eq "gap: no anchor written" 0 "$(q "$T/ret-gap.db" "select count(*) from chain_anchor")"
out=$("$GATEHOUSE" audit verify --db "$T/ret-gap.db" 2>&1); rc=$?
check_eq "gap: audit after retention still exit 1" 1 "$rc"
check_match "gap: audit after retention still names row 5" "CHAIN BROKEN at row 5" "$out"

cp "$T/ret.db" "$T/ret-edit.db"
q "$T/ret-edit.db" "drop trigger decisions_append_only; update decisions set path='/innocent' where id=9"
out=$("$GATEHOUSE" db retention --db "$T/ret-edit.db" --days 1 --batch 4 2>&1); rc=$?
check_eq "edit: retention refuses with exit 1" 1 "$rc"
check_match "edit: retention names row 9" "chain broken: row 9: content does not match its hash" "$out"
check_eq "edit: retention deleted nothing" "$rows" "$(q "$T/ret-edit.db" "select count(*) from decisions")"
out=$("$GATEHOUSE" audit verify --db "$T/ret-edit.db" 2>&1); rc=$?
check_eq "edit: audit after retention still exit 1" 1 "$rc"
check_match "edit: audit after retention still names row 9" "CHAIN BROKEN at row 9" "$out"

out=$("$GATEHOUSE" db retention --db "$T/ret.db" --days 1 --batch 4 2>&1); rc=$?
check_eq "clean: retention exit 0" 0 "$rc"
check_match "clean: retention deleted the 15 old rows" "deleted 15 rows" "$out"
check_eq "clean: the chain now starts at row 16" 16 "$(q "$T/ret.db" "select min(id) from decisions")"
out=$("$GATEHOUSE" audit verify --db "$T/ret.db" 2>&1); rc=$?
check_eq "clean: audit after retention exit 0" 0 "$rc"
check_match "clean: audit after retention intact" "chain intact: $((rows - 15)) rows checked \(after retention anchor\)" "$out"
gh_finish
