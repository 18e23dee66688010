package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildStatic builds the Go package pkg (e.g.
// "github.com/quorum-kv/quorum/cmd/quorumd") as a static Linux executable
// (CGO_ENABLED=0) into outDir and returns its absolute path. It runs the go
// command on PATH in the working directory, which must be inside the module
// that holds pkg (the repository, as in tests and the CLI).
func BuildStatic(ctx context.Context, pkg, outDir string) (string, error) {
	out, err := filepath.Abs(filepath.Join(outDir, filepath.Base(pkg)))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (static, CGO_ENABLED=0): %w\n%s", pkg, err, b)
	}
	return out, nil
}
