package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Peer wire protocol.
//
// Each member keeps one outbound stream per peer. A stream opens with an
// HTTP/1.1 request that upgrades the connection:
//
//	POST /raft/stream HTTP/1.1
//	Upgrade: quorum-raft/1
//	X-Server-From: <sender member id, hex>     (as etcd's rafthttp)
//	X-Raft-To: <receiver member id, hex>
//	X-Etcd-Cluster-ID: <cluster id, hex>
//	X-PeerURLs: <sender's advertised peer URLs>
//
// The receiver answers 101 Switching Protocols (or 4xx with a reason), after
// which the sender writes frames: a 4-byte big-endian length and a
// marshalled raftpb.Message; a zero-length frame is a keepalive. The
// receiver writes one keepalive byte back every heartbeat. Either side
// closes a stream that stays silent for longer than the idle timeout, so a
// connection black-holed by the network (or by a fault proxy) is replaced
// once the path is back. Snapshots (MsgSnap) go in a separate
// POST /raft/snapshot request whose body is one marshalled message.
const (
	streamPath     = "/raft/stream"
	snapshotPath   = "/raft/snapshot"
	upgradeProto   = "quorum-raft/1"
	maxFrameBytes  = 256 << 20
	streamQueueLen = 4096
)

// streamTransport is the Transport between quorumd processes: the peer
// wire protocol above, over the peer URLs. Its handler serves the peer
// listeners.
type streamTransport struct {
	lg         *slog.Logger
	localID    uint64
	clusterID  uint64
	localURLs  string
	node       Raft
	keepalive  time.Duration
	idle       time.Duration
	maxSnapRcv int64
	// tlsCfg dials https peer URLs; nil without peer TLS.
	tlsCfg *tls.Config

	// snapshotData returns the data of a snapshot whose MsgSnap came
	// without it (Raft's storage keeps only the metadata).
	snapshotData snapshotSource

	// peersMu guards peers and removed: the Raft loop sends, the applier
	// adds and removes, the peer handlers look senders up.
	peersMu sync.RWMutex
	peers   map[uint64]*peer
	removed map[uint64]bool
	started bool
	// removedc is closed (once, under peersMu) when a peer answers 410
	// Gone: this member was removed from the cluster.
	removedc  chan struct{}
	isRemoved bool
	// propc carries proposals forwarded by followers to proposalLoop.
	propc    chan raftpb.Message
	stopc    chan struct{}
	propDone chan struct{}

	mu      sync.Mutex
	inbound map[net.Conn]uint64 // the sender of each inbound stream
	closed  bool

	metrics *serverMetrics
}

var (
	_ Transport    = (*streamTransport)(nil)
	_ peerActivity = (*streamTransport)(nil)
)

// newStreamTransport is member localID's transport to the other members of
// membership (whose removed IDs it refuses), complete: it steps what peers
// send into node, and reads the data of snapshots sent without it from
// snapshots. keepalive is the heartbeat
// interval; a stream silent for idle (the election timeout) is replaced.
// tlsCfg (etcd's PeerTLSInfo.ClientConfig(); nil without peer TLS) is
// used for https peer URLs: streams, snapshots and probes.
func newStreamTransport(lg *slog.Logger, localID, clusterID uint64, localURLs []string, membership *Membership,
	node Raft, snapshots snapshotSource, keepalive, idle time.Duration, tlsCfg *tls.Config, m *serverMetrics) *streamTransport {
	t := &streamTransport{
		lg: lg, localID: localID, clusterID: clusterID, localURLs: strings.Join(localURLs, ","),
		node: node, snapshotData: snapshots, keepalive: keepalive, idle: idle, tlsCfg: tlsCfg,
		peers: map[uint64]*peer{}, removed: map[uint64]bool{}, removedc: make(chan struct{}),
		inbound: map[net.Conn]uint64{}, metrics: m, maxSnapRcv: 8 << 30,
		propc: make(chan raftpb.Message, streamQueueLen), stopc: make(chan struct{}), propDone: make(chan struct{}),
	}
	for _, id := range membership.Removed {
		t.removed[id] = true
	}
	for _, mem := range membership.Members {
		if mem.ID != localID && !t.removed[mem.ID] {
			t.peers[mem.ID] = t.newPeer(mem.ID, mem.PeerURLs)
		}
	}
	return t
}

