package cluster

import (
	"reflect"
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
