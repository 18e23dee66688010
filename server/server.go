package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/snap"
	"github.com/quorum-kv/quorum/server/wal"
)

// Server is one quorumd member. New prepares it (opens or bootstraps the data
// dir, binds every listener); Start runs it; Stop shuts it down, handing
// leadership over first when it is the leader.
type Server struct {
	cfg     Config
	lg      *slog.Logger
	id      uint64
	cid     uint64
	walDir  string
	snapDir string
	metrics *serverMetrics

	node    raft.Node
	storage *raft.MemoryStorage
	wal     *wal.WAL // owned by the raft loop
	tr      *transport

	// Owned by the applier goroutine.
	store         *mvcc.Store
	membership    *Membership
	confState     raftpb.ConfState
	appliedIndex  uint64
	snapshotIndex uint64
	nextSnapshot  time.Time // no snapshot starts before (duty cycle)

	// Published for readers.
	state atomic.Pointer[readState]
	lead  atomic.Uint64
	// leaderlessSince is when this member last lost its leader (or
	// started), in Unix nanoseconds; see waitLeader.
	leaderlessSince atomic.Int64
	term            atomic.Uint64
	committed       atomic.Uint64
	snapshotting    atomic.Bool

	leaderMu      sync.Mutex
	leaderChanged chan struct{} // closed and replaced on every leader change

	wait      *waitRegistry
	applyWait *indexWaiter
	reqIDs    *idGenerator

	applyc     chan applyJob
	readStatec chan raft.ReadState
	readwaitc  chan struct{}
	readMu     sync.RWMutex
	readNotify *notifier
	releasec   chan uint64
	// snapshotDone tells the applier when the next snapshot may start.
	snapshotDone chan time.Time

	lns   *listeners
	front *front

	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	errc     chan error
}

// readState is what readers see: an immutable view of the keyspace at the
// applied index, and the membership then.
type readState struct {
	view       *mvcc.View
	membership *Membership
	applied    uint64
}

type applyJob struct {
	snapshot raftpb.Snapshot
	entries  []raftpb.Entry
}

// New opens the member's data dir (bootstrapping it from the --initial-*
// settings when empty) and binds its listeners. It returns an error, never
// exits, when anything is wrong; nothing is served until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:           cfg,
		lg:            cfg.Logger.With("member", cfg.Name),
		metrics:       newServerMetrics(),
		wait:          newWaitRegistry(),
		applyc:        make(chan applyJob, 64),
		readStatec:    make(chan raft.ReadState, 1),
		readwaitc:     make(chan struct{}, 1),
		readNotify:    newNotifier(),
		releasec:      make(chan uint64, 4),
		snapshotDone:  make(chan time.Time, 1),
		stopc:         make(chan struct{}),
		errc:          make(chan error, 8),
		leaderChanged: make(chan struct{}),
	}
	s.leaderlessSince.Store(time.Now().UnixNano())
	memberDir := filepath.Join(cfg.DataDir, "member")
	s.walDir = filepath.Join(memberDir, "wal")
	s.snapDir = filepath.Join(memberDir, "snap")

	lns, err := listen(&s.cfg, s.lg)
	if err != nil {
		return nil, err
	}
	s.lns = lns
	if err := s.openStorage(memberDir); err != nil {
		lns.close()
		return nil, err
	}
	return s, nil
}

func (s *Server) openStorage(memberDir string) error {
	s.storage = raft.NewMemoryStorage()
	rcfg := &raft.Config{
		ElectionTick:    s.cfg.electionTicks(),
		HeartbeatTick:   1,
		Storage:         s.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 512,
		// etcd's limit on uncommitted entries a leader accepts: enough for
		// large batches, bounded so a partitioned leader cannot grow without
		// limit.
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    newRaftLogger(s.lg),
	}

	if wal.Exist(s.walDir) {
		return s.restart(memberDir, rcfg)
	}
	return s.bootstrap(memberDir, rcfg)
}

