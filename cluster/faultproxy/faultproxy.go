// Package faultproxy is a fault-injecting TCP relay for the peer links of a
// cluster on loopback, needing neither root nor Docker.
//
// Each member's advertised peer URL is a proxy listener owned by a Network;
// the proxy relays to the member's real peer listener. Because every
// connection on loopback comes from 127.0.0.1, a proxy cannot tell the
// sending member by address. Instead it reads the first HTTP request on each
// new connection: etcd's peer transport (rafthttp), and quorumd's, put the
// sender's advertised peer URLs in X-PeerURLs and its member id (hex) in
// X-Server-From on every raft request. X-PeerURLs is matched against the
// advertised URLs; X-Server-From is matched through an id→name map learned
// from requests carrying both headers or set with SetMemberID. Once the
// sender is known, the connection belongs to the directed link
// sender→member, and bytes are relayed raw in both directions. On TLS
// peer links (Config.TLS) the headers are encrypted: the proxy terminates
// TLS and takes the sender from its client certificate instead (see TLS).
//
// A request that identifies no member (etcd's GET /version, /members,
// /raft/probing with no sender headers) is relayed as is, and the next
// request on the same keep-alive connection is inspected again, so a pooled
// connection that first carried a probe and later carries raft messages is
// still attributed. If an unidentified request has a body, or the stream is
// not HTTP, the rest of the connection passes through unidentified: such
// traffic is never cut nor delayed, and is counted under the Unknown name.
// (While a connection is unidentified the proxy forwards whole request
// headers only, so a client that sent half a request line and waited for an
// answer would stall; HTTP clients never do.)
//
// Faults apply per undirected link between two members. A cut link
// blackholes every connection between the pair, whichever side opened it and
// whether it existed before the cut or not: bytes in both directions are read
// and discarded, nothing is forwarded and nothing is refused, as with packet
// loss. A blackholed connection never carries traffic again (its byte stream
// has lost data); when its link heals the proxy closes it, so the peers
// reconnect. Latency delays each chunk of bytes per direction by a fixed
// delay plus a seeded random jitter, never reordering bytes.
package faultproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Unknown names the unidentified end of a connection in Stats.
const Unknown = "?"

// Member is one server behind a proxy.
type Member struct {
	// Name is the member's name (cluster node name).
	Name string
	// Listen is the proxy's listen address; "127.0.0.1:0" picks a free port.
	// The proxy's address becomes the member's advertised peer URL.
	Listen string
	// Target is host:port of the member's real peer listener.
	Target string
}

// Config configures a Network.
type Config struct {
	Members []Member
	// Seed seeds latency jitter. Each connection direction draws from its own
	// generator derived from Seed and the connection's sequence number.
	Seed uint64
	// DialTimeout bounds the dial to a member's real listener (default 3s).
	DialTimeout time.Duration
	// Logger receives fault changes (Info) and per-connection events (Debug).
	Logger *slog.Logger
	// TLS, when set, makes the peer links TLS (see TLS); nil relays
	// plaintext HTTP.
	TLS *TLS
}

// TLS is what the proxies need on TLS peer links. Under TLS a proxy cannot
// read the senders' HTTP headers, so it terminates TLS: it presents the
// receiving member's certificate, requires a client certificate signed by
// Roots and takes the sender's name from that certificate's CommonName
// (a member's certificate is named after the member); it then relays the
// plaintext to the member over a TLS connection of its own that presents
// the sender's certificate, so the member sees the same peer it would
// without the proxy. Faults apply to the plaintext as without TLS.
//
// A connection opened across a cut link stalls in its handshake (after
// the proxy's first flight, which the sender receives: the sender is known
// only from its certificate, late in the handshake) and is closed when the
// link heals, so the sender redials. Stats count plaintext bytes, not the
// handshakes.
type TLS struct {
	// Roots verifies the members' certificates, on both sides.
	Roots *x509.CertPool
	// Certs are the members' certificates by member name; each one's
	// CommonName must be that name.
	Certs map[string]tls.Certificate
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	if len(c.Members) == 0 {
		return errors.New("faultproxy config: Members is empty")
	}
	seen := make(map[string]bool)
	for i, m := range c.Members {
		switch {
		case m.Name == "" || m.Name == Unknown:
			return fmt.Errorf("faultproxy config: Members[%d].Name %q is not a usable name", i, m.Name)
		case seen[m.Name]:
			return fmt.Errorf("faultproxy config: Members[%d].Name %q is duplicated", i, m.Name)
		case m.Listen == "":
			return fmt.Errorf("faultproxy config: Members[%d].Listen is empty", i)
		case m.Target == "":
			return fmt.Errorf("faultproxy config: Members[%d].Target is empty", i)
		}
		seen[m.Name] = true
	}
	if c.Logger == nil {
		return errors.New("faultproxy config: Logger is nil")
	}
	if c.TLS != nil {
		if c.TLS.Roots == nil {
			return errors.New("faultproxy config: TLS.Roots is nil")
		}
		for _, m := range c.Members {
			if _, ok := c.TLS.Certs[m.Name]; !ok {
				return fmt.Errorf("faultproxy config: TLS.Certs has no certificate for %s", m.Name)
			}
		}
	}
	return nil
}

