package history

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Invocation is what a client is about to do: the arguments of an invoke
// event.
type Invocation struct {
	F        string  // FRead, FWrite, FCAS, FAdd or FFinalRead
	Key      string  // register or set key
	Value    *string // value to write, cas new value or element to add
	Expected *string // cas compare value (nil: key absent)
	Node     string  // member the request goes to, if known
}

// Completion is the result of an operation: the payload of its ok, fail or
// info event.
type Completion struct {
	// Value is the value read, for FRead and FFinalRead (nil: absent), or
	// for an ok FTxn its micro-ops with the lists read (nil: the
	// invocation's). It is ignored for other operations, whose completion
	// repeats the invocation's Value. For FWatch and FFinalWatch it is the
	// responses received (nil: the invocation's spec). For an ok FAcquire
	// it is the LockHold granted, for an ok FIncr its IncrResult, for an
	// ok FGrant or FKeepAlive the LeaseSpec answered, for an ok
	// FLeaseRead the LeaseRead.
	Value *string
	// Revision is the header revision of a write or cas, or the mod
	// revision of the key read; 0 when unknown.
	Revision int64
	// Elements is the set read by a set FFinalRead.
	Elements []string
	// Node overrides the invocation's Node when not empty (the member that
	// actually answered).
	Node string
	// Error says why the operation failed or its outcome is unknown.
	Error string
}

// Handle identifies an invoked operation or a started fault until it is
// completed. The zero Handle is invalid.
type Handle struct {
	index int64 // index of the invoke event, plus one
}

// Recorder appends events to an in-memory history. It is safe for
// concurrent use: every method takes one mutex, and an event's Time is read
// from the clock while holding it, so index order and time order agree.
//
// Misuse by the workload is a programming error and panics: invoking on a
// process that has an operation in flight or that completed with info
// (it must continue under a new process id), completing a handle twice or
// with a non-completion Type.
type Recorder struct {
	clock func() time.Duration

	mu       sync.Mutex
	events   []Event
	inFlight map[int]int64      // process -> index of its pending invoke
	retired  map[int]int64      // process -> index of its info completion
	faults   map[int64]struct{} // indexes of fault starts not yet ended
}

// NewRecorder returns an empty Recorder. clock returns the time elapsed
// since the run started and must be monotonic (e.g. a closure over
// time.Since(start) with start from time.Now()).
func NewRecorder(clock func() time.Duration) *Recorder {
	return &Recorder{
		clock:    clock,
		inFlight: make(map[int]int64),
		retired:  make(map[int]int64),
		faults:   make(map[int64]struct{}),
	}
}

// appendLocked stamps e with the next index and the current time and
// appends it. r.mu must be held.
func (r *Recorder) appendLocked(e Event) int64 {
	e.Index = int64(len(r.events))
	e.Time = int64(r.clock())
	if n := len(r.events); n > 0 && e.Time < r.events[n-1].Time {
		// A clock that goes backwards would make every later check
		// meaningless; clamp rather than record a lie about order.
		e.Time = r.events[n-1].Time
	}
	r.events = append(r.events, e)
	return e.Index
}

