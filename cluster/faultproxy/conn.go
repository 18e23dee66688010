package faultproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

const (
	chunkSize  = 32 << 10
	peekBuffer = 64 << 10
	queueDepth = 64 // chunks in flight per direction (bounds delayed bytes)
)

// conn is one client connection accepted by the proxy of member dst, and
// (once needed) its connection to dst's real listener. The run goroutine
// owns identification and the client→member direction; a second pump
// goroutine owns member→client; the watch goroutine closes the connection
// when its blackholed link heals or the Network closes.
type conn struct {
	n      *Network
	seq    uint64
	dst    string
	client net.Conn

	src        atomic.Pointer[string] // sender member, set once identified
	upstream   atomic.Pointer[net.Conn]
	blackholed atomic.Bool
	pumps      sync.WaitGroup

	done      chan struct{}
	closeOnce sync.Once
}

type chunk struct {
	b        []byte
	due      time.Time
	from, to string
}

func newConn(n *Network, seq uint64, dst string, c net.Conn) *conn {
	return &conn{n: n, seq: seq, dst: dst, client: c, done: make(chan struct{})}
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.client.Close()
		if up := c.upstream.Load(); up != nil {
			(*up).Close()
		}
	})
}

func (c *conn) srcName() string {
	if p := c.src.Load(); p != nil {
		return *p
	}
	return ""
}

// link is the connection's undirected link, ok only once identified.
func (c *conn) link() (cluster.Link, bool) {
	s := c.srcName()
	if s == "" {
		return cluster.Link{}, false
	}
	return cluster.Link{A: s, B: c.dst}.Key(), true
}

// blackhole marks the connection dead for traffic. If the link healed in
// the meantime (the watcher may have looked before the mark), close now.
func (c *conn) blackhole(l cluster.Link) {
	if !c.blackholed.Swap(true) {
		c.n.log.Debug("faultproxy: connection blackholed", "conn", c.seq, "link", l.String())
	}
	if !c.n.pol.Load().cut[l] {
		c.close()
	}
}

// watch closes the connection when it is blackholed and its link is no
// longer cut, or when the Network closes.
func (c *conn) watch() {
	defer c.n.wg.Done()
	for {
		p := c.n.pol.Load()
		if c.blackholed.Load() {
			if l, ok := c.link(); ok && !p.cut[l] {
				c.n.log.Debug("faultproxy: closing blackholed connection after heal", "conn", c.seq, "link", l.String())
				c.close()
				return
			}
		}
		select {
		case <-p.changed:
		case <-c.done:
			return
		case <-c.n.ctx.Done():
			c.close()
			return
		}
	}
}

// recorder keeps every byte read through it until the owner trims buf.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	k, err := r.r.Read(p)
	r.buf = append(r.buf, p[:k]...)
	return k, err
}

// run identifies the sender from the request headers, then relays.
func (c *conn) run() {
	defer c.n.wg.Done()
	defer c.close()
	if tc, ok := c.client.(*tls.Conn); ok {
		if err := tc.HandshakeContext(c.n.ctx); err != nil {
			c.n.log.Debug("faultproxy: TLS handshake failed", "conn", c.seq, "to", c.dst, "err", err)
			return
		}
		c.relay(tc.ConnectionState().PeerCertificates[0].Subject.CommonName, nil)
		return
	}
	rec := &recorder{r: c.client}
	br := bufio.NewReaderSize(rec, peekBuffer)
	src := ""
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if len(rec.buf) == 0 {
				return // closed between requests
			}
			break // not HTTP as we understand it: pass through
		}
		if s := c.n.identify(req.Header.Get); s != c.dst {
			src = s
		}
		if src != "" || req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
			break // identified, or a body we would have to parse: stop peeking
		}
		consumed := len(rec.buf) - br.Buffered()
		if !c.forwardUnidentified(rec.buf[:consumed]) {
			return
		}
		rec.buf = rec.buf[consumed:]
	}
	c.relay(src, rec.buf) // every byte read and not yet forwarded
}

// relay relays the connection from sender src ("" if unidentified), first
// the bytes already read (initial).
func (c *conn) relay(src string, initial []byte) {
	if src == "" {
		if c.upstream.Load() == nil { // else counted by forwardUnidentified
			c.n.counters(Unknown, c.dst).conns.Add(1)
			if !c.dial() {
				return
			}
		}
	} else {
		c.src.Store(&src)
		c.n.counters(src, c.dst).conns.Add(1)
		l := cluster.Link{A: src, B: c.dst}.Key()
		c.n.log.Debug("faultproxy: connection identified", "conn", c.seq, "from", src, "to", c.dst)
		if c.n.pol.Load().cut[l] {
			c.blackhole(l) // never dial: nothing will be forwarded
		} else if c.upstream.Load() == nil && !c.dial() {
			return
		}
	}
	c.pumps.Add(1)
	c.pump(true, c.client, initial)
	c.pumps.Wait()
}

// forwardUnidentified relays one unidentified request as is.
func (c *conn) forwardUnidentified(b []byte) bool {
	if c.upstream.Load() == nil {
		c.n.counters(Unknown, c.dst).conns.Add(1)
		if !c.dial() {
			return false
		}
	}
	// Counted before the write, so that whoever sees the bytes' effect
	// (an echo, a reply) also sees them counted.
	c.n.counters(Unknown, c.dst).fwd.Add(uint64(len(b)))
	if _, err := (*c.upstream.Load()).Write(b); err != nil {
		return false
	}
	return true
}

