package server

import (
	"sync"
)

// waitRegistry delivers apply results to the proposers waiting for them,
// by request ID. Safe for concurrent use.
type waitRegistry struct {
	mu sync.Mutex
	m  map[uint64]chan applyResult
}

func newWaitRegistry() *waitRegistry { return &waitRegistry{m: map[uint64]chan applyResult{}} }

// register returns the channel that will receive the result for id.
func (w *waitRegistry) register(id uint64) <-chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

// trigger delivers r to the waiter for id, if any, and forgets it.
func (w *waitRegistry) trigger(id uint64, r applyResult) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// cancel forgets the waiter for id (the proposer gave up).
func (w *waitRegistry) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waitRegistry) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// indexWaiter lets goroutines wait until the applied index reaches a value.
type indexWaiter struct {
	mu      sync.Mutex
	applied uint64
	waiters map[uint64][]chan struct{}
}

func newIndexWaiter(applied uint64) *indexWaiter {
	return &indexWaiter{applied: applied, waiters: map[uint64][]chan struct{}{}}
}

// wait returns a channel closed once the applied index is >= idx.
func (w *indexWaiter) wait(idx uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied >= idx {
		close(ch)
		return ch
	}
	w.waiters[idx] = append(w.waiters[idx], ch)
	return ch
}

// advance records that idx is applied and releases the waiters it satisfies.
func (w *indexWaiter) advance(idx uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = idx
	for i, chs := range w.waiters {
		if i <= idx {
			for _, ch := range chs {
				close(ch)
			}
			delete(w.waiters, i)
		}
	}
}

// notifier is one batch of linearizable reads waiting for the same ReadIndex.
type notifier struct {
	c   chan struct{}
	err error
}

func newNotifier() *notifier { return &notifier{c: make(chan struct{})} }

func (n *notifier) notify(err error) {
	n.err = err
	close(n.c)
}
