#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests.
#
#   scripts/pg-test-cluster.sh start   create (first time) and start the cluster; reuses it when
#                                      already running; prints its URL
#   scripts/pg-test-cluster.sh url     prints postgres://cambio@127.0.0.1:PORT/cambio (fails when
#                                      the cluster is not running)
#   scripts/pg-test-cluster.sh stop    stops the cluster and deletes it
#   scripts/pg-test-cluster.sh status  exit 0 when running
#   scripts/pg-test-cluster.sh pause   stops the server (fast shutdown) but keeps the cluster
#   scripts/pg-test-cluster.sh resume  starts a paused cluster again, on the same port
#
# pause and resume simulate a database restart (crates/cambio/tests/nodes.rs); use them on a
# cluster of your own (CAMBIO_PG_TEST_DIR), since every client of the cluster loses it meanwhile.
#
# The cluster lives in $CAMBIO_PG_TEST_DIR, by default a directory under ${TMPDIR:-/tmp} named
# after this checkout, so that `start` in one shell and the tests in another find the same
# cluster. scripts/test.sh sets CAMBIO_PG_TEST_DIR to a directory of its own, so that
# concurrent test runs never share (or stop) each other's cluster.
#
# It listens on 127.0.0.1 only (no Unix socket), on a free port chosen at first start, with
# trust authentication: a superuser `postgres` and a role `cambio` (LOGIN CREATEDB) owning
# database `cambio`. Tests connect as `cambio` and create a database each. Durability is off
# (fsync, synchronous_commit): the data is thrown away anyway.
#
# PostgreSQL refuses to run as root. When run as root, the cluster belongs to a system user
# `cambio-test` (created on first use) and the server tools run as that user.
#
# Needs PostgreSQL's server binaries: /usr/lib/postgresql/<version>/bin (Debian's packages,
# see scripts/install-test-deps.sh), $PG_BIN, or initdb and pg_ctl on the PATH.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
default_dir="${TMPDIR:-/tmp}/cambio-pg-test-$(id -u)-$(printf '%s' "$repo" | cksum | cut -d' ' -f1)"
dir=${CAMBIO_PG_TEST_DIR:-$default_dir}
data="$dir/data"
os_user=cambio-test

