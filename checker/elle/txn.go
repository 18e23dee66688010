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

import "github.com/quorum-kv/quorum/history"

// Micro-op functions (MicroOp.F).
const (
	// FAppend appends Value to the list at Key.
	FAppend = history.MicroAppend
	// FRead reads the list at Key into Read (nil: absent or empty).
	FRead = history.MicroRead
)

// MicroOp is one step of a transaction (history.MicroOp, the vocabulary
// the workloads record in): an append of Value to Key's list, or a read of
// Key's list into Read. In JSON it is Elle's triple: ["append","x",3] or
// ["r","x",[1,2,3]].
type MicroOp = history.MicroOp

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
