#!/usr/bin/env bash
# Builds the comparison tools (real etcd v3.6, etcd's benchmark, etcdctl and
# etcdutl) into tools/bin/. Safe to run repeatedly: Go's build cache makes a second run
# cheap, and the binaries are replaced atomically. Prints the absolute path
# of each binary on its own line. The binaries are static (CGO_ENABLED=0) so
# that the container backend can copy them into a FROM scratch image.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
mkdir -p bin

# name=package: etcd and benchmark are wrappers in this module; etcdctl and
# etcdutl are upstream main packages, pinned by go.mod's tool directive.
for spec in \
	etcd=./etcd \
	benchmark=./benchmark \
	etcdctl=go.etcd.io/etcd/etcdctl/v3 \
	etcdutl=go.etcd.io/etcd/etcdutl/v3; do
	tool="${spec%%=*}"
	pkg="${spec#*=}"
	tmp="bin/.${tool}.tmp.$$"
	CGO_ENABLED=0 go build -o "$tmp" "$pkg"
	mv -f "$tmp" "bin/${tool}"
	echo "$here/bin/${tool}"
done
