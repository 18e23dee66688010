package etcdbolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/coreos/go-semver/semver"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	etcdmvcc "go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// Backend is the whole content of an etcd v3.6 backend file, in the terms
// quorumd keeps its state in. Emit turns it into etcd's buckets, keys and
// values; Open reads a file back into one.
//
// Member, lease, alarm and auth values are etcd's own types, so that their
// encodings are etcd's (membership.Member's JSON, leasepb.Lease,
// authpb.User/Role, etcdserverpb.AlarmMember).
type Backend struct {
	// ConsistentIndex and Term are meta's consistent_index and term: the
	// Raft entry the state includes. Zero: not written.
	ConsistentIndex, Term uint64
	// ConfState is meta's confState; nil: not written.
	ConfState *raftpb.ConfState
	// CompactRev is the last finished compaction (meta's
	// finishedCompactRev); ScheduledCompactRev the last scheduled one
	// (meta's scheduledCompactRev). Zero: none. Emit writes the scheduled
	// one as max(ScheduledCompactRev, CompactRev).
	CompactRev, ScheduledCompactRev int64
	// StorageVersion is meta's storageVersion and ClusterVersion cluster's
	// clusterVersion ("3.6.0" for etcd 3.6); empty: not written.
	StorageVersion, ClusterVersion string
	// Members are the members bucket, RemovedMembers members_removed.
	Members        []*membership.Member
	RemovedMembers []types.ID
	// Leases is the lease bucket.
	Leases []*leasepb.Lease
	// Alarms is the alarm bucket.
	Alarms []*pb.AlarmMember
	// The auth bucket (authEnabled, written only when AuthEnabledSet, and
	// authRevision) and the authUsers and authRoles buckets.
	AuthEnabledSet, AuthEnabled bool
	AuthRevision                uint64
	Users                       []*authpb.User
	Roles                       []*authpb.Role
	// Keyspace streams the key bucket: every stored revision in (main, sub)
	// order, as mvcc.View.Revisions does. Nil: an empty key bucket.
	Keyspace func(fn func(*mvcc.KeyRevision) error) error
}

// Version36 is etcd 3.6's storage and cluster version, as its backend
// files and snapshot responses carry it.
const Version36 = "3.6.0"

// Sink receives a backend's contents as a stream: each bucket in bolt's
// order (ascending name) with its pairs in ascending key order. Bucket
// starts the next bucket; Put adds a pair to the current one. The slices
// are valid only during the call.
type Sink interface {
	Bucket(name []byte) error
	Put(key, value []byte) error
}

// Emit streams b into s in etcd's v3.6 schema: every bucket of
// schema.AllBuckets, in bolt's order, each key and value in etcd's
// encoding. The small buckets are encoded with etcd's own schema and mvcc
// functions into memory; the key bucket streams from b.Keyspace.
func (b *Backend) Emit(s Sink) error {
	tx, err := b.smallBuckets()
	if err != nil {
		return err
	}
	names := make([][]byte, 0, len(schema.AllBuckets))
	for _, bk := range schema.AllBuckets {
		names = append(names, bk.Name())
	}
	sort.Slice(names, func(i, j int) bool { return bytes.Compare(names[i], names[j]) < 0 })
	for _, name := range names {
		if err := s.Bucket(name); err != nil {
			return err
		}
		if bytes.Equal(name, schema.Key.Name()) {
			if err := b.emitKeys(s); err != nil {
				return err
			}
			continue
		}
		if err := tx.emit(string(name), s); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) emitKeys(s Sink) error {
	if b.Keyspace == nil {
		return nil
	}
	var kbuf, vbuf []byte
	lastMain, lastSub := int64(-1), int64(-1)
	return b.Keyspace(func(r *mvcc.KeyRevision) error {
		if r.Main < lastMain || (r.Main == lastMain && r.Sub <= lastSub) {
			return fmt.Errorf("keyspace revision %d/%d after %d/%d: not in (main, sub) order", r.Main, r.Sub, lastMain, lastSub)
		}
		lastMain, lastSub = r.Main, r.Sub
		kbuf = RevisionKey(kbuf[:0], r.Main, r.Sub, r.Tombstone)
		kv := &r.KV
		if r.Tombstone {
			// etcd stores a tombstone as a KeyValue with only the key.
			kv = &mvccpb.KeyValue{Key: r.KV.Key}
		}
		n := kv.Size()
		if cap(vbuf) < n {
			vbuf = make([]byte, n)
		}
		vbuf = vbuf[:n]
		if _, err := kv.MarshalToSizedBuffer(vbuf); err != nil {
			return fmt.Errorf("encode revision %d/%d of key %q: %w", r.Main, r.Sub, r.KV.Key, err)
		}
		return s.Put(kbuf, vbuf)
	})
}

// smallBuckets encodes every bucket but key into memory, through etcd's
// own encoders where they take a transaction.
func (b *Backend) smallBuckets() (*memTx, error) {
	tx := newMemTx()
	lg := zap.NewNop()
	if b.ConsistentIndex > 0 {
		schema.UnsafeUpdateConsistentIndexForce(tx, b.ConsistentIndex, b.Term)
	}
	if b.ConfState != nil {
		schema.MustUnsafeSaveConfStateToBackend(lg, tx, b.ConfState)
	}
	if b.StorageVersion != "" {
		v, err := semver.NewVersion(b.StorageVersion)
		if err != nil {
			return nil, fmt.Errorf("storage version %q: %w", b.StorageVersion, err)
		}
		schema.UnsafeSetStorageVersion(tx, v)
	}
	if sched := max(b.ScheduledCompactRev, b.CompactRev); sched > 0 {
		etcdmvcc.UnsafeSetScheduledCompact(tx, sched)
	}
	if b.CompactRev > 0 {
		etcdmvcc.UnsafeSetFinishedCompact(tx, b.CompactRev)
	}
	if b.ClusterVersion != "" {
		// membershipBackend.MustSaveClusterVersionToBackend's encoding.
		tx.UnsafePut(schema.Cluster, schema.ClusterClusterVersionKeyName, []byte(b.ClusterVersion))
	}
	for _, m := range b.Members {
		// membershipBackend.MustSaveMemberToBackend's encoding.
		v, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode member %s: %w", m.ID, err)
		}
		tx.UnsafePut(schema.Members, schema.BackendMemberKey(m.ID), v)
	}
	for _, id := range b.RemovedMembers {
		tx.UnsafePut(schema.MembersRemoved, schema.BackendMemberKey(id), []byte("removed"))
	}
	for _, l := range b.Leases {
		schema.MustUnsafePutLease(tx, l)
	}
	for _, a := range b.Alarms {
		// alarmBackend.mustUnsafePutAlarm's encoding: the alarm is the key.
		k, err := a.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode alarm %v: %w", a, err)
		}
		tx.UnsafePut(schema.Alarm, k, nil)
	}
	// authBatchTx's encodings (storage/schema/auth*.go).
	if b.AuthEnabledSet {
		v := []byte{0}
		if b.AuthEnabled {
			v = []byte{1}
		}
		tx.UnsafePut(schema.Auth, schema.AuthEnabledKeyName, v)
	}
	if b.AuthRevision > 0 {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, b.AuthRevision)
		tx.UnsafePut(schema.Auth, schema.AuthRevisionKeyName, v)
	}
	for _, u := range b.Users {
		v, err := u.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode user %q: %w", u.Name, err)
		}
		tx.UnsafePut(schema.AuthUsers, u.Name, v)
	}
	for _, r := range b.Roles {
		v, err := r.Marshal()
		if err != nil {
			return nil, fmt.Errorf("encode role %q: %w", r.Name, err)
		}
		tx.UnsafePut(schema.AuthRoles, r.Name, v)
	}
	return tx, nil
}

