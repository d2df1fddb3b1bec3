#!/usr/bin/env bash
# bench/peers/run.sh: Gatehouse side by side with nginx and HAProxy (issue 8).
#
#   bash bench/peers/run.sh [BUILD_DIR] [--rounds N] [--secs S] [--quick]
#       [--workers W] [--idle N] [--out FILE] [--keep]
#       [--peers P,P,...] [--modes keepalive,newconn,resume,idle]
#
# Why it exists: "full zero-trust checks at the price of a plain mTLS proxy"
# is a claim about ratios, and ratios are only worth something when every
# peer runs on the same machine at the same time, against the same upstream,
# with the same PKI, the same token and the same load generator. This script
# is that one invocation.
#
# Peers, all on loopback, all in front of one gh-upstream (GET /fixed1k, a
# fixed 1 KiB body):
#   direct        the upstream itself, plain HTTP (the ceiling)
#   nginx         TLS proxy, ssl_verify_client on, no token checks
#   haproxy_jwt   HAProxy verify required + jwt_verify ES256 + typ/iss/aud/exp
#                 + RFC 8705 cnf.x5t#S256 check, every request logged
#   haproxy_mtls  HAProxy verify required only
#   gh_strict     Gatehouse, full checks (token bound to the cert, policy),
#                 decision log mode strict
#   gh_async      the same with decision log mode async
# Tokens come from the real test OpenID Provider (tests/integration/idp).
#
# Order of work: install nginx/haproxy if missing (services never started),
# make the PKI, start everything, check every peer's behaviour with curl
# (a peer that fails is still measured, and marked), measure with
# gatehouse-bench in interleaved rounds (A B C A B C ...) in keep-alive
# (-c 64), new-connection (-c 16) and resumed-session (-c 16) modes, then
# the idle-connection memory test (--idle N), then print a markdown report.
#
# Owns: one temporary directory (removed at exit unless --keep) and the
# processes it starts, which it stops by PID at exit. Must not: touch any
# address beyond loopback, stop a process it did not start, leave the
# distro's nginx/haproxy services running (it never starts them), or write
# outside its temporary directory (except the apt install and --out FILE).
#
# Runtime: about 13 minutes by default on a 2-core machine, about 5 minutes
# with --quick. Every gatehouse-bench run is bounded by -d (plus its own
# hard deadline).

# PID lists are split on purpose.
# shellcheck disable=SC2086
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/peers
build=$top/build
rounds=3 secs=10 quick=0 workers=2 idle_n="" out="" keep=0
only_peers="" only_modes=""
user_secs=""
cmdline="bash bench/peers/run.sh${*:+ $*}"

usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=${2:?}; shift 2 ;;
    --secs) user_secs=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    --workers) workers=${2:?}; shift 2 ;;
    --idle) idle_n=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    --peers) only_peers=${2:?}; shift 2 ;;
    --modes) only_modes=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "peers: unknown option $1" >&2; usage ;;
    *) build=$1; shift ;;
    esac
done
if [ -z "$idle_n" ]; then
    if [ "$quick" = 1 ]; then idle_n=2000; else idle_n=10000; fi
fi
for v in "$rounds" "$workers" "$idle_n"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "peers: not a positive integer: $v" >&2; exit 2; }
done
if [ "$quick" = 1 ]; then
    secs=3 warm=0.5 pause=0.5 idle_hold=3
else
    secs=10 warm=1 pause=1 idle_hold=5
fi
[ -n "$user_secs" ] && secs=$user_secs
[[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "peers: bad --secs $secs" >&2; exit 2; }
if [ "$idle_n" -gt 10000 ]; then
    echo "peers: --idle is at most 10000 (the machine's fd hard limit is 20000)" >&2
    exit 2
fi
build=$(cd "$build" 2>/dev/null && pwd) || { echo "peers: no build dir" >&2; exit 2; }

GH_BIN=$build/gateway/gatehouse
GB_BIN=$build/bench/gatehouse-bench
UP_BIN=$build/tests/tools/gh-upstream
IDP_DIR=$top/tests/integration/idp

# shellcheck source=../lib-bench.sh
. "$top/bench/lib-bench.sh"

die() {
    echo "peers: $*" >&2
    exit 1
}
note() {
    echo "peers: $*" >&2
}

# ---------------------------------------------------------------------------
# Processes we start: "name pid starttime" lines; stopped by PID at exit.

work=""
procs=()
declare -A spid # name -> PID of what start() started
client_pid=""
policy_rc_created=0

starttime() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    set -- $rest
    echo "${20}"
}

alive() { # pid [starttime]: running, not a zombie, and the same process
    local pid=$1 want=${2:-} stat rest
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    set -- $rest
    [ "$1" != Z ] || return 1
    [ -z "$want" ] || [ "${20}" = "$want" ]
}

