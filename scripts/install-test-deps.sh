#!/usr/bin/env bash
# Installs what the compatibility tests need:
#   - a Python virtualenv at .venv-test with the pinned clients of tests/compat/requirements.txt;
#   - tests/compat/node_modules with the pinned Node clients of tests/compat/package-lock.json
#     (`npm ci`; needs Node >= 18 and npm).
#   - Keycloak's server distribution (scripts/install-keycloak.sh: Maven Central through `mvn`,
#     unpacked under ~/.cache/cambio) for the differential suite.
#   - tests/console/node_modules (playwright-core, `npm ci`) and Debian's Chromium
#     (`apt-get install chromium chromium-driver` when /usr/bin/chromium is missing; needs root)
#     for the console's browser test; playwright-core never downloads a browser of its own.
#   - curl and jq for the README walkthrough's test (crates/cambio/tests/readme.rs), through
#     `apt-get install curl jq` when either is missing (needs root).
#   - PostgreSQL's server binaries for scripts/pg-test-cluster.sh: when no
#     /usr/lib/postgresql/*/bin/initdb exists, `apt-get install postgresql` (needs root; CI runs
#     as root).
# Idempotent; does nothing when up to date. Without npm the Node part is skipped with a
# warning (an error when CI is set): the tests that need it then skip locally. The same goes
# for PostgreSQL when it is missing and cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

install_python() {
    local venv=.venv-test
    local requirements=tests/compat/requirements.txt
    local stamp="$venv/.requirements.sha256"
    local python=${PYTHON:-python3}

    # (Re)create the venv when missing or broken, e.g. after the system Python changed.
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        echo "install-test-deps: creating $venv"
        "$python" -m venv --clear "$venv"
    fi

    local want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi

    echo "install-test-deps: installing $requirements into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
    echo "$want" >"$stamp"
}

install_node() {
    local dir=${1:-tests/compat}
    local lock="$dir/package-lock.json"
    local stamp="$dir/node_modules/.package-lock.sha256"
    local npm=${NPM:-npm}

    local want
    want=$(sha256sum "$lock" | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi

    if ! command -v "$npm" >/dev/null 2>&1; then
        if [[ -n "${CI:-}" ]]; then
            echo "install-test-deps: npm not found; the Node compatibility tests need Node >= 18" >&2
            exit 1
        fi
        echo "install-test-deps: npm not found, skipping $dir/node_modules (Node tests will be skipped)" >&2
        return 0
    fi

    # `npm ci` installs exactly the lock file, replacing any node_modules already there.
    echo "install-test-deps: installing $lock into $dir/node_modules"
    (cd "$dir" && "$npm" ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
}

# Installs Debian packages for one test, as root through apt-get. Where that cannot be done,
# CI fails (the test must run there) and a local run goes on without the test.
#   apt_install WHAT NEEDED_BY PACKAGE...
apt_install() {
    local what="$1" needed_by="$2"
    shift 2
    local why=""
    if [[ $(id -u) -ne 0 ]]; then
        why="not root"
    elif ! command -v apt-get >/dev/null 2>&1; then
        why="no apt-get"
    fi
    if [[ -n "$why" ]]; then
        if [[ -n "${CI:-}" ]]; then
            echo "install-test-deps: $what not found and cannot be installed ($why); $needed_by needs it" >&2
            exit 1
        fi
        echo "install-test-deps: $what not found and cannot be installed ($why), skipping ($needed_by will be skipped)" >&2
        return 0
    fi
    echo "install-test-deps: installing $what"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
}

install_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        return 0
    fi
    apt_install Chromium "the console's browser test" chromium chromium-driver
}

install_walkthrough_tools() {
    if command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
        return 0
    fi
    apt_install "curl or jq" "the README walkthrough's test" curl jq
}

install_postgres() {
    local initdb
    for initdb in /usr/lib/postgresql/*/bin/initdb; do
        [[ -x "$initdb" ]] && return 0
    done

    local why=""
    if [[ $(id -u) -ne 0 ]]; then
        why="not root"
    elif ! command -v apt-get >/dev/null 2>&1; then
        why="no apt-get"
    fi
    if [[ -n "$why" ]]; then
        if [[ -n "${CI:-}" ]]; then
            echo "install-test-deps: PostgreSQL not found and cannot be installed ($why); the PostgreSQL tests need it" >&2
            exit 1
        fi
        echo "install-test-deps: PostgreSQL not found and cannot be installed ($why), skipping (PostgreSQL tests will be skipped)" >&2
        return 0
    fi

    echo "install-test-deps: installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
}

install_keycloak() {
    # The differential suite (it::keycloak) runs Keycloak beside Cambio; it needs Java and Maven.
    if ./scripts/install-keycloak.sh >/dev/null; then
        return 0
    fi
    if [[ -n "${CI:-}" ]]; then
        echo "install-test-deps: could not install Keycloak; the differential suite needs it" >&2
        exit 1
    fi
    echo "install-test-deps: could not install Keycloak, the differential suite will be skipped" >&2
}

install_python
install_node tests/compat
install_node tests/console
install_chromium
install_walkthrough_tools
install_postgres
install_keycloak
