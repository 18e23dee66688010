#!/usr/bin/env bash
# Builds the static quorumd binary that docker/Dockerfile copies
# (docker-compose.yml builds its image from this directory). Run it before
# `docker-compose up --build -d`, and again after changing the source.
# Needs only Go on the host (and the module proxy for dependencies).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
mkdir -p "$here/tmp"
CGO_ENABLED=0 GOOS=linux go build -trimpath -o "$here/.quorumd.tmp.$$" ./cmd/quorumd
mv -f "$here/.quorumd.tmp.$$" "$here/quorumd"
echo "$here/quorumd"
