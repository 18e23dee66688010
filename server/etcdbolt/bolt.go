package etcdbolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	etcdmvcc "go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// ErrNotBackend is wrapped by Open's errors for a file that is not an etcd
// backend: not bbolt, damaged or truncated, or without etcd's buckets.
var ErrNotBackend = errors.New("not an etcd v3 backend file")

// putsPerTx bounds the dirty pages bbolt holds in memory while WriteFile
// writes a large keyspace.
const putsPerTx = 100_000

// keyFillPercent is the fill etcd's backend gives the key bucket, whose
// keys arrive in ascending order (batchTx.UnsafeSeqPut).
const keyFillPercent = 0.9

// WriteFile writes b as a new bbolt file at path, which must not exist.
// The file is not synced: Maintenance.Snapshot's file is temporary (a
// caller that keeps one must sync it). On error nothing is left at path.
func WriteFile(path string, b *Backend) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("write backend %s: file exists", path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return fmt.Errorf("create backend %s: %w", path, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close backend %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	s := &boltSink{db: db}
	if err := b.Emit(s); err != nil {
		if s.tx != nil {
			s.tx.Rollback()
		}
		return fmt.Errorf("write backend %s: %w", path, err)
	}
	if err := s.commit(); err != nil {
		return fmt.Errorf("write backend %s: %w", path, err)
	}
	return nil
}

// boltSink writes the stream into a bbolt file, committing every
// putsPerTx pairs.
type boltSink struct {
	db   *bolt.DB
	tx   *bolt.Tx
	name []byte
	b    *bolt.Bucket
	n    int
	// arena holds the copies of the current transaction's keys and values
	// (bbolt keeps the slices until the commit), a few large allocations
	// instead of two per pair.
	arena []byte
}

// arenaChunk is the size of one arena allocation.
const arenaChunk = 4 << 20

// keep copies p into the arena.
func (s *boltSink) keep(p []byte) []byte {
	if cap(s.arena)-len(s.arena) < len(p) {
		s.arena = make([]byte, 0, max(arenaChunk, len(p)))
	}
	n := len(s.arena)
	s.arena = append(s.arena, p...)
	return s.arena[n:len(s.arena):len(s.arena)]
}

func (s *boltSink) begin() error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	s.tx, s.n = tx, 0
	if s.name != nil {
		if s.b, err = tx.CreateBucketIfNotExists(s.name); err != nil {
			return fmt.Errorf("bucket %s: %w", s.name, err)
		}
		if bytes.Equal(s.name, schema.Key.Name()) {
			s.b.FillPercent = keyFillPercent
		}
	}
	return nil
}

func (s *boltSink) commit() error {
	if s.tx == nil {
		return nil
	}
	err := s.tx.Commit()
	s.tx, s.b, s.arena = nil, nil, nil
	return err
}

func (s *boltSink) Bucket(name []byte) error {
	if err := s.commit(); err != nil {
		return err
	}
	s.name = append([]byte(nil), name...)
	return s.begin()
}

func (s *boltSink) Put(k, v []byte) error {
	if s.n >= putsPerTx {
		if err := s.commit(); err != nil {
			return err
		}
		if err := s.begin(); err != nil {
			return err
		}
	}
	s.n++
	// bbolt keeps the slices until the commit; the stream's are reused.
	if err := s.b.Put(s.keep(k), s.keep(v)); err != nil {
		return fmt.Errorf("put %x in bucket %s: %w", k, s.name, err)
	}
	return nil
}

// File is an etcd backend file opened read-only.
type File struct {
	path string
	db   *bolt.DB
}

// requiredBuckets must all exist in a file Open accepts: etcd creates
// them all when it starts (schema.AllBuckets); the others (alarm, auth…)
// may be missing in a file that never used them.
var requiredBuckets = []backend.Bucket{schema.Key, schema.Meta}

