package elle

import (
	"fmt"
	"slices"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// Anomaly kinds (Anomaly.Kind). The cyclic ones follow Adya's names as Elle
// uses them; a "-realtime" suffix means the cycle needs a real-time edge, so
// it violates strict serializability but not serializability.
const (
	G0      = "G0"       // a cycle of write-write dependencies
	G1a     = "G1a"      // aborted read: a read saw an append of a failed txn
	G1b     = "G1b"      // intermediate read: a read ended at a non-final append of another txn
	G1c     = "G1c"      // a cycle of write-write and write-read dependencies
	GSingle = "G-single" // a cycle with exactly one read-write anti-dependency
	G2      = "G2"       // a cycle with more than one anti-dependency
	// RealtimeSuffix is appended to a cyclic kind whose cycle needs a
	// real-time edge.
	RealtimeSuffix = "-realtime"

	LostAppend        = "lost-append"        // an ok append missing from a read that began after it completed
	DuplicateElements = "duplicate-elements" // a list read holds a value twice
	IncompatibleOrder = "incompatible-order" // two reads of a key are not prefixes of one another
	UnexpectedElement = "unexpected-element" // a read saw a value nobody appended
	Internal          = "internal"           // a read disagrees with its own txn's earlier reads and appends
)

// Edge kinds (Step.Edge).
const (
	EdgeWW       = "ww" // the next txn appended the element right after this one's
	EdgeWR       = "wr" // the next txn read a list ending in this one's append
	EdgeRW       = "rw" // the next txn appended the element after the end of this one's read
	EdgeRealtime = "realtime"
)

// MaxExamples is how many anomalies of one kind Result.Anomalies holds at
// most; Result.Counts has them all.
const MaxExamples = 8

// maxSingleSearches bounds the read-write edges tried when looking for a
// G-single cycle in one component; past it a cycle may be reported as G2.
const maxSingleSearches = 256

// Result is the outcome of Check. It is plain data, stable in JSON.
type Result struct {
	// Verdict is Invalid if any anomaly was found, Unknown if nothing
	// could be checked (no ok transaction, malformed input: see Reason),
	// else Valid.
	Verdict verdict.Verdict `json:"verdict"`
	// Reason says why Verdict is Unknown.
	Reason string `json:"reason,omitempty"`
	// OK, Fail and Info count the transactions by outcome.
	OK   int `json:"ok"`
	Fail int `json:"fail"`
	Info int `json:"info"`
	// Counts holds how many anomalies of each kind were found.
	Counts map[string]int `json:"counts,omitempty"`
	// Anomalies holds up to MaxExamples anomalies of each kind, in the
	// order found.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
}

// Anomaly is one piece of evidence: for a cyclic kind, the cycle; otherwise
// the transactions involved and what they did.
type Anomaly struct {
	Kind string `json:"kind"`
	// Key is the key concerned, for the non-cyclic kinds.
	Key string `json:"key,omitempty"`
	// Explanation says in a sentence what is wrong.
	Explanation string `json:"explanation"`
	// Txns are the transactions involved (non-cyclic kinds).
	Txns []TxnRef `json:"txns,omitempty"`
	// Cycle is the cycle, one step per transaction; each step's edge
	// leads to the next step, the last one's back to the first.
	Cycle []Step `json:"cycle,omitempty"`
}

// TxnRef names a transaction of the input.
type TxnRef struct {
	// Index is its index in the slice given to Check.
	Index   int          `json:"index"`
	Process int          `json:"process"`
	Type    history.Type `json:"type"`
	Ops     []MicroOp    `json:"ops"`
}

// Step is one transaction of a cycle and the dependency to the next one.
type Step struct {
	Txn  TxnRef `json:"txn"`
	Edge string `json:"edge"`
	// Why says which key and values (or which times) make the edge.
	Why string `json:"why"`
}

// Check decides whether txns, the transactions of one list-append run, is
// strictly serializable. It does not modify txns; the returned Result
// shares no memory with it except the Ops slices of the TxnRefs, which the
// caller must not modify while using the Result.
func Check(txns []Txn) Result {
	a := analysis{txns: txns, counts: map[string]int{}}
	return a.run()
}

type edgeKind uint8

const (
	kWW edgeKind = 1 << iota
	kWR
	kRW
	kRT
)

func (k edgeKind) String() string {
	switch k {
	case kWW:
		return EdgeWW
	case kWR:
		return EdgeWR
	case kRW:
		return EdgeRW
	case kRT:
		return EdgeRealtime
	}
	return fmt.Sprintf("edge(%d)", uint8(k))
}

// keyState is what is known about one key.
type keyState struct {
	name     string
	appender map[int]int32 // value -> index of the txn that appended it
	order    []int         // version order: the longest list read
	pos      map[int]int   // value -> position in order
	bad      bool          // reads disagree: no order, no edges
	// lastReader is the ok txn reading this key that was invoked last.
	lastReader int32
}

type analysis struct {
	txns      []Txn
	keys      []*keyState
	keyIDs    map[string]int
	counts    map[string]int
	anomalies []Anomaly
	g         graph
}

func (a *analysis) report(an Anomaly) {
	a.counts[an.Kind]++
	if a.counts[an.Kind] <= MaxExamples {
		a.anomalies = append(a.anomalies, an)
	}
}

func (a *analysis) ref(i int32) TxnRef {
	t := &a.txns[i]
	return TxnRef{Index: int(i), Process: t.Process, Type: t.Type, Ops: t.Ops}
}

func (a *analysis) key(name string) *keyState {
	id, ok := a.keyIDs[name]
	if !ok {
		id = len(a.keys)
		a.keyIDs[name] = id
		a.keys = append(a.keys, &keyState{name: name, appender: map[int]int32{}, lastReader: -1})
	}
	return a.keys[id]
}

func (a *analysis) run() Result {
	var res Result
	a.keyIDs = map[string]int{}
	if reason := a.index(&res); reason != "" {
		res.Reason = reason
		return res
	}
	if res.OK == 0 {
		res.Reason = "no ok transaction: nothing to check"
		return res
	}
	a.checkReads()
	a.checkInternal()
	a.orders()
	a.lostAppends()
	a.buildGraph()
	a.cycles()
	res.Anomalies = a.anomalies
	if len(a.counts) > 0 {
		res.Counts = a.counts
		res.Verdict = verdict.Invalid
	} else {
		res.Verdict = verdict.Valid
	}
	return res
}

// index validates the input, counts outcomes and records who appended
// what. It returns why the input cannot be checked, or "".
func (a *analysis) index(res *Result) string {
	for i := range a.txns {
		t := &a.txns[i]
		switch t.Type {
		case history.OK:
			res.OK++
		case history.Fail:
			res.Fail++
		case history.Info:
			res.Info++
		default:
			return fmt.Sprintf("txn %d: type %q, want ok, fail or info", i, t.Type)
		}
		if t.Type == history.OK && t.Complete < t.Invoke {
			return fmt.Sprintf("txn %d: completes at %d before its invocation at %d", i, t.Complete, t.Invoke)
		}
		for _, op := range t.Ops {
			k := a.key(op.Key)
			switch op.F {
			case FAppend:
				if j, dup := k.appender[op.Value]; dup {
					return fmt.Sprintf("txns %d and %d both append %d to %q: appended values must be unique per key", j, i, op.Value, op.Key)
				}
				k.appender[op.Value] = int32(i)
			case FRead:
				if t.Type == history.OK && (k.lastReader < 0 || a.txns[k.lastReader].Invoke < t.Invoke) {
					k.lastReader = int32(i)
				}
			default:
				return fmt.Sprintf("txn %d: micro-op %q, want %q or %q", i, op.F, FAppend, FRead)
			}
		}
	}
	return ""
}

// reads calls f for every read of an ok transaction.
func (a *analysis) reads(f func(i int32, op *MicroOp)) {
	for i := range a.txns {
		t := &a.txns[i]
		if t.Type != history.OK {
			continue
		}
		for j := range t.Ops {
			if t.Ops[j].F == FRead {
				f(int32(i), &t.Ops[j])
			}
		}
	}
}

// checkReads finds aborted, intermediate and unexpected elements.
func (a *analysis) checkReads() {
	a.reads(func(r int32, op *MicroOp) {
		k := a.key(op.Key)
		for _, v := range op.Read {
			w, ok := k.appender[v]
			if !ok {
				a.report(Anomaly{Kind: UnexpectedElement, Key: k.name, Txns: []TxnRef{a.ref(r)},
					Explanation: fmt.Sprintf("T%d read %d in %s, which no transaction appended", r, v, k.name)})
				continue
			}
			if a.txns[w].Type == history.Fail {
				a.report(Anomaly{Kind: G1a, Key: k.name, Txns: []TxnRef{a.ref(w), a.ref(r)},
					Explanation: fmt.Sprintf("T%d read %d in %s, appended by T%d, which failed", r, v, k.name, w)})
			}
		}
		if len(op.Read) == 0 {
			return
		}
		last := op.Read[len(op.Read)-1]
		w, ok := k.appender[last]
		if !ok || w == r {
			return
		}
		seen := false
		for _, wop := range a.txns[w].Ops {
			if wop.F != FAppend || wop.Key != op.Key {
				continue
			}
			if seen {
				a.report(Anomaly{Kind: G1b, Key: k.name, Txns: []TxnRef{a.ref(w), a.ref(r)},
					Explanation: fmt.Sprintf("T%d read %s ending in %d, which T%d appended before appending %d", r, k.name, last, w, wop.Value)})
				return
			}
			seen = wop.Value == last
		}
	})
}

// checkInternal checks that each ok txn's reads agree with its own earlier
// reads and appends.
func (a *analysis) checkInternal() {
	type state struct {
		key      string
		read     bool
		known    []int // the list, if read
		appended []int // appends since the start, if not read
	}
	var states []state
	for i := range a.txns {
		t := &a.txns[i]
		if t.Type != history.OK {
			continue
		}
		states = states[:0]
		for _, op := range t.Ops {
			si := slices.IndexFunc(states, func(s state) bool { return s.key == op.Key })
			if si < 0 {
				states = append(states, state{key: op.Key})
				si = len(states) - 1
			}
			s := &states[si]
			if op.F == FAppend {
				if s.read {
					s.known = append(s.known, op.Value)
				} else {
					s.appended = append(s.appended, op.Value)
				}
				continue
			}
			var want string
			switch {
			case s.read && !slices.Equal(s.known, op.Read):
				want = brief(s.known)
			case !s.read && len(s.appended) > 0 &&
				(len(op.Read) < len(s.appended) || !slices.Equal(op.Read[len(op.Read)-len(s.appended):], s.appended)):
				want = "a list ending in " + brief(s.appended)
			}
			if want != "" {
				a.report(Anomaly{Kind: Internal, Key: op.Key, Txns: []TxnRef{a.ref(int32(i))},
					Explanation: fmt.Sprintf("T%d read %s = %s, but its own earlier operations imply %s", i, op.Key, brief(op.Read), want)})
			}
			s.read, s.known, s.appended = true, slices.Clone(op.Read), nil
		}
	}
}

// orders derives each key's version order from its longest read and
// reports reads that are not prefixes of it.
func (a *analysis) orders() {
	longest := make([]int32, len(a.keys))
	longestOp := make([]*MicroOp, len(a.keys))
	a.reads(func(r int32, op *MicroOp) {
		id := a.keyIDs[op.Key]
		if longestOp[id] == nil || len(op.Read) > len(longestOp[id].Read) {
			longest[id], longestOp[id] = r, op
		}
	})
	a.reads(func(r int32, op *MicroOp) {
		id := a.keyIDs[op.Key]
		k, l := a.keys[id], longestOp[id]
		if k.bad || slices.Equal(op.Read, l.Read[:len(op.Read)]) {
			return
		}
		k.bad = true
		a.report(Anomaly{Kind: IncompatibleOrder, Key: k.name, Txns: []TxnRef{a.ref(longest[id]), a.ref(r)},
			Explanation: fmt.Sprintf("T%d read %s = %s and T%d read %s: neither is a prefix of the other", longest[id], k.name, brief(l.Read), r, brief(op.Read))})
	})
	for id, k := range a.keys {
		if longestOp[id] == nil {
			continue
		}
		order := longestOp[id].Read
		k.pos = make(map[int]int, len(order))
		for p, v := range order {
			if q, dup := k.pos[v]; dup {
				a.report(Anomaly{Kind: DuplicateElements, Key: k.name, Txns: []TxnRef{a.ref(longest[id])},
					Explanation: fmt.Sprintf("T%d read %s with %d at positions %d and %d", longest[id], k.name, v, q, p)})
				k.bad = true
				break
			}
			k.pos[v] = p
		}
		if !k.bad {
			k.order = order
		}
	}
}

// lostAppends reports ok appends missing from a read that began after the
// append completed.
func (a *analysis) lostAppends() {
	for _, k := range a.keys {
		if k.bad || k.lastReader < 0 {
			continue
		}
		reader := &a.txns[k.lastReader]
		values := make([]int, 0, len(k.appender))
		for v := range k.appender {
			values = append(values, v)
		}
		slices.Sort(values)
		for _, v := range values {
			w := k.appender[v]
			t := &a.txns[w]
			if t.Type != history.OK || t.Complete >= reader.Invoke {
				continue
			}
			if _, seen := k.pos[v]; seen {
				continue
			}
			a.report(Anomaly{Kind: LostAppend, Key: k.name, Txns: []TxnRef{a.ref(w), a.ref(k.lastReader)},
				Explanation: fmt.Sprintf("T%d appended %d to %s and completed at %d; T%d, invoked later at %d, never saw it, nor did any read", w, v, k.name, t.Complete, k.lastReader, reader.Invoke)})
		}
	}
}

// brief renders a list read for an explanation, eliding the middle of a
// long one (the operations in the evidence hold it whole).
func brief(list []int) string {
	const ends = 3
	if len(list) <= 2*ends+1 {
		return fmt.Sprint(list)
	}
	return fmt.Sprintf("%v ... (%d more) ... %v", list[:ends], len(list)-2*ends, list[len(list)-ends:])
}
