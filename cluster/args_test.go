package cluster

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMemberFlagsArgs(t *testing.T) {
	f := MemberFlags{
		Name: "n1", DataDir: "/d/n1",
		ListenClientURL: "http://0.0.0.0:2379", AdvertiseClientURL: "http://n1:2379",
		ListenPeerURL: "http://0.0.0.0:2380", AdvertisePeerURL: "http://n1:2380",
		InitialCluster: "n1=http://n1:2380", ClusterToken: "tok",
	}
	base := []string{"--name", "n1", "--data-dir", "/d/n1",
		"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://n1:2379",
		"--listen-peer-urls", "http://0.0.0.0:2380", "--initial-advertise-peer-urls", "http://n1:2380",
		"--initial-cluster", "n1=http://n1:2380", "--initial-cluster-token", "tok", "--initial-cluster-state", "new"}
	if got := f.Args(); !reflect.DeepEqual(got, base) {
		t.Fatalf("defaults: got %q\nwant %q", got, base)
	}
	f.HeartbeatInterval, f.ElectionTimeout, f.SnapshotCount = 50*time.Millisecond, 500*time.Millisecond, 100
	f.Extra = []string{"--snapshot-count", "7"}
	want := append(append([]string(nil), base...), "--heartbeat-interval", "50", "--election-timeout", "500",
		"--snapshot-count", "100", "--snapshot-count", "7")
	if got := f.Args(); !reflect.DeepEqual(got, want) {
		t.Fatalf("with timing: got %q\nwant %q", got, want)
	}
}

// CheckServerArgs takes flags in etcd's forms and refuses the flags the
// backend owns and arguments that are neither flags nor their values.
func TestCheckServerArgs(t *testing.T) {
	for _, ok := range [][]string{nil, {"--quota-backend-bytes=8"}, {"--quota-backend-bytes", "8"}, {"-experimental-enable-lease-checkpoint"},
		{"--auto-compaction-mode=revision", "--auto-compaction-retention", "100", "--log-level=debug"}} {
		if err := CheckServerArgs(ok); err != nil {
			t.Errorf("CheckServerArgs(%q): %v", ok, err)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--name=x"}, `"--name=x": --name cannot be passed through: the backend names the members`},
		{[]string{"--initial-cluster", "a=http://x"}, `--initial-cluster cannot be passed through`},
		{[]string{"--config-file=/etc/etcd.yaml"}, `etcd then ignores every other flag`},
		{[]string{"--peer-auto-tls"}, `use quorum's --tls`},
		{[]string{"8"}, `server argument "8" is not a flag, nor the value of one`},
		{[]string{"--quota-backend-bytes=8", "9"}, `server argument "9" is not a flag, nor the value of one`},
		{[]string{"--"}, `server argument "--" is not a flag`},
	} {
		if err := CheckServerArgs(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckServerArgs(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
}
