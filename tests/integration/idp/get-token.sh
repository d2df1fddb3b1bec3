#!/usr/bin/env bash
# Fetches a certificate-bound access token from the test IdP with the
# client_credentials grant over mutual TLS (RFC 8705 tls_client_auth).
#
#   get-token.sh IDP_URL CERT KEY CA CLIENT_ID [RESOURCE] [SCOPE]
#
# IDP_URL   issuer, e.g. https://127.0.0.1:PORT
# CERT/KEY  the client's certificate and private key (PEM); the token is bound
#           to this certificate (cnf.x5t#S256)
# CA        CA bundle that verifies the IdP's server certificate
# CLIENT_ID registered client id (alice, bob, carol, ci-deployer)
# RESOURCE  optional absolute-URI resource indicator (RFC 8707); omitted, the
#           token's aud is the IdP's --audience; any other URI becomes the aud
# SCOPE     optional space-separated scope (the resource knows "read write")
#
# The token endpoint comes from discovery (mtls_endpoint_aliases.token_endpoint
# when advertised, else token_endpoint). Prints only the access token on
# stdout. On failure prints the HTTP status and error body on stderr and exits 1.
set -euo pipefail

if [ "$#" -lt 5 ] || [ "$#" -gt 7 ]; then
    echo "usage: $0 IDP_URL CERT KEY CA CLIENT_ID [RESOURCE] [SCOPE]" >&2
    exit 2
fi
idp=${1%/}
cert=$2
key=$3
ca=$4
client_id=$5
resource=${6:-}
scope=${7:-}

for f in "$cert" "$key" "$ca"; do
    if [ ! -r "$f" ]; then
        echo "get-token: cannot read $f" >&2
        exit 2
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# json_get FILE KEY.PATH: prints a string value, or nothing if absent.
json_get() {
    node -e '
        const fs = require("fs");
        let v = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        for (const k of process.argv[2].split(".")) {
            v = (v === null || v === undefined) ? undefined : v[k];
        }
        if (typeof v === "string") { process.stdout.write(v); }
    ' "$1" "$2"
}

curl_tls=(--silent --show-error --max-time 20 --cacert "$ca" --cert "$cert" --key "$key")

code=$(curl "${curl_tls[@]}" -o "$tmp/disc" -w '%{http_code}' \
    "$idp/.well-known/openid-configuration") || {
    echo "get-token: discovery request to $idp failed" >&2
    exit 1
}
if [ "$code" != "200" ]; then
    echo "get-token: discovery: HTTP $code" >&2
    cat "$tmp/disc" >&2
    exit 1
fi
endpoint=$(json_get "$tmp/disc" mtls_endpoint_aliases.token_endpoint)
if [ -z "$endpoint" ]; then
    endpoint=$(json_get "$tmp/disc" token_endpoint)
fi
if [ -z "$endpoint" ]; then
    echo "get-token: discovery document has no token_endpoint" >&2
    exit 1
fi

form=(--data-urlencode grant_type=client_credentials --data-urlencode "client_id=$client_id")
if [ -n "$resource" ]; then
    form+=(--data-urlencode "resource=$resource")
fi
if [ -n "$scope" ]; then
    form+=(--data-urlencode "scope=$scope")
fi

code=$(curl "${curl_tls[@]}" -o "$tmp/resp" -w '%{http_code}' "${form[@]}" "$endpoint") || {
    echo "get-token: token request to $endpoint failed" >&2
    exit 1
}
token=$(json_get "$tmp/resp" access_token 2>/dev/null || true)
if [ "$code" != "200" ] || [ -z "$token" ]; then
    echo "get-token: token endpoint: HTTP $code" >&2
    cat "$tmp/resp" >&2
    echo >&2
    exit 1
fi
printf '%s\n' "$token"
