#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at $PGHOST:$PGPORT (default 127.0.0.1:5432).
#
# - Already answering: nothing to do.
# - Installed but stopped (Debian's postgresql package): starts its cluster.
# - Not installed, and we are root on Debian: installs postgresql from Debian's packages,
#   starts it, and lets local TCP connections from this machine in without a password
#   (a development set-up; never do this on a shared host).
# Anything else: says what to do and fails.
set -euo pipefail

host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}

ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port"; }

if ready; then
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing Debian's postgresql package..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! grep -q 'audiencelens dev' "$hba"; then
      { echo "# audiencelens dev: local TCP connections without a password"
        echo "host all all 127.0.0.1/32 trust"
        echo "host all all ::1/128 trust"
        cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
    fi
  else
    echo "error: no PostgreSQL answers at $host:$port and none is installed." >&2
    echo "Install PostgreSQL (Debian: apt-get install postgresql), or point the tests at a server" >&2
    echo "with AUDIENCELENS_TEST_DATABASE_URL=postgres://user@host:port/postgres." >&2
    exit 1
  fi
fi

for version in $(ls /etc/postgresql 2>/dev/null | sort -V); do
  for cluster in $(ls "/etc/postgresql/$version"); do
    echo "starting PostgreSQL $version/$cluster..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>/dev/null \
      || pg_ctlcluster "$version" "$cluster" start || true
  done
done

for _ in $(seq 1 30); do
  if ready; then
    exit 0
  fi
  sleep 1
done
echo "error: PostgreSQL did not come up at $host:$port; see /var/log/postgresql/" >&2
exit 1