// memTx is etcd's backend.UnsafeReadWriter over maps, so that etcd's
// schema encoders can write the small buckets into memory.
type memTx struct {
	buckets map[string]map[string][]byte
}

var _ backend.UnsafeReadWriter = (*memTx)(nil)

func newMemTx() *memTx {
	tx := &memTx{buckets: map[string]map[string][]byte{}}
	for _, b := range schema.AllBuckets {
		tx.buckets[string(b.Name())] = map[string][]byte{}
	}
	return tx
}

func (tx *memTx) bucket(b backend.Bucket) map[string][]byte {
	m, ok := tx.buckets[string(b.Name())]
	if !ok {
		m = map[string][]byte{}
		tx.buckets[string(b.Name())] = m
	}
	return m
}

func (tx *memTx) UnsafeCreateBucket(b backend.Bucket) { tx.bucket(b) }
func (tx *memTx) UnsafeDeleteBucket(b backend.Bucket) { delete(tx.buckets, string(b.Name())) }
func (tx *memTx) UnsafePut(b backend.Bucket, k, v []byte) {
	tx.bucket(b)[string(k)] = append([]byte{}, v...)
}
func (tx *memTx) UnsafeSeqPut(b backend.Bucket, k, v []byte) { tx.UnsafePut(b, k, v) }
func (tx *memTx) UnsafeDelete(b backend.Bucket, k []byte)    { delete(tx.bucket(b), string(k)) }

// UnsafeRange supports what etcd's schema readers use: one key (endKey
// nil) or a range.
func (tx *memTx) UnsafeRange(b backend.Bucket, key, endKey []byte, limit int64) (keys, vals [][]byte) {
	m := tx.bucket(b)
	if endKey == nil {
		if v, ok := m[string(key)]; ok {
			return [][]byte{key}, [][]byte{v}
		}
		return nil, nil
	}
	for _, k := range sortedKeys(m) {
		if k < string(key) || k >= string(endKey) {
			continue
		}
		if limit > 0 && int64(len(keys)) >= limit {
			break
		}
		keys, vals = append(keys, []byte(k)), append(vals, m[k])
	}
	return keys, vals
}

func (tx *memTx) UnsafeForEach(b backend.Bucket, fn func(k, v []byte) error) error {
	m := tx.bucket(b)
	for _, k := range sortedKeys(m) {
		if err := fn([]byte(k), m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (tx *memTx) emit(bucket string, s Sink) error {
	m := tx.buckets[bucket]
	for _, k := range sortedKeys(m) {
		if err := s.Put([]byte(k), m[k]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string][]byte) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
