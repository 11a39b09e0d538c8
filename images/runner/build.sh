#!/usr/bin/env bash
# Build the runner image (nocrud installed from this checkout's working tree):
#   images/runner/build.sh [TAG]        (default tag: nocrud/runner:test)
#
# pip cannot reach PyPI from inside containers on the CI machines, so the wheels
# are fetched on the host and the Dockerfile installs them offline:
#   deps/  the dependencies, for CPython 3.11 on glibc x86_64/aarch64 (bookworm's
#          python3), cached per content of pyproject.toml under
#          ${NOCRUD_WHEEL_CACHE:-~/.cache/nocrud/runner-wheels};
#   app/   nocrud itself, built from a clean copy of pyproject.toml + runner/
#          (building in place would leave build/ and egg-info in the checkout).
# The image is labelled with a hash of its sources: when nothing changed, the
# script only says so (well under a second). Needs docker and a Python with pip
# on the host (./v/bin/python by default; PYTHON=... to choose another).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${1:-nocrud/runner:test}"

log() { printf '[runner-image] %s\n' "$*" >&2; }

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$repo/v/bin/python" ]; then python="$repo/v/bin/python"; else python=python3; fi
fi

# Everything that ends up in the image, in a stable order (caches and build leftovers excluded).
sources() {
    (cd "$repo" && find pyproject.toml runner images/runner/Dockerfile -type f \
        ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name '*.pyc' -print0 | sort -z)
}
source_hash="$(cd "$repo" && sources | xargs -0 sha256sum | sha256sum | cut -c1-16)"

current="$(docker image inspect -f '{{index .Config.Labels "nocrud.source"}}' "$tag" 2>/dev/null || true)"
if [ "$current" = "$source_hash" ]; then
    log "$tag up to date (sources $source_hash)"
    exit 0
fi

started=$(date +%s)
ctx="$(mktemp -d "${TMPDIR:-/tmp}/nocrud-runner.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/src" "$ctx/app" "$ctx/deps"
cp "$here/Dockerfile" "$ctx/"

# nocrud's wheel, from a copy of the sources.
(cd "$repo" && sources | tar --null -T - -c) | tar -x -C "$ctx/src"
cp "$repo/README.md" "$ctx/src/" 2>/dev/null || true
"$python" -m pip wheel -q --no-deps --wheel-dir "$ctx/app" "$ctx/src" >"$ctx/pip.log" 2>&1 || {
    log "building the nocrud wheel failed:"
    cat "$ctx/pip.log" >&2
    exit 1
}

# The dependencies' wheels for the image's Python, not the host's: cached by pyproject.toml.
arch="$(uname -m)"
cache_root="${NOCRUD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nocrud/runner-wheels}"
deps_key="$( (cat "$repo/pyproject.toml"; echo "cp311 manylinux_2_36_$arch") | sha256sum | cut -c1-16)"
deps="$cache_root/$deps_key"
if [ ! -d "$deps" ]; then
    log "downloading dependency wheels into $deps"
    mkdir -p "$cache_root"
    partial="$(mktemp -d "$cache_root/.partial.XXXXXX")"
    # pip takes --platform literally: name every manylinux tag that bookworm's glibc 2.36 runs.
    platforms=(--platform "manylinux2014_$arch")
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
    if ! "$python" -m pip download -q --dest "$partial" --only-binary=:all: \
        --implementation cp --python-version 3.11 --abi cp311 "${platforms[@]}" \
        "$ctx"/app/nocrud-*.whl >"$ctx/pip.log" 2>&1; then
        rm -rf "$partial"
        log "downloading the dependency wheels failed:"
        cat "$ctx/pip.log" >&2
        exit 1
    fi
    rm -f "$partial"/nocrud-*.whl
    # Another build may have won the race; either copy is complete.
    mv -T "$partial" "$deps" 2>/dev/null || rm -rf "$partial"
fi
cp "$deps"/*.whl "$ctx/deps/"

if ! out=$(docker build -q --label "nocrud.source=$source_hash" -t "$tag" "$ctx" 2>&1); then
    log "building $tag failed:"
    printf '%s\n' "$out" >&2
    exit 1
fi
log "$tag ready (sources $source_hash, $(( $(date +%s) - started ))s)"