func (t *streamTransport) newPeer(id uint64, urls []string) *peer {
	p := &peer{t: t, id: id, queue: make(chan raftpb.Message, streamQueueLen), redialc: make(chan struct{}, 1),
		snaps: make(chan raftpb.Message, 1), stop: make(chan struct{}), metrics: t.metrics.peer(id)}
	p.urls.Store(append([]string(nil), urls...))
	return p
}

func (p *peer) peerURLs() []string { return p.urls.Load().([]string) }

// redial makes the stream close and dial the peer's (new) URLs.
func (p *peer) redial() {
	select {
	case p.redialc <- struct{}{}:
	default:
	}
}

func (p *peer) start() {
	p.wg.Add(3)
	go p.streamLoop()
	go p.snapshotLoop()
	go p.probeLoop()
}

func (t *streamTransport) Start() {
	go t.proposalLoop()
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	t.started = true
	for _, p := range t.peers {
		p.start()
	}
}

// AddPeer starts streaming to a new peer; see Transport.
func (t *streamTransport) AddPeer(id uint64, urls []string) {
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	if id == t.localID || t.peers[id] != nil || t.removed[id] || t.isClosed() {
		return
	}
	p := t.newPeer(id, urls)
	t.peers[id] = p
	if t.started {
		p.start()
	}
	t.lg.Info("added remote peer", "local-member-id", idString(t.localID), "remote-peer-id", idString(id),
		"remote-peer-urls", urls)
}

// RemovePeer stops streaming to a peer and refuses its messages from now
// on; see Transport.
func (t *streamTransport) RemovePeer(id uint64) {
	t.peersMu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.removed[id] = true
	t.peersMu.Unlock()
	// Its inbound streams end: what it sends is refused from now on.
	t.mu.Lock()
	for c, from := range t.inbound {
		if from == id {
			c.Close()
		}
	}
	t.mu.Unlock()
	if p == nil {
		return
	}
	// Not waiting for the peer's goroutines: they may be reporting to
	// Raft, which may be waiting for the applier that called this.
	close(p.stop)
	t.lg.Info("removed remote peer", "local-member-id", idString(t.localID), "removed-remote-peer-id", idString(id))
}

// UpdatePeer makes the peer's URLs urls: the next dial uses them.
func (t *streamTransport) UpdatePeer(id uint64, urls []string) {
	t.peersMu.RLock()
	p := t.peers[id]
	t.peersMu.RUnlock()
	if p == nil || samePeerURLs(p.peerURLs(), urls) {
		return
	}
	p.urls.Store(append([]string(nil), urls...))
	p.redial()
	t.lg.Info("updated remote peer", "local-member-id", idString(t.localID), "updated-remote-peer-id", idString(id),
		"updated-remote-peer-urls", urls)
}

// Removed is closed once a peer refused this member as removed.
func (t *streamTransport) Removed() <-chan struct{} { return t.removedc }

func (t *streamTransport) markRemoved() {
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	if !t.isRemoved {
		t.isRemoved = true
		close(t.removedc)
	}
}

