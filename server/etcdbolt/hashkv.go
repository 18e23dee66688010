package etcdbolt

import (
	"hash/crc32"
	"sort"
	"sync"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// KeyValueHash is etcd's mvcc.KeyValueHash: the hash of the keyspace's
// revisions up to Revision, computed while the store's compaction revision
// was CompactRevision (-1: never compacted).
type KeyValueHash struct {
	Hash            uint32
	CompactRevision int64
	Revision        int64
}

// keyBucket is the name of etcd's key bucket, the first thing etcd's
// kvHasher hashes.
var keyBucket = []byte("key")

// HashKV computes etcd's HashKV hash of v at rev (0: v's revision), exactly
// as etcd's store.hashByRev and kvHasher compute it over their key bucket,
// so that quorumd and etcd members holding the same history agree:
// CRC-32C over the bucket name and then, in revision order, the revision
// key and the marshaled KeyValue of every revision at or below rev, where
// a revision at or below the compaction revision counts only if it is
// still its key's newest at rev and its key is alive there (etcd's
// kvindex.Keep(rev); if no key is alive at rev, etcd's empty keep set
// skips nothing). etcd also skips a deletion at the compaction revision,
// which etcd 3.6 keeps in its backend; quorumd's compaction drops it, so
// there is none here to skip.
//
// Errors are mvcc.ErrCompacted for rev below the compaction revision and
// mvcc.ErrFutureRev above v's revision, as etcd's; the hash is then zero
// (with the current revision in Revision for a future one, as etcd's).
func HashKV(v *mvcc.View, rev int64) (KeyValueHash, error) {
	compactRev, _ := v.LastCompaction()
	cur := v.Rev()
	if rev > 0 && rev < compactRev {
		return KeyValueHash{}, mvcc.ErrCompacted
	}
	if rev > cur {
		return KeyValueHash{Revision: cur}, mvcc.ErrFutureRev
	}
	if rev <= 0 {
		rev = cur
	}
	// A revision at or below compactRev is in etcd's keep set iff it is
	// its key's newest revision at or below rev and not a deletion.
	type pending struct {
		key  string
		main int64
	}
	var kept map[pending]bool
	if compactRev >= 0 {
		kept = make(map[pending]bool)
		newest := make(map[string]mvcc.KeyRevision)
		_ = v.Revisions(func(r *mvcc.KeyRevision) error {
			if r.Main > rev {
				return errStop
			}
			newest[string(r.KV.Key)] = mvcc.KeyRevision{Main: r.Main, Tombstone: r.Tombstone}
			return nil
		})
		for k, r := range newest {
			if !r.Tombstone && r.Main <= compactRev {
				kept[pending{k, r.Main}] = true
			}
		}
		// etcd's keep set is empty when no key is alive at rev.
		alive := false
		for _, r := range newest {
			if !r.Tombstone {
				alive = true
				break
			}
		}
		if !alive {
			kept = nil
		}
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(keyBucket)
	var kbuf, vbuf []byte
	err := v.Revisions(func(r *mvcc.KeyRevision) error {
		if r.Main > rev {
			return errStop
		}
		if r.Main <= compactRev && kept != nil && !kept[pending{string(r.KV.Key), r.Main}] {
			return nil
		}
		kbuf = RevisionKey(kbuf[:0], r.Main, r.Sub, r.Tombstone)
		n := r.KV.Size()
		if cap(vbuf) < n {
			vbuf = make([]byte, n)
		}
		vbuf = vbuf[:n]
		if _, err := r.KV.MarshalToSizedBuffer(vbuf); err != nil {
			return err
		}
		h.Write(kbuf)
		h.Write(vbuf)
		return nil
	})
	if err != nil && err != errStop {
		return KeyValueHash{}, err
	}
	return KeyValueHash{Hash: h.Sum32(), CompactRevision: compactRev, Revision: rev}, nil
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}

// compactionHashesKept is how many compaction hashes etcd keeps
// (storage/mvcc/hash.go hashStorageMaxSize).
const compactionHashesKept = 10

// CompactionHashes is etcd's hashStorage cache: the hash computed at each
// of the last 10 compactions, taken over the keyspace just before the
// compaction (HashKV at the compaction revision with the previous
// compaction revision). etcd's HashKV answers a request for a revision it
// holds from here, not by hashing again, so a member that mirrors etcd
// must too; etcd's compaction-hash corruption check compares these. Safe
// for concurrent use.
type CompactionHashes struct {
	mu     sync.Mutex
	hashes []KeyValueHash // by Revision, oldest first
}

// Store keeps h, dropping the oldest beyond 10.
func (c *CompactionHashes) Store(h KeyValueHash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hashes = append(c.hashes, h)
	sort.Slice(c.hashes, func(i, j int) bool { return c.hashes[i].Revision < c.hashes[j].Revision })
	if len(c.hashes) > compactionHashesKept {
		c.hashes = c.hashes[len(c.hashes)-compactionHashesKept:]
	}
}

// Lookup returns the stored hash at revision rev, if any.
func (c *CompactionHashes) Lookup(rev int64) (KeyValueHash, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hashes {
		if h.Revision == rev {
			return h, true
		}
	}
	return KeyValueHash{}, false
}

// Hashes returns the stored hashes, oldest first.
func (c *CompactionHashes) Hashes() []KeyValueHash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]KeyValueHash(nil), c.hashes...)
}
