package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/cluster/docker"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/nemesis"
)

// newBackend returns the backend --backend names, building quorumd from
// this checkout when no --server-binary (or, for docker, --image) is given.
func newBackend(ctx context.Context, name, serverBinary, image, store string, lg *slog.Logger, progress io.Writer) (harness.Backend, error) {
	switch name {
	case "local":
		if image != "" {
			return nil, errors.New("--image needs --backend docker")
		}
	case "docker":
		return newDockerBackend(ctx, serverBinary, image, store, progress)
	default:
		return nil, fmt.Errorf("--backend %q: want local or docker", name)
	}
	bin := serverBinary
	if bin == "" {
		var err error
		if bin, err = buildQuorumd(ctx, store, progress); err != nil {
			return nil, err
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

// newDockerBackend runs --image, or --server-binary (static) in a locally
// built image, or quorumd built static from this checkout.
func newDockerBackend(ctx context.Context, serverBinary, image, store string, progress io.Writer) (harness.Backend, error) {
	switch {
	case image != "" && serverBinary != "":
		return nil, errors.New("--image and --server-binary exclude each other")
	case image != "":
		return &harness.DockerBackend{Image: image}, nil
	case serverBinary != "":
		if err := docker.CheckStatic(serverBinary); err != nil {
			return nil, fmt.Errorf("--server-binary: %w", err)
		}
		bin, err := filepath.Abs(serverBinary)
		if err != nil {
			return nil, err
		}
		return &harness.DockerBackend{Binary: bin}, nil
	}
	dir, err := filepath.Abs(filepath.Join(store, ".bin", "static"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "building quorumd (static) from this checkout into %s ...\n", dir)
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	bin, err := docker.BuildStatic(bctx, "github.com/quorum-kv/quorum/cmd/quorumd", dir)
	if err != nil {
		return nil, fmt.Errorf("build quorumd (run from the repository, or pass --image or --server-binary): %w", err)
	}
	return &harness.DockerBackend{Binary: bin}, nil
}

func nemesisNames() []string { return nemesis.Names() }

// buildQuorumd builds quorumd from this checkout into STORE/.bin, the
// default server of both `quorum test` and `quorum bench`.
func buildQuorumd(ctx context.Context, store string, progress io.Writer) (string, error) {
	dir, err := filepath.Abs(filepath.Join(store, ".bin"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "building quorumd from this checkout into %s ...\n", dir)
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	bin, err := local.BuildQuorumd(bctx, dir)
	if err != nil {
		return "", fmt.Errorf("build quorumd (run from the repository, or pass --server-binary): %w", err)
	}
	return bin, nil
}
