// Package testbin gives integration tests the quorumd binary they run,
// built once per test binary from this checkout.
package testbin

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster/local"
)

// Main is TestMain for a package whose tests start quorumd processes:
// unless -short is given, it builds quorumd into a temporary directory and
// stores its path in *quorumd, runs the tests, removes the directory and
// exits with the tests' code. With -short the tests run with *quorumd
// empty (they skip).
func Main(m *testing.M, quorumd *string) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "quorumd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	*quorumd, err = local.BuildQuorumd(ctx, dir)
	cancel()
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "testbin: build quorumd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