// dial connects to the member's real listener and starts the member→client
// pump. It reports false (and the caller closes) if the member is down.
func (c *conn) dial() bool {
	d := net.Dialer{Timeout: c.n.cfg.DialTimeout}
	up, err := d.DialContext(c.n.ctx, "tcp", c.n.targets[c.dst])
	if err != nil {
		c.n.log.Debug("faultproxy: member unreachable", "conn", c.seq, "member", c.dst, "err", err)
		return false
	}
	if t := c.n.cfg.TLS; t != nil {
		host, _, _ := net.SplitHostPort(c.n.targets[c.dst])
		tc := tls.Client(up, &tls.Config{
			RootCAs: t.Roots, Certificates: []tls.Certificate{t.Certs[c.srcName()]},
			ServerName: host, MinVersion: tls.VersionTLS12,
		})
		hctx, cancel := context.WithTimeout(c.n.ctx, c.n.cfg.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			up.Close()
			c.n.log.Debug("faultproxy: TLS handshake with member failed", "conn", c.seq, "member", c.dst, "err", err)
			return false
		}
		up = tc
	}
	c.upstream.Store(&up)
	select {
	case <-c.done: // closed while dialing: close() may have missed it
		up.Close()
		return false
	default:
	}
	c.pumps.Add(1)
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		c.pump(false, up, nil)
	}()
	return true
}

// ends returns the sender and receiver of bytes flowing in one direction;
// "" stands for a sender not (yet) identified.
func (c *conn) ends(up bool) (from, to string) {
	if up {
		return c.srcName(), c.dst
	}
	return c.dst, c.srcName()
}

// pump relays r towards the other side: up is client→member. It returns
// when r fails or reaches EOF and every queued chunk has been handled.
func (c *conn) pump(up bool, r net.Conn, initial []byte) {
	defer c.pumps.Done()
	dir := uint64(0)
	if up {
		dir = 1
	}
	rng := rand.New(rand.NewPCG(c.n.cfg.Seed, c.seq*2+dir))
	queue := make(chan chunk, queueDepth)
	written := make(chan struct{})
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		defer close(written)
		c.write(up, queue)
	}()

	var lastDue time.Time
	losses := 0 // consecutive lost chunks, for the backoff
	buf := make([]byte, chunkSize)
	b := initial
	var rerr error
	for rerr == nil {
		if len(b) == 0 {
			k, err := r.Read(buf)
			b, rerr = slices.Clone(buf[:k]), err
		}
		if len(b) == 0 {
			continue
		}
		from, to := c.ends(up)
		p := c.n.pol.Load()
		l, known := c.link()
		if known && p.cut[l] {
			c.blackhole(l)
		}
		if c.blackholed.Load() {
			c.n.counters(from, to).drop.Add(uint64(len(b)))
			b = nil
			continue
		}
		var due time.Time
		if sh, ok := p.shape[l]; known && ok {
			d := sh.delay
			if sh.jitter > 0 {
				d += time.Duration(rng.Int64N(int64(sh.jitter)))
			}
			if sh.loss > 0 && rng.Float64() < sh.loss {
				d += min(minRTO<<min(losses, 8), maxRTO)
				losses++
			} else {
				losses = 0
			}
			due = time.Now().Add(d)
			if due.Before(lastDue) {
				due = lastDue // never reorder: a chunk waits for its predecessor
			}
			lastDue = due
		}
		select {
		case queue <- chunk{b: b, due: due, from: from, to: to}:
		case <-c.done:
			rerr = net.ErrClosed
		}
		b = nil
	}
	close(queue)
	<-written
	if errors.Is(rerr, io.EOF) && !c.blackholed.Load() {
		// Propagate the half-close so HTTP framing still works.
		if w := c.other(up); w != nil {
			if cw, ok := w.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				return
			}
		}
	}
	c.close()
}

// other is the connection a direction writes to, nil if never dialed.
func (c *conn) other(up bool) net.Conn {
	if !up {
		return c.client
	}
	if p := c.upstream.Load(); p != nil {
		return *p
	}
	return nil
}

// write delivers queued chunks in order, each not before its due time.
func (c *conn) write(up bool, queue <-chan chunk) {
	var t *time.Timer
	failed := false
	for ch := range queue {
		if !ch.due.IsZero() && !failed {
			if d := time.Until(ch.due); d > 0 {
				if t == nil {
					t = time.NewTimer(d)
				} else {
					t.Reset(d)
				}
				select {
				case <-t.C:
				case <-c.done:
					failed = true
				}
			}
		}
		w := c.other(up)
		if failed || w == nil || c.blackholed.Load() {
			if !failed {
				c.n.counters(ch.from, ch.to).drop.Add(uint64(len(ch.b)))
			}
			continue
		}
		// Counted before the write: see forwardUnidentified.
		c.n.counters(ch.from, ch.to).fwd.Add(uint64(len(ch.b)))
		if _, err := w.Write(ch.b); err != nil {
			failed = true
			c.close()
			continue
		}
	}
	if t != nil {
		t.Stop()
	}
}