# start NAME CMD...: CMD in the background, output to $work/NAME.log.
start() {
    local name=$1 pid
    shift
    "$@" >"$work/$name.log" 2>&1 </dev/null &
    pid=$!
    procs+=("$name $pid $(starttime "$pid")")
    spid[$name]=$pid
}

stop_all() {
    local entry name pid st i
    for entry in "${procs[@]}"; do
        read -r name pid st <<<"$entry"
        alive "$pid" "$st" && kill -TERM "$pid" 2>/dev/null
    done
    for entry in "${procs[@]}"; do
        read -r name pid st <<<"$entry"
        for ((i = 0; i < 50; i++)); do
            alive "$pid" "$st" || break
            sleep 0.1
        done
        if alive "$pid" "$st"; then
            note "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    procs=()
}

cleanup() {
    trap - EXIT INT TERM
    if [ -n "$client_pid" ] && alive "$client_pid"; then
        kill -TERM "$client_pid" 2>/dev/null
        wait "$client_pid" 2>/dev/null
    fi
    stop_all
    if [ "$policy_rc_created" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "$keep" = 1 ]; then
            note "kept $work"
        else
            rm -rf "$work"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_listen PORT SECONDS: until something listens on 127.0.0.1:PORT
# (checked with ss: a probe connection would be a failed, logged handshake).
wait_listen() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_grep FILE REGEX SECONDS
wait_grep() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# render TEMPLATE OUTPUT NAME=VALUE...: replace @NAME@ placeholders.
render() {
    local in=$1 outf=$2 kv v expr=()
    shift 2
    for kv in "$@"; do
        v=${kv#*=}
        v=${v//\\/\\\\}
        v=${v//|/\\|}
        v=${v//&/\\&}
        expr+=(-e "s|@${kv%%=*}@|$v|g")
    done
    sed "${expr[@]}" "$in" >"$outf" || die "cannot render $in"
    local left
    left=$(grep -v '^[[:space:]]*#' "$outf" | grep -o '@[A-Z][A-Z_]*@' | head -1)
    [ -z "$left" ] || die "unreplaced placeholder in $outf: $left"
}

# ---------------------------------------------------------------------------
# Tools: nginx and haproxy from Debian, installed when missing. The distro
# services must not start: /usr/sbin/policy-rc.d answering 101 ("action
# forbidden") makes invoke-rc.d skip them. We create it only if there is
# none, and remove it only if we created it.

install_missing() {
    local need=() before_nginx before_haproxy
    command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
    command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need ${need[*]} (apt-get install -y ${need[*]} as root)"
    note "installing ${need[*]}"
    before_nginx=$(pgrep -x nginx | tr '\n' ' ')
    before_haproxy=$(pgrep -x haproxy | tr '\n' ' ')
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# bench/peers/run.sh: no service starts during this install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_rc_created=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
    if ! "${apt[@]}" "${need[@]}" >"$work/apt.log" 2>&1; then
        apt-get update -q >>"$work/apt.log" 2>&1
        if ! "${apt[@]}" "${need[@]}" >>"$work/apt.log" 2>&1; then
            # Some releases ship nginx-light only as a transitional name.
            need=("${need[@]/nginx-light/nginx}")
            "${apt[@]}" "${need[@]}" >>"$work/apt.log" 2>&1 || {
                tail -n 20 "$work/apt.log" >&2
                die "apt-get install ${need[*]} failed"
            }
        fi
    fi
    if [ "$policy_rc_created" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        policy_rc_created=0
    fi
    # If a pre-existing policy-rc.d allowed the postinst to start a service,
    # stop that service (only if it was not running before the install).
    if [ -z "$before_nginx" ] && [ -n "$(pgrep -x nginx)" ]; then
        note "the nginx package started its service; stopping it"
        service nginx stop >/dev/null 2>&1 || invoke-rc.d nginx stop >/dev/null 2>&1
    fi
    if [ -z "$before_haproxy" ] && [ -n "$(pgrep -x haproxy)" ]; then
        note "the haproxy package started its service; stopping it"
        service haproxy stop >/dev/null 2>&1 || invoke-rc.d haproxy stop >/dev/null 2>&1
    fi
    command -v nginx >/dev/null 2>&1 || die "nginx still missing after install"
    command -v haproxy >/dev/null 2>&1 || die "haproxy still missing after install"
}

for b in "$GH_BIN" "$GB_BIN" "$UP_BIN"; do
    [ -x "$b" ] || die "missing $b (cmake --build $build --target gatehouse gatehouse-bench gh-upstream)"
done
for t in node curl openssl ss sqlite3; do
    command -v "$t" >/dev/null 2>&1 || die "needs $t"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/gh-peers.XXXXXX") || die "mktemp failed"
chmod 755 "$work"
GB_OUT=$work/results
GB_PAUSE=$pause
export GB_BIN GB_OUT GB_PAUSE
mkdir -p "$GB_OUT" "$work/nginx-tmp"

install_missing
hv=$(haproxy -v 2>/dev/null | sed -n 's/^HAProxy version \([0-9][0-9.]*\).*/\1/p' | head -1)
case $hv in
1.* | 2.[0-4] | 2.[0-4].*) die "HAProxy $hv has no jwt_verify (needs 2.5 or later)" ;;
"") die "cannot read the HAProxy version" ;;
esac
nv=$(nginx -v 2>&1 | sed -n 's|^nginx version: nginx/||p')
bash "$IDP_DIR/install.sh" >"$work/idp-install.log" 2>&1 || {
    tail -n 20 "$work/idp-install.log" >&2
    die "tests/integration/idp/install.sh failed"
}

# ---------------------------------------------------------------------------
# PKI, upstream, OpenID Provider, tokens.

pki=$work/pki
bash "$top/tests/integration/pki.sh" "$pki" >"$work/pki.log" 2>&1 ||
    die "pki.sh failed: $(tail -3 "$work/pki.log")"
cat "$pki/server.crt" "$pki/server.key" >"$work/server-bundle.pem"
chmod 600 "$work/server-bundle.pem"

start upstream "$UP_BIN" --listen 127.0.0.1:0 --name bench-up
wait_grep "$work/upstream.log" '^listening on ' 10 || die "gh-upstream did not start"
up_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/upstream.log" | head -1)
[ -n "$up_port" ] || die "cannot read the upstream port"
up_addr=127.0.0.1:$up_port

audience=gatehouse
# Token lifetime: longer than the longest run, so no token expires mid-way.
start idp node "$IDP_DIR/server.mjs" --port 0 --cert "$pki/idp.crt" --key "$pki/idp.key" \
    --client-ca "$pki/client-ca.crt" --state "$work/idp-state" --audience "$audience" \
    --access-ttl 7200
wait_grep "$work/idp.log" 'idp listening on' 30 || die "IdP did not start: $(tail -5 "$work/idp.log")"
idp_url=$(grep -o 'https://127.0.0.1:[0-9]*' "$work/idp.log" | head -1)

token() { # client -> token on stdout
    bash "$IDP_DIR/get-token.sh" "$idp_url" "$pki/$1.crt" "$pki/$1.key" "$pki/idp-ca.crt" "$1"
}
tok_alice=$(token alice) || die "no token for alice"
tok_bob=$(token bob) || die "no token for bob"
# Tampered: one character in the middle of the signature changed.
sig=${tok_alice##*.}
mid=$((${#sig} / 2))
c=${sig:$mid:1}
if [ "$c" = A ]; then c=B; else c=A; fi
tok_tampered=${tok_alice%.*}.${sig:0:$mid}$c${sig:$((mid + 1))}
(
    umask 077
    printf 'Authorization: Bearer %s\n' "$tok_alice" >"$work/alice.hdr"
    printf 'Authorization: Bearer %s\n' "$tok_bob" >"$work/bob.hdr"
    printf 'Authorization: Bearer %s\n' "$tok_tampered" >"$work/tampered.hdr"
)
unset tok_alice tok_bob tok_tampered sig

# The issuer's public key as PEM (HAProxy reads keys from files only): the
# JWKS key whose kid signed alice's token, converted with node's crypto.
curl -sS --max-time 10 --cacert "$pki/idp-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key" \
    "$idp_url/jwks" -o "$work/jwks.json" || die "cannot fetch the JWKS"
node -e '
    const fs = require("fs"), crypto = require("crypto");
    const [jwksFile, hdrFile, out] = process.argv.slice(1);
    const token = fs.readFileSync(hdrFile, "utf8").trim().replace(/^Authorization: Bearer /, "");
    const kid = JSON.parse(Buffer.from(token.split(".")[0], "base64url")).kid;
    const jwk = JSON.parse(fs.readFileSync(jwksFile, "utf8")).keys.find((k) => k.kid === kid);
    if (!jwk) { console.error("no JWKS key with kid " + kid); process.exit(1); }
    const pem = crypto.createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" });
    fs.writeFileSync(out, pem);
' "$work/jwks.json" "$work/alice.hdr" "$work/idp-pub.pem" || die "JWKS to PEM failed"

# Hostile but genuinely signed tokens: alice's claims changed, then signed
# again with the IdP's own private key (its state directory), so that the
# claim checks are reached and not only the signature check.
# resign NAME PATCH_JSON -> $work/NAME.hdr; a null in the patch removes the
# claim. Tokens are passed in files, never on a command line.
resign() {
    node -e '
        const fs = require("fs"), crypto = require("crypto");
        const [hdrFile, keysFile, patchJson, out] = process.argv.slice(1);
        const token = fs.readFileSync(hdrFile, "utf8").trim().replace(/^Authorization: Bearer /, "");
        const [h, p] = token.split(".");
        const header = JSON.parse(Buffer.from(h, "base64url"));
        const payload = JSON.parse(Buffer.from(p, "base64url"));
        for (const [k, v] of Object.entries(JSON.parse(patchJson))) {
            if (v === null) { delete payload[k]; } else { payload[k] = v; }
        }
        const jwk = JSON.parse(fs.readFileSync(keysFile, "utf8")).keys
            .find((k) => k.kid === header.kid && k.d);
        if (!jwk) { console.error("no private key for kid " + header.kid); process.exit(1); }
        const b64u = (b) => Buffer.from(b).toString("base64url");
        const hp = b64u(JSON.stringify(header)) + "." + b64u(JSON.stringify(payload));
        const key = crypto.createPrivateKey({ key: jwk, format: "jwk" });
        const sig = crypto.sign("sha256", Buffer.from(hp), { key, dsaEncoding: "ieee-p1363" });
        fs.writeFileSync(out, "Authorization: Bearer " + hp + "." + b64u(sig) + "\n", { mode: 0o600 });
    ' "$work/alice.hdr" "$work/idp-state/keys.json" "$2" "$work/$1.hdr" || die "cannot forge the $1 token"
}
now=$(date +%s)
resign expired "{\"iat\":$((now - 7200)),\"exp\":$((now - 600))}"
resign wrongaud '{"aud":"someone-else"}'
resign wrongiss '{"iss":"https://127.0.0.1:1"}'
resign nocnf '{"cnf":null}'

# ---------------------------------------------------------------------------
# The peers.

maxconn=$((idle_n + 200))
port_nginx=$(gb_free_port)
port_haproxy_jwt=$(gb_free_port)
port_haproxy_mtls=$(gb_free_port)
port_gh_strict=$(gb_free_port)
port_gh_async=$(gb_free_port)

common=(SERVER_CERT="$pki/server.crt" SERVER_KEY="$pki/server.key"
    SERVER_BUNDLE="$work/server-bundle.pem" CLIENT_CA="$pki/client-ca.crt"
    UPSTREAM="$up_addr" WORKERS="$workers" RUN_DIR="$work" MAXCONN="$maxconn")
render "$here/nginx.conf.in" "$work/nginx.conf" "${common[@]}" LISTEN="127.0.0.1:$port_nginx"
render "$here/haproxy-mtls.cfg.in" "$work/haproxy-mtls.cfg" "${common[@]}" \
    LISTEN="127.0.0.1:$port_haproxy_mtls"
render "$here/haproxy-jwt.cfg.in" "$work/haproxy-jwt.cfg" "${common[@]}" \
    LISTEN="127.0.0.1:$port_haproxy_jwt" ISSUER="$idp_url" AUDIENCE="$audience" \
    ISSUER_PUBKEY="$work/idp-pub.pem"

nginx -t -q -p "$work/" -c "$work/nginx.conf" -e "$work/nginx-error.log" >"$work/nginx-t.log" 2>&1 ||
    die "nginx -t: $(cat "$work/nginx-t.log")"
for h in haproxy-mtls haproxy-jwt; do
    haproxy -c -q -f "$work/$h.cfg" >"$work/$h-c.log" 2>&1 || die "haproxy -c $h: $(cat "$work/$h-c.log")"
done

cat >"$work/policy.yaml" <<'YAML'
version: 1
rules:
  - id: bench-alice
    effect: allow
    routes: [app]
    when:
      - claim: sub
        equals: alice
YAML

gh_config() { # name mode port
    cat >"$work/$1.yaml" <<YAML
server:
  name: $1
  listen: "127.0.0.1:$3"
  workers: $workers
  log_level: warn
tls:
  cert: $pki/server.crt
  key: $pki/server.key
  client_ca: $pki/client-ca.crt
timeouts:
  idle: 120000
  drain: 0
issuer:
  url: $idp_url
  audiences: [$audience]
  ca: $pki/idp-ca.crt
policy: $work/policy.yaml
assertion:
  key: $work/$1-assertion.key
routes:
  - id: app
    host: "*"
    path_prefix: /
    upstream:
      url: http://$up_addr
decision_log:
  path: $work/$1.db
  mode: $2
admin:
  socket: $work/$1.sock
YAML
    "$GH_BIN" check-config -c "$work/$1.yaml" >"$work/$1-check.log" 2>&1 ||
        die "gatehouse check-config $1: $(cat "$work/$1-check.log")"
}
gh_config gh_strict strict "$port_gh_strict"
gh_config gh_async async "$port_gh_async"

start nginx nginx -p "$work/" -c "$work/nginx.conf" -e "$work/nginx-error.log"
start haproxy_mtls haproxy -db -f "$work/haproxy-mtls.cfg"
start haproxy_jwt haproxy -db -f "$work/haproxy-jwt.cfg"
start gh_strict "$GH_BIN" serve -c "$work/gh_strict.yaml"
start gh_async "$GH_BIN" serve -c "$work/gh_async.yaml"

peers=(direct nginx haproxy_jwt haproxy_mtls gh_strict gh_async)
tls_peers=(nginx haproxy_jwt haproxy_mtls gh_strict gh_async)
if [ -n "$only_peers" ]; then # --peers: measure a subset (every peer still starts)
    sel() { local p out=(); for p in "$@"; do case ",$only_peers," in *",$p,"*) out+=("$p") ;; esac; done; echo "${out[@]}"; }
    read -r -a peers <<<"$(sel "${peers[@]}")"
    read -r -a tls_peers <<<"$(sel "${tls_peers[@]}")"
    [ "${#peers[@]}" -gt 0 ] || die "--peers $only_peers names no peer"
fi
declare -A kind url pids label
kind=([direct]=plain [nginx]=mtls [haproxy_jwt]=token [haproxy_mtls]=mtls [gh_strict]=token [gh_async]=token)
label=([direct]="direct (plain HTTP)" [nginx]="nginx mTLS only" [haproxy_jwt]="HAProxy mTLS+JWT+cnf"
    [haproxy_mtls]="HAProxy mTLS only" [gh_strict]="Gatehouse strict log" [gh_async]="Gatehouse async log")
url[direct]=http://$up_addr/fixed1k
for p in "${tls_peers[@]}"; do
    port_var=port_$p
    url[$p]=https://127.0.0.1:${!port_var}/fixed1k
    wait_listen "${!port_var}" 15 || die "$p does not listen on ${!port_var}: $(tail -5 "$work/$p.log")"
done
pids[direct]=${spid[upstream]}
for p in haproxy_jwt haproxy_mtls gh_strict gh_async; do
    pids[$p]=${spid[$p]}
done
# nginx: the master and its workers.
for ((i = 0; i < 50; i++)); do
    [ "$(gb_pid_tree "${spid[nginx]}" | wc -l)" -gt "$workers" ] && break
    sleep 0.1
done
pids[nginx]=$(gb_pid_tree "${spid[nginx]}" | tr '\n' ' ')

# ---------------------------------------------------------------------------
# Correctness: every peer's answers before any number is taken.

# probe URL CERT|- HEADERFILE|- -> HTTP status, or "refused" when no HTTP
# answer came back (TLS alert or reset).
probe() {
    local args=(--silent --max-time 10 -o /dev/null -w '%{http_code}') code
    case $1 in https:*) args+=(--cacert "$pki/server-ca.crt") ;; esac
    [ "$2" != - ] && args+=(--cert "$pki/$2.crt" --key "$pki/$2.key")
    [ "$3" != - ] && args+=(-H "@$work/$3.hdr")
    code=$(curl "${args[@]}" "$1" 2>/dev/null)
    if [ -z "$code" ] || [ "$code" = 000 ]; then
        echo refused
    else
        echo "$code"
    fi
}

# Gatehouse answers only once it has the issuer's keys: wait for a 200.
for p in gh_strict gh_async; do
    ok=0
    for ((i = 0; i < 60; i++)); do
        [ "$(probe "${url[$p]}" alice alice)" = 200 ] && { ok=1; break; }
        sleep 0.25
    done
    [ "$ok" = 1 ] || note "$p: the bound token did not get 200 within 15 s"
done

declare -A verdict checks
ok_nocert() { case $1 in refused | 400 | 495 | 496) return 0 ;; esac; return 1; }
correctness() {
    local p u bound mism notok tamp expd waud wiss ncnf bobown nocert v t
    for p in "${peers[@]}"; do
        u=${url[$p]}
        v=PASS
        if [ "${kind[$p]}" = plain ]; then
            bound=$(probe "$u" - alice)
            [ "$bound" = 200 ] || v=FAIL
            checks[$p]="| ${label[$p]} | $bound | - | - | - | - | - | - | - | - | - | $v |"
            verdict[$p]=$v
            continue
        fi
        bound=$(probe "$u" alice alice)
        mism=$(probe "$u" bob alice)
        notok=$(probe "$u" alice -)
        tamp=$(probe "$u" alice tampered)
        expd=$(probe "$u" alice expired)
        waud=$(probe "$u" alice wrongaud)
        wiss=$(probe "$u" alice wrongiss)
        ncnf=$(probe "$u" alice nocnf)
        bobown=$(probe "$u" bob bob)
        nocert=$(probe "$u" - alice)
        [ "$bound" = 200 ] || v=FAIL
        ok_nocert "$nocert" || v=FAIL
        if [ "${kind[$p]}" = token ]; then
            case $mism in 401 | 403) ;; *) v=FAIL ;; esac
            for t in "$notok" "$tamp" "$expd" "$waud" "$wiss" "$ncnf"; do
                [ "$t" = 401 ] || v=FAIL
            done
        else
            # mTLS-only peers do not look at tokens: 200 is their correct
            # answer; the table shows what they did, with "(n/a)".
            mism="$mism (n/a)" notok="$notok (n/a)" tamp="$tamp (n/a)" expd="$expd (n/a)"
            waud="$waud (n/a)" wiss="$wiss (n/a)" ncnf="$ncnf (n/a)"
        fi
        checks[$p]="| ${label[$p]} | $bound | $mism | $notok | $tamp | $expd | $waud | $wiss | $ncnf | $bobown | $nocert | $v |"
        verdict[$p]=$v
    done
}
correctness

correctness_table() {
    echo "| peer | alice's bound token | alice's token, bob's cert | no token | bad signature | expired | wrong aud | wrong iss | no cnf | bob's own token (policy) | no client cert | verdict |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for p in "${peers[@]}"; do
        echo "${checks[$p]}"
    done
}
echo
echo "Correctness (curl). Expected: bound token 200. Token-checking peers: bob's cert 401/403,"
echo "every bad token 401. Every TLS peer: no client cert refused (TLS) or 400 (nginx)."
echo "Expired, wrong aud/iss and no-cnf tokens are re-signed with the IdP's real key."
correctness_table
echo
mark() { [ "${verdict[$1]}" = PASS ] && echo "" || echo " (FAILED correctness)"; }

# ---------------------------------------------------------------------------
# Throughput: interleaved rounds.

modes_of() { # peer -> its modes (plain HTTP has no TLS session to resume)
    if [ "${kind[$1]}" = plain ]; then
        echo keepalive newconn
    else
        echo keepalive newconn resume
    fi
}

bench_one() { # peer mode
    local p=$1 m=$2 c=64 extra=()
    [ "$m" = keepalive ] || c=16
    if [ "${kind[$p]}" != plain ]; then
        extra=(--ca "$pki/server-ca.crt" --cert "$pki/alice.crt" --key "$pki/alice.key")
    fi
    GB_SERVER_PIDS=${pids[$p]} gb_bench "${p}_$m" --url "${url[$p]}" "${extra[@]}" \
        --header-file "$work/alice.hdr" --mode "$m" -c "$c" -d "$secs" --warmup "$warm" \
        --expect-status 200
}

funcs=()
runs=0
for m in keepalive newconn resume; do
    [ -z "$only_modes" ] || case ",$only_modes," in *",$m,"*) ;; *) continue ;; esac
    for p in "${peers[@]}"; do
        case " $(modes_of "$p") " in *" $m "*) ;; *) continue ;; esac
        eval "run_${p}_$m() { bench_one $p $m; }"
        : >"$GB_OUT/${p}_$m.results" # lib-bench counts rounds in this file
        funcs+=("run_${p}_$m")
        runs=$((runs + 1))
    done
