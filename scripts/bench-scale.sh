#!/usr/bin/env bash
# The whole large tenant in one run: a realm of 10,000 clients, 10,000 realm roles and 100,000
# users with 1,000,000 stored sessions (and as many refresh tokens), against the demo realm
# alone, in the same sitting, under `cambio-bench --distinct-subjects 4096` (every subject
# token new to the server). Loopback only; every loop is bounded.
#
#   cargo build --release -p cambio -p cambio-bench
#   scripts/bench-scale.sh sqlite                   # data directories under /tmp/cambio-scale
#   scripts/bench-scale.sh postgres "$(scripts/pg-test-cluster.sh url)"
#
# The realm is filled through the admin API (scripts/bench-tenant.py); the sessions are
# written by one SQL statement each for sessions and refresh tokens (synthetic ids of the
# large realm's users), since a million admin requests would take the better part of an hour.
# Then the two servers are loaded in turn, two rounds: large, empty, large, empty.
set -euo pipefail

store=${1:?sqlite or postgres}
pg_url=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin=target/release/cambio
bench=target/release/cambio-bench
port=18191
work=/tmp/cambio-scale
sessions=1000000
rounds=2

pidof_server() { pgrep -f "cambio serve --listen 127.0.0.1:$port" || true; }
stop_server() {
    local pid
    pid=$(pidof_server)
    if [ -n "$pid" ]; then
        kill "$pid"
        for _ in $(seq 50); do [ -z "$(pidof_server)" ] && return; sleep 0.1; done
    fi
}
trap stop_server EXIT

# $1: large or empty
database_of() {
    case $store in
        sqlite) echo "sqlite://$work/$1/cambio.db" ;;
        postgres) echo "${pg_url%/*}/scale_$1" ;;
    esac
}

start_server() {
    mkdir -p "$work/$1"
    CAMBIO_ADMIN_PASSWORD=admin "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/$1" \
        --database "$(database_of "$1")" --demo >"$work/$1.log" 2>&1 &
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "the $1 server did not start; see $work/$1.log" >&2
    exit 1
}

sql() {
    case $store in
        sqlite) sqlite3 "$work/large/cambio.db" ;;
        postgres) psql -qtA -v ON_ERROR_STOP=1 "$(database_of large)" ;;
    esac
}

rm -rf "$work"
mkdir -p "$work"
if [ "$store" = postgres ]; then
    for name in large empty; do
        psql -q "$pg_url" -c "DROP DATABASE IF EXISTS scale_$name" -c "CREATE DATABASE scale_$name"
    done
fi

echo "filling the large realm (10,000 clients, 10,000 roles, 100,000 users)"
start_server large
python3 scripts/bench-tenant.py "http://127.0.0.1:$port" admin 10000 --kind role --users 100000
stop_server

echo "storing $sessions sessions and refresh tokens"
now=$(date +%s)
expires=$((now + 30 * 86400))
started=$(date +%s.%N)
# Refresh tokens are keyed by a hex SHA-256 in Cambio; random hex keeps the B-tree realistic.
case $store in
    sqlite)
        series="WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $sessions - 1)"
        offline=0
        hash="lower(hex(randomblob(32)))"
        ;;
    postgres)
        series="WITH n(i) AS (SELECT generate_series(0, $sessions - 1))"
        offline=false
        hash="md5(random()::text) || md5(random()::text)"
        ;;
esac
realm="(SELECT id FROM objects WHERE realm_id = '' AND kind = 'realm' AND name = 'demo')"
sql <<SQL
$series
INSERT INTO sessions (id, realm_id, user_id, client_id, offline, created_at, last_refresh, expires_at)
SELECT 'scale-session-' || i, $realm, 'scale-user-' || (i % 100000), 'scale-client', $offline,
       $now, $now, $expires FROM n;
$series
INSERT INTO refresh_tokens (hash, realm_id, session_id, client_id, user_id, scope, data, offline,
                            issued_at, expires_at)
SELECT $hash, $realm, 'scale-session-' || i, 'scale-client',
       'scale-user-' || (i % 100000), 'openid profile email', '{}', $offline, $now, $expires FROM n;
SQL
echo "stored in $(echo "$(date +%s.%N) - $started" | bc) s"
echo "sessions in the large database: $(echo 'SELECT count(*) FROM sessions;' | sql)"

start_server empty
stop_server

for round in $(seq $rounds); do
    for name in large empty; do
        start_server "$name"
        echo "round $round, $name realm:"
        "$bench" --target 127.0.0.1:$port --target-pid "$(pidof_server)" \
            --distinct-subjects 4096 --duration 10 --json |
            python3 -c 'import json, sys; d = json.load(sys.stdin); print("  %.0f exchanges/s, %.1f µs server CPU each, p99 %.2f ms, %.0f MiB resident, other processes %.0f %% of a core, errors %d" % (d["requests_per_s"], d["server_cpu_per_request_us"], d["latency_ms"]["p99"], d["server_rss_kb"][-1]["kb"] / 1024, d["other_processes_cpu_percent_of_one_core"], d["errors"]))'
        stop_server
    done
done