// LinkStats are the byte counters of one directed link.
type LinkStats struct {
	// Forwarded counts bytes relayed from From's process to To's.
	Forwarded uint64
	// Dropped counts bytes read from From and discarded because the link was
	// cut (or the connection had been blackholed).
	Dropped uint64
	// Conns counts connections opened by From to To's proxy and attributed
	// to From (for From == Unknown: never attributed).
	Conns uint64
}

type counters struct{ fwd, drop, conns atomic.Uint64 }

// shaping is a link's delay, jitter and loss: each chunk is lost with
// probability loss and then delivered only after a retransmission
// timeout, as TCP delivers a dropped segment.
type shaping struct {
	delay, jitter time.Duration
	loss          float64
}

func (s shaping) zero() bool { return s.delay == 0 && s.jitter == 0 && s.loss == 0 }

// policy is an immutable snapshot of the faults in force. Writers (under
// Network.mu) install a new snapshot and close the old one's changed channel.
type policy struct {
	cut     map[cluster.Link]bool
	shape   map[cluster.Link]shaping
	ids     map[uint64]string
	changed chan struct{}
}

func (p *policy) clone() *policy {
	return &policy{
		cut:     maps.Clone(p.cut),
		shape:   maps.Clone(p.shape),
		ids:     maps.Clone(p.ids),
		changed: make(chan struct{}),
	}
}

// Network is the set of proxies in front of a cluster's peer listeners and
// the faults applied between them. Its methods are safe for concurrent use.
type Network struct {
	cfg       Config
	log       *slog.Logger
	names     []string                           // member names in config order
	listeners map[string]net.Listener            // by member name; immutable after New
	targets   map[string]string                  // by member name
	urls      map[string]string                  // advertised peer URL by name
	byHost    map[string]string                  // proxy host:port → member name
	stats     map[cluster.DirectedLink]*counters // immutable map, atomic values

	mu  sync.Mutex // serializes policy writers
	pol atomic.Pointer[policy]

	connSeq atomic.Uint64
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  sync.Once
}

// New binds one proxy listener per member and starts serving. The caller
// must Close the Network.
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{
		cfg:       cfg,
		log:       cfg.Logger,
		listeners: make(map[string]net.Listener),
		targets:   make(map[string]string),
		urls:      make(map[string]string),
		byHost:    make(map[string]string),
		stats:     make(map[cluster.DirectedLink]*counters),
		ctx:       ctx,
		cancel:    cancel,
	}
	n.pol.Store(&policy{
		cut: map[cluster.Link]bool{}, shape: map[cluster.Link]shaping{},
		ids: map[uint64]string{}, changed: make(chan struct{}),
	})
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	for _, m := range cfg.Members {
		ln, err := net.Listen("tcp", m.Listen)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("faultproxy: listen for %s on %s: %w", m.Name, m.Listen, err)
		}
		n.names = append(n.names, m.Name)
		n.listeners[m.Name] = ln
		n.targets[m.Name] = m.Target
		host := ln.Addr().String()
		n.urls[m.Name] = scheme + "://" + host
		n.byHost[host] = m.Name
	}
	for _, a := range n.names {
		n.stats[cluster.DirectedLink{From: Unknown, To: a}] = &counters{}
		n.stats[cluster.DirectedLink{From: a, To: Unknown}] = &counters{}
		for _, b := range n.names {
			if a != b {
				n.stats[cluster.DirectedLink{From: a, To: b}] = &counters{}
			}
		}
	}
	for _, name := range n.names {
		n.wg.Add(1)
		go n.serve(name, n.listeners[name])
	}
	return n, nil
}

