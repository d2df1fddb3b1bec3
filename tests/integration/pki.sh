#!/usr/bin/env bash
# pki.sh DIR: generate the complete test PKI used by every integration test
# and benchmark (see docs/TESTING.md for the list of files and what each one
# is for).
#
# Why a script and not checked-in files: certificates expire, and the
# "expired" and "not yet valid" certificates must be so relative to the day
# the tests run. Everything is made with the openssl CLI only (OpenSSL 3.0 on
# Debian 12): `openssl ca` because it is the one 3.0 command that takes an
# explicit notBefore/notAfter (-startdate/-enddate) and keeps the index that
# `-revoke`/`-gencrl` need for the CRL.
#
# Idempotent: does nothing if DIR/.done exists and is newer than this script.
# Otherwise builds everything in a temporary sibling directory and swaps it
# into place, so a reader never sees a half-made PKI. Concurrent runs are
# serialised by flock on DIR.lock.
set -euo pipefail

dir=${1:?usage: pki.sh DIR}
self=$(readlink -f "${BASH_SOURCE[0]}")
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}

uptodate() {
    [ -f "$dir/.done" ] && [ "$dir/.done" -nt "$self" ]
}

if uptodate; then
    echo "pki: $dir is up to date"
    exit 0
fi
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if uptodate; then
    echo "pki: $dir is up to date"
    exit 0
fi

work=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir .ca
log=$work/.ca/openssl.log
start=$(date +%s)

# Run an openssl command, keeping its chatter in the log; show it on failure.
ossl() {
    if ! openssl "$@" >>"$log" 2>&1; then
        echo "pki: openssl $1 failed:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
}

cat >.ca/req.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

# One `openssl ca` configuration for every CA; the CA is picked through the
# environment (GH_CA_DIR, GH_CA_NAME), which openssl reads at load time.
cat >.ca/ca.cnf <<'EOF'
[ ca ]
default_ca = gh_ca
[ gh_ca ]
dir = $ENV::GH_CA_DIR
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $ENV::GH_PKI/$ENV::GH_CA_NAME.crt
private_key = $ENV::GH_PKI/$ENV::GH_CA_NAME.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = gh_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes
crl_extensions = gh_crl_ext
[ gh_policy ]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ gh_crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
export GH_PKI=$work
export GH_CA_DIR=$work/.ca/none GH_CA_NAME=none

newkey() { # name [rsa]
    if [ "${2:-ec}" = rsa ]; then
        ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
    else
        ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    fi
    chmod 600 "$1.key"
}

# mkca NAME "Common Name": self-signed root, 10 years, with its own ca db.
mkca() {
    local name=$1 cn=$2 d=$work/.ca/$1
    newkey "$name"
    ossl req -config .ca/req.cnf -new -x509 -key "$name.key" -sha256 -days 3650 \
        -subj "/O=Gatehouse Test/CN=$cn" -extensions v3_ca -out "$name.crt"
    mkdir -p "$d/new"
    : >"$d/index.txt"
    echo "unique_subject = no" >"$d/index.txt.attr"
    openssl rand -hex 16 | sed 's/^./1/' >"$d/serial"
    echo 1000 >"$d/crlnumber"
}

use_ca() {
    export GH_CA_NAME=$1 GH_CA_DIR=$work/.ca/$1
}

# mkleaf CA NAME SUBJECT server|client SAN|- [rsa] [-startdate X -enddate Y]
mkleaf() {
    local ca=$1 name=$2 subj=$3 kind=$4 san=$5 alg=ec
    shift 5
    if [ "${1:-}" = rsa ]; then
        alg=rsa
        shift
    fi
    newkey "$name" "$alg"
    local ku=digitalSignature eku=clientAuth ext=.ca/$name.ext
    [ "$alg" = rsa ] && ku="digitalSignature, keyEncipherment"
    [ "$kind" = server ] && eku=serverAuth
    {
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, $ku"
        echo "extendedKeyUsage = $eku"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid:always"
        [ "$san" != - ] && echo "subjectAltName = $san"
    } >"$ext"
    ossl req -config .ca/req.cnf -new -key "$name.key" -subj "$subj" -out ".ca/$name.csr"
    use_ca "$ca"
    ossl ca -batch -config .ca/ca.cnf -notext -preserveDN -in ".ca/$name.csr" \
        -extfile "$ext" -out "$name.crt" "$@"
}

