#!/usr/bin/env bash
# Start a private PostgreSQL cluster on 127.0.0.1:55432 for the distributed-search tests
# (installs Debian's postgresql first if it is missing). Prints the SQLAlchemy URL.
set -euo pipefail
PORT=${ARCHSEARCH_PG_PORT:-55432}
DATA=${ARCHSEARCH_PG_DATA:-/tmp/archsearch-pg}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) 1>&2
fi
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
if ! su postgres -s /bin/sh -c "$BIN/pg_ctl -D $DATA status" >/dev/null 2>&1; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA" && chown postgres:postgres "$DATA"
    su postgres -s /bin/sh -c "$BIN/initdb -D $DATA -A trust -U postgres" >/dev/null
  fi
  su postgres -s /bin/sh -c "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $DATA/log -w start" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
