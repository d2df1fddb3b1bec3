#!/usr/bin/env bash
# Installs the test IdP's npm packages (oidc-provider, pinned by
# package-lock.json) into tests/integration/idp/node_modules.
#
# Idempotent: does nothing when node_modules already holds every package of
# the lock file at its locked version. Needs only node (>= 18) and npm, and the
# npm registry. Runs unattended (no stdin), as root or not. Concurrent runs
# (two build trees testing at once) are serialised with flock when available.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "idp install: node and npm are required (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "idp install: node >= 18 required, found $(node --version)" >&2
    exit 1
fi

# Prints nothing and exits 0 when node_modules matches package-lock.json.
complete() {
    node -e '
        const fs = require("fs");
        const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
        for (const [p, meta] of Object.entries(lock.packages || {})) {
            if (p === "" || meta.dev || meta.optional) { continue; }
            let got;
            try {
                got = JSON.parse(fs.readFileSync(p + "/package.json", "utf8")).version;
            } catch (e) {
                console.log("missing " + p); process.exit(1);
            }
            if (got !== meta.version) { console.log("stale " + p); process.exit(1); }
        }
    ' >/dev/null 2>&1
}

install() {
    if complete; then
        echo "idp install: node_modules up to date"
        return 0
    fi
    # HOME may be unset under some CI runners; npm needs a cache directory.
    export npm_config_cache=${npm_config_cache:-${HOME:-/tmp}/.npm}
    local npm_flags=(--no-audit --no-fund --ignore-scripts --omit=dev --loglevel=error
        --update-notifier=false)
    echo "idp install: npm ci in $here"
    if ! npm ci "${npm_flags[@]}" </dev/null; then
        echo "idp install: npm ci failed; trying npm install" >&2
        npm install --no-save "${npm_flags[@]}" </dev/null
    fi
    if ! complete; then
        echo "idp install: node_modules still incomplete after npm" >&2
        return 1
    fi
    node -e 'import("oidc-provider").then(() => {}, (e) => { console.error(e); process.exit(1); })'
    echo "idp install: done"
}

if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/gatehouse-idp-install.$(id -u).lock"
    exec 9>"$lock"
    flock -w 600 9
fi
install
