package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// stepRecorder is a Raft that records what is stepped into it.
type stepRecorder struct{ msgs chan raftpb.Message }

func (r *stepRecorder) Step(_ context.Context, m raftpb.Message) error {
	select {
	case r.msgs <- m:
	default:
	}
	return nil
}
func (r *stepRecorder) ReportUnreachable(uint64)                   {}
func (r *stepRecorder) ReportSnapshot(uint64, raft.SnapshotStatus) {}

func servePeer(t *testing.T, h http.Handler) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &hits
}

// deliver sends heartbeats from a to b until rb receives one.
func deliver(t *testing.T, a *streamTransport, rb *stepRecorder, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
		select {
		case <-rb.msgs:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s: nothing delivered in 10s", what)
}

// The stream transport's peers change with conf changes: an added peer is
// streamed to, an updated one redialled at its new URL, and a removed one
// refused with 410 Gone, after which it knows it was removed.
func TestStreamTransportAddsUpdatesAndRemovesPeers(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := newServerMetrics()
	ra, rb := &stepRecorder{msgs: make(chan raftpb.Message, 64)}, &stepRecorder{msgs: make(chan raftpb.Message, 64)}
	const cid = 7
	// b's handler answers on two URLs: the one a starts with, and the one
	// an update moves b to.
	tbHandler := http.NewServeMux()
	urlB, _ := servePeer(t, tbHandler)
	urlB2, hitsB2 := servePeer(t, tbHandler)
	taHandler := http.NewServeMux()
	urlA, _ := servePeer(t, taHandler)

	ta := newStreamTransport(lg, 1, cid, []string{urlA}, &Membership{ClusterID: cid, Members: []*Member{{ID: 1, PeerURLs: []string{urlA}}}},
		ra, nil, 50*time.Millisecond, time.Second, nil, m)
	tb := newStreamTransport(lg, 2, cid, []string{urlB}, &Membership{ClusterID: cid, Members: []*Member{
		{ID: 1, PeerURLs: []string{urlA}}, {ID: 2, PeerURLs: []string{urlB}}}},
		rb, nil, 50*time.Millisecond, time.Second, nil, m)
	taHandler.Handle("/", ta.handler())
	tbHandler.Handle("/", tb.handler())
	ta.Start()
	tb.Start()
	defer ta.Stop()
	defer tb.Stop()

	// a does not know b yet: nothing goes.
	ta.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	select {
	case <-rb.msgs:
		t.Fatal("a message to an unknown peer was delivered")
	case <-time.After(200 * time.Millisecond):
	}
	ta.AddPeer(2, []string{urlB})
	deliver(t, ta, rb, "after AddPeer")
	if ta.ActiveSince(2).IsZero() {
		t.Error("an up stream reports no activity")
	}

	ta.UpdatePeer(2, []string{urlB2})
	before := hitsB2.Load()
	deadline := time.Now().Add(10 * time.Second)
	for hitsB2.Load() == before && time.Now().Before(deadline) {
		ta.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
		time.Sleep(20 * time.Millisecond)
	}
	if hitsB2.Load() == before {
		t.Fatal("after UpdatePeer the transport did not dial the new URL")
	}
	deliver(t, ta, rb, "after UpdatePeer")

	// b removes a: a's stream ends, its redial is refused with 410 Gone,
	// and a learns it was removed.
	tb.RemovePeer(1)
	select {
	case <-ta.Removed():
	case <-time.After(10 * time.Second):
		t.Fatal("a was not told it was removed")
	}
	for len(rb.msgs) > 0 {
		<-rb.msgs
	}
	ta.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	select {
	case <-rb.msgs:
		t.Fatal("a removed member's message was stepped")
	case <-time.After(300 * time.Millisecond):
	}
}
