// Package elle checks histories of list-append transactions for strict
// serializability the way Elle does (Kingsbury and Alvaro, "Elle: Inferring
// Isolation Anomalies from Experimental Observations", VLDB 2020): every
// key holds a list, transactions append unique values and read whole lists,
// so each key's version order can be read off the longest list read, and
// from it the write-write, write-read and read-write dependencies between
// transactions. Adding real-time order and looking for cycles (strongly
// connected components) names the anomaly: G0, G1c, G-single, G2 and their
// "-realtime" variants, besides the non-cyclic ones (aborted and
// intermediate reads, lost appends, duplicate elements, incompatible orders,
// internal inconsistencies). Check is a pure function from transactions to a
// three-way verdict with the smallest evidence for each anomaly.
//
// No maintained Go port of Elle was found when this package was written;
// this is a fresh implementation of its list-append inference.
//
// In a history (history.Event) a transaction is an operation with F
// history.FTxn whose Value is the JSON of its micro-ops in the form MicroOp
// marshals to, e.g. [["append","x",1],["r","y",null]]: the invocation
// carries reads with a null list, the ok completion the lists read. A fail
// completion means the transaction did not commit; an info completion (or
// none) means it may have. FromHistory turns such a history into []Txn.
//
// Measured on the development machine (2 cores): checking 100,000
// generated transactions (20 clients, 1 to 4 micro-ops each) takes about
// 0.5 to 0.7 s and allocates about 150 MB (BenchmarkCheck100k,
// TestCheck100kTransactionsInTime); the bound asked for is 30 s.
package elle

import (
	"encoding/json"
	"fmt"

	"github.com/quorum-kv/quorum/history"
)

// Micro-op functions (MicroOp.F).
const (
	// FAppend appends Value to the list at Key.
	FAppend = "append"
	// FRead reads the list at Key into Read (nil: absent or empty).
	FRead = "r"
)

// MicroOp is one step of a transaction: an append of Value to Key's list, or
// a read of Key's list into Read. Values appended to one key are unique
// across the history. In JSON a MicroOp is Elle's triple: ["append","x",3]
// or ["r","x",[1,2,3]] (null: nothing read, or not known yet).
type MicroOp struct {
	F     string
	Key   string
	Value int   // FAppend only
	Read  []int // FRead only
}

// MarshalJSON encodes m as [f, key, value-or-list].
func (m MicroOp) MarshalJSON() ([]byte, error) {
	switch m.F {
	case FAppend:
		return json.Marshal([]any{m.F, m.Key, m.Value})
	case FRead:
		return json.Marshal([]any{m.F, m.Key, m.Read})
	}
	return nil, fmt.Errorf("marshal micro-op: unknown f %q", m.F)
}

// UnmarshalJSON decodes [f, key, value-or-list].
func (m *MicroOp) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("parse micro-op %s: %w", b, err)
	}
	if len(raw) != 3 {
		return fmt.Errorf("parse micro-op %s: want [f, key, value]", b)
	}
	var out MicroOp
	if err := json.Unmarshal(raw[0], &out.F); err != nil {
		return fmt.Errorf("parse micro-op %s: f: %w", b, err)
	}
	if err := json.Unmarshal(raw[1], &out.Key); err != nil {
		return fmt.Errorf("parse micro-op %s: key: %w", b, err)
	}
	var err error
	switch out.F {
	case FAppend:
		err = json.Unmarshal(raw[2], &out.Value)
	case FRead:
		err = json.Unmarshal(raw[2], &out.Read)
	default:
		err = fmt.Errorf("unknown f %q", out.F)
	}
	if err != nil {
		return fmt.Errorf("parse micro-op %s: %w", b, err)
	}
	*m = out
	return nil
}

// Txn is one completed (or abandoned) transaction.
type Txn struct {
	// Process is the logical client that ran it.
	Process int `json:"process"`
	// Invoke and Complete are monotonic times in nanoseconds. Complete is
	// ignored for Info transactions: they may take effect at any time
	// after Invoke.
	Invoke   int64 `json:"invoke"`
	Complete int64 `json:"complete"`
	// Type is history.OK (committed, reads observed), history.Fail (did
	// not commit) or history.Info (may have committed; reads unknown).
	Type history.Type `json:"type"`
	// Ops are the micro-ops in program order.
	Ops []MicroOp `json:"ops"`
}
