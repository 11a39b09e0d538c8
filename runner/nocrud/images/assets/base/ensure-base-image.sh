#!/usr/bin/env bash
# Make sure `debian:bookworm-slim` exists in the local Docker engine.
#
# Order of preference: already present -> pulled from a registry -> built
# offline from Debian's packages with debootstrap and `docker import`.
# The offline path is what air-gapped machines (and this project's CI) use;
# every Dockerfile in the project then builds unchanged with `FROM debian:bookworm-slim`.
set -euo pipefail

IMAGE="${NOCRUD_BASE_IMAGE:-debian:bookworm-slim}"
SUITE="${NOCRUD_BASE_SUITE:-bookworm}"
MIRROR="${NOCRUD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[base-image] %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE present"
    exit 0
fi

if timeout 60 docker pull "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE pulled"
    exit 0
fi

log "$IMAGE neither present nor pullable: building it offline with debootstrap"
if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        log "debootstrap is missing and we are not root: install it (apt-get install debootstrap) and rerun"
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root="$(mktemp -d /tmp/nocrud-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    log "debootstrap failed; its log follows"
    tail -n 40 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# Make the result behave like the official slim image: no caches, apt sources present.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    - "$IMAGE" >/dev/null
log "$IMAGE built offline ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