// ActiveSince is when the stream to peer id came up, zero while it is
// down (peerActivity).
func (t *streamTransport) ActiveSince(id uint64) time.Time {
	t.peersMu.RLock()
	p := t.peers[id]
	t.peersMu.RUnlock()
	if p == nil {
		return time.Time{}
	}
	if ns := p.activeSince.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (t *streamTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *streamTransport) peer(id uint64) *peer {
	t.peersMu.RLock()
	defer t.peersMu.RUnlock()
	return t.peers[id]
}

// Send queues messages for their peers without blocking; see Transport.
func (t *streamTransport) Send(msgs []raftpb.Message) {
	t.peersMu.RLock()
	defer t.peersMu.RUnlock()
	for i := range msgs {
		m := msgs[i]
		p, ok := t.peers[m.To]
		if !ok {
			continue
		}
		if m.Type == raftpb.MsgSnap {
			select {
			case p.snaps <- m:
			default:
				t.node.ReportSnapshot(m.To, raft.SnapshotFailure)
			}
			continue
		}
		select {
		case p.queue <- m:
		default:
			p.metrics.sendFailures.Inc()
			t.node.ReportUnreachable(m.To)
		}
	}
}

func (t *streamTransport) Stop() {
	t.mu.Lock()
	t.closed = true
	for c := range t.inbound {
		c.Close()
	}
	t.mu.Unlock()
	t.peersMu.Lock()
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.peers = map[uint64]*peer{}
	t.peersMu.Unlock()
	for _, p := range peers {
		close(p.stop)
	}
	for _, p := range peers {
		p.wg.Wait()
	}
	close(t.stopc)
	<-t.propDone
}

// proposalLoop steps proposals forwarded by followers, each waiting at most
// an election timeout for this member to know a leader; meanwhile the
// streams go on delivering everything else.
func (t *streamTransport) proposalLoop() {
	defer close(t.propDone)
	for {
		select {
		case m := <-t.propc:
			ctx, cancel := context.WithTimeout(context.Background(), t.idle)
			if err := t.node.Step(ctx, m); err != nil && !errors.Is(err, raft.ErrStopped) {
				t.lg.Debug("dropped a forwarded proposal", "from", idString(m.From), "error", err)
			}
			cancel()
		case <-t.stopc:
			return
		}
	}
}

type peer struct {
	t  *streamTransport
	id uint64
	// urls are the peer's URLs ([]string), replaced by UpdatePeer.
	urls atomic.Value
	// redialc asks the stream to close and dial again (the URLs changed).
	redialc chan struct{}
	// activeSince is when the stream came up (UnixNano), 0 while down.
	activeSince atomic.Int64
	queue       chan raftpb.Message
	snaps       chan raftpb.Message
	stop        chan struct{}
	wg          sync.WaitGroup

	metrics *peerMetrics
}

func (p *peer) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// streamLoop owns the outbound stream to one peer: it dials, writes queued
// messages, and redials after any failure. It logs etcd's "peer became
// active" at the first connection and after each outage, and "peer became
// inactive" when a dial fails after being active; a peer never reached yet
// is "cannot reach peer" (once per distinct error).
func (p *peer) streamLoop() {
	defer p.wg.Done()
	backoff := 50 * time.Millisecond
	var lastErr string
	active := false
	for !p.stopped() {
		conn, br, err := p.dial()
		if err != nil {
			if msg := err.Error(); active {
				p.t.lg.Warn("peer became inactive (message send to peer failed)", "peer-id", idString(p.id), "error", err)
				active, lastErr = false, msg
			} else if msg != lastErr {
				p.t.lg.Warn("cannot reach peer", "local-member-id", idString(p.t.localID), "remote-peer-id", idString(p.id), "error", err)
				lastErr = msg
			}
			p.t.node.ReportUnreachable(p.id)
			p.drainQueue()
			select {
			case <-time.After(backoff):
			case <-p.stop:
				return
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		if !active {
			p.t.lg.Info("peer became active", "peer-id", idString(p.id))
			active = true
		}
		lastErr = ""
		backoff = 50 * time.Millisecond
		p.activeSince.Store(time.Now().UnixNano())
		err = p.writeStream(conn, br)
		p.activeSince.Store(0)
		conn.Close()
		if err != nil && !p.stopped() {
			p.t.lg.Debug("lost TCP streaming connection with remote peer", "local-member-id", idString(p.t.localID),
				"remote-peer-id", idString(p.id), "error", err)
			p.t.node.ReportUnreachable(p.id)
		}
	}
}

// drainQueue drops messages queued while the peer cannot be reached, so that
// a stale backlog is not delivered after a long outage; each is a send
// failure, as in etcd.
func (p *peer) drainQueue() {
	for {
		select {
		case <-p.queue:
			p.metrics.sendFailures.Inc()
		default:
			return
		}
	}
}

func (p *peer) dial() (net.Conn, *bufio.Reader, error) {
	var lastErr error
	for _, raw := range p.peerURLs() {
		u, err := url.Parse(raw)
		if err != nil {
			lastErr = err
			continue
		}
		d := net.Dialer{Timeout: p.t.idle}
		conn, err := d.Dial("tcp", u.Host)
		if err != nil {
			lastErr = err
			continue
		}
		conn.SetDeadline(time.Now().Add(p.t.idle))
		if u.Scheme == "https" {
			tc := tls.Client(conn, p.t.clientTLS(u.Hostname()))
			if err := tc.Handshake(); err != nil {
				conn.Close()
				lastErr = fmt.Errorf("TLS handshake with %s: %w", raw, err)
				continue
			}
			conn = tc
		}
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n"+
			"X-Server-From: %s\r\nX-Raft-To: %s\r\nX-Etcd-Cluster-ID: %s\r\nX-PeerURLs: %s\r\nContent-Length: 0\r\n\r\n",
			streamPath, u.Host, upgradeProto, idString(p.t.localID), idString(p.id), idString(p.t.clusterID), p.t.localURLs)
		if _, err := io.WriteString(conn, req); err != nil {
			conn.Close()
			lastErr = err
			continue
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			conn.Close()
			lastErr = fmt.Errorf("handshake with %s: %w", raw, err)
			continue
		}
		if resp.StatusCode == http.StatusGone {
			conn.Close()
			p.t.lg.Warn("peer rejected this member as removed", "local-member-id", idString(p.t.localID),
				"remote-peer-id", idString(p.id))
			p.t.markRemoved()
			return nil, nil, ErrMemberRemoved
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			conn.Close()
			lastErr = fmt.Errorf("peer %s refused the stream: %s: %s", raw, resp.Status, strings.TrimSpace(string(body)))
			continue
		}
		conn.SetDeadline(time.Time{})
		return conn, br, nil
	}
	return nil, nil, lastErr
}

// writeStream writes frames until an error or stop. A reader goroutine
// watches the peer's keepalive bytes; silence longer than idle ends the
// stream.
func (p *peer) writeStream(conn net.Conn, br *bufio.Reader) error {
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			conn.SetReadDeadline(time.Now().Add(p.t.idle))
			if _, err := br.Read(buf); err != nil {
				readErr <- err
				return
			}
		}
	}()
	bw := bufio.NewWriterSize(conn, 64<<10)
	ticker := time.NewTicker(p.t.keepalive)
	defer ticker.Stop()
	var hdr [4]byte
	buf := make([]byte, 0, 4096)
	// unflushed counts message bytes (without framing, as etcd counts
	// them) for etcd_network_peer_sent_bytes_total, added at each flush.
	unflushed := 0
	write := func(m *raftpb.Message) error {
		n := m.Size()
		unflushed += n
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := m.MarshalTo(buf); err != nil {
			return err
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		_, err := bw.Write(buf)
		return err
	}
	for {
		select {
		case <-p.stop:
			return nil
		case <-p.redialc:
			return errors.New("peer URLs updated")
		case err := <-readErr:
			return fmt.Errorf("peer went silent or closed: %w", err)
		case <-ticker.C:
			binary.BigEndian.PutUint32(hdr[:], 0)
			conn.SetWriteDeadline(time.Now().Add(p.t.idle))
			if _, err := bw.Write(hdr[:]); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		case m := <-p.queue:
			conn.SetWriteDeadline(time.Now().Add(p.t.idle))
			if err := write(&m); err != nil {
				p.metrics.sendFailures.Inc()
				return err
			}
			// Batch whatever else is queued into the same flush.
		more:
			for i := 0; i < 256; i++ {
				select {
				case m := <-p.queue:
					if err := write(&m); err != nil {
						p.metrics.sendFailures.Inc()
						return err
					}
				default:
					break more
				}
			}
			if err := bw.Flush(); err != nil {
				p.metrics.sendFailures.Inc()
				return err
			}
			p.metrics.sent.Add(float64(unflushed))
			unflushed = 0
		}
	}
}

// snapshotLoop sends MsgSnap messages, one request each, and reports the
// outcome to Raft.
func (p *peer) snapshotLoop() {
	defer p.wg.Done()
	tr := peerHTTPClientTransport(p.t.tlsCfg)
	tr.DisableKeepAlives = true
	client := &http.Client{Transport: tr}
	for {
		select {
		case <-p.stop:
			return
		case m := <-p.snaps:
			start := time.Now()
			n, err := p.sendSnapshot(client, m)
			if err != nil {
				p.metrics.sendFailures.Inc()
				p.metrics.snapFailed.Inc()
				p.t.lg.Warn("failed to send database snapshot", "snapshot-index", m.Snapshot.Metadata.Index,
					"remote-peer-id", idString(p.id), "error", err)
				p.t.node.ReportUnreachable(p.id)
				p.t.node.ReportSnapshot(p.id, raft.SnapshotFailure)
				continue
			}
			p.t.lg.Info("sent database snapshot", "snapshot-index", m.Snapshot.Metadata.Index,
				"remote-peer-id", idString(p.id), "bytes", len(m.Snapshot.Data), "took", time.Since(start))
			p.metrics.sent.Add(float64(n))
			p.metrics.snapSent.Inc()
			p.metrics.snapSeconds.Observe(time.Since(start).Seconds())
			p.t.node.ReportSnapshot(p.id, raft.SnapshotFinish)
		}
	}
}

// sendSnapshot posts m with its data and returns the bytes sent.
func (p *peer) sendSnapshot(client *http.Client, m raftpb.Message) (int, error) {
	if len(m.Snapshot.Data) == 0 {
		d, err := p.t.snapshotData(m.Snapshot.Metadata)
		if err != nil {
			return 0, fmt.Errorf("read snapshot %d: %w", m.Snapshot.Metadata.Index, err)
		}
		m.Snapshot.Data = d
	}
	data, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	var lastErr error
	for _, raw := range p.peerURLs() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(len(data)/(1<<20))*time.Second)
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, raw+snapshotPath, bytes.NewReader(data))
		if err != nil {
			cancel()
			return 0, err
		}
		req.Header.Set("X-Server-From", idString(p.t.localID))
		req.Header.Set("X-Raft-To", idString(p.id))
		req.Header.Set("X-Etcd-Cluster-ID", idString(p.t.clusterID))
		req.Header.Set("X-PeerURLs", p.t.localURLs)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusNoContent {
			lastErr = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			continue
		}
		return len(data), nil
	}
	return 0, lastErr
}

