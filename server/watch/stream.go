package watch

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Stream is one client stream's watchers (etcd's mvcc.WatchStream): they
// share one channel, so the responses of all of them arrive in the order
// they were produced.
type Stream struct {
	h  *Hub
	ch chan Response
	// blocked is set when the hub found ch full; Drained clears it and
	// wakes the hub once the reader has freed half the buffer.
	blocked atomic.Bool

	mu       sync.Mutex
	nextID   WatchID
	closed   bool
	watchers map[WatchID]*watcher
}

// NewStream opens a stream. Close it when done.
func (h *Hub) NewStream() *Stream {
	gaugeAdd(h.metrics.Streams, 1)
	return &Stream{h: h, ch: make(chan Response, chanBufLen), watchers: map[WatchID]*watcher{}}
}

// Watch creates a watcher on etcd's watch range [key, end) (end nil: the
// single key; empty: every key >= key) from startRev (0: the next
// revision), with id (AutoWatchID: the stream chooses the lowest free ID).
// Errors: ErrEmptyWatcherRange (key >= end, or a closed stream),
// ErrWatcherDuplicateID.
func (s *Stream) Watch(id WatchID, key, end []byte, startRev int64, fcs ...FilterFunc) (WatchID, error) {
	return s.WatchPrevKV(id, key, end, startRev, false, fcs...)
}

// WatchPrevKV is Watch for a watcher whose responses carry PrevKV: set
// with the watcher, so that even its first response, which the hub may
// send before WatchPrevKV returns, says so.
func (s *Stream) WatchPrevKV(id WatchID, key, end []byte, startRev int64, prevKV bool, fcs ...FilterFunc) (WatchID, error) {
	if len(end) != 0 && bytes.Compare(key, end) != -1 {
		return -1, ErrEmptyWatcherRange
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return -1, ErrEmptyWatcherRange
	}
	if id == AutoWatchID {
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if _, ok := s.watchers[id]; ok {
		return -1, ErrWatcherDuplicateID
	}
	w := &watcher{key: key, end: end, id: id, fcs: fcs, stream: s, startRev: startRev, minRev: startRev, prevKV: prevKV}
	h := s.h
	h.mu.Lock()
	h.all.add(w)
	if startRev == 0 || startRev > h.rev {
		w.minRev = max(h.rev+1, startRev)
	} else {
		h.fallBehind(w, startRev)
		h.wake()
	}
	h.mu.Unlock()
	gaugeAdd(h.metrics.Watchers, 1)
	s.watchers[id] = w
	return id, nil
}

// full reports whether the stream's buffer has no free slot now (its
// reader may free one at any moment), and if so marks the stream blocked
// so that Drained wakes the hub. Any goroutine.
func (s *Stream) full() bool {
	if len(s.ch) < cap(s.ch) {
		return false
	}
	s.blocked.Store(true)
	return true
}

// Drained tells the hub that the reader has taken responses from Chan.
// Calling it after each receive is optional and cheap: when the hub had
// found the stream full, it wakes the hub's catch-up as soon as half the
// buffer is free, instead of at the hub's next retry (10 ms later).
// Any goroutine.
func (s *Stream) Drained() {
	if s.blocked.Load() && len(s.ch) <= cap(s.ch)/2 && s.blocked.CompareAndSwap(true, false) {
		s.h.wake()
	}
}

// Chan is where the stream's responses arrive; it is closed by Close.
func (s *Stream) Chan() <-chan Response { return s.ch }

// Cancel removes watcher id. Errors: ErrWatcherNotExist.
func (s *Stream) Cancel(id WatchID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.watchers[id]
	if !ok || s.closed {
		return ErrWatcherNotExist
	}
	s.h.cancel(w)
	delete(s.watchers, id)
	return nil
}

// cancel takes w out of the hub.
func (h *Hub) cancel(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.all.remove(w) {
		return // removed after compaction
	}
	h.caughtUp(w)
	gaugeAdd(h.metrics.Watchers, -1)
}

// Close cancels every watcher and closes the channel.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, w := range s.watchers {
		s.h.cancel(w)
	}
	s.closed = true
	// No watcher of the stream is in the hub any more, so nothing sends.
	close(s.ch)
	gaugeAdd(s.h.metrics.Streams, -1)
}

// Rev is the hub's current revision.
func (s *Stream) Rev() int64 {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.h.rev
}

// RequestProgress sends a progress notification for watcher id if it is
// synced (etcd: nothing otherwise; the client asks again).
func (s *Stream) RequestProgress(id WatchID) {
	s.mu.Lock()
	w, ok := s.watchers[id]
	s.mu.Unlock()
	if ok {
		s.h.progressIfSync(map[WatchID]*watcher{id: w}, id)
	}
}

// RequestProgressAll sends one progress notification on behalf of every
// watcher of the stream (WatchID InvalidWatchID) if all of them are synced,
// and reports whether it did (or there was nothing to report on).
func (s *Stream) RequestProgressAll() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.progressIfSync(s.watchers, InvalidWatchID)
}

// progressIfSync is etcd's: a notification at the hub's revision, sent on
// the first watcher's stream, only if every watcher has seen every event up
// to it.
func (h *Hub) progressIfSync(watchers map[WatchID]*watcher, id WatchID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range watchers {
		if !h.synced(w) || h.rev < w.startRev {
			return false
		}
	}
	for _, w := range watchers {
		w.send(Response{WatchID: id, Revision: h.rev})
		return true
	}
	return true
}
