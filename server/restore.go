package server

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/etcdbolt"
	"github.com/quorum-kv/quorum/server/mvcc"
	"github.com/quorum-kv/quorum/server/snap"
	"github.com/quorum-kv/quorum/server/wal"
)

// RestoreConfig is what RestoreDataDir restores: etcdutl snapshot
// restore's settings, with its flag names.
type RestoreConfig struct {
	// SnapshotPath is the etcd v3 backend file: a snapshot saved by
	// etcdctl snapshot save from quorumd or etcd (a bbolt file with a
	// trailing SHA-256), or a bare db file (then SkipHashCheck).
	SnapshotPath string
	// Name (--name) is the member this data dir is for; it must be in
	// InitialCluster.
	Name string
	// InitialCluster (--initial-cluster, name=url,…) and
	// InitialClusterToken (--initial-cluster-token) make the restored
	// membership; member and cluster IDs are computed from them as etcd
	// computes them, so every member restored with the same flags agrees.
	InitialCluster      string
	InitialClusterToken string
	// InitialAdvertisePeerURLs (--initial-advertise-peer-urls, comma
	// separated) must be Name's URLs in InitialCluster.
	InitialAdvertisePeerURLs string
	// DataDir (--data-dir) must not exist or be empty.
	DataDir string
	// WALDir (--wal-dir), when set, is where the WAL goes instead of
	// <data-dir>/member/wal (the member then starts with the same
	// --wal-dir); it must not exist or be empty.
	WALDir string
	// SkipHashCheck (--skip-hash-check) accepts a file without the
	// trailing SHA-256 (a db file copied from a data dir) and does not
	// check one that has it.
	SkipHashCheck bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// Validate checks every field, naming the flag of the first bad one.
func (c *RestoreConfig) Validate() error {
	if c.SnapshotPath == "" {
		return errors.New("snapshot restore requires exactly one argument: the snapshot file")
	}
	if c.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if c.Name == "" {
		return errors.New("--name is required")
	}
	_, _, err := c.membership()
	return err
}

// membership is the restored cluster's membership and this member in it.
func (c *RestoreConfig) membership() (*Membership, *Member, error) {
	ic, err := ParseInitialCluster(c.InitialCluster)
	if err != nil {
		return nil, nil, fmt.Errorf("--initial-cluster %q: %w", c.InitialCluster, err)
	}
	peers, err := ParseURLs(c.InitialAdvertisePeerURLs)
	if err != nil {
		return nil, nil, fmt.Errorf("--initial-advertise-peer-urls %q: %w", c.InitialAdvertisePeerURLs, err)
	}
	mine, ok := ic[c.Name]
	if !ok {
		return nil, nil, fmt.Errorf("--name %q is not in --initial-cluster %q", c.Name, c.InitialCluster)
	}
	if !sameURLs(mine, peers) {
		// etcd's VerifyBootstrap.
		return nil, nil, fmt.Errorf("--initial-cluster has %s=%s but --initial-advertise-peer-urls is %s: they must match",
			c.Name, FormatURLs(mine), FormatURLs(peers))
	}
	m := NewMembership(ic, c.InitialClusterToken)
	return m, m.MemberByName(c.Name), nil
}

// RestoreDataDir turns an etcd v3 backend file into a quorumd data dir,
// <data-dir>/member/{meta.json,wal,snap}, as quorumd restarts from it:
// the keyspace, leases and auth of the file in a snapshot at index
// len(members) and term 1 with every restored member a voter (what
// etcdutl's restore commits: one conf change per member), a WAL whose hard
// state commits that snapshot, and the membership from the flags. Members
// restored from the same file with the same --initial-cluster and token
// start as one cluster.
//
// Everything is read and checked (the SHA-256, bbolt's pages, etcd's
// buckets, every revision) before anything is written, and the data dir
// is built beside DataDir and renamed into place: on any error nothing is
// left at DataDir. The file's membership and consistent index are not
// restored (the flags replace them); its alarms are, as etcdutl's restore
// keeps the alarm bucket (a NOSPACE alarm in the backup is still active in
// the restored cluster, and `etcdctl alarm disarm` clears it).
func RestoreDataDir(cfg RestoreConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	mem, me, err := cfg.membership()
	if err != nil {
		return err
	}
	if err := checkRestoreTarget(cfg.DataDir); err != nil {
		return err
	}
	if err := checkRestoreWALTarget(cfg.WALDir); err != nil {
		return err
	}
	if err := checkSnapshotHash(cfg.SnapshotPath, cfg.SkipHashCheck); err != nil {
		return err
	}
	st, err := readBackendFile(cfg.SnapshotPath, lg)
	if err != nil {
		return err
	}
	ids := mem.IDs()
	index, term := uint64(len(ids)), uint64(1)
	md := raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: raftpb.ConfState{Voters: ids}}
	st.sections.membership = mem
	if err := writeDataDir(cfg.DataDir, cfg.WALDir, me.ID, md, st, lg); err != nil {
		return err
	}
	lg.Info("restored snapshot", "path", cfg.SnapshotPath, "data-dir", cfg.DataDir, "member-id", idString(me.ID),
		"cluster-id", idString(mem.ClusterID), "current-rev", st.store.Rev(), "compact-rev", st.store.CompactRev(),
		"leases", len(st.sections.leases), "snapshot-index", index)
	return nil
}

