#!/usr/bin/env bash
# Makes sure the local PostgreSQL answers on 127.0.0.1:5432 with a `test` database, then
# prints the export lines the PostgreSQL connector's integration tests read: the shared
# server's connection string, and the directory of initdb and postgres, from which the TLS
# tests start private servers. Idempotent:
# starts the cluster only when it does not answer, creates `test` only when missing.
# Progress goes to stderr; stdout carries only `export ...` lines.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
PGUSER=postgres
PGDB=test

answers() {
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
}

if ! command -v psql >/dev/null 2>&1; then
    echo "setup-postgres: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql postgresql-client >&2
fi

if ! answers; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "setup-postgres: starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    for _ in $(seq 1 30); do
        answers && break
        sleep 1
    done
fi

if ! answers; then
    echo "setup-postgres: PostgreSQL does not answer on $PGHOST:$PGPORT as $PGUSER" >&2
    exit 1
fi

if [ "$(psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -Atqc "SELECT count(*) FROM pg_database WHERE datname = '$PGDB'")" = 0 ]; then
    echo "setup-postgres: creating database $PGDB" >&2
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qc "CREATE DATABASE $PGDB" >&2
fi

echo "setup-postgres: PostgreSQL answers on $PGHOST:$PGPORT" >&2
# The shared server's certificate (Debian's snakeoil) is not one the tests trust: they reach it
# without TLS. The TLS tests start a private server of their own from these binaries.
echo "export REMEDIATION_TEST_PG='host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDB sslmode=disable'"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if ! [ -x "$bindir/initdb" ] || ! [ -x "$bindir/postgres" ]; then
    echo "setup-postgres: no initdb and postgres under $bindir" >&2
    exit 1
fi
echo "export REMEDIATION_TEST_PG_BIN=$bindir"
