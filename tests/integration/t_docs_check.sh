#!/usr/bin/env bash
# Docs check (issue 7): the reference pages cannot drift from the code.
#
#   1. every config key the loader accepts (gateway/config.c's key tables,
#      walked from top_sec the way the loader walks them) is documented in
#      docs/CONFIG.md as `section.key` (lists of mappings as `routes[].key`),
#      and every key docs/CONFIG.md documents exists in the code;
#   2. every reason code name in gateway/base/reason.h is in the reason
#      table of docs/DECISION-LOG.md, and every backticked name in that table
#      is a reason code (a reason table is a markdown table whose first
#      header cell mentions "reason" or "code"; its first column holds the
#      names);
#   3. relative links in README.md and docs/*.md point at files that exist.
#
# The extraction is deliberately from the source text, not from a list kept
# in this file, so a new key or reason code fails this test until it is
# documented.
source "$(dirname "$0")/lib.sh"
gh_init docs_check "$@"

CONFIG_C=$GH_SRC/gateway/config.c
CONFIG_MD=$GH_SRC/docs/CONFIG.md
REASON_H=$GH_SRC/gateway/base/reason.h
DLOG_MD=$GH_SRC/docs/DECISION-LOG.md

# ---------------------------------------------------------------------------
# 1. Config keys.