func (s *Server) bootstrap(memberDir string, rcfg *raft.Config) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s (--data-dir): %w", s.cfg.DataDir, err)
	}
	if err := checkWritable(s.cfg.DataDir); err != nil {
		return err
	}
	membership := NewMembership(s.cfg.InitialCluster, s.cfg.InitialClusterToken)
	me := membership.MemberByName(s.cfg.Name)
	s.id, s.cid = me.ID, membership.ClusterID
	if err := os.MkdirAll(s.snapDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.snapDir, err)
	}
	if err := writeMeta(memberDir, s.id, membership); err != nil {
		return err
	}
	w, err := wal.Create(s.walDir, s.lg)
	if err != nil {
		return fmt.Errorf("create wal in %s: %w", s.walDir, err)
	}
	s.wal = w
	s.store = mvcc.New()
	s.membership = membership
	rcfg.ID = s.id
	s.publish()
	s.applyWait = newIndexWaiter(0)
	s.reqIDs = newIDGenerator(s.id)
	s.tr = newTransport(s.lg, s.id, s.cid, me.PeerURLs, membership.Members, nil, s.cfg.HeartbeatInterval, s.cfg.ElectionTimeout, s.metrics)
	s.tr.snapshotData = s.snapshotData
	if s.cfg.InitialClusterState == "existing" {
		s.lg.Info("starting with an empty log; the leader will catch this member up", "id", idString(s.id), "cluster", idString(s.cid))
		s.node = raft.RestartNode(rcfg)
	} else {
		peers := make([]raft.Peer, 0, len(membership.Members))
		for _, m := range membership.Members { // sorted by ID: identical bootstrap entries on every member
			peers = append(peers, raft.Peer{ID: m.ID})
		}
		s.lg.Info("bootstrapping a new cluster", "id", idString(s.id), "cluster", idString(s.cid), "members", len(peers))
		s.node = raft.StartNode(rcfg, peers)
	}
	s.tr.node = s.node
	return nil
}

func (s *Server) restart(memberDir string, rcfg *raft.Config) error {
	id, membership, err := readMeta(memberDir)
	if err != nil {
		return err
	}
	s.id, s.cid = id, membership.ClusterID
	if me := membership.Member(id); me.Name != s.cfg.Name {
		s.lg.Warn("--name differs from the name this data dir was created with; using the data dir's", "flag", s.cfg.Name, "datadir", me.Name)
	}
	if err := os.MkdirAll(s.snapDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.snapDir, err)
	}
	if err := snap.RemoveTemp(s.snapDir); err != nil {
		return fmt.Errorf("clear interrupted snapshots: %w", err)
	}
	sn, err := snap.LoadNewest(s.snapDir)
	if err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	w, contents, err := wal.Open(s.walDir, s.lg)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	s.wal = w
	if contents.Repaired != nil {
		s.lg.Warn("repaired a torn WAL tail left by a crash", "repair", fmt.Sprintf("%+v", *contents.Repaired))
	}
	s.store = mvcc.New()
	s.membership = membership
	if sn != nil {
		store, mem, err := decodeSnapshot(sn.Data)
		if err != nil {
			w.Close()
			return fmt.Errorf("snapshot %016x-%016x in %s: %w", sn.Metadata.Term, sn.Metadata.Index, s.snapDir, err)
		}
		s.store, s.membership = store, mem
		s.confState = sn.Metadata.ConfState
		s.appliedIndex, s.snapshotIndex = sn.Metadata.Index, sn.Metadata.Index
		if err := s.storage.ApplySnapshot(withoutData(*sn)); err != nil {
			w.Close()
			return fmt.Errorf("apply snapshot: %w", err)
		}
		rcfg.Applied = sn.Metadata.Index
	}
	ents := contents.Entries
	if sn != nil {
		for len(ents) > 0 && ents[0].Index <= sn.Metadata.Index {
			ents = ents[1:]
		}
		if len(ents) > 0 && ents[0].Index != sn.Metadata.Index+1 {
			w.Close()
			return fmt.Errorf("wal in %s starts at index %d but the newest snapshot ends at %d: entries are missing (data dir is damaged)",
				s.walDir, ents[0].Index, sn.Metadata.Index)
		}
	}
	hs := contents.HardState
	if sn != nil && hs.Commit < sn.Metadata.Index {
		hs.Commit = sn.Metadata.Index
	}
	if err := s.storage.SetHardState(hs); err != nil {
		w.Close()
		return err
	}
	if err := s.storage.Append(ents); err != nil {
		w.Close()
		return err
	}
	s.lg.Info("restarting member from its data dir", "id", idString(s.id), "cluster", idString(s.cid),
		"snapshot-index", s.snapshotIndex, "wal-entries", len(ents), "term", hs.Term, "commit", hs.Commit)
	rcfg.ID = s.id
	s.publish()
	s.applyWait = newIndexWaiter(s.appliedIndex)
	s.reqIDs = newIDGenerator(s.id)
	me := s.membership.Member(s.id)
	s.tr = newTransport(s.lg, s.id, s.cid, me.PeerURLs, s.membership.Members, nil, s.cfg.HeartbeatInterval, s.cfg.ElectionTimeout, s.metrics)
	s.tr.snapshotData = s.snapshotData
	s.node = raft.RestartNode(rcfg)
	s.tr.node = s.node
	return nil
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s (--data-dir) is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// ID returns the member's ID; ClusterID the cluster's.
func (s *Server) ID() uint64        { return s.id }
func (s *Server) ClusterID() uint64 { return s.cid }

