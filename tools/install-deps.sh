#!/usr/bin/env bash
# install-deps.sh - installs every Debian package and npm test server shoal needs to build,
# test and run. Idempotent: does nothing (and asks no registry) when all is present.
set -euo pipefail

DEBS=(
    build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
    libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev librocksdb-dev libxxhash-dev liburing-dev
    libcriterion-dev libcurl4-openssl-dev libxml2-dev libjansson-dev
    python3 python3-fsspec python3-pytest python3-numpy
    python3-aiohttp python3-requests python3-matplotlib
    nginx-light iperf3 nodejs npm curl iproute2 procps psmisc
)

missing=()
for pkg in "${DEBS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
# nginx-light and nginx are alternatives: either one provides /usr/sbin/nginx.
if [ -x /usr/sbin/nginx ]; then
    missing=("${missing[@]/nginx-light/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
# node/npm may come from the machine image rather than Debian's packages.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=($(printf '%s\n' "${missing[@]}" | grep -vx -e nodejs -e npm || true))
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# Azure Blob test server (Azurite), from npm, into a folder of its own.
AZURITE_DIR="${SHOAL_AZURITE_DIR:-/opt/shoal-azurite}"
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    echo "install-deps: installing azurite into $AZURITE_DIR"
    $SUDO mkdir -p "$AZURITE_DIR"
    $SUDO npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error azurite >/dev/null
fi
echo "install-deps: all present"
