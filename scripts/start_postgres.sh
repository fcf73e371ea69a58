#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store tests (idempotent).
#
#   eval "export RUNFLOW_TEST_PG_URL=$(scripts/start_postgres.sh | tail -n 1)"
#
# Environment: PGPORT (default 55432), PGDATA_DIR (default /tmp/pgdata), PGSOCK_DIR (default /tmp/pgsock),
# PG_VERSION (default: newest under /usr/lib/postgresql, else 15). Installs Debian's postgresql with
# apt-get when it is missing. initdb/pg_ctl refuse to run as root, so they run as the postgres user.
# The last line printed is the connection URL. Stop with: runuser -u postgres -- pg_ctl -D "$PGDATA_DIR" stop
set -euo pipefail

PGPORT="${PGPORT:-55432}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/pgdata}"
PGSOCK_DIR="${PGSOCK_DIR:-/tmp/pgsock}"

find_bindir() {
    if [[ -n "${PG_VERSION:-}" ]]; then
        echo "/usr/lib/postgresql/${PG_VERSION}/bin"
        return
    fi
    local newest
    newest="$(ls -1 /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1 || true)"
    echo "/usr/lib/postgresql/${newest:-15}/bin"
}

BINDIR="$(find_bindir)"
if [[ ! -x "$BINDIR/initdb" ]]; then
    echo "installing postgresql (apt-get)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BINDIR="$(find_bindir)"
fi

as_postgres() {
    if [[ "$(id -un)" == "postgres" ]]; then
        "$@"
    else
        runuser -u postgres -- "$@"
    fi
}

mkdir -p "$PGDATA_DIR" "$PGSOCK_DIR"
if [[ "$(id -u)" == "0" ]]; then
    chown postgres:postgres "$PGDATA_DIR" "$PGSOCK_DIR"
fi
chmod 700 "$PGDATA_DIR"

if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    as_postgres "$BINDIR/initdb" -D "$PGDATA_DIR" --auth=trust --username=postgres >&2
fi

if as_postgres "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    # Line 4 of postmaster.pid is the port the running server really listens on.
    PGPORT="$(sed -n 4p "$PGDATA_DIR/postmaster.pid")"
    echo "postgresql already running in $PGDATA_DIR on port $PGPORT" >&2
else
    as_postgres "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGSOCK_DIR" -w start >&2
fi

# Wait until the server accepts connections on the TCP port (pg_ctl -w checks the socket).
for _ in $(seq 1 50); do
    if as_postgres "$BINDIR/pg_isready" -h 127.0.0.1 -p "$PGPORT" -q; then
        break
    fi
    sleep 0.2
done
as_postgres "$BINDIR/pg_isready" -h 127.0.0.1 -p "$PGPORT" >&2

echo "postgresql://postgres@127.0.0.1:${PGPORT}/postgres"