// clientTLS is the TLS configuration for dialing host's https URL: etcd's
// peer client configuration with the server name set, as net/http sets it.
func (t *streamTransport) clientTLS(host string) *tls.Config {
	var cfg *tls.Config
	if t.tlsCfg != nil {
		cfg = t.tlsCfg.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// handler serves the peer port.
func (t *streamTransport) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(streamPath, t.serveStream)
	mux.HandleFunc(snapshotPath, t.serveSnapshot)
	mux.HandleFunc(probingPath, serveProbing)
	mux.HandleFunc("/version", serveVersion)
	return mux
}

// checkPeerRequest verifies that a request comes from a member of this
// cluster and is meant for this member.
func (t *streamTransport) checkPeerRequest(r *http.Request) (uint64, int, error) {
	if cid := r.Header.Get("X-Etcd-Cluster-ID"); cid != idString(t.clusterID) {
		return 0, http.StatusPreconditionFailed, fmt.Errorf("cluster ID mismatch: got %q, this member belongs to %s", cid, idString(t.clusterID))
	}
	if to := r.Header.Get("X-Raft-To"); to != idString(t.localID) {
		return 0, http.StatusPreconditionFailed, fmt.Errorf("request for member %q reached member %s", to, idString(t.localID))
	}
	from, err := strconv.ParseUint(r.Header.Get("X-Server-From"), 16, 64)
	if err != nil {
		return 0, http.StatusBadRequest, errors.New("missing or bad X-Server-From")
	}
	t.peersMu.RLock()
	p, removed := t.peers[from], t.removed[from]
	t.peersMu.RUnlock()
	if removed {
		// etcd's rafthttp: the removed member stops when it reads this.
		return 0, http.StatusGone, errRemovedMember
	}
	if p == nil {
		return 0, http.StatusForbidden, fmt.Errorf("member %s is not in this cluster", idString(from))
	}
	return from, 0, nil
}

func (t *streamTransport) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.EqualFold(r.Header.Get("Upgrade"), upgradeProto) {
		http.Error(w, "expected an "+upgradeProto+" upgrade", http.StatusBadRequest)
		return
	}
	from, code, err := t.checkPeerRequest(r)
	if err != nil {
		t.lg.Warn("rejected peer stream", "remote-addr", r.RemoteAddr, "error", err)
		http.Error(w, err.Error(), code)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot upgrade", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		conn.Close()
		return
	}
	t.inbound[conn] = from
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
		conn.Close()
	}()
	conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+upgradeProto+"\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() { // keepalives back to the sender
		tk := time.NewTicker(t.keepalive)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				conn.SetWriteDeadline(time.Now().Add(t.idle))
				if _, err := conn.Write([]byte{0}); err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	if err := t.readFrames(conn, brw.Reader, from); err != nil && !errors.Is(err, net.ErrClosed) {
		t.lg.Debug("inbound peer stream ended", "remote-peer-id", idString(from), "error", err)
	}
}

