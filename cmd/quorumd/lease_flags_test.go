package main

import (
	"bytes"
	"strings"
	"testing"
)

// The lease checkpoint flags reach the server's config under both of etcd
// 3.6's spellings, with no "no effect" line; checkpoints without
// persistence get etcd's warning, persistence without checkpoints etcd's
// refusal.
func TestLeaseCheckpointFlagsReachTheServerConfig(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		checkpoint bool
		warns      bool
	}{
		{nil, false, false},
		{[]string{"--experimental-enable-lease-checkpoint=true"}, true, true},
		{[]string{"--experimental-enable-lease-checkpoint=true", "--experimental-enable-lease-checkpoint-persist=true"}, true, false},
		{[]string{"--feature-gates=LeaseCheckpoint=true,LeaseCheckpointPersist=true"}, true, false},
	} {
		var stderr bytes.Buffer
		cfg, _, code := configure(append(tc.args, "--data-dir", t.TempDir()), nil, &bytes.Buffer{}, &stderr)
		if cfg == nil {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		if cfg.LeaseCheckpoint != tc.checkpoint {
			t.Errorf("%v: lease checkpoint %v, want %v", tc.args, cfg.LeaseCheckpoint, tc.checkpoint)
		}
		lines := logLines(t, stderr.String())
		if n := len(withMsg(lines, "flag has no effect in quorumd")); n != 0 {
			t.Errorf("%v: %d no-effect lines: %s", tc.args, n, stderr.String())
		}
		warn := "Detected that checkpointing is enabled without persistence. Consider enabling feature gate LeaseCheckpointPersist"
		if got := len(withMsg(lines, warn)) == 1; got != tc.warns {
			t.Errorf("%v: etcd's warning about persistence logged %v, want %v: %s", tc.args, got, tc.warns, stderr.String())
		}
	}
	var stderr bytes.Buffer
	args := []string{"--experimental-enable-lease-checkpoint-persist=true", "--data-dir", t.TempDir()}
	if cfg, _, code := configure(args, nil, &bytes.Buffer{}, &stderr); cfg != nil || code == 0 ||
		!strings.Contains(stderr.String(), "enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint") {
		t.Errorf("persistence without checkpoints: exit %d, stderr %s; want etcd's refusal", code, stderr.String())
	}
}
