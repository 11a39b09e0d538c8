#!/bin/sh
# Builds the server outside its image, with the host's gcc against libpq (libpq-dev).
set -e
cd "$(dirname "$0")"
mkdir -p build
exec gcc -O2 -Wall -Wextra -o build/notes notes.c -I/usr/include/postgresql -lpq