// checkRestoreTarget refuses a data dir that exists and is not an empty
// directory (etcdutl's check).
func checkRestoreTarget(dir string) error { return checkNewOrEmpty(dir, "data dir", "--data-dir") }

// checkRestoreWALTarget is the same check of a --wal-dir ("" is no
// dedicated WAL dir).
func checkRestoreWALTarget(dir string) error {
	if dir == "" {
		return nil
	}
	return checkNewOrEmpty(dir, "wal dir", "--wal-dir")
}

// checkNewOrEmpty refuses dir (what, given by flag) when it exists and is
// not an empty directory.
func checkNewOrEmpty(dir, what, flag string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s (%s) cannot be read: %w", what, dir, flag, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s %s (%s) is not empty: restore into a new or empty directory", what, dir, flag)
	}
	return nil
}

// checkSnapshotHash checks the SHA-256 etcd's Maintenance.Snapshot appends
// to the db (present iff the size is 32 more than a multiple of 512, as
// etcdutl decides), as etcdutl's restore does.
func checkSnapshotHash(path string, skip bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	size := fi.Size()
	hasHash := size%512 == sha256.Size
	switch {
	case !hasHash && !skip:
		return fmt.Errorf("snapshot %s: missing hash (a file saved by etcdctl snapshot save ends in a SHA-256; truncated, or a db copied from a data dir? then --skip-hash-check)", path)
	case !hasHash || skip:
		return nil
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, size-sha256.Size); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("snapshot %s: sha256 mismatch: the file says %x, its contents hash to %x (damaged file)", path, want, got)
	}
	return nil
}

// backendState is a backend file read into quorumd's state.
type backendState struct {
	store    *mvcc.Store
	sections snapshotSections
	// source is the membership the file was taken from.
	source *Membership
}

// readBackendFile reads an etcd backend file, from quorumd or etcd, into
// quorumd's state: the keyspace through mvcc's Builder (compacted as
// etcd's restore compacts it), the leases with the keys attached to them,
// the auth record, the file's own membership.
func readBackendFile(path string, lg *slog.Logger) (*backendState, error) {
	f, err := etcdbolt.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot %w", err)
	}
	defer f.Close()
	b, err := f.Backend()
	if err != nil {
		return nil, err
	}
	bl := mvcc.NewBuilder()
	if err := b.Keyspace(bl.Add); err != nil {
		return nil, fmt.Errorf("snapshot %s: key bucket: %w", path, err)
	}
	compactRev := int64(-1)
	if b.CompactRev > 0 {
		compactRev = b.CompactRev
	}
	store, err := bl.Finish(compactRev)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: key bucket: %w", path, err)
	}
	if b.ScheduledCompactRev > max(b.CompactRev, 0) && b.ScheduledCompactRev <= store.Rev() {
		// A compaction etcd scheduled but had not finished; etcd's restore
		// finishes it.
		if err := store.Compact(b.ScheduledCompactRev); err != nil {
			return nil, fmt.Errorf("snapshot %s: finish scheduled compaction at %d: %w", path, b.ScheduledCompactRev, err)
		}
	}
	leases, err := leaseRecords(b, store)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	st := &backendState{
		store:    store,
		sections: snapshotSections{leases: leases, auth: authFromBackend(b), alarms: alarmsFromBackend(lg, path, b.Alarms)},
		source:   membershipFromEtcd(b.Members),
	}
	lg.Info("read snapshot", "path", path, "source-members", len(st.source.Members), "consistent-index", b.ConsistentIndex,
		"current-rev", store.Rev(), "compact-rev", store.CompactRev(), "leases", len(leases))
	return st, nil
}

