#!/usr/bin/env bash
# The README's first command: install what Gatehouse needs (Debian 12),
# configure and build, then run `gatehouse demo` -- the gateway, a
# development issuer and a demo app in one process, with a generated PKI in
# ./gatehouse-demo (reused on the next run). Arguments go to `gatehouse
# demo` (e.g. --port 9443, --dir /tmp/gh-demo). Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
cmake -S . -B build
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
exec build/gateway/gatehouse demo "$@"