utc() { # date(1) offset -> YYMMDDHHMMSSZ (what `openssl ca -startdate` takes in 3.0)
    date -u -d "$1" +%y%m%d%H%M%SZ
}

O="/O=Gatehouse Test"

# Gateway server side.
mkca server-ca "Gatehouse Test Server CA"
mkleaf server-ca server "$O/CN=localhost" server \
    "DNS:localhost, DNS:*.test.local, IP:127.0.0.1, IP:::1"
mkleaf server-ca server2 "$O/CN=localhost" server \
    "DNS:localhost, DNS:*.test.local, IP:127.0.0.1, IP:::1"

# Clients (users and services).
mkca client-ca "Gatehouse Test Client CA"
use_ca client-ca
ossl ca -config .ca/ca.cnf -gencrl -out client-ca-empty.crl
mkleaf client-ca alice "$O/CN=alice" client "email:alice@example.com"
mkleaf client-ca bob "$O/CN=bob" client -
mkleaf client-ca carol "$O/CN=carol" client - rsa
mkleaf client-ca expired "$O/CN=expired" client - \
    -startdate "$(utc '-60 days')" -enddate "$(utc '-30 days')"
mkleaf client-ca notyet "$O/CN=notyet" client - \
    -startdate "$(utc '+30 days')" -enddate "$(utc '+730 days')"
mkleaf client-ca revoked "$O/CN=revoked" client -
mkleaf client-ca svc-deployer "$O/CN=svc-deployer" client "URI:spiffe://example.org/ci/deployer"
use_ca client-ca
ossl ca -config .ca/ca.cnf -revoke revoked.crt -crl_reason keyCompromise
ossl ca -config .ca/ca.cnf -gencrl -out client-ca.crl

# An attacker's CA issuing a look-alike of alice (same subject and SAN).
mkca rogue-ca "Gatehouse Test Client CA"
mkleaf rogue-ca rogue "$O/CN=alice" client "email:alice@example.com"

# Admin plane.
mkca admin-ca "Gatehouse Test Admin CA"
mkleaf admin-ca admin "$O/CN=ops-admin" client -

# HTTPS upstream and the gateway's client certificate towards it.
mkca upstream-ca "Gatehouse Test Upstream CA"
mkleaf upstream-ca upstream-server "$O/CN=localhost" server "DNS:localhost, IP:127.0.0.1"
mkleaf upstream-ca gw-upstream "$O/CN=gatehouse" client -

# Test OpenID Provider.
mkca idp-ca "Gatehouse Test IdP CA"
mkleaf idp-ca idp "$O/CN=localhost" server "DNS:localhost, IP:127.0.0.1"

# RFC 8705 section 3.1 thumbprints: SHA-256 of the DER certificate, in
# base64url without padding (NAME.x5t, the cnf.x5t#S256 value) and in hex.
for crt in *.crt; do
    name=${crt%.crt}
    case $name in *-ca) continue ;; esac
    openssl x509 -in "$crt" -outform DER -out ".ca/$name.der"
    x5t=$(openssl dgst -sha256 -binary ".ca/$name.der" | openssl base64 -A |
        tr '+/' '-_' | tr -d '=')
    hex=$(openssl dgst -sha256 -r ".ca/$name.der" | cut -d' ' -f1)
    printf '%s' "$x5t" >"$name.x5t"
    printf '%s' "$hex" >"$name.sha256"
done

chmod 600 ./*.key
chmod 644 ./*.crt ./*.crl ./*.x5t ./*.sha256
chmod 755 "$work"
touch .done
rm -rf "$dir"
mv "$work" "$dir"
trap - EXIT
echo "pki: wrote $dir in $(($(date +%s) - start)) s"
