#!/usr/bin/env bash
# install-deps.sh -- installs the Debian packages ember needs, only those missing (idempotent).
#
#   deploy/install-deps.sh            build and run dependencies, plus test tools (curl, jq,
#                                     promtool from prometheus, headless chromium, clang-format;
#                                     iproute2, socat, ssh for the multi-host cluster tests;
#                                     openssl for the TLS test's certificates; kcat, a Kafka
#                                     client of its own, to read what ember writes)
#   deploy/install-deps.sh PKG...     these packages as well (e.g. python3-distributed for bench/)
set -euo pipefail

packages=(build-essential cmake pkg-config
          libnng-dev libprotobuf-c-dev protobuf-c-compiler librdkafka-dev liblz4-dev libcmocka-dev
          libxxhash-dev libmbedtls-dev libjansson-dev libmicrohttpd-dev
          libhiredis-dev redis-server redis-tools zlib1g-dev
          curl jq prometheus chromium clang-format iproute2 socat openssh-client openssl kcat
          python3 python3-jsonschema procps "$@")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ember: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
