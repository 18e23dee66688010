package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// echoServer stands in for a member's real peer listener: it echoes every
// byte back and counts connections and bytes received.
type echoServer struct {
	ln    net.Listener
	conns atomic.Int64
	bytes atomic.Int64
	wg    sync.WaitGroup
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

type testNet struct {
	*Network
	servers map[string]*echoServer
}

func newTestNet(t *testing.T, names ...string) *testNet {
	t.Helper()
	tn := &testNet{servers: map[string]*echoServer{}}
	var ms []Member
	for _, n := range names {
		s := newEchoServer(t)
		tn.servers[n] = s
		ms = append(ms, Member{Name: n, Listen: "127.0.0.1:0", Target: s.ln.Addr().String()})
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nw, err := New(Config{Members: ms, Seed: 1, Logger: logger})
	if err != nil {
		t.Fatalf("new network: %v", err)
	}
	tn.Network = nw
	// Close the proxies before the echo servers (cleanups run LIFO), so
	// relayed connections end and the servers' handlers return.
	t.Cleanup(func() { nw.Close() })
	return tn
}

// dialAs opens a connection from member `from` to member `to`'s proxy and
// sends one request whose headers are given ("" headers: unidentified).
func (tn *testNet) dialAs(t *testing.T, to string, headers string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(tn.URL(to), "http://"))
	if err != nil {
		t.Fatalf("dial proxy of %s: %v", to, err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET /raft/stream/message/1 HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	mustRead(t, c, len(req))
	return c
}

func peerHeaders(tn *testNet, from string, id uint64) string {
	h := ""
	if from != "" {
		h += "X-PeerURLs: " + tn.URL(from) + "\r\n"
	}
	if id != 0 {
		h += fmt.Sprintf("X-Server-From: %x\r\n", id)
	}
	return h
}

func mustRead(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes back: %v", n, err)
	}
	return buf
}

// roundTrip writes msg and checks it comes back (through the echo server).
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := string(mustRead(t, c, len(msg))); got != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// silent checks that nothing arrives on c within d and that c is not closed.
func silent(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("expected silence (read timeout), got n=%d err=%v", n, err)
	}
}

func closedSoon(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open 5s after heal")
		}
		return
	}
}

func TestIdentifiesSender(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(tn *testNet, t *testing.T)
		headers  func(tn *testNet) string
		wantFrom string
	}{
		{"by X-PeerURLs", nil, func(tn *testNet) string { return peerHeaders(tn, "n1", 0) }, "n1"},
		{"by X-Server-From learned from an earlier request", func(tn *testNet, t *testing.T) {
			tn.dialAs(t, "n3", peerHeaders(tn, "n1", 0xa1))
		}, func(tn *testNet) string { return peerHeaders(tn, "", 0xa1) }, "n1"},
		{"by X-Server-From set with SetMemberID", func(tn *testNet, t *testing.T) {
			if err := tn.SetMemberID("n3", 0xc3); err != nil {
				t.Fatal(err)
			}
		}, func(tn *testNet) string { return peerHeaders(tn, "", 0xc3) }, "n3"},
		{"unknown id stays unidentified", nil, func(tn *testNet) string { return peerHeaders(tn, "", 0xdead) }, Unknown},
		{"own URL is not a sender", nil, func(tn *testNet) string { return peerHeaders(tn, "n2", 0) }, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newTestNet(t, "n1", "n2", "n3")
			if tt.setup != nil {
				tt.setup(tn, t)
			}
			c := tn.dialAs(t, "n2", tt.headers(tn))
			// A whole request: an unidentified connection is parsed request
			// by request, an identified one is relayed raw.
			roundTrip(t, c, "POST /raft HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nraft")
			st := tn.Stats()
			if got := st[cluster.DirectedLink{From: tt.wantFrom, To: "n2"}]; got.Conns != 1 || got.Forwarded == 0 {
				t.Fatalf("stats %s->n2 = %+v, want 1 conn and forwarded bytes; all: %v", tt.wantFrom, got, st)
			}
			if got := st[cluster.DirectedLink{From: "n2", To: tt.wantFrom}]; got.Forwarded == 0 {
				t.Fatalf("stats n2->%s = %+v, want echoed bytes counted", tt.wantFrom, got)
			}
		})
	}
}

func TestUnidentifiedRequestThenPeerRequestOnSameConnection(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	c := tn.dialAs(t, "n2", "") // like GET /raft/probing on a pooled connection
	tn.Partition([]cluster.Link{{A: "n1", B: "n2"}})
	req := "POST /raft HTTP/1.1\r\nHost: x\r\n" + peerHeaders(tn, "n1", 0) + "Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	silent(t, c, 300*time.Millisecond)
	if got := tn.Stats()[cluster.DirectedLink{From: "n1", To: "n2"}]; got.Conns != 1 || got.Forwarded != 0 || got.Dropped != uint64(len(req)) {
		t.Fatalf("n1->n2 = %+v, want the peer request attributed and dropped", got)
	}
}

