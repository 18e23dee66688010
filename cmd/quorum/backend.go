package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/docker"
	"github.com/quorum-kv/quorum/cluster/local"
	"github.com/quorum-kv/quorum/nemesis"
)

// backendNames are the values of --backend.
var backendNames = []string{"local", "docker"}

// newBackend returns the backend --backend names; `quorum test` and
// `quorum bench` both start their clusters through it.
func newBackend(name string) (cluster.Backend, error) {
	switch name {
	case "local":
		return &local.Backend{}, nil
	case "docker":
		return &docker.Backend{}, nil
	}
	return nil, fmt.Errorf("--backend %q: want local or docker", name)
}

// resolveServer makes srv runnable on the backend called backend: an image
// is for docker only; a binary must be an executable file (static, for
// docker) and is made absolute; neither means quorumd built from this
// checkout (static for docker) into STORE/.bin.
func resolveServer(ctx context.Context, backend string, srv cluster.Server, store string, progress io.Writer) (cluster.Server, error) {
	switch {
	case srv.Image != "" && srv.Binary != "":
		return srv, errors.New("--image and --server-binary exclude each other")
	case srv.Image != "":
		if backend != "docker" {
			return srv, errors.New("--image needs --backend docker")
		}
		return srv, nil
	case srv.Binary == "":
		bin, err := buildQuorumd(ctx, backend, store, progress)
		if err != nil {
			return srv, err
		}
		srv.Binary = bin
		if srv.Label == "" {
			srv.Label = "quorumd"
		}
		return srv, nil
	}
	st, err := os.Stat(srv.Binary)
	if err != nil {
		return srv, fmt.Errorf("--server-binary: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return srv, fmt.Errorf("--server-binary %s is not an executable file", srv.Binary)
	}
	if backend == "docker" {
		if err := docker.CheckStatic(srv.Binary); err != nil {
			return srv, fmt.Errorf("--server-binary: %w", err)
		}
	}
	if srv.Binary, err = filepath.Abs(srv.Binary); err != nil {
		return srv, err
	}
	if srv.Label == "" {
		srv.Label = filepath.Base(srv.Binary)
	}
	return srv, nil
}

func nemesisNames() []string { return nemesis.Names() }

// buildQuorumd builds quorumd from this checkout into STORE/.bin (static,
// into STORE/.bin/static, for the docker backend), the default server of
// both `quorum test` and `quorum bench`.
func buildQuorumd(ctx context.Context, backend, store string, progress io.Writer) (string, error) {
	static := backend == "docker"
	sub := ".bin"
	if static {
		sub = filepath.Join(".bin", "static")
	}
	dir, err := filepath.Abs(filepath.Join(store, sub))
	if err != nil {
		return "", err
	}
	kind := ""
	if static {
		kind = " (static)"
	}
	fmt.Fprintf(progress, "building quorumd%s from this checkout into %s ...\n", kind, dir)
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var bin string
	if static {
		bin, err = docker.BuildStatic(bctx, "github.com/quorum-kv/quorum/cmd/quorumd", dir)
	} else {
		bin, err = local.BuildQuorumd(bctx, dir)
	}
	if err != nil {
		return "", fmt.Errorf("build quorumd (run from the repository, or pass --server-binary): %w", err)
	}
	return bin, nil
}
