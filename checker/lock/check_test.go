package lock_test

import (
	"testing"

	"github.com/quorum-kv/quorum/checker/lock"
	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// script builds a history: each step is one event at the time given.
type script struct{ events []history.Event }

func (s *script) add(t int64, typ history.Type, p int, f, key string, v *string) {
	s.events = append(s.events, history.Event{Index: int64(len(s.events)), Time: t, Type: typ, Process: p, F: f, Key: key, Value: v, Node: "n1"})
}

func hold(lease, rev int64) *string {
	return history.WatchJSON(history.LockHold{Lock: "L", Lease: lease, TTL: 1, Key: "L/k", Rev: rev})
}

func incr(read int64) *string {
	return history.WatchJSON(history.IncrResult{Read: read, Wrote: read + 1})
}

// holder records process p taking L at [t, t+1], incrementing from read
// at [t+1, t+2] and invoking its release at t+3.
func (s *script) holder(p int, t, lease, read int64) {
	s.add(t, history.Invoke, p, history.FAcquire, "L", hold(lease, 0))
	s.add(t+1, history.OK, p, history.FAcquire, "L", hold(lease, t))
	s.add(t+1, history.Invoke, p, history.FIncr, "R", hold(lease, t))
	s.add(t+2, history.OK, p, history.FIncr, "R", incr(read))
	s.add(t+3, history.Invoke, p, history.FRelease, "L", hold(lease, t))
	s.add(t+4, history.OK, p, history.FRelease, "L", hold(lease, t))
}

func (s *script) final(t int64, v string) {
	s.add(t, history.Invoke, 99, history.FFinalRead, "R", nil)
	s.add(t+1, history.OK, 99, history.FFinalRead, "R", history.Str(v))
}

func TestOneHolderAtATimeWithEveryIncrementIsValid(t *testing.T) {
	var s script
	s.holder(0, 10, 1, 0)
	s.holder(1, 20, 2, 1)
	s.final(30, "2")
	if r := lock.Check(s.events); r.Verdict != verdict.Valid || r.Holds != 2 || r.OverlapCount != 0 {
		t.Fatalf("%+v", r)
	}
}

// Two processes holding at once, both reading 0 and writing 1: two
// holders, one increment lost, and the same value written twice.
func TestTwoHoldersAtOnceAndALostUpdateAreInvalid(t *testing.T) {
	var s script
	s.add(5, history.Invoke, history.NemesisProcess, "pause-one", "", history.Str("n1"))
	s.holder(0, 10, 1, 0)
	s.add(12, history.OK, history.NemesisProcess, "pause-one", "", history.Str("n1"))
	s.final(30, "1")
	// Process 1 is granted L at 12, while process 0 holds it until 13.
	var t2 script
	for _, e := range s.events {
		if e.Time == 30 {
			t2.holder(1, 11, 2, 0)
		}
		e.Index = int64(len(t2.events))
		t2.events = append(t2.events, e)
	}
	// Restore time order.
	evs := t2.events
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Time < evs[j-1].Time; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	for i := range evs {
		evs[i].Index = int64(i)
	}
	r := lock.Check(evs)
	if r.Verdict != verdict.Invalid || r.OverlapCount != 1 || r.LostUpdates != 1 || len(r.Registers[0].SameWrite) != 1 {
		t.Fatalf("%+v", r)
	}
	if o := r.Overlaps[0]; o.First.Process != 0 || o.Second.Process != 1 || len(o.Faults) != 1 || o.First.Lease != "1" {
		t.Errorf("overlap %+v", o)
	}
}