// leaseRecords are the file's leases with the keys the store attaches to
// them at its current revision (etcd's restore attaches them the same way,
// from the key bucket).
func leaseRecords(b *etcdbolt.Backend, store *mvcc.Store) ([]leaseRecord, error) {
	byID := make(map[int64]*leaseRecord, len(b.Leases))
	rs := make([]leaseRecord, 0, len(b.Leases))
	for _, l := range b.Leases {
		rs = append(rs, leaseRecord{ID: l.ID, TTL: l.TTL, RemainingTTL: l.RemainingTTL})
	}
	slices.SortFunc(rs, func(x, y leaseRecord) int { return cmp.Compare(x.ID, y.ID) })
	for i := range rs {
		byID[rs[i].ID] = &rs[i]
	}
	if len(rs) == 0 {
		return rs, nil
	}
	resp, err := store.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for _, kv := range resp.Kvs {
		if r := byID[kv.Lease]; kv.Lease != 0 && r != nil {
			r.Keys = append(r.Keys, bytes.Clone(kv.Key))
		}
	}
	return rs, nil
}

// authFromBackend is the file's auth buckets as quorumd's auth record.
func authFromBackend(b *etcdbolt.Backend) *authRecord {
	r := &authRecord{Enabled: b.AuthEnabled, Revision: b.AuthRevision, Users: b.Users, Roles: b.Roles}
	slices.SortFunc(r.Users, func(x, y *authpb.User) int { return bytes.Compare(x.Name, y.Name) })
	slices.SortFunc(r.Roles, func(x, y *authpb.Role) int { return bytes.Compare(x.Name, y.Name) })
	return r
}

// membershipFromEtcd is etcd's members bucket as a quorumd membership (ID,
// name, URLs; the cluster ID computed from the IDs as etcd does). The seam
// for learners and removed members.
func membershipFromEtcd(ms []*membership.Member) *Membership {
	m := &Membership{}
	for _, x := range ms {
		m.Members = append(m.Members, &Member{ID: uint64(x.ID), Name: x.Name,
			PeerURLs: append([]string(nil), x.PeerURLs...), ClientURLs: append([]string(nil), x.ClientURLs...)})
	}
	slices.SortFunc(m.Members, func(a, b *Member) int { return cmp.Compare(a.ID, b.ID) })
	m.ClusterID = ComputeClusterID(m.IDs())
	return m
}

// alarmsFromBackend is the file's alarm bucket as alarm records; an alarm
// of a type quorumd does not know is reported and dropped.
func alarmsFromBackend(lg *slog.Logger, path string, alarms []*pb.AlarmMember) []alarmRecord {
	recs := make([]alarmRecord, 0, len(alarms))
	for _, a := range alarms {
		if _, ok := pb.AlarmType_name[int32(a.Alarm)]; !ok || a.Alarm == pb.AlarmType_NONE {
			lg.Warn("snapshot holds an alarm of an unknown type; dropped", "path", path, "member-id", idString(a.MemberID), "alarm", int32(a.Alarm))
			continue
		}
		lg.Warn("snapshot holds an active alarm; it stays active in the restored member (etcdctl alarm disarm clears it)",
			"path", path, "member-id", idString(a.MemberID), "alarm", a.Alarm.String())
		recs = append(recs, alarmRecord{MemberID: a.MemberID, Alarm: a.Alarm.String()})
	}
	return recs
}

