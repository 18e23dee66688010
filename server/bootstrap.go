package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/snap"
	"github.com/quorum-kv/quorum/server/wal"
)

// memberParts are the pieces a member is assembled from (see assemble):
// its identity, the started raft.Node with its in-memory storage, the
// durable log and snapshots, and the state machine to start from. openDataDir
// makes them from the data dir; the in-process tests make them from the
// in-memory twins.
type memberParts struct {
	id, cid uint64
	node    raft.Node
	storage *raft.MemoryStorage
	log     LogStorage
	snaps   SnapshotStorage
	state   appliedState
	// auth is the token provider and the applied-index waiter.
	auth authParts
	// me is this member as the membership lists it.
	me *Member
	// bootstrap is the membership the member started with (meta.json):
	// the peers to dial until the log is replayed, and the members of
	// bootstrap conf changes written without a context.
	bootstrap *Membership
}

// transportMembership is what a member's transport starts with: the
// applied membership, plus the bootstrap members it neither lists nor
// removed (a member that joined starts from an empty applied membership).
func (p *memberParts) transportMembership() *Membership {
	m := p.state.membership.Clone()
	if p.bootstrap == nil {
		return m
	}
	for _, b := range p.bootstrap.Members {
		if m.Member(b.ID) == nil && !m.IsRemoved(b.ID) {
			c := *b
			m.Members = append(m.Members, &c)
		}
	}
	sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].ID < m.Members[j].ID })
	return m
}

// openDataDir opens the member's data dir, <data-dir>/member/{meta.json,
// wal, snap} (the WAL in --wal-dir when given), and starts its raft.Node:
// from what the dir holds when it has a WAL (restart), otherwise from the
// --initial-* settings (bootstrap), unless the dir already holds a member
// whose WAL is elsewhere (an error).
// The WAL reports each fdatasync's duration to onFsync (may be nil). A
// member joining an existing cluster asks its peers for the membership
// over peerRT.
func openDataDir(cfg *Config, lg *slog.Logger, onFsync func(time.Duration), peerRT http.RoundTripper) (*memberParts, error) {
	memberDir := filepath.Join(cfg.DataDir, "member")
	walOpts := wal.DefaultOptions()
	walOpts.OnFsync = onFsync
	walOpts.NoSync = cfg.UnsafeNoFsync
	if cfg.UnsafeNoFsync {
		lg.Warn("--unsafe-no-fsync: the WAL is never fsynced; a power cut can lose acknowledged writes")
	}
	if wal.Exist(cfg.walDir()) {
		return restart(cfg, lg, memberDir, walOpts)
	}
	// Bootstrapping would make a new member over this one's data.
	if inDataDir := filepath.Join(memberDir, "wal"); cfg.WALDir != "" && wal.Exist(inDataDir) {
		return nil, fmt.Errorf("--wal-dir %s holds no WAL, but the data dir's %s does: this member was created without --wal-dir; move that WAL's files into %s, or start without --wal-dir",
			cfg.WALDir, inDataDir, cfg.WALDir)
	}
	if _, err := os.Stat(filepath.Join(memberDir, metaFile)); err == nil {
		return nil, fmt.Errorf("data dir %s holds a member (%s) but %s has no WAL: start with the --wal-dir it was created with; if there was none, the WAL is lost (remove the data dir and add the member again)",
			cfg.DataDir, filepath.Join("member", metaFile), cfg.walDir())
	}
	return bootstrap(cfg, lg, memberDir, walOpts, peerRT)
}

// raftConfig is member id's Raft configuration over storage.
func raftConfig(cfg *Config, id uint64, storage *raft.MemoryStorage, applied uint64, lg *slog.Logger) *raft.Config {
	return &raft.Config{
		ID:              id,
		ElectionTick:    cfg.electionTicks(),
		HeartbeatTick:   1,
		Storage:         storage,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 512,
		// etcd's limit on uncommitted entries a leader accepts: enough for
		// large batches, bounded so a partitioned leader cannot grow without
		// limit.
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   !cfg.DisablePreVote,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    newRaftLogger(lg),
	}
}

// startRaft starts member me's raft.Node for a new cluster ("new": the
// bootstrap entries list every member, sorted by ID, each with the
// member's JSON as its context as etcd's, so they are identical on every
// member) or to be caught up by the leader ("existing": an empty log; the
// leader sends the log or a snapshot).
func startRaft(cfg *Config, lg *slog.Logger, membership *Membership, me *Member, storage *raft.MemoryStorage) raft.Node {
	rcfg := raftConfig(cfg, me.ID, storage, 0, lg)
	if cfg.InitialClusterState == "existing" {
		// etcd's line for a member joining an existing cluster; quorumd
		// starts with an empty log that the leader catches up.
		lg.Info("starting local member", "local-member-id", idString(me.ID), "cluster-id", idString(membership.ClusterID))
		return raft.RestartNode(rcfg)
	}
	peers := make([]raft.Peer, 0, len(membership.Members))
	for _, m := range membership.Members {
		ctx, err := json.Marshal(m)
		if err != nil {
			panic(err) // a Member always marshals
		}
		peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
	}
	lg.Info("starting local member", "local-member-id", idString(me.ID), "cluster-id", idString(membership.ClusterID))
	return raft.StartNode(rcfg, peers)
}

