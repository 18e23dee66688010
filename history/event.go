// Package history records Jepsen-style operation histories: every operation a
// workload client performs is an invoke event followed by exactly one
// completion (ok, fail or info), and every fault a nemesis injects is a pair
// of events on the reserved NemesisProcess. A history is a []Event in index
// order; it is saved as JSON lines (history.jsonl), one Event per line, and
// read back unchanged, so a saved run can be checked again offline.
//
// The types in this package are the contract between the workloads (which
// call a Recorder), the checker (which reads events) and the reports: field
// names and JSON names are stable.
package history

import "fmt"

// Type says what an Event is: the start of an operation or how it ended.
type Type string

// The event types. A completion is ok, fail or info.
const (
	// Invoke marks the start of an operation (or of a fault, on
	// NemesisProcess).
	Invoke Type = "invoke"
	// OK means the operation definitely took effect (or, for a read, the
	// value was observed; for a fault, it was healed).
	OK Type = "ok"
	// Fail means the operation definitely did not take effect.
	Fail Type = "fail"
	// Info means the outcome is unknown (timeout, lost connection): a write
	// with Info is possibly applied, at any time after its invocation.
	Info Type = "info"
)

// Valid reports whether t is one of the four event types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// IsCompletion reports whether t ends an operation (ok, fail or info).
func (t Type) IsCompletion() bool { return t == OK || t == Fail || t == Info }

// NemesisProcess is the Process of every fault event. Client processes are
// non-negative.
const NemesisProcess = -1

// Operation names (Event.F) used by the workloads.
const (
	// FRead reads one register key; the completion's Value is the value
	// read (nil: key absent) and Revision its mod revision.
	FRead = "read"
	// FWrite writes Value to a register key; an ok completion's Revision is
	// the header revision of the write.
	FWrite = "write"
	// FCAS sets a register key to Value if its current value equals
	// Expected (nil Expected: the key is absent).
	FCAS = "cas"
	// FAdd adds the element Value to a set.
	FAdd = "add"
	// FFinalRead is a read issued after the workload stopped and every
	// fault healed, one per member (Node). For the set workload the
	// completion carries Elements; for the register workload Value and
	// Revision, as for FRead.
	FFinalRead = "final-read"
	// FTxn is a list-append transaction (package checker/elle): Value is
	// the JSON of its micro-ops, e.g. [["append","x",1],["r","y",null]];
	// the invocation's reads are null, an ok completion's hold the lists
	// read. Key is empty.
	FTxn = "txn"
)

// ErrCompareFailed is the Error of a cas completion of Type Fail that the
// server evaluated and whose compare did not hold (an etcd Txn answering
// Succeeded=false). The checker verifies such a failure: the key must have
// held a value other than Expected at some point during the operation. A cas
// failing with any other Error is only known not to have been applied.
const ErrCompareFailed = "compare-failed"

// Event is one line of history.jsonl.
//
// Invoke events carry the operation's arguments; completion events repeat F,
// Key, Value (except for reads), Expected and Node from their invocation and
// add the result. Optional fields are omitted from JSON when empty; Value is
// always written, because on a read completion null means the key was absent.
type Event struct {
	// Index is the 0-based position in the history, strictly increasing.
	Index int64 `json:"index"`
	// Time is nanoseconds since the run started, from a monotonic clock;
	// it never decreases along the history.
	Time int64 `json:"time"`
	// Type is invoke, ok, fail or info.
	Type Type `json:"type"`
	// Process is the logical client that performed the operation, or
	// NemesisProcess for fault events. A process has at most one operation
	// in flight, and is never reused after an info completion.
	Process int `json:"process"`
	// F is the operation (FRead, FWrite, FCAS, FAdd, FFinalRead) or, on
	// NemesisProcess, the fault's name (e.g. "kill-leader").
	F string `json:"f"`
	// Key is the register key (or the set's key).
	Key string `json:"key,omitempty"`
	// Value is the value written (write, cas new value, add element), the
	// value read on a read completion (nil: key absent), or a description
	// of a fault's targets.
	Value *string `json:"value"`
	// Expected is the value a cas compares against (nil: key absent).
	Expected *string `json:"expected,omitempty"`
	// Revision is, on ok completions, the header revision of a write or
	// cas, or the mod revision of the key read; 0 when unknown.
	Revision int64 `json:"rev,omitempty"`
	// Elements is the set read by a set final-read completion.
	Elements []string `json:"elements,omitempty"`
	// Node is the member the operation was sent to, when known.
	Node string `json:"node,omitempty"`
	// Error describes why an operation failed or has an unknown outcome.
	Error string `json:"error,omitempty"`
}

// String renders e on one line for logs and error messages.
func (e Event) String() string {
	s := fmt.Sprintf("#%d t=%d p=%d %s %s", e.Index, e.Time, e.Process, e.Type, e.F)
	if e.Key != "" {
		s += " key=" + e.Key
	}
	if e.Expected != nil {
		s += fmt.Sprintf(" expected=%q", *e.Expected)
	}
	if e.Value != nil {
		s += fmt.Sprintf(" value=%q", *e.Value)
	}
	if e.Revision != 0 {
		s += fmt.Sprintf(" rev=%d", e.Revision)
	}
	if e.Elements != nil {
		s += fmt.Sprintf(" elements=%d", len(e.Elements))
	}
	if e.Node != "" {
		s += " node=" + e.Node
	}
	if e.Error != "" {
		s += fmt.Sprintf(" error=%q", e.Error)
	}
	return s
}

// Str returns a pointer to a copy of s, for Value and Expected fields.
func Str(s string) *string { return &s }
