package main

import (
	"bytes"
	"testing"
	"time"
)

// The corruption-check flags reach the server's config under both of
// etcd 3.6's spellings: the deprecated experimental flags map onto the
// feature gates and the new durations, as etcdmain maps them; the defaults
// are etcd's (checks off, compaction hash check every minute once on).
func TestCorruptCheckFlagsReachTheServerConfig(t *testing.T) {
	for _, tc := range []struct {
		args                  []string
		initial, compact      bool
		checkTime, hashPeriod time.Duration
	}{
		{nil, false, false, 0, time.Minute},
		{[]string{"--experimental-initial-corrupt-check=true", "--experimental-corrupt-check-time=4s",
			"--experimental-compact-hash-check-enabled=true", "--experimental-compact-hash-check-time=3s"}, true, true, 4 * time.Second, 3 * time.Second},
		{[]string{"--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true", "--corrupt-check-time=2s",
			"--compact-hash-check-time=5s"}, true, true, 2 * time.Second, 5 * time.Second},
	} {
		var stderr bytes.Buffer
		cfg, _, code := configure(append(tc.args, "--data-dir", t.TempDir()), nil, &bytes.Buffer{}, &stderr)
		if cfg == nil {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		if cfg.InitialCorruptCheck != tc.initial || cfg.CompactHashCheck != tc.compact ||
			cfg.CorruptCheckTime != tc.checkTime || cfg.CompactHashCheckTime != tc.hashPeriod {
			t.Errorf("%v: initial %v, compact hash %v, corrupt check time %v, compact hash check time %v",
				tc.args, cfg.InitialCorruptCheck, cfg.CompactHashCheck, cfg.CorruptCheckTime, cfg.CompactHashCheckTime)
		}
		if n := len(withMsg(logLines(t, stderr.String()), "flag has no effect in quorumd")); n != 0 {
			t.Errorf("%v: %d no-effect lines: %s", tc.args, n, stderr.String())
		}
	}
}
