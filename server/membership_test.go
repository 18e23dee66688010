package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A single etcd member started with no flags has member ID 8e9e05c52164694d
// in cluster cdf818194e3a8c32; quorumd must derive the same IDs from the
// same flags.
func TestMemberAndClusterIDsMatchEtcdDefaults(t *testing.T) {
	cfg := DefaultConfig()
	m := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)
	if got := idString(m.Members[0].ID); got != "8e9e05c52164694d" {
		t.Errorf("member ID = %s, want etcd's 8e9e05c52164694d", got)
	}
	if got := idString(m.ClusterID); got != "cdf818194e3a8c32" {
		t.Errorf("cluster ID = %s, want etcd's cdf818194e3a8c32", got)
	}
}

func TestMembershipIsIndependentOfFlagOrder(t *testing.T) {
	a, err := ParseInitialCluster("n1=http://127.0.0.1:1,n2=http://127.0.0.1:2,n3=http://127.0.0.1:3")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseInitialCluster("n3=http://127.0.0.1:3,n1=http://127.0.0.1:1,n2=http://127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := NewMembership(a, "tok"), NewMembership(b, "tok")
	if ma.ClusterID != mb.ClusterID {
		t.Fatalf("cluster IDs differ with member order: %x vs %x", ma.ClusterID, mb.ClusterID)
	}
	if mc := NewMembership(a, "other"); mc.ClusterID == ma.ClusterID {
		t.Fatal("a different --initial-cluster-token must give a different cluster")
	}
}

func TestConfigValidateNamesTheBadFlag(t *testing.T) {
	ic, _ := ParseInitialCluster("n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380")
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"name not in initial cluster", func(c *Config) { c.Name = "n9"; c.InitialCluster = ic }, `--initial-cluster has no member named "n9"`},
		{"advertise mismatch", func(c *Config) {
			c.Name = "n1"
			c.InitialCluster = ic
		}, "--initial-advertise-peer-urls"},
		{"election too short", func(c *Config) { c.ElectionTimeout = c.HeartbeatInterval * 2 }, "--election-timeout"},
		{"bad cluster state", func(c *Config) { c.InitialClusterState = "maybe" }, "--initial-cluster-state"},
		{"zero snapshot count", func(c *Config) { c.SnapshotCount = 0 }, "--snapshot-count"},
		{"zero txn ops", func(c *Config) { c.MaxTxnOps = 0 }, "--max-txn-ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
}

func TestParseURLsRejectsWhatEtcdRejects(t *testing.T) {
	for _, bad := range []string{"", "localhost:2379", "http://localhost", "unixs://localhost:2379", "ftp://h:1", "http://h:1/path"} {
		if _, err := ParseURLs(bad); err == nil {
			t.Errorf("ParseURLs(%q) accepted", bad)
		}
	}
	us, err := ParseURLs("http://127.0.0.1:1, https://127.0.0.2:2")
	if err != nil || len(us) != 2 || us[1].Host != "127.0.0.2:2" || us[1].Scheme != "https" {
		t.Fatalf("ParseURLs = %v, %v", us, err)
	}
}

func TestMetaRoundTripAndDamage(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	m := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)
	if err := writeMeta(dir, m.Members[0].ID, m, true); err != nil {
		t.Fatal(err)
	}
	id, got, err := readMeta(dir)
	if err != nil || id != m.Members[0].ID || got.Membership.ClusterID != m.ClusterID || !got.Joined {
		t.Fatalf("readMeta = %x, %+v, %v", id, got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readMeta(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged meta.json: err = %v", err)
	}
}

func TestSnapshotEnvelopeRejectsDamage(t *testing.T) {
	cfg := DefaultConfig()
	mem := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)
	data := encodeForTest(t, mem)
	c, err := decodeSnapshot(data)
	if err != nil || c.store == nil || c.membership.ClusterID != mem.ClusterID {
		t.Fatalf("round trip: %v", err)
	}
	for _, off := range []int{0, len(snapMagic) + 2, len(snapMagic) + 9, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[off] ^= 0x40
		if _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("flipped byte at %d was accepted", off)
		}
	}
	if _, err := decodeSnapshot(data[:len(data)/2]); err == nil {
		t.Error("truncated snapshot was accepted")
	}
}