func TestPartitionBlackholesBothDirectionsOfExactlyTheCutLinks(t *testing.T) {
	tn := newTestNet(t, "n1", "n2", "n3")
	n1to2 := tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1)) // opened by n1
	n2to1 := tn.dialAs(t, "n1", peerHeaders(tn, "n2", 2)) // opened by n2
	n3to2 := tn.dialAs(t, "n2", peerHeaders(tn, "n3", 3))
	n1to3 := tn.dialAs(t, "n3", peerHeaders(tn, "n1", 1))

	if err := tn.Partition([]cluster.Link{{A: "n2", B: "n1"}}); err != nil {
		t.Fatal(err)
	}
	if got := tn.Cut(); len(got) != 1 || got[0] != (cluster.Link{A: "n1", B: "n2"}) {
		t.Fatalf("Cut() = %v", got)
	}
	before := tn.Stats()
	recv1, recv2 := tn.servers["n1"].bytes.Load(), tn.servers["n2"].bytes.Load()

	for _, c := range []net.Conn{n1to2, n2to1} {
		c.Write([]byte("lost"))
	}
	silent(t, n1to2, 300*time.Millisecond)
	silent(t, n2to1, 100*time.Millisecond)
	// New connections on the cut link, either way, are blackholed too.
	fresh, err := net.Dial("tcp", strings.TrimPrefix(tn.URL("n1"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	fresh.Write([]byte("GET /raft/stream/msgappv2/2 HTTP/1.1\r\nHost: x\r\n" + peerHeaders(tn, "n2", 2) + "\r\n"))
	silent(t, fresh, 300*time.Millisecond)
	if tn.servers["n1"].bytes.Load() != recv1 || tn.servers["n2"].bytes.Load() != recv2 {
		t.Errorf("a server received bytes over the cut link")
	}
	// The other links still flow.
	roundTrip(t, n3to2, "still up")
	roundTrip(t, n1to3, "still up")

	after := tn.Stats()
	for _, dl := range []cluster.DirectedLink{{From: "n1", To: "n2"}, {From: "n2", To: "n1"}} {
		if after[dl].Forwarded != before[dl].Forwarded {
			t.Errorf("%s forwarded %d bytes during the cut", dl, after[dl].Forwarded-before[dl].Forwarded)
		}
		if after[dl].Dropped == 0 {
			t.Errorf("%s dropped nothing", dl)
		}
	}
	for _, dl := range []cluster.DirectedLink{{From: "n3", To: "n2"}, {From: "n2", To: "n3"}, {From: "n1", To: "n3"}, {From: "n3", To: "n1"}} {
		if after[dl].Forwarded <= before[dl].Forwarded || after[dl].Dropped != 0 {
			t.Errorf("%s: before %+v after %+v, want more forwarded and nothing dropped", dl, before[dl], after[dl])
		}
	}
	if err := tn.Heal(); err != nil {
		t.Fatal(err)
	}
	// Blackholed connections are closed so the peers reconnect; new ones pass.
	closedSoon(t, n1to2)
	closedSoon(t, n2to1)
	closedSoon(t, fresh)
	roundTrip(t, tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1)), "healed")
	roundTrip(t, tn.dialAs(t, "n1", peerHeaders(tn, "n2", 2)), "healed")
	roundTrip(t, n3to2, "never cut")
}

func TestPartitionReplacesPreviousCutSet(t *testing.T) {
	tn := newTestNet(t, "n1", "n2", "n3")
	tn.Partition([]cluster.Link{{A: "n1", B: "n2"}})
	if err := tn.Partition([]cluster.Link{{A: "n1", B: "n3"}}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1)), "n1-n2 healed")
	c := tn.dialAs(t, "n3", "") // unidentified request passes
	c.Write([]byte("GET /x HTTP/1.1\r\nHost: x\r\n" + peerHeaders(tn, "n1", 1) + "\r\n"))
	silent(t, c, 300*time.Millisecond)
}

func TestRejectsUnknownOrSelfLinks(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	for _, l := range []cluster.Link{{A: "n1", B: "n9"}, {A: "n1", B: "n1"}} {
		if err := tn.Partition([]cluster.Link{l}); err == nil {
			t.Errorf("Partition(%v) succeeded", l)
		}
		if err := tn.SetLatency([]cluster.Link{l}, time.Millisecond, 0); err == nil {
			t.Errorf("SetLatency(%v) succeeded", l)
		}
	}
	if len(tn.Cut()) != 0 {
		t.Errorf("a failed Partition changed the cut set: %v", tn.Cut())
	}
}