// writeDataDir writes <dataDir>/member for member id: meta.json, a
// snapshot at md holding st, and a WAL whose hard state commits md.Index
// (in dedicatedWAL instead of member/wal when it is not ""). It builds the
// member dir in a temporary directory beside dataDir, and a dedicated WAL
// beside dedicatedWAL, and renames them into place, the WAL first; on
// error nothing is left.
func writeDataDir(dataDir, dedicatedWAL string, id uint64, md raftpb.SnapshotMetadata, st *backendState, lg *slog.Logger) (err error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("data dir %s (--data-dir): %w", dataDir, err)
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".restore-")
	if err != nil {
		return fmt.Errorf("create a temporary dir beside %s (--data-dir): %w", dataDir, err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}()
	memberDir := filepath.Join(tmp, "member")
	snapDirPath, walDir := filepath.Join(memberDir, "snap"), filepath.Join(memberDir, "wal")
	// A dedicated WAL dir is written beside its place (the same file
	// system, perhaps not the data dir's) and moved there last.
	var walAbs, walParent string
	if dedicatedWAL != "" {
		if walAbs, err = filepath.Abs(dedicatedWAL); err != nil {
			return fmt.Errorf("wal dir %s (--wal-dir): %w", dedicatedWAL, err)
		}
		walParent = filepath.Dir(walAbs)
		if err := os.MkdirAll(walParent, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", walParent, err)
		}
		if walDir, err = os.MkdirTemp(walParent, "."+filepath.Base(walAbs)+".restore-"); err != nil {
			return fmt.Errorf("create a temporary dir beside %s (--wal-dir): %w", dedicatedWAL, err)
		}
		defer func() {
			if rerr := os.RemoveAll(walDir); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
		}()
	}
	if err := os.MkdirAll(snapDirPath, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", snapDirPath, err)
	}
	if err := writeMeta(memberDir, id, st.sections.membership, false); err != nil {
		return err
	}
	view := st.store.View()
	if _, err := snap.Create(snapDirPath, md, func(w io.Writer) error { return encodeSnapshot(w, view, st.sections) }); err != nil {
		return fmt.Errorf("write snapshot in %s: %w", snapDirPath, err)
	}
	w, err := wal.Create(walDir, lg)
	if err != nil {
		return fmt.Errorf("create wal in %s: %w", walDir, err)
	}
	hs := raftpb.HardState{Term: md.Term, Vote: md.ConfState.Voters[0], Commit: md.Index}
	if err := w.SaveSnapshotRestore(md.Index, md.Term); err != nil {
		w.Close()
		return fmt.Errorf("write wal in %s: %w", walDir, err)
	}
	if err := w.Save(hs, nil, true); err != nil {
		w.Close()
		return fmt.Errorf("write wal in %s: %w", walDir, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close wal in %s: %w", walDir, err)
	}
	if err := syncDir(memberDir); err != nil {
		return err
	}
	if walAbs != "" {
		if err := syncDir(walDir); err != nil {
			return err
		}
		// The WAL first: a data dir in place without its WAL would be a
		// member that cannot start.
		if err := checkRestoreWALTarget(walAbs); err != nil {
			return err
		}
		if err := os.Rename(walDir, walAbs); err != nil {
			return fmt.Errorf("move the restored WAL to %s (--wal-dir): %w", dedicatedWAL, err)
		}
		defer func() {
			if err != nil { // the data dir did not follow: take the WAL back out
				os.RemoveAll(walAbs)
			}
		}()
		if err := syncDir(walParent); err != nil {
			return err
		}
	}
	// Into place: the whole dir when dataDir does not exist, else the
	// member dir into the empty dataDir.
	if _, serr := os.Stat(abs); errors.Is(serr, os.ErrNotExist) {
		if err := os.Rename(tmp, abs); err != nil {
			return fmt.Errorf("move the restored data dir to %s: %w", dataDir, err)
		}
		return syncDir(parent)
	}
	if err := checkRestoreTarget(abs); err != nil {
		return err
	}
	if err := os.Rename(memberDir, filepath.Join(abs, "member")); err != nil {
		return fmt.Errorf("move the restored member dir into %s: %w", dataDir, err)
	}
	return syncDir(abs)
}
