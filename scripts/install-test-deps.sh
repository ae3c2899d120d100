#!/usr/bin/env bash
# Installs what the compatibility tests need: a Python virtualenv at .venv-test with the
# pinned clients of tests/compat/requirements.txt. Idempotent; does nothing when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-test
requirements=tests/compat/requirements.txt
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

# (Re)create the venv when missing or broken, e.g. after the system Python changed.
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    echo "install-test-deps: creating $venv"
    "$python" -m venv --clear "$venv"
fi

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "install-test-deps: installing $requirements into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
echo "$want" >"$stamp"
