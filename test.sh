#!/usr/bin/env bash
# The test suite: unit tests, integration tests with real processes on
# loopback, and (where a Docker engine is reachable) container tests.
# Packages with concurrency run under the race detector.
#
# The harness package is the longest (its tests are whole quorum test runs,
# one after another, mostly waiting on their clusters): it runs in its own
# go test from the start, beside the other packages (two at a time), so the
# suite takes about as long as its longest part instead of the sum. Extra
# arguments go to both.
set -euo pipefail
cd "$(dirname "$0")"
export TESTCONTAINERS_RYUK_DISABLED=true
harness=github.com/quorum-kv/quorum/harness
others=$(go list ./... | grep -vx "$harness")
go test -race -timeout 20m -count=1 "$harness" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT # stopped early: stop it too
rc=0
# shellcheck disable=SC2086 # one package path per word
go test -race -timeout 20m -count=1 $others "$@" || rc=$?
wait "$pid" || rc=$?
exit "$rc"
