#!/usr/bin/env bash
# The Python SDK's tests: builds the wheel of crates/cambio-python with maturin (debug, to keep
# the build short), installs it into .venv-test (set up by scripts/install-test-deps.sh) and
# runs its pytest suite against `cambio serve --demo` started from target/debug/cambio.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
if [[ ! -x "$venv/bin/maturin" ]]; then
    echo "test-python-sdk: $venv has no maturin; run scripts/install-test-deps.sh first" >&2
    exit 1
fi

cargo build -p cambio
wheels=target/wheels
rm -f "$wheels"/cambio_sdk-*.whl
"$venv/bin/maturin" build --quiet --strip -m crates/cambio-python/Cargo.toml \
    --interpreter "$venv/bin/python" --out "$wheels"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    "$wheels"/cambio_sdk-*.whl
CAMBIO_BIN="$PWD/target/debug/cambio" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    crates/cambio-python/tests