done
est=$(awk -v n="$runs" -v r="$rounds" -v s="$secs" -v w="$warm" -v p="$pause" -v t="${#tls_peers[@]}" \
    -v h="$idle_hold" 'BEGIN { printf "%d", (n * r * (s + w + p + 0.4) + t * (h + 15)) / 60 + 1 }')
note "$runs runs x $rounds rounds of ${secs}s, then the idle test: about $est min"
gb_interleave "$rounds" "${funcs[@]}" || note "some runs failed (details in the report)"

declare -A hwm
for p in "${peers[@]}"; do
    hwm[$p]=$(gb_peak_rss_kb ${pids[$p]} 2>/dev/null || echo n/a)
done

# ---------------------------------------------------------------------------
# Idle-connection memory: N mTLS keep-alive connections held open.

declare -A idle_open idle_rss0 idle_rss1 idle_err
idle_one() { # peer
    local p=$1 log line i
    log=$GB_OUT/idle_$p.log
    idle_rss0[$p]=$(gb_rss_kb ${pids[$p]})
    "$GB_BIN" --label "idle_$p" --url "${url[$p]}" --ca "$pki/server-ca.crt" \
        --cert "$pki/alice.crt" --key "$pki/alice.key" --header-file "$work/alice.hdr" \
        --idle "$idle_n" -d "$idle_hold" --expect-status 200 >"$log" 2>&1 &
    client_pid=$!
    for ((i = 0; i < 900; i++)); do
        grep -q '^HOLDING' "$log" 2>/dev/null && break
        alive "$client_pid" || break
        sleep 0.1
    done
    idle_open[$p]=$(sed -n 's/^HOLDING open=\([0-9]*\).*/\1/p' "$log" | head -1)
    sleep 1
    idle_rss1[$p]=$(gb_rss_kb ${pids[$p]})
    wait "$client_pid"
    client_pid=""
    line=$(gb_result <"$log")
    idle_err[$p]=$(gb_field "$line" errors || echo n/a)
    : "${idle_open[$p]:=0}"
    sleep 2 # let the server close its side before the next peer
}
for p in "${tls_peers[@]}"; do
    [ -z "$only_modes" ] || case ",$only_modes," in *",idle,"*) ;; *) break ;; esac
    note "idle test: $idle_n connections to $p"
    idle_one "$p"