func (t *streamTransport) readFrames(conn net.Conn, br *bufio.Reader, from uint64) error {
	p := t.peer(from)
	if p == nil {
		return fmt.Errorf("peer %s was removed", idString(from))
	}
	received := p.metrics.received
	var hdr [4]byte
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(t.idle))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			continue
		}
		if n > maxFrameBytes {
			return fmt.Errorf("frame of %d bytes from %s exceeds %d", n, idString(from), maxFrameBytes)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		received.Add(float64(n))
		var m raftpb.Message
		if err := m.Unmarshal(b); err != nil {
			return fmt.Errorf("bad message from %s: %w", idString(from), err)
		}
		if m.From != from || m.To != t.localID {
			return fmt.Errorf("message %v from %s to %s on the stream from %s", m.Type, idString(m.From), idString(m.To), idString(from))
		}
		// gogo's Unmarshal copies bytes fields, so buf can be reused.
		if m.Type == raftpb.MsgProp {
			// Never step a forwarded proposal on the stream: raft.Node.Step
			// blocks a proposal until this member knows a leader, and the
			// messages that would tell it (heartbeats) queue behind it on
			// this very stream. A proposal that cannot be queued is
			// dropped; its proposer times out, as if it were lost.
			select {
			case t.propc <- m:
			default:
			}
			continue
		}
		if err := t.node.Step(context.Background(), m); err != nil && !errors.Is(err, raft.ErrStopped) {
			t.lg.Debug("step failed", "error", err)
		}
	}
}

