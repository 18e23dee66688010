package main

import (
	"bytes"
	"testing"
)

// --strict-reconfig-check and --max-learners reach the server's config,
// with etcd's defaults (true, 1).
func TestReconfigFlagsReachTheServerConfig(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, code := configure(nil, nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !cfg.StrictReconfigCheck || cfg.MaxLearners != 1 {
		t.Fatalf("defaults: strict %v, max learners %d; want etcd's true, 1", cfg.StrictReconfigCheck, cfg.MaxLearners)
	}
	cfg, _, code = configure([]string{"--strict-reconfig-check=false", "--max-learners=3"}, nil, &bytes.Buffer{}, &stderr)
	if cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if cfg.StrictReconfigCheck || cfg.MaxLearners != 3 {
		t.Fatalf("set: strict %v, max learners %d; want false, 3", cfg.StrictReconfigCheck, cfg.MaxLearners)
	}
}
