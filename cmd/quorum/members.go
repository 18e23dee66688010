package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/quorum-kv/quorum/cluster"
)

// memberFlags are quorum's flags for what every member is started with,
// shared by test and bench: etcd's timing and snapshot flags (which the
// harness also reads) and --server-arg for anything else the server takes.
type memberFlags struct {
	ms                      *cluster.MemberSettings
	heartbeatMS, electionMS int
}

// bindMemberFlags adds the member flags to f; apply moves them into ms.
func bindMemberFlags(f *pflag.FlagSet, ms *cluster.MemberSettings) *memberFlags {
	m := &memberFlags{ms: ms}
	f.IntVar(&m.heartbeatMS, "heartbeat-interval", 0, "members' --heartbeat-interval in ms (0: the server's default)")
	f.IntVar(&m.electionMS, "election-timeout", 0, "members' --election-timeout in ms (0: the server's default)")
	f.IntVar(&ms.SnapshotCount, "snapshot-count", ms.SnapshotCount, "members' --snapshot-count (0: the server's default)")
	f.StringArrayVar(&ms.ExtraArgs, "server-arg", ms.ExtraArgs, "an argument appended to every member's command line, e.g. --server-arg=--quota-backend-bytes=8589934592 (repeat for more; flags the backend sets itself are refused)")
	return m
}

// apply checks the flags and sets the member settings from them.
func (m *memberFlags) apply() error {
	switch {
	case m.heartbeatMS < 0:
		return fmt.Errorf("--heartbeat-interval %d: want milliseconds >= 0", m.heartbeatMS)
	case m.electionMS < 0:
		return fmt.Errorf("--election-timeout %d: want milliseconds >= 0", m.electionMS)
	case m.ms.SnapshotCount < 0:
		return fmt.Errorf("--snapshot-count %d: want >= 0", m.ms.SnapshotCount)
	}
	if err := cluster.CheckServerArgs(m.ms.ExtraArgs); err != nil {
		return fmt.Errorf("--server-arg: %w", err)
	}
	m.ms.HeartbeatInterval = time.Duration(m.heartbeatMS) * time.Millisecond
	m.ms.ElectionTimeout = time.Duration(m.electionMS) * time.Millisecond
	return nil
}

// commandLine is the member flags as quorum test takes them, each with a
// leading space, for a rerun command; empty when none is set.
func (m *memberFlags) commandLine() string {
	var b strings.Builder
	if m.heartbeatMS > 0 {
		fmt.Fprintf(&b, " --heartbeat-interval %d", m.heartbeatMS)
	}
	if m.electionMS > 0 {
		fmt.Fprintf(&b, " --election-timeout %d", m.electionMS)
	}
	if m.ms.SnapshotCount > 0 {
		fmt.Fprintf(&b, " --snapshot-count %d", m.ms.SnapshotCount)
	}
	for _, a := range m.ms.ExtraArgs {
		fmt.Fprintf(&b, " --server-arg=%s", a)
	}
	return b.String()
}
