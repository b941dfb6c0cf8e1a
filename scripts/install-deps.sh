#!/usr/bin/env bash
# Installs the Debian packages cellar needs to build, test and benchmark.
# Idempotent: asks apt only for what dpkg says is missing, so a warm machine
# pays one dpkg query and no network.
set -euo pipefail

build=(build-essential cmake pkg-config libssl-dev zlib1g-dev libsqlite3-dev
       libcurl4-openssl-dev)
test=(clang libclang-rt-14-dev python3 unzip b3sum nginx sqlite3 coreutils curl
      python3-dev python3-numpy python3-torch python3-pytest
      docker-registry apache2-utils skopeo)
bench=(hyperfine jdupes rdfind openssl time)

want=("${build[@]}" "${test[@]}")
[ "${1:-}" = "--bench" ] && want+=("${bench[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
