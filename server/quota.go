package server

import (
	"context"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The space quota, as etcd's (storage/quota.go, etcdserver/api/v3rpc
// quota.go, etcdserver/apply quotaApplierV3): a put, a txn with puts or a
// lease grant costs bytes (quotaCost); it is refused when the database
// size plus its cost is not below --quota-backend-bytes. Twice, as etcd:
// by the member that receives it, before Raft (which raises the NOSPACE
// alarm through Raft and answers "etcdserver: mvcc: database space
// exceeded"), and again when it is applied on every member, against that
// member's own size: there etcd applies the write anyway and answers the
// same error (its quotaApplierV3; the client is told the write failed,
// yet it is in the keyspace), and the member raises NOSPACE itself if no
// such alarm is active yet. Once NOSPACE is active every member refuses
// those writes at apply time without applying them (alarmSet.refuse).
//
// What "database size" means here. etcd's quota looks at its bbolt file's
// size, which only grows: compaction frees pages inside the file for
// reuse but gives nothing back until a Defragment rewrites the file. The
// keyspace here is in memory (server/mvcc); Store.Size is its logical
// size, which shrinks at compaction. The model of the bolt file:
//
//	DbSizeInUse = dbBaseBytes + Store.Size() now
//	DbSize      = dbBaseBytes + the largest Store.Size() since the member
//	              started or last defragmented
//
// dbBaseBytes stands for a fresh bolt file's four pages (two meta pages,
// the freelist and the root). The quota checks DbSize, as etcd checks the
// file size, so after a compaction writes still fail until `etcdctl
// defrag` resets the high-water mark to what is in use. Each member has
// its own: Defragment is local. A restarted member rebuilds its keyspace
// from its snapshot and WAL, so its database is as if freshly written:
// its high-water mark starts at what it holds once the entries it had
// applied before are replayed (etcd's file keeps its size across a
// restart; quorumd has no file to keep, and replaying the history must
// not bring back a peak that a Defragment had reclaimed).

// dbBaseBytes is the size of an empty database: an empty bbolt file's four
// 4 KiB pages.
const dbBaseBytes = 4 * 4096

// quotaOverhead are etcd's estimates (storage/quota.go): a lease, and a
// key's metadata.
const (
	leaseOverhead = 64
	kvOverhead    = 256
)

// quotaCost is etcd's BackendQuota.Cost: what r adds to the database. r is
// a *pb.PutRequest, *pb.TxnRequest (the costlier branch) or
// *pb.LeaseGrantRequest; anything else costs nothing.
func quotaCost(r any) int {
	switch r := r.(type) {
	case *pb.PutRequest:
		return kvOverhead + len(r.Key) + len(r.Value)
	case *pb.TxnRequest:
		cost := func(ops []*pb.RequestOp) int {
			n := 0
			for _, u := range ops {
				if p := u.GetRequestPut(); p != nil {
					n += quotaCost(p)
				} else if t := u.GetRequestTxn(); t != nil {
					n += quotaCost(t)
				}
			}
			return n
		}
		return max(cost(r.Success), cost(r.Failure))
	case *pb.LeaseGrantRequest:
		return leaseOverhead
	}
	return 0
}

// dbSize is the applier's model of the database file (see above). The
// applier goroutine updates it (grow after each request, reset at
// Defragment); any goroutine reads it.
type dbSize struct {
	// quota is --quota-backend-bytes; 0 or negative: no quota.
	quota int64
	// high is the high-water mark of Store.Size.
	high atomic.Int64
}

// grow records the store's size after a write. Applier goroutine.
func (d *dbSize) grow(size int64) {
	if size > d.high.Load() {
		d.high.Store(size)
	}
}

// growDB records the store's size after the request being applied, unless
// the member is replaying at restart what it had applied before (see
// quota.go's model: a restarted member's database is as if freshly
// written). Applier goroutine.
func (a *applier) growDB() {
	if a.applying > a.replayedTo {
		a.db.grow(a.store.Size())
	}
}

// total is DbSize from the high-water mark alone: what a bolt file of this
// history would weigh, unless the store holds more now (a snapshot just
// restored, a restart's replay): readers take the larger of the two.
func (d *dbSize) total() int64 { return dbBaseBytes + d.high.Load() }

// available is etcd's BackendQuota.Available: a request that costs nothing
// always fits; otherwise DbSize (with the store's size now, cur, when that
// is larger: a snapshot just restored) plus its cost must stay below the
// quota.
func (d *dbSize) available(r any, cur int64) bool {
	if d.quota <= 0 {
		return true
	}
	cost := quotaCost(r)
	return cost == 0 || dbBaseBytes+max(d.high.Load(), cur)+int64(cost) < d.quota
}

// quotaRequest is the request of r that the quota charges, nil for a
// request it does not look at (etcd's quotaApplierV3 wraps Put, Txn and
// LeaseGrant only).
func quotaRequest(r *pb.InternalRaftRequest) any {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Txn != nil:
		return r.Txn
	case r.LeaseGrant != nil:
		return r.LeaseGrant
	}
	return nil
}

// dbSizes are Status's DbSize and DbSizeInUse for the published state.
// Any goroutine.
func (s *Server) dbSizes() (total, inUse int64) {
	inUse = dbBaseBytes + s.readView().view.Size()
	return max(s.app.db.total(), inUse), inUse
}

// checkQuota is etcd's quotaAlarmer.check, in front of Raft: a request
// that does not fit raises the NOSPACE alarm for this member through Raft
// (waiting for it, its outcome ignored, as etcd's) and fails with
// "etcdserver: mvcc: database space exceeded". r is the Put, Txn or
// LeaseGrant request.
func (s *Server) checkQuota(ctx context.Context, r any) error {
	if s.app.db.available(r, s.readView().view.Size()) {
		return nil
	}
	_ = s.raiseAlarm(ctx, s.id, pb.AlarmType_NOSPACE)
	return rpctypes.ErrGRPCNoSpace
}
