#!/usr/bin/env bash
# Installs the Debian packages orderflow needs, skipping those dpkg already knows.
# Runs `apt-get update` once, and only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git curl ca-certificates
  postgresql-15 postgresql-client-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
  libpistache-dev libpqxx-dev rapidjson-dev libcurl4-openssl-dev libgtest-dev pgbouncer
  nginx python3 chromium
  "$@"
)

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

# Installing postgresql-15 would create and start a system-wide cluster on port 5432; orderflow
# runs its own private cluster, so ask postgresql-common not to create that one.
if ! dpkg -s postgresql-15 >/dev/null 2>&1; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/orderflow.conf >/dev/null
fi

# Installing nginx would start a system-wide nginx on port 80; the tests run private ones, so
# invoke-rc.d is asked not to start it, by a policy-rc.d that lives only as long as the install
# (one already there is left as it is).
if ! dpkg -s nginx >/dev/null 2>&1 && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n[ "$1" = nginx ] && exit 101\nexit 0\n' |
    "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi

echo "deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
