package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/nemesis"
)

// newBackend returns the backend --backend names, building quorumd from
// this checkout when no --server-binary is given.
func newBackend(ctx context.Context, name, serverBinary, store string, lg *slog.Logger, progress io.Writer) (harness.Backend, error) {
	switch name {
	case "local":
	default:
		return nil, fmt.Errorf("--backend %q: want local", name)
	}
	bin := serverBinary
	if bin == "" {
		dir, err := filepath.Abs(filepath.Join(store, ".bin"))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "building quorumd from this checkout into %s ...\n", dir)
		bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if bin, err = local.BuildQuorumd(bctx, dir); err != nil {
			return nil, fmt.Errorf("build quorumd (run from the repository, or pass --server-binary): %w", err)
		}
	} else {
		st, err := os.Stat(bin)
		if err != nil {
			return nil, fmt.Errorf("--server-binary: %w", err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("--server-binary %s is not an executable file", bin)
		}
		if bin, err = filepath.Abs(bin); err != nil {
			return nil, err
		}
	}
	return &harness.LocalBackend{Binary: bin}, nil
}

func nemesisNames() []string { return nemesis.Names() }
