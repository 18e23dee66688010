package main

import (
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/quorum-kv/quorum/cluster"
)

// The member flags land in the member settings: timing in milliseconds as
// etcd's flags, the snapshot count, and --server-arg values in order, a
// value allowed as its own argument after a flag without one.
func TestMemberFlagsSetTheMemberSettings(t *testing.T) {
	var ms cluster.MemberSettings
	f := pflag.NewFlagSet("test", pflag.ContinueOnError)
	m := bindMemberFlags(f, &ms)
	args := []string{"--heartbeat-interval=50", "--election-timeout", "500", "--snapshot-count=7",
		"--server-arg=--quota-backend-bytes", "--server-arg=1000000", "--server-arg=--experimental-enable-lease-checkpoint"}
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := m.apply(); err != nil {
		t.Fatal(err)
	}
	want := []string{"--quota-backend-bytes", "1000000", "--experimental-enable-lease-checkpoint"}
	if ms.HeartbeatInterval != 50*time.Millisecond || ms.ElectionTimeout != 500*time.Millisecond || ms.SnapshotCount != 7 ||
		!slices.Equal(ms.ExtraArgs, want) {
		t.Errorf("settings %+v, want 50ms, 500ms, 7, %v", ms, want)
	}
	if got, want := m.commandLine(), " --heartbeat-interval 50 --election-timeout 500 --snapshot-count 7 --server-arg=--quota-backend-bytes --server-arg=1000000 --server-arg=--experimental-enable-lease-checkpoint"; got != want {
		t.Errorf("command line %q, want %q", got, want)
	}
	if got := (cluster.StartConfig{MemberSettings: ms}).Flags().Args(); !slices.Equal(got[len(got)-9:],
		[]string{"--heartbeat-interval", "50", "--election-timeout", "500", "--snapshot-count", "7", "--quota-backend-bytes", "1000000", "--experimental-enable-lease-checkpoint"}) {
		t.Errorf("member command line ends %v", got)
	}
}
