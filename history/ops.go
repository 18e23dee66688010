package history

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error Operations returns for a history
// that breaks the rules of Event (order, pairing, types).
var ErrMalformed = errors.New("malformed history")

// Op is one client operation: its invoke event and its completion.
type Op struct {
	// Invoke is the invoke event.
	Invoke Event
	// Complete is the completion event, or nil when the history ended
	// before the operation completed (its outcome is unknown, as for info).
	Complete *Event
}

// Type returns how the operation ended: OK, Fail or Info (Info also when it
// never completed).
func (o Op) Type() Type {
	if o.Complete == nil {
		return Info
	}
	return o.Complete.Type
}

// Process returns the client process that performed the operation.
func (o Op) Process() int { return o.Invoke.Process }

// F returns the operation name.
func (o Op) F() string { return o.Invoke.F }

// Key returns the operation's key.
func (o Op) Key() string { return o.Invoke.Key }

// Fault is one nemesis fault: its start (invoke) event and its end event.
type Fault struct {
	// Start is the invoke event on NemesisProcess; Start.F names the fault
	// and Start.Value describes its targets.
	Start Event
	// End is the ok (healed) or info (healing failed) event, or nil when
	// the history ended with the fault still active.
	End *Event
}

// Operations pairs every invoke with its completion and returns the client
// operations in invocation order and the faults in start order. A client
// invoke with no completion at the end of the history is returned with a nil
// Complete (outcome unknown); so is an open fault.
//
// Fault events are paired by name, first started first ended.
//
// It returns an error wrapping ErrMalformed, naming the offending event, if
// indexes do not strictly increase, time decreases, a type is unknown, a
// process invokes while busy or after an info completion, a completion has
// no pending invoke, or a completion's F or Key differ from its invoke's.
func Operations(events []Event) ([]Op, []Fault, error) {
	var (
		ops       []Op
		faults    []Fault
		pending   = make(map[int]int)      // process -> index into ops
		retired   = make(map[int]int64)    // process -> index of its info completion
		openFault = make(map[string][]int) // fault name -> indexes into faults, oldest first
	)
	for i, e := range events {
		if !e.Type.Valid() {
			return nil, nil, fmt.Errorf("%w: event #%d: unknown type %q", ErrMalformed, e.Index, e.Type)
		}
		if i > 0 {
			prev := events[i-1]
			if e.Index <= prev.Index {
				return nil, nil, fmt.Errorf("%w: event #%d follows #%d: indexes must strictly increase", ErrMalformed, e.Index, prev.Index)
			}
			if e.Time < prev.Time {
				return nil, nil, fmt.Errorf("%w: event #%d at time %d follows #%d at time %d: time went backwards", ErrMalformed, e.Index, e.Time, prev.Index, prev.Time)
			}
		}
		if e.Process == NemesisProcess {
			if e.Type == Invoke {
				openFault[e.F] = append(openFault[e.F], len(faults))
				faults = append(faults, Fault{Start: e})
				continue
			}
			open := openFault[e.F]
			if len(open) == 0 {
				return nil, nil, fmt.Errorf("%w: event #%d: fault %q ends but was not started", ErrMalformed, e.Index, e.F)
			}
			end := e
			faults[open[0]].End = &end
			openFault[e.F] = open[1:]
			continue
		}
		if e.Process < 0 {
			return nil, nil, fmt.Errorf("%w: event #%d: process %d: client processes are >= 0", ErrMalformed, e.Index, e.Process)
		}
		if e.Type == Invoke {
			if j, busy := pending[e.Process]; busy {
				return nil, nil, fmt.Errorf("%w: event #%d: process %d invokes %s while #%d is in flight", ErrMalformed, e.Index, e.Process, e.F, ops[j].Invoke.Index)
			}
			if idx, gone := retired[e.Process]; gone {
				return nil, nil, fmt.Errorf("%w: event #%d: process %d invokes %s after its info completion #%d", ErrMalformed, e.Index, e.Process, e.F, idx)
			}
			pending[e.Process] = len(ops)
			ops = append(ops, Op{Invoke: e})
			continue
		}
		j, busy := pending[e.Process]
		if !busy {
			return nil, nil, fmt.Errorf("%w: event #%d: %s completion on process %d with nothing in flight", ErrMalformed, e.Index, e.Type, e.Process)
		}
		inv := ops[j].Invoke
		if e.F != inv.F || e.Key != inv.Key {
			return nil, nil, fmt.Errorf("%w: event #%d: completion %s key %q does not match invoke #%d %s key %q", ErrMalformed, e.Index, e.F, e.Key, inv.Index, inv.F, inv.Key)
		}
		c := e
		ops[j].Complete = &c
		delete(pending, e.Process)
		if e.Type == Info {
			retired[e.Process] = e.Index
		}
	}
	return ops, faults, nil
}