// Invoke records the start of an operation by process and returns the
// handle to complete it with. Call it before sending the request.
//
// It panics if process is negative, already has an operation in flight, or
// has completed an operation with info before.
func (r *Recorder) Invoke(process int, in Invocation) Handle {
	if process < 0 {
		panic(fmt.Sprintf("history: Invoke on process %d: client processes must be >= 0 (%d is the nemesis)", process, NemesisProcess))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if idx, busy := r.inFlight[process]; busy {
		panic(fmt.Sprintf("history: Invoke %s on process %d, which still has event #%d (%s) in flight: one operation per process at a time",
			in.F, process, idx, r.events[idx].F))
	}
	if idx, gone := r.retired[process]; gone {
		panic(fmt.Sprintf("history: Invoke %s on process %d, which completed with info at event #%d: continue under a new process id",
			in.F, process, idx))
	}
	idx := r.appendLocked(Event{
		Type:     Invoke,
		Process:  process,
		F:        in.F,
		Key:      in.Key,
		Value:    clonePtr(in.Value),
		Expected: clonePtr(in.Expected),
		Node:     in.Node,
	})
	r.inFlight[process] = idx
	return Handle{index: idx + 1}
}

// Complete records how the operation h ended: OK, Fail or Info. Call it
// after the response (or the error) arrived. After an Info completion the
// process is retired and must not invoke again.
//
// It panics if t is not a completion type or h is not a pending operation.
func (r *Recorder) Complete(h Handle, t Type, c Completion) {
	if !t.IsCompletion() {
		panic(fmt.Sprintf("history: Complete with type %q: want ok, fail or info", t))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inv := r.pendingLocked(h, "Complete")
	if inv.Process == NemesisProcess {
		panic(fmt.Sprintf("history: Complete on fault event #%d: use NemesisEnd", inv.Index))
	}
	e := Event{
		Type:     t,
		Process:  inv.Process,
		F:        inv.F,
		Key:      inv.Key,
		Value:    inv.Value,
		Expected: inv.Expected,
		Revision: c.Revision,
		Elements: slices.Clone(c.Elements),
		Node:     inv.Node,
		Error:    c.Error,
	}
	if inv.F == FRead || inv.F == FFinalRead || inv.F == FTxn && t == OK && c.Value != nil ||
		(inv.F == FWatch || inv.F == FFinalWatch) && c.Value != nil ||
		(inv.F == FAcquire || inv.F == FIncr || inv.F == FGrant || inv.F == FKeepAlive || inv.F == FLeaseRead) && t == OK && c.Value != nil {
		e.Value = clonePtr(c.Value)
	}
	if c.Node != "" {
		e.Node = c.Node
	}
	idx := r.appendLocked(e)
	delete(r.inFlight, inv.Process)
	if t == Info {
		r.retired[inv.Process] = idx
	}
}

// NemesisStart records that the fault f (e.g. "partition-halves") starts;
// targets describes whom it affects. Faults may overlap.
func (r *Recorder) NemesisStart(f, targets string) Handle {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := r.appendLocked(Event{Type: Invoke, Process: NemesisProcess, F: f, Value: Str(targets)})
	r.faults[idx] = struct{}{}
	return Handle{index: idx + 1}
}

// NemesisEnd records that the fault h was healed (ok), or, when err is not
// nil, that healing it failed (info, with the error).
//
// It panics if h is not a started, not yet ended fault.
func (r *Recorder) NemesisEnd(h Handle, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.pendingLocked(h, "NemesisEnd")
	if start.Process != NemesisProcess {
		panic(fmt.Sprintf("history: NemesisEnd on client event #%d: use Complete", start.Index))
	}
	e := Event{Type: OK, Process: NemesisProcess, F: start.F, Value: start.Value}
	if err != nil {
		e.Type = Info
		e.Error = err.Error()
	}
	r.appendLocked(e)
	delete(r.faults, start.Index)
}

// pendingLocked returns the invoke event of h, panicking unless it is still
// open. r.mu must be held.
func (r *Recorder) pendingLocked(h Handle, method string) Event {
	idx := h.index - 1
	if idx < 0 || idx >= int64(len(r.events)) {
		panic(fmt.Sprintf("history: %s with an invalid handle", method))
	}
	inv := r.events[idx]
	open := false
	if inv.Process == NemesisProcess {
		_, open = r.faults[idx]
	} else {
		p, ok := r.inFlight[inv.Process]
		open = ok && p == idx
	}
	if !open {
		panic(fmt.Sprintf("history: %s of event #%d (%s), which is already completed", method, idx, inv.F))
	}
	return inv
}

// Events returns a copy of the history recorded so far, in index order. The
// caller owns the returned slice.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, len(r.events))
	for i, e := range r.events {
		out[i] = cloneEvent(e)
	}
	return out
}

func clonePtr(s *string) *string {
	if s == nil {
		return nil
	}
	return Str(*s)
}

func cloneEvent(e Event) Event {
	e.Value = clonePtr(e.Value)
	e.Expected = clonePtr(e.Expected)
	e.Elements = slices.Clone(e.Elements)
	return e
}
