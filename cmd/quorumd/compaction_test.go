package main

import (
	"bytes"
	"testing"
	"time"
)

// --auto-compaction-mode and --auto-compaction-retention reach the
// server's config as etcd's StartEtcd reads them: off by default, a bare
// number is hours in periodic mode and revisions in revision mode, a
// duration is a duration; ETCD_* variables work as for every flag.
func TestAutoCompactionFlagsAsEtcd(t *testing.T) {
	tests := []struct {
		name      string
		args, env []string
		mode      string
		retention time.Duration
	}{
		{"default: off", nil, nil, "periodic", 0},
		{"periodic bare number is hours", []string{"--auto-compaction-retention=1"}, nil, "periodic", time.Hour},
		{"periodic duration", []string{"--auto-compaction-mode=periodic", "--auto-compaction-retention=90s"}, nil, "periodic", 90 * time.Second},
		{"revision count", []string{"--auto-compaction-mode=revision", "--auto-compaction-retention=10"}, nil, "revision", 10},
		{"zero duration is off", []string{"--auto-compaction-retention=0s"}, nil, "periodic", 0},
		{"environment", nil, []string{"ETCD_AUTO_COMPACTION_MODE=revision", "ETCD_AUTO_COMPACTION_RETENTION=1000"}, "revision", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, _, code := configure(append([]string{"--data-dir", t.TempDir()}, tt.args...), tt.env, &bytes.Buffer{}, &stderr)
			if cfg == nil {
				t.Fatalf("refused: exit %d, %s", code, stderr.String())
			}
			if cfg.AutoCompactionMode != tt.mode || cfg.AutoCompactionRetention != tt.retention {
				t.Errorf("mode %q retention %v; want %q %v", cfg.AutoCompactionMode, cfg.AutoCompactionRetention, tt.mode, tt.retention)
			}
			if lines := withMsg(logLines(t, stderr.String()), "flag has no effect in quorumd"); len(lines) != 0 {
				t.Errorf("logged as having no effect: %v", lines)
			}
		})
	}
}
