#!/usr/bin/env bash
# Build every image nocrud itself needs, from nothing, in one command:
#   debian:bookworm-slim  (pulled, or made offline with debootstrap when no registry is reachable)
#   nocrud/postgres:15    (PostgreSQL tuned for disposable test databases)
#   nocrud/reaper:1       (removes a killed run's containers; speaks testcontainers' Ryuk protocol)
# `nocrud build` does the same on demand from the copies shipped inside the package
# (runner/nocrud/images/assets/, the only copies): this script is for a checkout, CI
# images and machines without nocrud installed. NOCRUD_PG_MAJORS="15 17" adds
# nocrud/postgres:17 (built on debian:trixie-slim, made offline the same way).
# Docker's layer cache makes a second run take a second or two.
# The app and pre-migrated database images are project-specific: `nocrud build` makes them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
assets="$here/../runner/nocrud/images/assets"

log() { printf '[images] %s\n' "$*" >&2; }

build() {
    local tag="$1" dir="$2" started
    shift 2
    started=$(date +%s)
    if ! out=$(docker build -q "$@" -t "$tag" "$dir" 2>&1); then
        log "building $tag failed:"
        printf '%s\n' "$out" >&2
        exit 1
    fi
    log "$tag ready ($(( $(date +%s) - started ))s)"
}

"$assets/base/ensure-base-image.sh"
for major in ${NOCRUD_PG_MAJORS:-15}; do
    case "$major" in
        15) release=bookworm ;;
        17) release=trixie ;;
        *) log "PostgreSQL $major is not built here (Debian ships 15 in bookworm, 17 in trixie)"; exit 1 ;;
    esac
    NOCRUD_BASE_IMAGE="debian:$release-slim" NOCRUD_BASE_SUITE="$release" "$assets/base/ensure-base-image.sh"
    build "nocrud/postgres:$major" "$assets/postgres" \
        --build-arg "PG_MAJOR=$major" --build-arg "DEBIAN_RELEASE=$release"
done
build nocrud/reaper:1 "$assets/reaper"