// Start runs the member: the Raft loop, the applier, the read loop, the
// peer transport and the client API. It returns once everything serves.
func (s *Server) Start() {
	s.tr.start()
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.raftLoop() }()
	go func() { defer s.wg.Done(); s.applyLoop() }()
	go func() { defer s.wg.Done(); s.readLoop() }()
	go func() { defer s.wg.Done(); s.publishAttributes() }()
	s.front = newFront(s)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.healthLoop(s.front.health) }()
	s.lns.servePeers(s.tr.handler(), s.fatal)
	s.lns.serveClients(s.front, s.fatal)
	s.lg.Info("serving clients", "urls", FormatURLs(s.cfg.ListenClientURLs))
}

// Err returns a channel that receives a fatal error (a listener failing, the
// disk failing); the member should then be stopped and exit non-zero.
func (s *Server) Err() <-chan error { return s.errc }

func (s *Server) fatal(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// Stop shuts the member down. A leader first transfers leadership to the
// most up-to-date follower (waiting at most one election timeout), so the
// cluster does not sit out an election. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.transferLeadership()
		s.lns.closeHTTP()
		if s.front != nil {
			s.front.stop()
		}
		s.lns.close()
		close(s.stopc)
		s.node.Stop()
		s.tr.stop()
		s.wg.Wait()
		if err := s.wal.Close(); err != nil {
			s.lg.Warn("closing wal", "err", err)
		}
		s.lg.Info("stopped")
	})
}

