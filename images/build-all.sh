#!/usr/bin/env bash
# Build every image nocrud itself needs, from nothing, in one command:
#   debian:bookworm-slim  (pulled, or made offline with debootstrap when no registry is reachable)
#   nocrud/postgres:15    (PostgreSQL tuned for disposable test databases)
#   nocrud/reaper:1       (removes a killed run's containers; speaks testcontainers' Ryuk protocol)
# Docker's layer cache makes a second run take a second or two.
# The app and pre-migrated database images are project-specific: `nocrud build` makes them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

log() { printf '[images] %s\n' "$*" >&2; }

"$here/base/ensure-base-image.sh"

build() {
    local tag="$1" dir="$2" started
    started=$(date +%s)
    if ! out=$(docker build -q -t "$tag" "$dir" 2>&1); then
        log "building $tag failed:"
        printf '%s\n' "$out" >&2
        exit 1
    fi
    log "$tag ready ($(( $(date +%s) - started ))s)"
}

build nocrud/postgres:15 "$here/postgres"
build nocrud/reaper:1 "$here/reaper"
