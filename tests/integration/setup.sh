#!/usr/bin/env bash
# Integration fixture: generated PKI and the test OpenID Provider's npm
# packages, shared by every t_*.sh. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?build dir}
[ -f "$here/pki.sh" ] && bash "$here/pki.sh" "$build/test-pki"
[ -f "$here/idp/package.json" ] && (cd "$here/idp" && bash ./install.sh)
echo "setup ok"
