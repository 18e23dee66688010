package server

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// discover turns what the discovery service returns into the bootstrap
// membership, with every member's ID computed from its peer URLs and the
// token (so equal to the ID the member registered with), and refuses what
// would make a wrong cluster.
func TestDiscoverBuildsTheMembershipFromTheService(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:2380")
	cfg := &Config{Name: "a", InitialClusterToken: "tok", InitialCluster: map[string][]url.URL{"a": {*u}}}
	self := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken).MemberByName("a")
	for _, tt := range []struct {
		name, answer string
		err          error
		want         string // in the error; empty: success
	}{
		{name: "three members", answer: "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382"},
		{name: "service error", err: errors.New("discovery: cluster is full"), want: "failed to join discovery cluster (discovery: cluster is full)"},
		{name: "duplicate URL", answer: "a=http://127.0.0.1:2380,b=http://127.0.0.1:2380", want: "has duplicate url"},
		{name: "without this member", answer: "b=http://127.0.0.1:2381", want: "without this member"},
		{name: "this name with other URLs", answer: "a=http://127.0.0.1:9999", want: "without this member"},
		{name: "not a cluster", answer: "garbage", want: "discovery returned cluster"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gotID uint64
			var gotSelf string
			cfg.Discover = func(id uint64, s string) (string, error) { gotID, gotSelf = id, s; return tt.answer, tt.err }
			m, err := discover(cfg, self)
			if gotID != self.ID || gotSelf != "a=http://127.0.0.1:2380" {
				t.Errorf("registered %x %q, want %x a=http://127.0.0.1:2380", gotID, gotSelf, self.ID)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				if tt.err != nil && !errors.As(err, new(*DiscoveryError)) {
					t.Errorf("err %v is not a *DiscoveryError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ParseInitialCluster(tt.answer)
			if wm := NewMembership(want, "tok"); m.ClusterID != wm.ClusterID || len(m.Members) != 3 || m.MemberByName("a").ID != self.ID {
				t.Errorf("membership %+v, want %+v", m, wm)
			}
		})
	}
}
