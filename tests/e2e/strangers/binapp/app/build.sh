#!/bin/sh
# Builds the server outside its image and outside its repository (../out/notes), with the
# host's gcc against libpq (libpq-dev); nocrud.yaml's app.add_to_context brings it in.
set -e
cd "$(dirname "$0")"
mkdir -p ../out
exec gcc -O2 -Wall -Wextra -o ../out/notes notes.c -I/usr/include/postgresql -lpq
