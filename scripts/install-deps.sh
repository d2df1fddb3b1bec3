#!/usr/bin/env bash
# Installs everything Gatehouse needs to build and test on Debian 12.
# Idempotent; run as root (or with sudo available). Used by the README's two
# commands and by .ci/run, so a fresh machine needs nothing installed by hand.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config git ca-certificates
  android-libboringssl-dev
  libevent-dev libsqlite3-dev sqlite3
  libjwt-gnutls-dev libjansson-dev libfyaml-dev libhttp-parser-dev
  libncurses-dev libcmocka-dev
  clang libclang-rt-14-dev
  curl openssl tmux procps psmisc iproute2 python3
  nodejs npm
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node from outside Debian (e.g. /usr/bin/node already present) satisfies nodejs/npm.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do case "$p" in nodejs|npm) ;; *) tmp+=("$p");; esac; done
  missing=("${tmp[@]}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi
