#!/usr/bin/env bash
# Refuses dependencies the design forbids: the `rsa` crate (RUSTSEC-2023-0071), OpenSSL, and a
# second crypto provider (ring). aws-lc-rs is the only one.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in rsa openssl openssl-sys ring; do
    tree=$(cargo tree --workspace --target all -e normal,build -i "$crate" 2>/dev/null || true)
    if grep -q "^$crate v" <<<"$tree"; then
        echo "check-deps: forbidden crate '$crate' is in the dependency tree:" >&2
        echo "$tree" >&2
        status=1
    fi
done
exit $status