done

# ---------------------------------------------------------------------------
# Report.

med() { # gb_median prints n/a itself when a peer was not run; print one value
    local v
    v=$(gb_median "$1" "$2" 2>/dev/null) || true
    echo "${v:-n/a}"
}
int() { awk -v v="$1" 'BEGIN { if (v ~ /^-?[0-9.]+$/) printf "%.0f\n", v; else print v }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "n/a" || k == "") { print "n/a"; exit } printf "%.1f", k / 1024 }'; }
x() { # A B -> "1.23x" or "n/a"
    local r
    r=$(gb_ratio "$1" "$2")
    if [ "$r" = n/a ]; then echo n/a; else echo "${r}x"; fi
}
per_conn() { # peer -> KiB per idle connection
    [ -n "${idle_open[$1]:-}" ] || { echo n/a; return; }
    awk -v a="${idle_rss0[$1]}" -v b="${idle_rss1[$1]}" -v n="${idle_open[$1]}" \
        'BEGIN { if (n <= 0 || a == "" || b == "") { print "n/a"; exit } printf "%.1f", (b - a) / n }'
}
nonok() { # name -> median of non-2xx responses
    local f=$GB_OUT/$1.results line v vals=()
    [ -f "$f" ] || { echo n/a; return; }
    while IFS= read -r line; do
        v=$(($(gb_field "$line" status_3xx) + $(gb_field "$line" status_4xx)
            + $(gb_field "$line" status_5xx)))
        vals+=("$v")
    done <"$f"
    printf '%s\n' "${vals[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
met() { # value op bound -> yes/no
    awk -v v="$1" -v b="$3" -v op="$2" 'BEGIN {
        if (v == "n/a" || b == "n/a" || v == "" || b == "") { print "n/a"; exit }
        if (op == ">=") { r = v + 0 >= b + 0 } else if (op == "<=") { r = v + 0 <= b + 0 }
        else { r = v + 0 < b + 0 }
        print (r ? "yes" : "**no**") }'
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report() {
    local m p n r mem
    echo "### Side-by-side run, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`$cmdline\` (build dir \`$build\`)"
    echo
    mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
    echo "Machine: $(nproc) cores ($cpu_model), $(uname -r), $mem."
    echo "nginx $nv, HAProxy $hv, Gatehouse \`$("$GH_BIN" --version 2>/dev/null | head -1)\`."
    echo "Every proxy: $workers worker threads/processes, TLS on loopback, ECDSA P-256 certificates,"
    echo "upstream gh-upstream \`GET /fixed1k\` (1 KiB body). Load: gatehouse-bench, 1 thread, the same"
    echo "request (with alice's bound bearer token) to every peer. Medians of $rounds interleaved rounds"
    echo "of ${secs} s (warm-up ${warm} s). Nothing is pinned: client, proxy and upstream share the"
    echo "$(nproc) cores, so server CPU per request is the steadier figure."
    echo
    echo "#### Correctness"
    echo
    correctness_table
    echo
    echo "#### Throughput, latency, server cost"
    echo
    echo "Server CPU: utime+stime of the proxy's processes (nginx: master + workers; direct: the"
    echo "upstream) over the measured window, per completed request, then split into user and system"
    echo "time; the upstream's own CPU is not included for the proxies. Peak RSS: VmHWM after all"
    echo "throughput rounds (before the idle test)."
    echo
    echo "| mode | peer | req/s | p50 µs | p99 µs | errors | non-2xx | server CPU µs/req | user / sys µs/req | resumed % | peak RSS MiB |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for m in keepalive newconn resume; do
        for p in "${peers[@]}"; do
            n=${p}_$m
            [ -f "$GB_OUT/$n.results" ] || continue
            r=-
            [ "$m" = keepalive ] || r=$(med "$n" resumed_pct)
            echo "| $m | ${label[$p]}$(mark "$p") | $(int "$(med "$n" rps)")" \
                "| $(med "$n" p50_us) | $(med "$n" p99_us) | $(med "$n" errors) | $(nonok "$n")" \
                "| $(med "$n" srv_cpu_us_per_req) | $(med "$n" srv_user_us_per_req) / $(med "$n" srv_sys_us_per_req)" \
                "| $r | $(mib "${hwm[$p]}") |"
        done
    done
    echo
    echo "#### Ratios of req/s medians"
    echo
    echo "| mode | strict / HAProxy JWT | strict / HAProxy mTLS | strict / nginx | async / HAProxy JWT | async / HAProxy mTLS | async / nginx | strict / async | HAProxy JWT / HAProxy mTLS |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local s a j hm ng
    for m in keepalive newconn resume; do
        s=$(med gh_strict_$m rps) a=$(med gh_async_$m rps) j=$(med haproxy_jwt_$m rps)
        hm=$(med haproxy_mtls_$m rps) ng=$(med nginx_$m rps)
        echo "| $m | $(x "$s" "$j") | $(x "$s" "$hm") | $(x "$s" "$ng")" \
            "| $(x "$a" "$j") | $(x "$a" "$hm") | $(x "$a" "$ng") | $(x "$s" "$a") | $(x "$j" "$hm") |"
    done
    echo
    echo
    echo "#### Idle mTLS keep-alive connections"
    echo
    echo "$idle_n connections opened (full handshake + one request each), held ${idle_hold} s; RSS of the"
    echo "server's processes while held minus RSS just before, divided by the connections held."
    echo
    echo "| peer | held | errors | RSS before MiB | RSS held MiB | KiB per connection |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for p in "${tls_peers[@]}"; do
        [ -n "${idle_open[$p]:-}" ] || { echo "| ${label[$p]} | not measured | | | | |"; continue; }
        echo "| ${label[$p]} | ${idle_open[$p]} | ${idle_err[$p]} | $(mib "${idle_rss0[$p]}")" \
            "| $(mib "${idle_rss1[$p]}") | $(per_conn "$p") |"
    done
    echo
    echo "#### Audit records"
    echo
    local hl sr ar
    # grep -c prints 0 and fails when nothing matches: take its output only
    hl=$(grep -c '"GET /fixed1k' "$work/haproxy_jwt.log" 2>/dev/null) || hl=${hl:-0}
    sr=n/a ar=n/a
    if [ -s "$work/gh_strict.db" ]; then
        sr=$(sqlite3 "$work/gh_strict.db" 'select count(*) from decisions' 2>/dev/null) || sr=n/a
    fi
    if [ -s "$work/gh_async.db" ]; then
        ar=$(sqlite3 "$work/gh_async.db" 'select count(*) from decisions' 2>/dev/null) || ar=n/a
    fi
    echo "HAProxy JWT log lines: $hl; Gatehouse strict decision rows: $sr; async: $ar"
    echo "(each includes the correctness probes, warm-ups, the idle test and requests"
    echo "unfinished at the end of a window)."
    echo
    echo "#### Issue 8 targets (this run)"
    echo
    local ska sj shm sng
    ska=$(med gh_strict_keepalive rps)
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    sj=$(x "$ska" "$(med haproxy_jwt_keepalive rps)")
    echo "| keep-alive req/s strict >= 3.0x HAProxy JWT | $sj | $(met "$sj" '>=' 3.0) |"
    shm=$(x "$ska" "$(med haproxy_mtls_keepalive rps)")
    echo "| keep-alive req/s strict >= 1.0x HAProxy mTLS | $shm | $(met "$shm" '>=' 1.0) |"
    sng=$(x "$ska" "$(med nginx_keepalive rps)")
    echo "| keep-alive req/s strict >= 1.0x nginx mTLS | $sng | $(met "$sng" '>=' 1.0) |"
    for m in newconn resume; do
        r=$(x "$(med gh_strict_$m rps)" "$(med haproxy_jwt_$m rps)")
        echo "| $m req/s strict >= 1.0x HAProxy JWT | $r | $(met "$r" '>=' 1.0) |"
    done
    s=$(med gh_strict_keepalive p99_us) j=$(med haproxy_jwt_keepalive p99_us)
    echo "| keep-alive p99 strict <= HAProxy JWT | $s µs vs $j µs | $(met "$s" '<=' "$j") |"
    s=$(per_conn gh_strict) j=$(per_conn haproxy_jwt) hm=$(per_conn haproxy_mtls)
    echo "| idle RSS per connection strict <= HAProxy (JWT / mTLS) | $s vs $j / $hm KiB" \
        "| $(met "$s" '<=' "$j") / $(met "$s" '<=' "$hm") |"
    r=$(awk -v s="$ska" -v a="$(med gh_async_keepalive rps)" \
        'BEGIN { if (a + 0 == 0 || s == "n/a") { print "n/a"; exit } printf "%.1f", (1 - s / a) * 100 }')
    echo "| strict costs < 10 % of async keep-alive req/s | ${r} % | $(met "$r" '<' 10) |"
}

report >"$work/report.md"
echo
cat "$work/report.md"
if [ -n "$out" ]; then
    cp "$work/report.md" "$out" || note "cannot write $out"
fi
failed=0
for p in "${peers[@]}"; do
    [ "${verdict[$p]}" = PASS ] || failed=1
done
exit "$failed"