# Prints "leaf NAME" and "container NAME" lines for every key of config.c,
# e.g. "leaf server.listen", "container routes[].upstream",
# "leaf routes[].upstream.url". The loader's tables look like
#   static const struct key tls_keys[] = { KS("cert", ...), KF("min_version", fn), ... };
#   static const struct section tls_sec = {tls_keys, NKEYS(tls_keys), post_tls};
#   KM0("tls", &tls_sec) / KM("issuer", struct gw_config, issuer, &issuer_sec)
#   KF("routes", fn_routes)  where fn_routes walks &route_sec over a Y_SEQ
#   {"max_body_bytes", K_I64, ...}  and  {ACK_KEY, K_BOOL, ...} (#define ACK_KEY "...")
config_keys() {
    awk '
    function strip(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    /^#define [A-Z_]+ "[^"]*"/ {
        n = $2; v = $0; sub(/^#define [A-Z_]+ "/, "", v); sub(/".*$/, "", v); def[n] = v
    }
    # key tables
    /^static const struct key [a-z_0-9]+\[\] = \{/ {
        t = $0; sub(/^static const struct key /, "", t); sub(/\[\].*$/, "", t)
        intable = 1; nkeys[t] = 0; next
    }
    intable && /^\};/ { intable = 0; next }
    intable {
        line = $0; name = ""; kind = "leaf"; child = ""; fn = ""
        if (match(line, /K[A-Z0-9]*\("[^"]+"/)) {
            m = substr(line, RSTART, RLENGTH); macro = m; sub(/\(.*$/, "", macro)
            name = m; sub(/^[^"]*"/, "", name); sub(/"$/, "", name)
            if (macro == "KM" || macro == "KM0") {
                kind = "map"
                if (match(line, /&[a-z_0-9]+_sec/)) child = substr(line, RSTART + 1, RLENGTH - 1)
            } else if (macro == "KF") {
                f = line; sub(/^[^,]*,[ \t]*/, "", f); sub(/\).*$/, "", f); fn = strip(f)
                kind = "fn"
            }
        } else if (match(line, /^[ \t]*\{[ \t]*"[^"]+"/)) {
            m = substr(line, RSTART, RLENGTH); name = m; sub(/^[^"]*"/, "", name); sub(/"$/, "", name)
        } else if (match(line, /^[ \t]*\{[ \t]*[A-Z_]+[ \t]*,/)) {
            m = substr(line, RSTART, RLENGTH); sub(/^[ \t]*\{[ \t]*/, "", m); sub(/[ \t]*,$/, "", m)
            name = (m in def) ? def[m] : ""
            if (name == "") { print "error unresolved key name " m; next }
        } else {
            next
        }
        k = ++nkeys[t]; kname[t, k] = name; kkind[t, k] = kind; kchild[t, k] = child; kfn[t, k] = fn
        next
    }
    # sections
    /^static const struct section [a-z_0-9]+ = \{/ {
        s = $0; sub(/^static const struct section /, "", s); sub(/ = .*$/, "", s)
        tb = $0; sub(/^[^{]*\{[ \t]*/, "", tb); sub(/[ \t]*,.*$/, "", tb)
        sec[s] = tb; next
    }
    # function bodies: which section a K_FN handler walks, and whether over a list
    # (a prototype ends with ";" before any "{" line: not a body)
    /^static void fn_[a-z_0-9]+\(/ {
        f = $0; sub(/^static void /, "", f); sub(/\(.*$/, "", f); pending = f
        if ($0 ~ /;[ \t]*$/) pending = ""
        next
    }
    pending != "" && /;[ \t]*$/ && cur == "" { pending = ""; next }
    pending != "" && /^\{/ { cur = pending; pending = ""; next }
    cur != "" && /^\}/ { cur = ""; next }
    cur != "" {
        if (match($0, /&[a-z_0-9]+_sec/) && !(cur in fnsec)) fnsec[cur] = substr($0, RSTART + 1, RLENGTH - 1)
        if ($0 ~ /Y_SEQ/) fnseq[cur] = 1
    }
    function walk(s, prefix, depth,    t, i, nm, c) {
        if (depth > 8) { print "error section nesting too deep at " s; return }
        if (!(s in sec)) { print "error unknown section " s; return }
        t = sec[s]
        if (!(t in nkeys)) { print "error unknown key table " t; return }
        for (i = 1; i <= nkeys[t]; i++) {
            nm = prefix kname[t, i]
            if (kkind[t, i] == "map") {
                print "container " nm; walk(kchild[t, i], nm ".", depth + 1)
            } else if (kkind[t, i] == "fn" && (kfn[t, i] in fnsec)) {
                c = fnsec[kfn[t, i]]
                print "container " nm
                walk(c, nm ((kfn[t, i] in fnseq) ? "[]." : "."), depth + 1)
            } else {
                print "leaf " nm
            }
        }
    }
    END { walk("top_sec", "", 0) }
    ' "$CONFIG_C"
}

# Every `name` in the first column of the rows of tables whose header's first
# cell is "Key" (docs/CONFIG.md's key tables).
doc_keys() {
    awk '
    /^\|[ \t]*Key[ \t]*\|/ { intab = 1; next }
    intab && !/^\|/ { intab = 0; next }
    intab && /^\|[ \t]*-/ { next }
    intab {
        c = $0; sub(/^\|[ \t]*/, "", c); sub(/[ \t]*\|.*$/, "", c)
        while (match(c, /`[^`]+`/)) { print substr(c, RSTART + 1, RLENGTH - 2); c = substr(c, RSTART + RLENGTH) }
    }
    ' "$1"
}

code_out=$(config_keys)
check_eq "config.c key tables parse cleanly" "" "$(grep "^error" <<<"$code_out")"
code_leaves=$(printf '%s\n' "$code_out" | awk '$1 == "leaf" {print $2}' | sort -u)
code_all=$(printf '%s\n' "$code_out" | awk '$1 == "leaf" || $1 == "container" {print $2}' | sort -u)
n_leaves=$(printf '%s\n' "$code_leaves" | grep -c .)
# A parser that silently finds nothing must not pass: the loader has dozens of keys.
check "found the loader's keys ($n_leaves leaf keys)" test "$n_leaves" -ge 40
for k in server.listen tls.client_ca 'routes[].require_binding' 'routes[].upstream.url' \
    routes decision_log.mode admin.socket policy trusted_proxies; do
    check "parser sees \`$k\`" grep -qxF -- "$k" <<<"$code_all"
done

check "docs/CONFIG.md exists" test -f "$CONFIG_MD"
documented=$(doc_keys "$CONFIG_MD" | sort -u)
missing=$(comm -23 <(printf '%s\n' "$code_leaves") <(printf '%s\n' "$documented"))
check_eq "every config key is documented in docs/CONFIG.md" "" "$missing"
unknown=$(comm -23 <(printf '%s\n' "$documented") <(printf '%s\n' "$code_all"))
check_eq "docs/CONFIG.md documents no key the loader lacks" "" "$unknown"

# ---------------------------------------------------------------------------
# 2. Reason codes.

reasons=$(grep -oE 'X\(GH_R_[A-Z0-9_]+, *"[a-z0-9_]+"' "$REASON_H" | sed -E 's/.*"([a-z0-9_]+)"$/\1/' | sort -u)
n_reasons=$(printf '%s\n' "$reasons" | grep -c .)
check "found the reason codes in reason.h ($n_reasons)" test "$n_reasons" -ge 30
if check "docs/DECISION-LOG.md exists" test -f "$DLOG_MD"; then
    table_names=$(awk '
        function first(l,   c) { c = l; sub(/^\|[ \t]*/, "", c); sub(/[ \t]*\|.*$/, "", c); return c }
        /^\|/ && !intab {
            hdr = tolower(first($0)); intab = 1; reasontab = (hdr ~ /reason|code/); next
        }
        intab && !/^\|/ { intab = 0; next }
        intab && /^\|[ \t]*:?-/ { next }
        intab && reasontab {
            c = first($0)
            while (match(c, /`[^`]+`/)) { print substr(c, RSTART + 1, RLENGTH - 2); c = substr(c, RSTART + RLENGTH) }
        }
    ' "$DLOG_MD" | sort -u)
    n_table=$(printf '%s\n' "$table_names" | grep -c .)
    check "DECISION-LOG.md has a reason table ($n_table names)" test "$n_table" -ge 1
    undocumented=$(comm -23 <(printf '%s\n' "$reasons") <(printf '%s\n' "$table_names"))
    check_eq "every reason code is in DECISION-LOG.md's reason table" "" "$undocumented"
    bogus=$(comm -23 <(printf '%s\n' "$table_names") <(printf '%s\n' "$reasons"))
    check_eq "every name in the reason table is a reason code in reason.h" "" "$bogus"
fi

# ---------------------------------------------------------------------------
# 3. Relative links.

broken=""
for md in "$GH_SRC/README.md" "$GH_SRC"/docs/*.md "$GH_SRC"/examples/*.md; do
    [ -f "$md" ] || continue
    base=$(dirname "$md")
    while read -r target; do
        target=${target%%#*}
        [ -n "$target" ] || continue
        case $target in http://* | https://* | mailto:*) continue ;; esac
        if [ ! -e "$base/$target" ]; then
            broken="$broken ${md#"$GH_SRC"/}->$target"
        fi
    done < <(grep -oE '\]\([^)[:space:]]+\)' "$md" | sed -E 's/^\]\((.*)\)$/\1/')
done
check_eq "relative links in README.md, docs/ and examples/ resolve" "" "${broken# }"

gh_finish
