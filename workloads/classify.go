package workloads

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quorum-kv/quorum/history"
)

// Classify returns the completion type of an operation that returned err:
// history.OK when err is nil; for a read (mutating false) history.Fail,
// since a read has no effect whatever happened; for a write, cas or add
// history.Fail only when err shows the request definitely did not take
// effect (see Definite), history.Info otherwise (timeouts, lost
// connections, unknown errors: the write may have been applied).
func Classify(err error, mutating bool) history.Type {
	switch {
	case err == nil:
		return history.OK
	case !mutating || Definite(err):
		return history.Fail
	}
	return history.Info
}

// Definite reports whether err shows that a mutating request (Put, Txn)
// definitely did not take effect. It is conservative: anything it does not
// recognise is indefinite.
//
// Definite are:
//   - ErrNotSent: the client did not send the request.
//   - gRPC codes InvalidArgument, FailedPrecondition, OutOfRange,
//     NotFound, AlreadyExists, PermissionDenied, Unauthenticated,
//     Unimplemented and ResourceExhausted: etcd (and quorumd) return them
//     while validating or admitting a request, before proposing it to
//     Raft (bad request, "not leader", auth, "too many requests", "no
//     space"); grpc-go returns them client-side before sending (message
//     too large). ResourceExhausted could also mean a response too large
//     to receive, which cannot happen for the tiny Put and Txn responses
//     used here.
//   - Unavailable "etcdserver: no leader": quorumd returns it before
//     proposing, or when Raft dropped the proposal without forwarding it
//     (server/propose.go); etcd returns it from its request admission.
//
// Indefinite are, notably: DeadlineExceeded and Canceled (context
// errors, "request timed out"), every other Unavailable ("server stopped",
// which quorumd also returns for a proposal already made; "leader
// changed"; a connection lost after sending), Unknown, Internal, Aborted
// and DataLoss.
func Definite(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotSent) {
		return true
	}
	code, desc, ok := grpcCode(err)
	if !ok {
		return false
	}
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange,
		codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.Unimplemented, codes.ResourceExhausted:
		return true
	case codes.Unavailable:
		return desc == rpctypes.ErrorDesc(rpctypes.ErrGRPCNoLeader)
	}
	return false
}

// grpcCode extracts the gRPC code and description from err, whether it is
// clientv3's rpctypes.EtcdError or a gRPC status (possibly wrapped).
func grpcCode(err error) (codes.Code, string, bool) {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code(), ee.Error(), true
	}
	// Not status.FromError: for a wrapped status its message is the
	// whole wrapped text.
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if s := se.GRPCStatus(); s.Code() != codes.Unknown {
			return s.Code(), s.Message(), true
		}
	}
	return codes.Unknown, "", false
}
