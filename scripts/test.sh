#!/usr/bin/env bash
# The test command: installs the test clients, checks formatting and lints, runs every test.
#
# The PostgreSQL tests run against a throwaway cluster of this run's own (see
# scripts/pg-test-cluster.sh), stopped and deleted on exit; a CAMBIO_TEST_POSTGRES_URL already
# set in the environment is used instead.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
./scripts/check-deps.sh

if [[ -z "${CAMBIO_TEST_POSTGRES_URL:-}" ]]; then
    # A directory per run, so that concurrent runs never share or stop each other's cluster.
    CAMBIO_PG_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cambio-pg-test.XXXXXX")
    export CAMBIO_PG_TEST_DIR
    trap './scripts/pg-test-cluster.sh stop || true' EXIT
    # Make INT and TERM exit through the EXIT trap as well.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if url=$(./scripts/pg-test-cluster.sh start); then
        export CAMBIO_TEST_POSTGRES_URL=$url
    elif [[ -n "${CI:-}" ]]; then
        echo "test.sh: cannot start PostgreSQL for the tests" >&2
        exit 1
    else
        echo "test.sh: cannot start PostgreSQL, its tests will be skipped" >&2
    fi
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace
else
    cargo test --workspace
fi

# The language bindings of the client SDK, each against a real `cambio serve --demo`.
./scripts/test-python-sdk.sh
./scripts/test-kotlin-sdk.sh