func bootstrap(cfg *Config, lg *slog.Logger, memberDir string, walOpts wal.Options, peerRT http.RoundTripper) (*memberParts, error) {
	walDir, snapDirPath := cfg.walDir(), filepath.Join(memberDir, "snap")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s (--data-dir): %w", cfg.DataDir, err)
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return nil, err
	}
	membership := NewMembership(cfg.InitialCluster, cfg.InitialClusterToken)
	me := membership.MemberByName(cfg.Name)
	joined := cfg.InitialClusterState == "existing"
	// The applied membership before the first entry: the bootstrap list for
	// a new cluster (its bootstrap entries add the same members), nothing
	// but the cluster ID for a member that joins (the log or a snapshot
	// brings the members, as on the members that were there).
	if cfg.Discover != nil && !joined {
		var err error
		if membership, err = discover(cfg, me); err != nil {
			return nil, err
		}
		me = membership.MemberByName(cfg.Name)
	}
	applied := membership
	if joined {
		existing, err := clusterFromRemotePeers(lg, remotePeerURLs(membership, cfg.Name), peerRT)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch cluster info from peer urls: %w", err)
		}
		if me, err = matchExistingMember(membership, existing, cfg.Name); err != nil {
			return nil, fmt.Errorf("error validating peerURLs %s: %w", describeMembers(existing), err)
		}
		membership = existing
		applied = &Membership{ClusterID: existing.ClusterID}
	}
	if err := os.MkdirAll(snapDirPath, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", snapDirPath, err)
	}
	if err := writeMeta(memberDir, me.ID, membership, joined); err != nil {
		return nil, err
	}
	w, err := wal.CreateWithOptions(walDir, lg, walOpts)
	if err != nil {
		return nil, fmt.Errorf("create wal in %s: %w", walDir, err)
	}
	storage := raft.NewMemoryStorage()
	return &memberParts{
		id: me.ID, cid: membership.ClusterID, me: me, bootstrap: membership,
		node: startRaft(cfg, lg, membership, me, storage), storage: storage,
		log: w, snaps: snapDir(snapDirPath),
		state: appliedState{store: mvcc.New(), membership: applied.Clone()},
	}, nil
}

// DiscoveryError is a failed bootstrap by discovery (Config.Discover): Op
// is what failed ("join"), Err why (etcd's v3discovery errors, such as
// "discovery: cluster is full"). etcd's servererrors.DiscoveryError, whose
// message it repeats; etcdmain tells its causes apart with errors.Is.
type DiscoveryError struct {
	Op  string
	Err error
}

func (e *DiscoveryError) Error() string {
	return fmt.Sprintf("failed to %s discovery cluster (%v)", e.Op, e.Err)
}
func (e *DiscoveryError) Unwrap() error { return e.Err }

// discover is etcd's bootstrapNewClusterNoWAL with discovery: member me
// registers itself under its ID with its own entry, and the members the
// service returns (each ID computed from its peer URLs and the token, as
// every member computes them) are the new cluster, which must include me
// under its name and give no peer URL twice.
func discover(cfg *Config, me *Member) (*Membership, error) {
	self := make([]string, len(me.PeerURLs))
	for i, u := range me.PeerURLs {
		self[i] = me.Name + "=" + u
	}
	str, err := cfg.Discover(me.ID, strings.Join(self, ","))
	if err != nil {
		return nil, &DiscoveryError{Op: "join", Err: err}
	}
	initial, err := ParseInitialCluster(str)
	if err != nil {
		return nil, fmt.Errorf("discovery returned cluster %q: %w", str, err)
	}
	seen := map[string]bool{}
	for _, us := range initial {
		for _, u := range us {
			if seen[u.String()] {
				return nil, fmt.Errorf("discovery cluster %s has duplicate url", str)
			}
			seen[u.String()] = true
		}
	}
	m := NewMembership(initial, cfg.InitialClusterToken)
	if found := m.MemberByName(cfg.Name); found == nil || found.ID != me.ID {
		return nil, fmt.Errorf("discovery returned cluster %s without this member (%s, %s)", str, cfg.Name, idString(me.ID))
	}
	return m, nil
}