func TestNonHTTPPassesThroughUnidentified(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	tn.Partition([]cluster.Link{{A: "n1", B: "n2"}})
	c, err := net.Dial("tcp", strings.TrimPrefix(tn.URL("n2"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "\x00\x01 not http at all\r\n\r\n")
	if got := tn.Stats()[cluster.DirectedLink{From: Unknown, To: "n2"}]; got.Conns != 1 || got.Forwarded == 0 {
		t.Fatalf("?->n2 = %+v", got)
	}
}

func TestLatencyDelaysWithoutReordering(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	c := tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1))
	const delay = 50 * time.Millisecond
	if err := tn.SetLatency([]cluster.Link{{A: "n1", B: "n2"}}, delay, 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	start := time.Now()
	for i := range 100 {
		msg := fmt.Sprintf("<%03d>", i)
		want.WriteString(msg)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond) // separate chunks so jitter varies
		}
	}
	got := mustRead(t, c, want.Len())
	if elapsed := time.Since(start); elapsed < 2*delay {
		t.Errorf("round trip took %v, want at least %v (delay both ways)", elapsed, 2*delay)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("bytes reordered or altered:\n got %q\nwant %q", got, want.Bytes())
	}
	// Removing latency restores direct relay (no lower bound to check; just
	// that it still flows in order).
	if err := tn.SetLatency([]cluster.Link{{A: "n1", B: "n2"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "undelayed")
}

func TestCloseEndsEveryConnection(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	a := tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1))
	tn.Partition([]cluster.Link{{A: "n1", B: "n2"}})
	b := tn.dialAs(t, "n1", "")
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	closedSoon(t, a)
	closedSoon(t, b)
	if _, err := net.Dial("tcp", strings.TrimPrefix(tn.URL("n1"), "http://")); err == nil {
		t.Fatal("proxy still accepting after Close")
	}
}

func TestConfigValidateNamesBadField(t *testing.T) {
	l := slog.New(slog.DiscardHandler)
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Logger: l}, "Members"},
		{Config{Logger: l, Members: []Member{{Name: "", Listen: "x", Target: "y"}}}, "Members[0].Name"},
		{Config{Logger: l, Members: []Member{{Name: "a", Listen: "x", Target: "y"}, {Name: "a", Listen: "x", Target: "y"}}}, "Members[1].Name"},
		{Config{Logger: l, Members: []Member{{Name: "a", Target: "y"}}}, "Members[0].Listen"},
		{Config{Logger: l, Members: []Member{{Name: "a", Listen: "x"}}}, "Members[0].Target"},
		{Config{Members: []Member{{Name: "a", Listen: "x", Target: "y"}}}, "Logger"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want mention of %s", err, tt.want)
		}
	}
}

// A lossy link stalls the stream by retransmission timeouts but delivers
// every byte in order; removing the loss removes the stalls, and latency
// set on the same link is kept and removed independently.
func TestLossStallsWithoutLosingBytes(t *testing.T) {
	tn := newTestNet(t, "n1", "n2")
	c := tn.dialAs(t, "n2", peerHeaders(tn, "n1", 1))
	link := []cluster.Link{{A: "n1", B: "n2"}}
	if err := tn.SetLoss(link, 1); err == nil {
		t.Fatal("SetLoss accepted p = 1")
	}
	if err := tn.SetLoss(link, 0.5); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	start := time.Now()
	for i := range 20 {
		msg := fmt.Sprintf("<%03d>", i)
		want.WriteString(msg)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // one chunk each
	}
	got := mustRead(t, c, want.Len())
	if elapsed := time.Since(start); elapsed < minRTO {
		t.Errorf("20 chunks each way at loss 0.5 took %v, want at least one retransmission timeout (%v)", elapsed, minRTO)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("bytes reordered or altered:\n got %q\nwant %q", got, want.Bytes())
	}
	if err := tn.SetLatency(link, time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	if err := tn.SetLoss(link, 0); err != nil {
		t.Fatal(err)
	}
	if sh := tn.pol.Load().shape[link[0].Key()]; sh.loss != 0 || sh.delay != time.Millisecond {
		t.Fatalf("after removing the loss the link is shaped %+v, want only its 1ms delay", sh)
	}
	tn.SetLatency(link, 0, 0)
	if _, ok := tn.pol.Load().shape[link[0].Key()]; ok {
		t.Fatal("shaping left after removing loss and latency")
	}
	roundTrip(t, c, "lossless")
}
