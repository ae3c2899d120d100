#!/usr/bin/env bash
# The Kotlin/JVM SDK's tests: builds crates/cambio-uniffi (debug) with UniFFI's generator,
# generates the Kotlin bindings from the built library, puts both into the Maven project
# crates/cambio-uniffi/kotlin (target/generated-sources/uniffi, target/native/linux-x86-64),
# and runs its JUnit suite (`mvn test`, dependencies from Maven Central) against
# `cambio serve --demo` started from target/debug/cambio. Needs Java 17 and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mvn >/dev/null 2>&1; then
    if [[ -n "${CI:-}" ]]; then
        echo "test-kotlin-sdk: mvn not found; the Kotlin SDK's tests need Java 17 and Maven" >&2
        exit 1
    fi
    echo "test-kotlin-sdk: mvn not found, skipping the Kotlin SDK's tests" >&2
    exit 0
fi

cargo build -p cambio
# The library and the generator in one build, so the bindings describe exactly this library.
# (A build of its own: with `cambio` in the same command, the generator's features would be
# unified into the server's dependencies and rebuild them.)
cargo build -p cambio-uniffi --features bindgen
project=crates/cambio-uniffi/kotlin
rm -rf "$project/target/generated-sources/uniffi" "$project/target/native"
./target/debug/uniffi-bindgen generate --no-format --library target/debug/libcambio_uniffi.so \
    --language kotlin --out-dir "$project/target/generated-sources/uniffi"
mkdir -p "$project/target/native/linux-x86-64"
cp target/debug/libcambio_uniffi.so "$project/target/native/linux-x86-64/"

mvn -B -ntp -f "$project/pom.xml" test -Dcambio.bin="$PWD/target/debug/cambio"
