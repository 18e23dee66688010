package elle

import (
	"encoding/json"
	"fmt"

	"github.com/quorum-kv/quorum/history"
)

// FromHistory returns the list-append transactions of events (operations
// with F history.FTxn), in invocation order; other operations and faults
// are skipped. A transaction that never completed is Info. It returns an
// error wrapping history.ErrMalformed when events break the rules of
// history.Event, or when a transaction's micro-ops cannot be parsed or its
// completion's micro-ops do not match its invocation's.
func FromHistory(events []history.Event) ([]Txn, error) {
	ops, _, err := history.Operations(events)
	if err != nil {
		return nil, err
	}
	var txns []Txn
	for _, op := range ops {
		if op.F() != history.FTxn {
			continue
		}
		invoked, err := parseOps(op.Invoke)
		if err != nil {
			return nil, err
		}
		t := Txn{Process: op.Process(), Invoke: op.Invoke.Time, Type: op.Type(), Ops: invoked}
		if op.Complete != nil {
			t.Complete = op.Complete.Time
		}
		if t.Type == history.OK {
			done, err := parseOps(*op.Complete)
			if err != nil {
				return nil, err
			}
			if !sameShape(invoked, done) {
				return nil, fmt.Errorf("%w: event #%d: micro-ops %s differ from the invocation's", history.ErrMalformed, op.Complete.Index, deref(op.Complete.Value))
			}
			t.Ops = done
		}
		txns = append(txns, t)
	}
	return txns, nil
}

func parseOps(e history.Event) ([]MicroOp, error) {
	var ops []MicroOp
	if e.Value == nil {
		return nil, fmt.Errorf("%w: event #%d: txn without micro-ops", history.ErrMalformed, e.Index)
	}
	if err := json.Unmarshal([]byte(*e.Value), &ops); err != nil {
		return nil, fmt.Errorf("%w: event #%d: %v", history.ErrMalformed, e.Index, err)
	}
	return ops, nil
}

// sameShape reports whether a completion's micro-ops are its invocation's
// with the reads filled in.
func sameShape(invoked, done []MicroOp) bool {
	if len(invoked) != len(done) {
		return false
	}
	for i := range invoked {
		a, b := invoked[i], done[i]
		if a.F != b.F || a.Key != b.Key || a.Value != b.Value {
			return false
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
