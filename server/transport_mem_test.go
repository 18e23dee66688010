package server

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memNetwork is the in-memory twin of the peer network: it routes Raft
// messages between the members of one process. Each member's memTransport
// is built, complete, with the Raft it delivers to and the source of its
// snapshots' data, as the stream transport is.
type memNetwork struct {
	mu   sync.Mutex
	ends map[uint64]*memTransport // started transports
}

func newMemNetwork() *memNetwork { return &memNetwork{ends: map[uint64]*memTransport{}} }

// memTransport is one member's end of a memNetwork.
type memTransport struct {
	net   *memNetwork
	id    uint64
	raft  Raft
	snaps snapshotSource

	inbox chan raftpb.Message
	stopc chan struct{}
	wg    sync.WaitGroup

	// mu guards removed (the applier adds to it, deliver reads it);
	// removedc is closed once a peer refused this member as removed.
	mu        sync.Mutex
	removed   map[uint64]bool
	removedc  chan struct{}
	isRemoved bool
}

var (
	_ Transport    = (*memTransport)(nil)
	_ peerActivity = (*memTransport)(nil)
)

// transport is member id's end of the network.
func (n *memNetwork) transport(id uint64, r Raft, snaps snapshotSource) *memTransport {
	return &memTransport{net: n, id: id, raft: r, snaps: snaps,
		inbox: make(chan raftpb.Message, streamQueueLen), stopc: make(chan struct{}),
		removed: map[uint64]bool{}, removedc: make(chan struct{})}
}

// AddPeer does nothing: the network routes by ID.
func (t *memTransport) AddPeer(id uint64, urls []string) {}

// UpdatePeer does nothing: the network routes by ID.
func (t *memTransport) UpdatePeer(id uint64, urls []string) {}

// RemovePeer refuses id's messages from now on; id is told it was removed
// the next time it sends here, as the stream transport's 410 Gone.
func (t *memTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	t.removed[id] = true
	t.mu.Unlock()
}

func (t *memTransport) Removed() <-chan struct{} { return t.removedc }

func (t *memTransport) markRemoved() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.isRemoved {
		t.isRemoved = true
		close(t.removedc)
	}
}

// ActiveSince: every member on the network is connected.
func (t *memTransport) ActiveSince(id uint64) time.Time {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.ends[id] == nil {
		return time.Time{}
	}
	return time.Unix(0, 1)
}

func (t *memTransport) Start() {
	t.net.mu.Lock()
	t.net.ends[t.id] = t
	t.net.mu.Unlock()
	t.wg.Add(1)
	go t.deliver()
}

// Stop takes the member off the network: messages to it are dropped from
// now on, as to a stopped process.
func (t *memTransport) Stop() {
	t.net.mu.Lock()
	if t.net.ends[t.id] == t {
		delete(t.net.ends, t.id)
	}
	t.net.mu.Unlock()
	close(t.stopc)
	t.wg.Wait()
}

// Send queues each message in its receiver's inbox without blocking; a
// message to a member that is not on the network, or whose inbox is full,
// is dropped and reported, as the stream transport does.
func (t *memTransport) Send(msgs []raftpb.Message) {
	for i := range msgs {
		m := msgs[i]
		t.net.mu.Lock()
		to := t.net.ends[m.To]
		t.net.mu.Unlock()
		if m.Type == raftpb.MsgSnap && len(m.Snapshot.Data) == 0 {
			d, err := t.snaps(m.Snapshot.Metadata)
			if err != nil || to == nil {
				t.raft.ReportSnapshot(m.To, raft.SnapshotFailure)
				continue
			}
			m.Snapshot.Data = d
		}
		if to == nil {
			t.raft.ReportUnreachable(m.To)
			continue
		}
		select {
		case to.inbox <- m:
		default:
			t.raft.ReportUnreachable(m.To)
		}
	}
}

// deliver steps the inbox into this member's Raft. A forwarded proposal is
// stepped on a goroutine of its own, bounded in time, as the stream
// transport's proposal loop does (raft blocks it until a leader is known).
// A delivered snapshot is reported finished to its sender.
func (t *memTransport) deliver() {
	defer t.wg.Done()
	for {
		select {
		case m := <-t.inbox:
			t.mu.Lock()
			gone := t.removed[m.From]
			t.mu.Unlock()
			if gone {
				t.net.mu.Lock()
				from := t.net.ends[m.From]
				t.net.mu.Unlock()
				if from != nil {
					from.markRemoved()
				}
				continue
			}
			if m.Type == raftpb.MsgProp {
				t.wg.Add(1)
				go func() {
					defer t.wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					t.raft.Step(ctx, m)
				}()
				continue
			}
			t.raft.Step(context.Background(), m)
			if m.Type == raftpb.MsgSnap {
				t.net.mu.Lock()
				from := t.net.ends[m.From]
				t.net.mu.Unlock()
				if from != nil {
					from.raft.ReportSnapshot(t.id, raft.SnapshotFinish)
				}
			}
		case <-t.stopc:
			return
		}
	}
}
