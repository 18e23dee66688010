#!/usr/bin/env bash
# Builds the comparison tools (real etcd v3.6 and etcd's benchmark) into
# tools/bin/. Safe to run repeatedly: Go's build cache makes a second run
# cheap, and the binaries are replaced atomically. Prints the absolute path
# of each binary on its own line. The binaries are static (CGO_ENABLED=0) so
# that the container backend can copy them into a FROM scratch image.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
mkdir -p bin

for tool in etcd benchmark; do
	tmp="bin/.${tool}.tmp.$$"
	CGO_ENABLED=0 go build -o "$tmp" "./${tool}"
	mv -f "$tmp" "bin/${tool}"
	echo "$here/bin/${tool}"
done
