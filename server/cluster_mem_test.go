package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// memCluster is a cluster of members in this process, each assembled from
// its parts over the twins: a memDisk per member (which outlives the member,
// as a data dir does) and one memNetwork. Nothing touches the disk or a
// socket.
type memCluster struct {
	t       *testing.T
	net     *memNetwork
	cfgs    []Config
	disks   []*memDisk
	members []*Server // nil while stopped
}

func newMemCluster(t *testing.T, n int) *memCluster {
	c := &memCluster{t: t, net: newMemNetwork()}
	initial := map[string][]url.URL{}
	for i := 0; i < n; i++ {
		u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", 1+i)) // never dialled
		initial[fmt.Sprintf("m%d", i)] = []url.URL{*u}
	}
	for i := 0; i < n; i++ {
		cfg := DefaultConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.InitialCluster = initial
		cfg.InitialAdvertisePeerURLs = initial[cfg.Name]
		cfg.HeartbeatInterval = 20 * time.Millisecond
		cfg.ElectionTimeout = 200 * time.Millisecond
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		c.cfgs = append(c.cfgs, cfg)
		c.disks = append(c.disks, newMemDisk())
		c.members = append(c.members, nil)
	}
	for i := range c.members {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.stop(i)
		}
	})
	return c
}

// openMemMember is openDataDir over a memDisk: bootstrap when it is empty,
// otherwise restart from what it holds, through the same restoreState.
func openMemMember(cfg *Config, disk *memDisk) (*memberParts, error) {
	membership := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)
	me := membership.MemberByName(cfg.Name)
	storage := raft.NewMemoryStorage()
	ap, err := newAuthParts(cfg, cfg.Logger)
	if err != nil {
		return nil, err
	}
	p := &memberParts{id: me.ID, cid: membership.ClusterID, me: me, bootstrap: membership, storage: storage,
		log: memLog{disk}, snaps: memSnapshots{disk}, auth: ap}
	if disk.empty() {
		p.node = startRaft(cfg, cfg.Logger, membership, me, storage)
		p.state = appliedState{store: mvcc.New(), membership: membership}
		return p, nil
	}
	sn, hs, ents := disk.contents()
	r, err := restoreState(storage, sn, hs, ents, membership, "memory", "memory")
	if err != nil {
		return nil, err
	}
	p.state, p.me = r.state, r.state.membership.Member(me.ID)
	p.node = raft.RestartNode(raftConfig(cfg, me.ID, storage, r.state.index, cfg.Logger))
	return p, nil
}

func (c *memCluster) start(i int) {
	cfg := c.cfgs[i]
	p, err := openMemMember(&cfg, c.disks[i])
	if err != nil {
		c.t.Fatalf("member %d: %v", i, err)
	}
	tr := c.net.transport(p.id, p.node, p.snaps.Load)
	s := assemble(cfg, cfg.Logger, newServerMetrics(), p, tr, nil, time.Now())
	s.run()
	c.members[i] = s
}

func (c *memCluster) stop(i int) {
	if c.members[i] != nil {
		c.members[i].Stop()
		c.members[i] = nil
	}
}

// leader waits until every running member knows the same leader.
func (c *memCluster) leader() (int, *Server) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, s := range c.members {
			if s == nil {
				continue
			}
			l := s.status.leader()
			if l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 {
			for i, s := range c.members {
				if s != nil && s.id == lead {
					return i, s
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader all members agree on after 20s")
	return 0, nil
}

// put writes key=value through member s, retrying while the cluster is
// between leaders (a retried put of the same value leaves the same contents).
func (c *memCluster) put(s *Server, key, value string) {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := s.propose(ctx, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(value)}})
		cancel()
		if err == nil && res.err == nil {
			return
		}
		if attempt == 20 {
			c.t.Fatalf("put %s through member %x: %v %v", key, s.id, err, res.err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// converged waits until every running member has applied the same
// revision with the same contents, and returns the contents.
func (c *memCluster) converged() string {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var states []string
		for _, s := range c.members {
			if s != nil {
				v := s.readView().view
				states = append(states, fmt.Sprintf("rev %d: %s", v.Rev(), keyspace(c.t, v)))
			}
		}
		same := true
		for _, st := range states[1:] {
			same = same && st == states[0]
		}
		if same {
			return states[0]
		}
		last = strings.Join(states, "\n")
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("members did not converge in 20s:\n%s", last)
	return ""
}

// TestMemClusterReplicatesAndRestartedFollowerCatchesUp runs three members
// in one process over the transport and storage twins: they elect a
// leader, puts through any member reach every applier at the same
// revision, and a follower stopped while the others write (and snapshot
// and compact past it) restarts from its own storage and is caught up by a
// snapshot from the leader.
func TestMemClusterReplicatesAndRestartedFollowerCatchesUp(t *testing.T) {
	c := newMemCluster(t, 3)
	_, lead := c.leader()
	for i := 0; i < 30; i++ {
		c.put(c.members[i%3], fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	state := c.converged()
	if !strings.Contains(state, "k000=0@") || !strings.Contains(state, "k029=29@") {
		t.Fatalf("converged on %s; want k000..k029", state)
	}

	f := 0
	for f < 3 && c.members[f] == lead {
		f++
	}
	c.stop(f)
	// Write until the leader has snapshotted and compacted its log past
	// what the stopped follower has (the snapshotter's duty cycle decides
	// when, so the number of writes it takes varies).
	followerCommit := c.disks[f].hs.Commit
	n := 30
	for ; ; n++ {
		c.put(lead, fmt.Sprintf("k%03d", n), fmt.Sprint(n))
		if first, _ := lead.raft.storage.FirstIndex(); n >= 120 && first > followerCommit+1 {
			break
		}
		if n == 5000 {
			t.Fatalf("the leader's log still starts at or before the stopped follower's commit index %d", followerCommit)
		}
	}
	want := fmt.Sprintf("k%03d=%d@", n, n)
	c.converged()
	c.disks[f].trace = &trace{}
	c.start(f)
	state = c.converged()
	if !strings.Contains(state, want) {
		t.Fatalf("converged on %s; want k000..k%03d", state, n)
	}
	if got := c.disks[f].trace.take(); !strings.Contains(got, "save-snapshot") {
		t.Errorf("the restarted follower caught up without a snapshot from the leader:\n%s", got)
	}
	// It answers reads and takes writes like the others.
	c.put(c.members[f], "after-restart", "yes")
	if state := c.converged(); !strings.Contains(state, "after-restart=yes@") {
		t.Errorf("write through the restarted follower: %s", state)
	}
}
