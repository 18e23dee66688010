#!/usr/bin/env bash
# The test suite: unit tests, integration tests with real processes on
# loopback, and (where a Docker engine is reachable) container tests.
# Packages with concurrency run under the race detector.
set -euo pipefail
cd "$(dirname "$0")"
export TESTCONTAINERS_RYUK_DISABLED=true
exec go test -race -timeout 20m -count=1 ./... "$@"