func (t *streamTransport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	from, code, err := t.checkPeerRequest(r)
	if err != nil {
		t.lg.Warn("rejected snapshot", "remote-addr", r.RemoteAddr, "error", err)
		http.Error(w, err.Error(), code)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, t.maxSnapRcv))
	if err != nil {
		http.Error(w, "read snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(data); err != nil || m.Type != raftpb.MsgSnap || m.From != from {
		http.Error(w, "body is not a snapshot message from "+idString(from), http.StatusBadRequest)
		return
	}
	sp := t.peer(from)
	if sp == nil {
		http.Error(w, errRemovedMember.Error(), http.StatusGone)
		return
	}
	pm := sp.metrics
	pm.received.Add(float64(len(data)))
	t.lg.Info("received database snapshot", "local-member-id", idString(t.localID), "remote-snapshot-sender-id", idString(from),
		"incoming-snapshot-index", m.Snapshot.Metadata.Index, "incoming-snapshot-size-bytes", len(m.Snapshot.Data))
	if err := t.node.Step(r.Context(), m); err != nil {
		http.Error(w, "step snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pm.snapReceived.Inc()
	w.WriteHeader(http.StatusNoContent)
}

// errRemovedMember is a peer's answer (410 Gone) to a member removed from
// the cluster, as etcd's rafthttp; ErrMemberRemoved what the removed member
// stops with.
var (
	errRemovedMember = errors.New("removed member")
	ErrMemberRemoved = errors.New("the member has been permanently removed from the cluster")
)

func idString(id uint64) string { return strconv.FormatUint(id, 16) }
