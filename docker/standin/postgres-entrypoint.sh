#!/bin/bash
# STAND-IN of the postgres image's entrypoint: initdb with POSTGRES_USER/PASSWORD/DB on an empty data
# directory, the *.sql of /docker-entrypoint-initdb.d once, then the server (PGPORT, PGLISTEN).
set -euo pipefail
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_pg() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"; chown postgres "$pwfile"
  as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null
  export PGPASSWORD=$POSTGRES_PASSWORD
  [ "$POSTGRES_DB" = postgres ] || as_pg psql -q -h /var/run/postgresql -p "${PGPORT:-5432}" -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  for f in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$f" ] && as_pg psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "${PGPORT:-5432}" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f"
  done
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec runuser -u postgres -- postgres -D "$PGDATA" -p "${PGPORT:-5432}" -c "listen_addresses=${PGLISTEN:-*}"
