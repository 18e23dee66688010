package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// kvServer implements etcd's KV service. Validation happens here, before
// Raft, exactly as etcd's v3rpc layer does it, so a bad request is refused
// with etcd's error and nothing is written.
type kvServer struct {
	pb.UnimplementedKVServer
	s *Server
}

var _ pb.KVServer = (*kvServer)(nil)

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (resp *pb.RangeResponse, err error) {
	if err := checkRangeRequest(r); err != nil {
		return nil, err
	}
	defer func(start time.Time) { k.s.warnSlowRange(start, r, resp, err) }(time.Now())
	if !r.Serializable {
		if err := k.s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	var st *readState
	chk := func(ai *auth.AuthInfo) error { return k.s.auth.IsRangePermitted(ai, r.Key, r.RangeEnd) }
	get := func() {
		st = k.s.readView()
		k.s.metrics.rangeTotal.Inc()
		resp, err = st.view.Range(r)
	}
	if aerr := k.s.checkRead(ctx, chk, get); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	resp.Header = k.s.header(st.view.Rev())
	return resp, nil
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPutRequest(r); err != nil {
		return nil, err
	}
	if err := k.s.checkQuota(ctx, r); err != nil {
		return nil, err
	}
	res, err := k.s.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.PutResponse)
	resp.Header = k.s.header(res.rev)
	return resp, nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDeleteRequest(r); err != nil {
		return nil, err
	}
	res, err := k.s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.DeleteRangeResponse)
	resp.Header = k.s.header(res.rev)
	return resp, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxnRequest(r, int(k.s.cfg.MaxTxnOps)); err != nil {
		return nil, err
	}
	if err := mvcc.CheckTxnDuplicates(r); err != nil {
		return nil, togRPCError(err)
	}
	if mvcc.IsReadOnlyTxn(r) {
		return k.readOnlyTxn(ctx, r)
	}
	if err := k.s.checkQuota(ctx, r); err != nil {
		return nil, err
	}
	res, err := k.s.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.TxnResponse)
	resp.Header = k.s.header(res.rev)
	return resp, nil
}

// readOnlyTxn serves a txn without writes like a range: through ReadIndex
// unless every range in it is serializable.
func (k *kvServer) readOnlyTxn(ctx context.Context, r *pb.TxnRequest) (resp *pb.TxnResponse, err error) {
	defer func(start time.Time) { k.s.warnSlowReadOnlyTxn(start, r, resp, err) }(time.Now())
	if !txnSerializable(r) {
		if err := k.s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	var st *readState
	chk := func(ai *auth.AuthInfo) error { return checkTxnAuth(k.s.auth, ai, k.s.leaseKeys, r) }
	get := func() {
		st = k.s.readView()
		resp, err = st.view.Txn(r)
	}
	if aerr := k.s.checkRead(ctx, chk, get); aerr != nil {
		return nil, aerr
	}
	if err != nil {
		return nil, togRPCError(err)
	}
	k.s.metrics.countTxn(resp)
	resp.Header = k.s.header(st.view.Rev())
	return resp, nil
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	res, err := k.s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(*pb.CompactionResponse)
	resp.Header = k.s.header(res.rev)
	return resp, nil
}

// leaseKeys are the keys attached to lease id in the lessor (none if it
// does not exist).
func (s *Server) leaseKeys(id int64) []string {
	keys, _ := s.lessor.keys(id)
	return keys
}

// header fills etcd's response header.
func (s *Server) header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.cid, MemberId: s.id, Revision: rev, RaftTerm: s.status.term.Load()}
}

func txnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				if !v.RequestRange.Serializable {
					return false
				}
			case *pb.RequestOp_RequestTxn:
				if !txnSerializable(v.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// The checks below are etcd's (server/etcdserver/api/v3rpc/key.go).
func checkRangeRequest(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPutRequest(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	// Whether the lease exists is decided when the put is applied, as etcd.
	return nil
}

func checkDeleteRequest(r *pb.DeleteRangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

func checkTxnRequest(r *pb.TxnRequest, maxTxnOps int) error {
	opc := len(r.Compare)
	if opc < len(r.Success) {
		opc = len(r.Success)
	}
	if opc < len(r.Failure) {
		opc = len(r.Failure)
	}
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, u := range r.Success {
		if err := checkRequestOp(u, maxTxnOps); err != nil {
			return err
		}
	}
	for _, u := range r.Failure {
		if err := checkRequestOp(u, maxTxnOps); err != nil {
			return err
		}
	}
	return nil
}

func checkRequestOp(u *pb.RequestOp, maxTxnOps int) error {
	switch uv := u.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return checkRangeRequest(uv.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPutRequest(uv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDeleteRequest(uv.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnRequest(uv.RequestTxn, maxTxnOps)
	default:
		// An empty op: etcd answers "key not found" too.
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// togRPCError maps the store's errors onto etcd's wire errors.
func togRPCError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, mvcc.ErrKeyNotFound):
		return rpctypes.ErrGRPCKeyNotFound
	case errors.Is(err, mvcc.ErrDuplicateKey):
		return rpctypes.ErrGRPCDuplicateKey
	case errors.Is(err, mvcc.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	}
	if lerr := leaseError(err); lerr != nil {
		return lerr
	}
	if aerr, ok := authErrors[err]; ok {
		return aerr
	}
	return status.Error(codes.Internal, err.Error())
}
