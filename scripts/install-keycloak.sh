#!/usr/bin/env bash
# Installs the Keycloak server distribution that the differential tests (it::keycloak) run
# beside Cambio: fetched from Maven Central through Maven into the local repository, unpacked
# into a cache outside the source tree, skipped when already there. Prints the directory.
#
#   CAMBIO_KEYCLOAK_VERSION  the version (default below)
#   CAMBIO_KEYCLOAK_CACHE    where to unpack (default ~/.cache/cambio)
#   CAMBIO_MAVEN_REPO        Maven's local repository (default ~/.m2/repository)
set -euo pipefail

version=${CAMBIO_KEYCLOAK_VERSION:-26.7.3}
cache=${CAMBIO_KEYCLOAK_CACHE:-$HOME/.cache/cambio}
home="$cache/keycloak-$version"

if [[ -x "$home/bin/kc.sh" ]]; then
    echo "$home"
    exit 0
fi
for tool in mvn java unzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-keycloak: $tool not found" >&2
        exit 1
    fi
done

artifact="org.keycloak:keycloak-quarkus-dist:$version:zip"
repo=${CAMBIO_MAVEN_REPO:-$HOME/.m2/repository}
mvn -B -q -Dmaven.repo.local="$repo" dependency:get -Dartifact="$artifact" -Dtransitive=false >&2
zip="$repo/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"

# Unpack beside the target and move into place, so an interrupted run leaves nothing half-made.
mkdir -p "$cache"
staging=$(mktemp -d "$cache/.keycloak-unpack.XXXXXX")
trap 'rm -rf "$staging"' EXIT
unzip -q "$zip" -d "$staging"
mv "$staging/keycloak-$version" "$home"
echo "$home"