// Open opens the bbolt file at path read-only and checks that it is whole
// (bbolt's size covers every page it uses) and has etcd's buckets. Errors
// name the file and wrap ErrNotBackend when it is not a usable backend.
func Open(path string) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open backend: %w", err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrNotBackend, err)
	}
	f := &File{path: path, db: db}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: truncated: bbolt uses %d bytes, the file has %d", ErrNotBackend, tx.Size(), fi.Size())
		}
		for _, b := range requiredBuckets {
			if tx.Bucket(b.Name()) == nil {
				return fmt.Errorf("%w: no %q bucket", ErrNotBackend, b.Name())
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Close releases the file.
func (f *File) Close() error { return f.db.Close() }

// Backend reads every bucket but key into a Backend whose Keyspace streams
// the key bucket from the file (valid until Close). A value that does not
// decode is an error naming the file, bucket and key.
func (f *File) Backend() (*Backend, error) {
	b := &Backend{}
	err := f.view(func(tx *bolt.Tx) error {
		r := &boltReader{tx: tx}
		b.ConsistentIndex, b.Term = schema.UnsafeReadConsistentIndex(r)
		if v := r.get(schema.Meta, schema.MetaConfStateName); v != nil {
			// schema.UnsafeConfStateFromBackend's decoding, without its panic.
			b.ConfState = &raftpb.ConfState{}
			if err := json.Unmarshal(v, b.ConfState); err != nil {
				return fmt.Errorf("meta/confState: %w", err)
			}
		}
		if v := r.get(schema.Meta, schema.MetaStorageVersionName); v != nil {
			b.StorageVersion = string(v)
		}
		if v := r.get(schema.Meta, schema.FinishedCompactKeyName); v != nil {
			if _, err := checkRevKey(v); err != nil {
				return fmt.Errorf("meta/finishedCompactRev: %w", err)
			}
			b.CompactRev, _ = etcdmvcc.UnsafeReadFinishedCompact(r)
		}
		if v := r.get(schema.Meta, schema.ScheduledCompactKeyName); v != nil {
			if _, err := checkRevKey(v); err != nil {
				return fmt.Errorf("meta/scheduledCompactRev: %w", err)
			}
			b.ScheduledCompactRev, _ = etcdmvcc.UnsafeReadScheduledCompact(r)
		}
		if v := r.get(schema.Cluster, schema.ClusterClusterVersionKeyName); v != nil {
			b.ClusterVersion = string(v)
		}
		if err := r.UnsafeForEach(schema.Members, func(k, v []byte) error {
			id, err := types.IDFromString(string(k))
			if err != nil {
				return fmt.Errorf("members/%s: %w", k, err)
			}
			m := &membership.Member{ID: id}
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("members/%s: %w", k, err)
			}
			b.Members = append(b.Members, m)
			return nil
		}); err != nil {
			return err
		}
		if err := r.UnsafeForEach(schema.MembersRemoved, func(k, v []byte) error {
			id, err := types.IDFromString(string(k))
			if err != nil {
				return fmt.Errorf("members_removed/%s: %w", k, err)
			}
			b.RemovedMembers = append(b.RemovedMembers, id)
			return nil
		}); err != nil {
			return err
		}
		if err := r.UnsafeForEach(schema.Lease, func(k, v []byte) error {
			l := &leasepb.Lease{}
			if err := l.Unmarshal(v); err != nil {
				return fmt.Errorf("lease/%x: %w", k, err)
			}
			b.Leases = append(b.Leases, l)
			return nil
		}); err != nil {
			return err
		}
		if err := r.UnsafeForEach(schema.Alarm, func(k, v []byte) error {
			a := &pb.AlarmMember{}
			if err := a.Unmarshal(k); err != nil {
				return fmt.Errorf("alarm/%x: %w", k, err)
			}
			b.Alarms = append(b.Alarms, a)
			return nil
		}); err != nil {
			return err
		}
		if v := r.get(schema.Auth, schema.AuthEnabledKeyName); v != nil {
			b.AuthEnabledSet, b.AuthEnabled = true, bytes.Equal(v, []byte{1})
		}
		if v := r.get(schema.Auth, schema.AuthRevisionKeyName); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("auth/authRevision: %d bytes, want 8", len(v))
			}
			b.AuthRevision = binary.BigEndian.Uint64(v)
		}
		if err := r.UnsafeForEach(schema.AuthUsers, func(k, v []byte) error {
			u := &authpb.User{}
			if err := u.Unmarshal(v); err != nil {
				return fmt.Errorf("authUsers/%s: %w", k, err)
			}
			b.Users = append(b.Users, u)
			return nil
		}); err != nil {
			return err
		}
		return r.UnsafeForEach(schema.AuthRoles, func(k, v []byte) error {
			ro := &authpb.Role{}
			if err := ro.Unmarshal(v); err != nil {
				return fmt.Errorf("authRoles/%s: %w", k, err)
			}
			b.Roles = append(b.Roles, ro)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read backend %s: %w", f.path, err)
	}
	b.Keyspace = f.revisions
	return b, nil
}

// revisions streams the key bucket in key order, which is (main, sub)
// order.
func (f *File) revisions(fn func(*mvcc.KeyRevision) error) error {
	return f.view(func(tx *bolt.Tx) error {
		return tx.Bucket(schema.Key.Name()).ForEach(func(k, v []byte) error {
			main, sub, tomb, err := ParseRevisionKey(k)
			if err != nil {
				return fmt.Errorf("key bucket: %w", err)
			}
			r := &mvcc.KeyRevision{Main: main, Sub: sub, Tombstone: tomb}
			if err := r.KV.Unmarshal(v); err != nil {
				return fmt.Errorf("key bucket revision %d/%d: %w", main, sub, err)
			}
			// The KeyValue's slices point into the mmap; copy them out.
			r.KV.Key = bytes.Clone(r.KV.Key)
			r.KV.Value = bytes.Clone(r.KV.Value)
			return fn(r)
		})
	})
}

// view runs fn in a read transaction, turning a fault on a damaged page
// (the file changed under the mapping) into an error.
func (f *File) view(fn func(tx *bolt.Tx) error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: damaged page: %v", ErrNotBackend, p)
		}
	}()
	return f.db.View(fn)
}

func checkRevKey(v []byte) (int64, error) {
	main, _, _, err := ParseRevisionKey(v)
	return main, err
}

// boltReader is etcd's backend.UnsafeReader over a bbolt read transaction,
// for etcd's schema readers. A missing bucket reads as empty.
type boltReader struct{ tx *bolt.Tx }

var _ backend.UnsafeReader = (*boltReader)(nil)

func (r *boltReader) get(b backend.Bucket, key []byte) []byte {
	bk := r.tx.Bucket(b.Name())
	if bk == nil {
		return nil
	}
	return bk.Get(key)
}

func (r *boltReader) UnsafeRange(b backend.Bucket, key, endKey []byte, limit int64) (keys, vals [][]byte) {
	bk := r.tx.Bucket(b.Name())
	if bk == nil {
		return nil, nil
	}
	if endKey == nil {
		if v := bk.Get(key); v != nil {
			return [][]byte{key}, [][]byte{v}
		}
		return nil, nil
	}
	c := bk.Cursor()
	for k, v := c.Seek(key); k != nil && bytes.Compare(k, endKey) < 0; k, v = c.Next() {
		if limit > 0 && int64(len(keys)) >= limit {
			break
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals
}

func (r *boltReader) UnsafeForEach(b backend.Bucket, fn func(k, v []byte) error) error {
	bk := r.tx.Bucket(b.Name())
	if bk == nil {
		return nil
	}
	return bk.ForEach(fn)
}
