package cluster

import (
	"errors"
	"reflect"
	"testing"
)

// InitialCluster builds what etcdctl member add prints as
// ETCD_INITIAL_CLUSTER: every member's peer URLs in the list's order, the
// added member (no name yet) under the name it will start with.
func TestInitialClusterIsWhatEtcdctlPrints(t *testing.T) {
	added := Member{ID: 9, PeerURLs: []string{"http://10.0.0.2:2380"}}
	ms := []Member{
		{ID: 1, Name: "n1", PeerURLs: []string{"http://10.0.0.1:2380"}},
		added,
		{ID: 3, Name: "n3", PeerURLs: []string{"http://10.0.0.3:2380", "http://10.0.1.3:2380"}},
	}
	want := "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380,n3=http://10.0.1.3:2380"
	if got := InitialCluster("n2", added, ms); got != want {
		t.Errorf("InitialCluster = %q\n want %q", got, want)
	}
	if m, ok := MemberByPeerURL(ms, "http://10.0.1.3:2380"); !ok || m.ID != 3 {
		t.Errorf("MemberByPeerURL = %+v, %v", m, ok)
	}
	if _, ok := MemberByPeerURL(ms, "http://10.0.0.9:2380"); ok {
		t.Error("MemberByPeerURL found an unknown URL")
	}
}

func TestRetryableMembershipErrors(t *testing.T) {
	if !IsUnhealthyCluster(errors.New("member remove 7c: etcdserver: unhealthy cluster")) || IsUnhealthyCluster(errors.New("etcdserver: member not found")) || IsUnhealthyCluster(nil) {
		t.Error("IsUnhealthyCluster")
	}
	if !IsLearnerNotReady(errors.New("etcdserver: can only promote a learner member which is in sync with leader")) || IsLearnerNotReady(errors.New("etcdserver: member not found")) {
		t.Error("IsLearnerNotReady")
	}
}

func TestMemberFlagsInitialClusterState(t *testing.T) {
	f := MemberFlags{Name: "n1", InitialClusterState: "existing"}
	args := f.Args()
	for i, a := range args {
		if a == "--initial-cluster-state" {
			if !reflect.DeepEqual(args[i+1], "existing") {
				t.Errorf("--initial-cluster-state %s", args[i+1])
			}
			return
		}
	}
	t.Errorf("no --initial-cluster-state in %v", args)
}