log() { echo "pg-test-cluster: $*" >&2; }
die() {
    log "$*"
    exit 1
}

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        echo "$PG_BIN"
        return
    fi
    local newest=""
    local candidate
    for candidate in /usr/lib/postgresql/*/bin; do
        [[ -x "$candidate/initdb" ]] || continue
        # Highest major version wins (sort -V handles 9.6 < 15 < 16).
        if [[ -z "$newest" || "$(printf '%s\n%s\n' "$newest" "$candidate" | sort -V | tail -n1)" == "$candidate" ]]; then
            newest=$candidate
        fi
    done
    if [[ -n "$newest" ]]; then
        echo "$newest"
        return
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    die "PostgreSQL server binaries not found (install the postgresql package: scripts/install-test-deps.sh, or set PG_BIN)"
}

# Runs a command as the cluster's owner: cambio-test when root, the current user otherwise.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$os_user" -- "$@"
    else
        "$@"
    fi
}

ensure_os_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    id "$os_user" >/dev/null 2>&1 && return 0
    log "creating system user $os_user"
    # A concurrent start may have created it meanwhile; only fail when it still does not exist.
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$os_user" 2>/dev/null ||
        id "$os_user" >/dev/null 2>&1 ||
        die "cannot create user $os_user"
}

is_running() {
    [[ -f "$data/PG_VERSION" ]] && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" || {
            echo "$port"
            return
        }
    done
    die "no free port found"
}

url() {
    echo "postgres://cambio@127.0.0.1:$(cat "$dir/port")/cambio"
}

psql_admin() {
    "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres "$@"
}

init_cluster() {
    log "creating cluster in $dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$os_user:" "$dir"
        # The owner must be able to reach the directory: every parent needs search permission.
        as_owner test -x "$dir" || die "$os_user cannot reach $dir; set CAMBIO_PG_TEST_DIR to a directory under /tmp"
    fi
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 ||
        as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C \
            --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed, see $dir/initdb.log"
    # TCP on 127.0.0.1 only, trusted; no Unix socket, no other host.
    as_owner tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
EOF
    as_owner tee -a "$data/postgresql.conf" >/dev/null <<'EOF'

# scripts/pg-test-cluster.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
include_if_exists = 'port.conf'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
EOF
}

start() {
    ensure_os_user
    if is_running; then
        url
        return
    fi
    [[ -f "$data/PG_VERSION" ]] || init_cluster
    # Pick a port (keeping the previous one when it is still free) and start; another process
    # may grab the port between the check and the start, so try a few.
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=""
        if [[ -f "$dir/port" ]] && ! port_in_use "$(cat "$dir/port")"; then
            port=$(cat "$dir/port")
        fi
        [[ -n "$port" ]] || port=$(free_port)
        echo "port = $port" | as_owner tee "$data/port.conf" >/dev/null
        echo "$port" >"$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
        # 9>&-: the server must not inherit the lock (flock locks belong to the open file, so a
        # server holding it would block every later command until it stops).
        if as_owner "$bin/pg_ctl" start -D "$data" -l "$dir/server.log" -w -t 60 >/dev/null 2>&1 9>&-; then
            break
        fi
        if [[ $attempt -eq 5 ]]; then
            tail -n 20 "$dir/server.log" >&2 || true
            die "the server did not start, see $dir/server.log"
        fi
        log "start on port $port failed, retrying on another port"
        rm -f "$dir/port"
    done
    # First start: the application role and database.
    if [[ ! -f "$dir/provisioned" ]]; then
        psql_admin <<'EOF'
CREATE ROLE cambio LOGIN CREATEDB;
CREATE DATABASE cambio OWNER cambio;
EOF
        touch "$dir/provisioned"
    fi
    log "running on 127.0.0.1:$port (data in $data)"
    url
}

stop() {
    if [[ -f "$data/PG_VERSION" ]] && is_running; then
        as_owner "$bin/pg_ctl" stop -D "$data" -m immediate -w -t 60 >/dev/null
        log "stopped"
    fi
    if [[ -d "$dir" ]]; then
        rm -rf "$dir"
    fi
}

pause() {
    [[ -f "$data/PG_VERSION" ]] || die "no cluster in $dir"
    if is_running; then
        as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
        log "paused"
    fi
}

resume() {
    [[ -f "$data/PG_VERSION" ]] || die "no cluster in $dir"
    is_running && return 0
    # The same port as before (port.conf is kept), so that clients reconnect to the same URL.
    as_owner "$bin/pg_ctl" start -D "$data" -l "$dir/server.log" -w -t 60 >/dev/null 2>&1 9>&- ||
        die "the server did not start again, see $dir/server.log"
    log "resumed on 127.0.0.1:$(cat "$dir/port")"
}

# One command at a time per cluster directory: concurrent `start`s must not both run initdb.
with_lock() {
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    "$@"
}

command=${1:-}
case "$command" in
start)
    bin=$(find_bin)
    with_lock start
    ;;
stop)
    bin=$(find_bin)
    with_lock stop
    rm -f "$dir.lock"
    ;;
pause)
    bin=$(find_bin)
    with_lock pause
    ;;
resume)
    bin=$(find_bin)
    with_lock resume
    ;;
url)
    bin=$(find_bin)
    is_running || die "not running (scripts/pg-test-cluster.sh start)"
    url
    ;;
status)
    bin=$(find_bin)
    is_running
    ;;
*)
    echo "usage: $0 start|stop|url|status|pause|resume" >&2
    exit 2
    ;;
esac