func restart(cfg *Config, lg *slog.Logger, memberDir string, walOpts wal.Options) (*memberParts, error) {
	walDir, snapDirPath := cfg.walDir(), filepath.Join(memberDir, "snap")
	id, meta, err := readMeta(memberDir)
	if err != nil {
		return nil, err
	}
	membership := meta.Membership
	if cfg.Discover != nil {
		lg.Warn("discovery token is ignored since cluster already initialized; valid logs are found", "wal-dir", walDir)
	}
	if me := membership.Member(id); me.Name != cfg.Name && me.Name != "" {
		lg.Warn("--name differs from the name this data dir was created with; using the data dir's", "name", cfg.Name, "data-dir-name", me.Name)
	}
	if err := os.MkdirAll(snapDirPath, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", snapDirPath, err)
	}
	if err := snap.RemoveTemp(snapDirPath); err != nil {
		return nil, fmt.Errorf("clear interrupted snapshots: %w", err)
	}
	sn, err := snap.LoadNewest(snapDirPath)
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	w, contents, err := wal.OpenWithOptions(walDir, lg, walOpts)
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	if contents.Repaired != nil {
		lg.Warn("repaired a torn WAL tail left by a crash", "repair", fmt.Sprintf("%+v", *contents.Repaired))
	}
	storage := raft.NewMemoryStorage()
	initial := membership
	if meta.Joined {
		initial = &Membership{ClusterID: membership.ClusterID}
	}
	hs, ents := contents.HardState, contents.Entries
	if cfg.ForceNewCluster {
		walCommit := hs.Commit
		if hs, ents, err = forceNewCluster(lg, w, sn, hs, ents, id); err != nil {
			w.Close()
			return nil, fmt.Errorf("--force-new-cluster: %w", err)
		}
		lg.Info("forcing restart member", "cluster-id", idString(membership.ClusterID), "local-member-id", idString(id),
			"wal-commit-index", walCommit, "commit-index", hs.Commit)
	}
	r, err := restoreState(storage, sn, hs, ents, initial, snapDirPath, walDir)
	if err != nil {
		w.Close()
		return nil, err
	}
	if !cfg.ForceNewCluster {
		lg.Info("restarting local member", "cluster-id", idString(membership.ClusterID), "local-member-id", idString(id),
			"commit-index", r.hardState.Commit, "snapshot-index", r.state.index, "wal-entries", r.entries, "term", r.hardState.Term)
	}
	me := r.state.membership.Member(id)
	if me == nil {
		me = membership.Member(id)
	}
	return &memberParts{
		id: id, cid: membership.ClusterID, me: me, bootstrap: membership,
		node: raft.RestartNode(raftConfig(cfg, id, storage, r.state.index, lg)), storage: storage,
		log: w, snaps: snapDir(snapDirPath), state: r.state,
	}, nil
}

// restored is what restoreState rebuilt.
type restored struct {
	state     appliedState
	hardState raftpb.HardState
	entries   int // log entries after the snapshot
}

// restoreState rebuilds Raft's in-memory storage and the state machine to
// start from out of what a member persisted: the newest snapshot (nil if
// none), the hard state and the log entries read back, which may begin at
// or before the snapshot. membership is the bootstrap membership, for when
// there is no snapshot (the applied membership before the first entry). snapPath and walPath name where they were read from,
// in errors.
func restoreState(storage *raft.MemoryStorage, sn *raftpb.Snapshot, hs raftpb.HardState, ents []raftpb.Entry,
	membership *Membership, snapPath, walPath string) (restored, error) {
	state := appliedState{store: mvcc.New(), membership: membership}
	if sn != nil {
		c, err := decodeSnapshot(sn.Data)
		if err != nil {
			return restored{}, fmt.Errorf("snapshot %016x-%016x in %s: %w", sn.Metadata.Term, sn.Metadata.Index, snapPath, err)
		}
		state = appliedState{store: c.store, membership: c.membership, leases: c.leases, auth: c.auth, alarms: c.alarms, confState: sn.Metadata.ConfState, index: sn.Metadata.Index}
		if err := storage.ApplySnapshot(withoutData(*sn)); err != nil {
			return restored{}, fmt.Errorf("apply snapshot: %w", err)
		}
		for len(ents) > 0 && ents[0].Index <= sn.Metadata.Index {
			ents = ents[1:]
		}
		if len(ents) > 0 && ents[0].Index != sn.Metadata.Index+1 {
			return restored{}, fmt.Errorf("wal in %s starts at index %d but the newest snapshot ends at %d: entries are missing (data dir is damaged)",
				walPath, ents[0].Index, sn.Metadata.Index)
		}
		if hs.Commit < sn.Metadata.Index {
			hs.Commit = sn.Metadata.Index
		}
	}
	if err := storage.SetHardState(hs); err != nil {
		return restored{}, err
	}
	if err := storage.Append(ents); err != nil {
		return restored{}, err
	}
	return restored{state: state, hardState: hs, entries: len(ents)}, nil
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
