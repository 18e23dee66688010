package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	grpcpeer "google.golang.org/grpc/peer"
)

// The warnings etcd logs about slow and failed requests, with its messages
// and fields: "apply request took too long" for an applied request, a
// read-only range or a read-only txn slower than --warning-apply-duration
// (etcdserver/txn/util.go; counted in etcd_server_slow_apply_total),
// "failed to apply request" for an applied request that failed, and
// "request stats" for a unary RPC slower than
// --warning-unary-request-duration (at debug level, for every RPC;
// etcdserver/api/v3rpc/interceptor.go). Request contents are logged as
// etcd logs them, put values replaced by their size.

// sized is a response whose encoded size is known (every etcdserverpb one).
type sized interface{ Size() int }

// appliedSize is etcd's "size:N" of an applied request's response as its
// applier has it: a failed request has none; a KV response carries a
// header holding only the revision (the rest is filled in later, by the
// gRPC layer, in etcd as in quorumd).
func appliedSize(resp any, rev int64, err error) string {
	s, ok := resp.(sized)
	if !ok || err != nil {
		return ""
	}
	n := s.Size()
	switch resp.(type) {
	case *pb.PutResponse, *pb.DeleteRangeResponse, *pb.TxnResponse:
		n += revisionHeaderSize(rev)
	}
	return fmt.Sprintf("size:%d", n)
}

// revisionHeaderSize is the encoded size of a response's header field
// holding only revision rev: the field's tag and length, and the header.
func revisionHeaderSize(rev int64) int {
	h := (&pb.ResponseHeader{Revision: rev}).Size()
	return 1 + varintSize(uint64(h)) + h
}

func varintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// withRevisionHeader is the encoded size of a served read's response s,
// whose header is h, as etcd's EtcdServer returns it before its gRPC layer
// fills in the rest of the header: with only the revision in it.
func withRevisionHeader(s sized, h *pb.ResponseHeader) int {
	if h == nil {
		return s.Size()
	}
	full := h.Size()
	return s.Size() - (1 + varintSize(uint64(full)) + full) + revisionHeaderSize(h.Revision)
}

// warnApplied is etcd's WarnOfExpensiveRequest and WarnOfFailedRequest for
// request r, applied from start with resp and err, leaving the store at
// revision rev.
func (a *applier) warnApplied(r *pb.InternalRaftRequest, start time.Time, resp any, rev int64, err error, failed bool) {
	took := time.Since(start)
	if took > a.warningApplyDuration {
		warnExpensive(a.lg, took, a.warningApplyDuration, "", (&pb.InternalRaftStringer{Request: r}).String(), appliedSize(resp, rev, err), err)
		a.metrics.slowApply.Inc()
	}
	if failed {
		attrs := []any{"took", took, "request", (&pb.InternalRaftStringer{Request: r}).String(), "response", appliedSize(resp, rev, err)}
		if err != nil {
			attrs = append(attrs, "error", err)
		}
		a.lg.Warn("failed to apply request", attrs...)
	}
}

// warnSlowRange is etcd's WarnOfExpensiveReadOnlyRangeRequest.
func (s *Server) warnSlowRange(start time.Time, r *pb.RangeRequest, resp *pb.RangeResponse, err error) {
	took, limit := time.Since(start), s.cfg.warningApplyDuration()
	if took <= limit {
		return
	}
	var out string
	if resp != nil {
		out = fmt.Sprintf("range_response_count:%d size:%d", len(resp.Kvs), withRevisionHeader(resp, resp.Header))
	}
	warnExpensive(s.lg, took, limit, "read-only range ", r.String(), out, err)
	s.metrics.slowApply.Inc()
}

// warnSlowReadOnlyTxn is etcd's WarnOfExpensiveReadOnlyTxnRequest.
func (s *Server) warnSlowReadOnlyTxn(start time.Time, r *pb.TxnRequest, resp *pb.TxnResponse, err error) {
	took, limit := time.Since(start), s.cfg.warningApplyDuration()
	if took <= limit {
		return
	}
	var out string
	if resp != nil {
		var rs []string
		for _, op := range resp.Responses {
			if rr := op.GetResponseRange(); rr != nil {
				rs = append(rs, fmt.Sprintf("range_response_count:%d", len(rr.GetKvs())))
			} else {
				rs = append(rs, "range_response:nil")
			}
		}
		out = fmt.Sprintf("responses:<%s> size:%d", strings.Join(rs, " "), withRevisionHeader(resp, resp.Header))
	}
	warnExpensive(s.lg, took, limit, "read-only txn ", pb.NewLoggableTxnRequest(r).String(), out, err)
	s.metrics.slowApply.Inc()
}

func warnExpensive(lg *slog.Logger, took, limit time.Duration, prefix, req, resp string, err error) {
	attrs := []any{"took", took, "expected-duration", limit, "prefix", prefix, "request", req, "response", resp}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	lg.Warn("apply request took too long", attrs...)
}

// logRequestStats is etcd's newLogUnaryInterceptor.
func (s *Server) logRequestStats(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	took := time.Since(start)
	debug := s.lg.Enabled(ctx, slog.LevelDebug)
	if !debug && took <= s.cfg.warningUnaryRequestDuration() {
		return resp, err
	}
	remote := "No remote client info."
	if p, ok := grpcpeer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
	}
	reqCount, respCount := int64(-1), int64(-1)
	reqSize, respSz := -1, -1
	var content string
	switch r := resp.(type) {
	case *pb.RangeResponse:
		if q, ok := req.(*pb.RangeRequest); ok {
			reqCount, reqSize, content = 0, q.Size(), q.String()
		}
		respCount, respSz = 0, 0
		if r != nil {
			respCount, respSz = r.GetCount(), r.Size()
		}
	case *pb.PutResponse:
		if q, ok := req.(*pb.PutRequest); ok {
			reqCount, reqSize, content = 1, q.Size(), pb.NewLoggablePutRequest(q).String()
		}
		respCount, respSz = 0, 0
		if r != nil {
			respSz = r.Size()
		}
	case *pb.DeleteRangeResponse:
		if q, ok := req.(*pb.DeleteRangeRequest); ok {
			reqCount, reqSize, content = 0, q.Size(), q.String()
		}
		respCount, respSz = 0, 0
		if r != nil {
			respCount, respSz = r.GetDeleted(), r.Size()
		}
	case *pb.TxnResponse:
		if q, ok := req.(*pb.TxnRequest); ok && r != nil {
			ops := q.GetFailure()
			if r.GetSucceeded() {
				ops = q.GetSuccess()
			}
			reqCount, reqSize = int64(len(ops)), 0
			for _, op := range ops {
				reqSize += op.Size()
			}
			content = pb.NewLoggableTxnRequest(q).String()
		}
		respCount, respSz = 0, 0
		if r != nil {
			respSz = r.Size()
		}
	}
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	s.lg.Log(ctx, level, "request stats",
		"start time", start, "time spent", took, "remote", remote, "response type", info.FullMethod,
		"request count", reqCount, "request size", reqSize, "response count", respCount,
		"response size", respSz, "request content", content)
	return resp, err
}
