package history

// Operation names (Event.F) of the lock workload.
const (
	// FAcquire takes a lock (go.etcd.io/etcd/client/v3/concurrency's
	// Mutex on the session of its client): Key is the lock's name (its
	// key prefix), the invocation's Value the JSON of a LockHold with the
	// session's lease (Key and Rev zero), an ok completion's Value the
	// LockHold the lock was granted as.
	FAcquire = "acquire"
	// FRelease releases the lock the process holds: Key and Value as the
	// acquire's ok completion.
	FRelease = "release"
	// FIncr increments a register under a lock, as a read and a write of
	// read+1 (not one atomic operation): Key is the register, the
	// invocation's Value the JSON of the LockHold it acts under (Fenced:
	// the write is a Txn guarded by the lock key's create revision), an
	// ok completion's Value the JSON of its IncrResult and Revision the
	// write's header revision. A fenced write whose guard did not hold is
	// fail with ErrCompareFailed.
	FIncr = "incr"
)

// LockHold is one grant of a lock to a session.
type LockHold struct {
	// Lock is the lock's name.
	Lock string `json:"lock"`
	// Lease is the session's lease ID and TTL its granted TTL in
	// seconds.
	Lease int64 `json:"lease"`
	TTL   int64 `json:"ttl,omitempty"`
	// Key is the session's key under the lock's prefix, Rev its create
	// revision (the queue position; etcd's Mutex.IsOwner compares it) and
	// Granted the header revision of the response that granted the lock
	// (Mutex.Header().Revision: Rev when the lock was free, later when
	// the session waited).
	Key     string `json:"key,omitempty"`
	Rev     int64  `json:"rev,omitempty"`
	Granted int64  `json:"granted,omitempty"`
	// Fenced: the holder's writes compare CreateRevision(Key) = Rev
	// (Mutex.IsOwner).
	Fenced bool `json:"fenced,omitempty"`
}

// IncrResult is what an ok FIncr read and wrote.
type IncrResult struct {
	Read  int64 `json:"read"`
	Wrote int64 `json:"wrote"`
}
