#!/usr/bin/env bash
# Runs just the PostgreSQL tests (the store's and the server's) against a throwaway cluster of
# their own, stopped and deleted on exit. Extra arguments go to both `cargo test` runs, e.g.
# `scripts/test-postgres.sh -- --nocapture`. With CAMBIO_TEST_POSTGRES_URL already set, that
# server is used instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CAMBIO_TEST_POSTGRES_URL:-}" ]]; then
    CAMBIO_PG_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cambio-pg-test.XXXXXX")
    export CAMBIO_PG_TEST_DIR
    trap './scripts/pg-test-cluster.sh stop || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    CAMBIO_TEST_POSTGRES_URL=$(./scripts/pg-test-cluster.sh start)
    export CAMBIO_TEST_POSTGRES_URL
fi

cargo test -p cambio-store postgres "$@"
cargo test -p cambio-server --test it postgres "$@"
