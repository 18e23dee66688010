package workloads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quorum-kv/quorum/history"
)

func TestClassifyRecordsAWriteAsFailOnlyWhenItDefinitelyHadNoEffect(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantWrite history.Type // mutating
		wantRead  history.Type
	}{
		{"success", nil, history.OK, history.OK},
		{"not sent", fmt.Errorf("member n1: %w", ErrNotSent), history.Fail, history.Fail},
		{"no leader (clientv3 EtcdError)", rpctypes.Error(rpctypes.ErrGRPCNoLeader), history.Fail, history.Fail},
		{"no leader (gRPC status)", rpctypes.ErrGRPCNoLeader, history.Fail, history.Fail},
		{"no leader wrapped", fmt.Errorf("put k on n1: %w", rpctypes.Error(rpctypes.ErrGRPCNoLeader)), history.Fail, history.Fail},
		{"no leader wrapped status", fmt.Errorf("put k on n1: %w", rpctypes.ErrGRPCNoLeader), history.Fail, history.Fail},
		{"not leader", rpctypes.Error(rpctypes.ErrGRPCNotLeader), history.Fail, history.Fail},
		{"request too large", rpctypes.Error(rpctypes.ErrGRPCRequestTooLarge), history.Fail, history.Fail},
		{"too many requests", rpctypes.Error(rpctypes.ErrGRPCRequestTooManyRequests), history.Fail, history.Fail},
		{"no space", rpctypes.Error(rpctypes.ErrGRPCNoSpace), history.Fail, history.Fail},
		{"permission denied", rpctypes.Error(rpctypes.ErrGRPCPermissionDenied), history.Fail, history.Fail},
		{"invalid auth token", rpctypes.Error(rpctypes.ErrGRPCInvalidAuthToken), history.Fail, history.Fail},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown method"), history.Fail, history.Fail},
		{"not found", status.Error(codes.NotFound, "x"), history.Fail, history.Fail},
		{"request timed out", rpctypes.Error(rpctypes.ErrGRPCTimeout), history.Info, history.Fail},
		{"timed out, leader fail", rpctypes.Error(rpctypes.ErrGRPCTimeoutDueToLeaderFail), history.Info, history.Fail},
		{"server stopped (may be after proposing)", rpctypes.Error(rpctypes.ErrGRPCStopped), history.Info, history.Fail},
		{"leader changed", rpctypes.Error(rpctypes.ErrGRPCLeaderChanged), history.Info, history.Fail},
		{"unavailable connection lost", status.Error(codes.Unavailable, "error reading from server: EOF"), history.Info, history.Fail},
		{"unavailable mentioning no leader elsewhere", status.Error(codes.Unavailable, "etcdserver: no leader yet, retrying"), history.Info, history.Fail},
		{"server deadline", rpctypes.Error(rpctypes.ErrGRPCDeadlineExceeded), history.Info, history.Fail},
		{"client deadline", context.DeadlineExceeded, history.Info, history.Fail},
		{"canceled", fmt.Errorf("put: %w", context.Canceled), history.Info, history.Fail},
		{"internal", status.Error(codes.Internal, "boom"), history.Info, history.Fail},
		{"data loss", rpctypes.Error(rpctypes.ErrGRPCCorrupt), history.Info, history.Fail},
		{"unknown status", status.Error(codes.Unknown, "etcdserver: no leader"), history.Info, history.Fail},
		{"plain error", io.ErrUnexpectedEOF, history.Info, history.Fail},
		{"opaque error", errors.New("InvalidArgument"), history.Info, history.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err, true); got != tt.wantWrite {
				t.Errorf("Classify(%v, mutating) = %s, want %s", tt.err, got, tt.wantWrite)
			}
			if got := Classify(tt.err, false); got != tt.wantRead {
				t.Errorf("Classify(%v, read) = %s, want %s", tt.err, got, tt.wantRead)
			}
		})
	}
}