// URL returns the advertised peer URL (http://host:port of the proxy) of the
// named member, or "" if there is no such member.
func (n *Network) URL(name string) string { return n.urls[name] }

// Close stops every proxy and closes every connection through them, then
// waits for all of the Network's goroutines. It is idempotent.
func (n *Network) Close() error {
	n.closed.Do(func() {
		n.cancel()
		for _, ln := range n.listeners {
			ln.Close()
		}
	})
	n.wg.Wait()
	return nil
}

// SetMemberID teaches the proxies that member id (as carried, in hex, by
// X-Server-From) is the named member.
func (n *Network) SetMemberID(name string, id uint64) error {
	if _, ok := n.targets[name]; !ok {
		return fmt.Errorf("faultproxy: set member id of %q: %w", name, cluster.ErrUnknownNode)
	}
	n.learn(id, name)
	return nil
}

func (n *Network) learn(id uint64, name string) {
	if n.pol.Load().ids[id] == name {
		return
	}
	n.update(func(p *policy) { p.ids[id] = name })
}

// update installs a modified copy of the policy and wakes every watcher.
func (n *Network) update(f func(*policy)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.pol.Load()
	p := old.clone()
	f(p)
	n.pol.Store(p)
	close(old.changed)
}

func (n *Network) checkLinks(links []cluster.Link) ([]cluster.Link, error) {
	out := make([]cluster.Link, 0, len(links))
	for _, l := range links {
		k := l.Key()
		if k.A == k.B {
			return nil, fmt.Errorf("faultproxy: link %s joins a member to itself", k)
		}
		for _, name := range []string{k.A, k.B} {
			if _, ok := n.targets[name]; !ok {
				return nil, fmt.Errorf("faultproxy: link %s: %w %q", k, cluster.ErrUnknownNode, name)
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// Partition cuts exactly the given links, replacing the previous cut set.
// Connections on links that are no longer cut and were blackholed are closed.
func (n *Network) Partition(cut []cluster.Link) error {
	links, err := n.checkLinks(cut)
	if err != nil {
		return err
	}
	n.update(func(p *policy) {
		p.cut = make(map[cluster.Link]bool, len(links))
		for _, l := range links {
			p.cut[l] = true
		}
	})
	n.log.Info("faultproxy: partition", "cut", linkNames(links))
	return nil
}

// Heal restores every link.
func (n *Network) Heal() error {
	n.update(func(p *policy) { p.cut = map[cluster.Link]bool{} })
	n.log.Info("faultproxy: heal")
	return nil
}

// SetLatency delays both directions of the given links by delay plus a
// random extra in [0, jitter). Zero delay and jitter remove shaping. It
// applies to bytes read after the call, on existing and new connections.
func (n *Network) SetLatency(links []cluster.Link, delay, jitter time.Duration) error {
	if delay < 0 || jitter < 0 {
		return fmt.Errorf("faultproxy: negative latency %v or jitter %v", delay, jitter)
	}
	ls, err := n.checkLinks(links)
	if err != nil {
		return err
	}
	n.update(func(p *policy) {
		for _, l := range ls {
			sh := p.shape[l]
			sh.delay, sh.jitter = delay, jitter
			if sh.zero() {
				delete(p.shape, l)
			} else {
				p.shape[l] = sh
			}
		}
	})
	n.log.Info("faultproxy: latency", "links", linkNames(ls), "delay", delay, "jitter", jitter)
	return nil
}

// Retransmission timeouts of a lost chunk: the first loss holds the chunk
// (and, to keep byte order, everything behind it) for minRTO, each
// further loss in a row doubles it, up to maxRTO, as TCP's exponential
// backoff (RFC 6298's 1 s minimum is Linux's 200 ms here).
const (
	minRTO = 200 * time.Millisecond
	maxRTO = 3200 * time.Millisecond
)

// SetLoss makes each chunk read on the given links, in both directions,
// lost with probability p (0 removes the loss): a lost chunk is delivered
// after a retransmission timeout (minRTO, doubling on consecutive losses),
// so the stream stalls as a TCP connection over a lossy link does, bytes
// never reordered or corrupted. Delay and jitter stay as they are.
func (n *Network) SetLoss(links []cluster.Link, p float64) error {
	if p < 0 || p >= 1 {
		return fmt.Errorf("faultproxy: loss probability %v: want 0 <= p < 1", p)
	}
	ls, err := n.checkLinks(links)
	if err != nil {
		return err
	}
	n.update(func(pol *policy) {
		for _, l := range ls {
			sh := pol.shape[l]
			sh.loss = p
			if sh.zero() {
				delete(pol.shape, l)
			} else {
				pol.shape[l] = sh
			}
		}
	})
	n.log.Info("faultproxy: loss", "links", linkNames(ls), "probability", p)
	return nil
}

// Cut returns the links currently cut, sorted; the slice is the caller's.
func (n *Network) Cut() []cluster.Link {
	p := n.pol.Load()
	out := slices.Collect(maps.Keys(p.cut))
	slices.SortFunc(out, func(a, b cluster.Link) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Stats returns a snapshot of the counters of every directed link between
// members, and between Unknown and each member. The map is the caller's.
func (n *Network) Stats() map[cluster.DirectedLink]LinkStats {
	out := make(map[cluster.DirectedLink]LinkStats, len(n.stats))
	for k, c := range n.stats {
		out[k] = LinkStats{Forwarded: c.fwd.Load(), Dropped: c.drop.Load(), Conns: c.conns.Load()}
	}
	return out
}

func (n *Network) counters(from, to string) *counters {
	if from == "" {
		from = Unknown
	}
	if to == "" {
		to = Unknown
	}
	return n.stats[cluster.DirectedLink{From: from, To: to}]
}

// identify returns the member that sent a request with header h, or "".
func (n *Network) identify(get func(string) string) string {
	var byURL string
	for _, u := range strings.Split(get("X-PeerURLs"), ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err == nil {
			if name, ok := n.byHost[pu.Host]; ok {
				byURL = name
				break
			}
		}
	}
	from := strings.TrimSpace(get("X-Server-From"))
	id, idErr := strconv.ParseUint(from, 16, 64)
	switch {
	case byURL != "" && idErr == nil && from != "":
		n.learn(id, byURL)
		return byURL
	case byURL != "":
		return byURL
	case idErr == nil && from != "":
		return n.pol.Load().ids[id]
	}
	return ""
}

func (n *Network) serve(name string, ln net.Listener) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Error("faultproxy: accept failed; proxy stopped", "member", name, "err", err)
			}
			return
		}
		seq := n.connSeq.Add(1)
		pc := newConn(n, seq, name, c)
		if n.cfg.TLS != nil {
			pc.client = tls.Server(c, n.serverTLS(pc))
		}
		n.wg.Add(2)
		go pc.watch()
		go pc.run()
	}
}

func linkNames(ls []cluster.Link) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

// serverTLS is the TLS configuration the proxy of c.dst presents to the
// sender of c: dst's certificate, a required client certificate naming a
// member other than dst, and a handshake that stalls while the link is cut.
func (n *Network) serverTLS(c *conn) *tls.Config {
	cert := n.cfg.TLS.Certs[c.dst]
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    n.cfg.TLS.Roots,
		MinVersion:   tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			src := cs.PeerCertificates[0].Subject.CommonName
			if _, ok := n.cfg.TLS.Certs[src]; !ok || src == c.dst {
				return fmt.Errorf("faultproxy: peer certificate %q names no other member", src)
			}
			return c.awaitLink(cluster.Link{A: src, B: c.dst}.Key())
		},
	}
}

// awaitLink returns nil at once if l is not cut; else it waits (the
// handshake stalls, as over a link that loses packets) and returns an
// error once l heals or the connection or the Network closes, so that
// the sender redials.
func (c *conn) awaitLink(l cluster.Link) error {
	p := c.n.pol.Load()
	if !p.cut[l] {
		return nil
	}
	c.n.log.Debug("faultproxy: TLS handshake across a cut link stalled", "conn", c.seq, "link", l.String())
	for {
		select {
		case <-p.changed:
		case <-c.done:
			return net.ErrClosed
		case <-c.n.ctx.Done():
			return net.ErrClosed
		}
		if p = c.n.pol.Load(); !p.cut[l] {
			return fmt.Errorf("faultproxy: link %s healed during the handshake; closing", l)
		}
	}
}
