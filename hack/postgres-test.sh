#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1 for the session store tests and prints its
# DSN on stdout (everything else goes to stderr). Installs PostgreSQL from Debian packages when
# it is missing. The server runs from a temp dir as an unprivileged user (initdb refuses root)
# and stops when `hack/postgres-test.sh stop DIR` is run or the machine goes away.
#   DSN=$(hack/postgres-test.sh)   # then WAOPERATOR_TEST_POSTGRES_DSN=$DSN go test -tags postgres ...
set -euo pipefail

if [[ "${1:-}" == stop ]]; then
  dir=${2:?usage: $0 stop DIR}
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  owner=$(stat -c %U "$dir")
  if [[ $(id -u) -eq 0 && $owner != root ]]; then
    runuser -u "$owner" -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2
  else
    "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2
  fi
  exit 0
fi

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "installing postgresql from Debian packages" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

dir=$(mktemp -d /tmp/waoperator-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
run=()
if [[ $(id -u) -eq 0 ]]; then
  user=${PGTEST_USER:-postgres}
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
  chown "$user" "$dir"
  run=(runuser -u "$user" --)
fi

"${run[@]}" "$bin/initdb" -D "$dir/data" -U waoperator --auth=trust -E UTF8 >&2
"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" start >&2
"${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U waoperator session_test >&2
echo "postgres test server in $dir (stop: $0 stop $dir)" >&2
echo "postgres://waoperator@127.0.0.1:$port/session_test?sslmode=disable"