func (s *Server) transferLeadership() {
	if s.lead.Load() != s.id {
		return
	}
	st := s.node.Status()
	var best uint64
	var bestMatch uint64
	ids := make([]uint64, 0, len(st.Progress))
	for id := range st.Progress {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		pr := st.Progress[id]
		if id == s.id || pr.IsLearner {
			continue
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		return
	}
	s.lg.Info("transferring leadership before stopping", "to", idString(best))
	s.node.TransferLeadership(context.Background(), s.id, best)
	deadline := time.After(s.cfg.ElectionTimeout)
	for {
		if l := s.lead.Load(); l != s.id && l != 0 {
			s.lg.Info("leadership transferred", "to", idString(l))
			return
		}
		select {
		case <-deadline:
			s.lg.Warn("leadership transfer did not finish in time; stopping anyway")
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// raftLoop owns the raft.Node's Ready cycle and the WAL: persist, send,
// hand committed entries to the applier, Advance.
func (s *Server) raftLoop() {
	ticker := time.NewTicker(s.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			s.node.Tick()
		case rd := <-s.node.Ready():
			if err := s.handleReady(rd); err != nil {
				s.lg.Error("raft loop failed; the member must stop", "err", err)
				s.fatal(err)
				<-s.stopc
				return
			}
		case idx := <-s.releasec:
			if err := s.wal.ReleaseTo(idx); err != nil {
				s.lg.Warn("releasing old wal segments", "err", err)
			}
		case <-s.stopc:
			return
		}
	}
}

func (s *Server) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setLeader(rd.SoftState.Lead)
	}
	for _, rs := range rd.ReadStates {
		select {
		case s.readStatec <- rs:
		default:
			// The read loop waits for one request at a time; a stale state
			// it no longer wants is dropped.
			select {
			case <-s.readStatec:
			default:
			}
			s.readStatec <- rs
		}
	}
	isLeader := s.lead.Load() == s.id
	// A leader may send before persisting (Raft thesis §10.2.1); a follower
	// must persist before it answers.
	if isLeader {
		s.tr.send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		start := time.Now()
		if err := snap.Save(s.snapDir, rd.Snapshot); err != nil {
			return fmt.Errorf("save received snapshot: %w", err)
		}
		if err := s.wal.SaveSnapshotRestore(rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.Term); err != nil {
			return fmt.Errorf("record snapshot in wal: %w", err)
		}
		s.metrics.snapshotSave.Observe(time.Since(start).Seconds())
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		start := time.Now()
		if err := s.wal.Save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
			return fmt.Errorf("write wal: %w", err)
		}
		if rd.MustSync {
			s.metrics.walFsync.Observe(time.Since(start).Seconds())
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.term.Store(rd.HardState.Term)
		s.committed.Store(rd.HardState.Commit)
		s.metrics.proposalsCommitted.Set(float64(rd.HardState.Commit))
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.storage.ApplySnapshot(withoutData(rd.Snapshot)); err != nil {
			return fmt.Errorf("apply snapshot to raft storage: %w", err)
		}
	}
	if err := s.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append to raft storage: %w", err)
	}
	if !isLeader {
		s.tr.send(rd.Messages)
	}
	if len(rd.CommittedEntries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		select {
		case s.applyc <- applyJob{snapshot: rd.Snapshot, entries: rd.CommittedEntries}:
		case <-s.stopc:
			return nil
		}
	}
	s.node.Advance()
	return nil
}

func (s *Server) setLeader(lead uint64) {
	if lead == 0 && s.lead.Load() != 0 {
		// Before the swap: a caller that sees no leader must not see an
		// older leaderless period's start.
		s.leaderlessSince.Store(time.Now().UnixNano())
	}
	old := s.lead.Swap(lead)
	if old == lead {
		return
	}
	if lead == 0 {
		s.lg.Warn("lost the leader", "previous", idString(old))
		s.metrics.hasLeader.Set(0)
	} else {
		s.lg.Info("leader changed", "leader", idString(lead), "previous", idString(old), "self", lead == s.id)
		s.metrics.hasLeader.Set(1)
	}
	if lead == s.id {
		s.metrics.isLeader.Set(1)
	} else {
		s.metrics.isLeader.Set(0)
	}
	if old != 0 && lead != 0 {
		s.metrics.leaderChanges.Inc()
	}
	s.leaderMu.Lock()
	close(s.leaderChanged)
	s.leaderChanged = make(chan struct{})
	s.leaderMu.Unlock()
}

func (s *Server) leaderChangedC() <-chan struct{} {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	return s.leaderChanged
}

// publish makes the applier's current state visible to readers.
func (s *Server) publish() {
	s.state.Store(&readState{view: s.store.View(), membership: s.membership.Clone(), applied: s.appliedIndex})
}

func (s *Server) readView() *readState { return s.state.Load() }

// snapshotOverhead is the size of a snapshot's envelope around the keyspace.
func (st *readState) snapshotOverhead() int64 {
	mj, _ := json.Marshal(st.membership)
	return int64(len(snapMagic) + 8 + len(mj))
}

// idGenerator makes request IDs unique across the cluster and across
// restarts of this member: the member ID's low 16 bits, then a timestamp and
// a counter, as etcd's idutil.
type idGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

func newIDGenerator(memberID uint64) *idGenerator {
	g := &idGenerator{prefix: (memberID & 0xffff) << 48}
	g.next.Store(uint64(time.Now().UnixMilli()&0xffffffffff) << 8)
	return g
}

func (g *idGenerator) Next() uint64 {
	return g.prefix | (g.next.Add(1) & (1<<48 - 1))
}

var errStopped = errors.New("quorumd: member is stopping")
