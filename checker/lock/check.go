// Package lock checks the lock workload: clients take etcd's lease-based
// lock (concurrency.Mutex) and, holding it, read a register and write
// read+1 (history.FAcquire, FIncr, FRelease); final reads read every
// register on every member. Check is a pure function of the history.
//
// Two properties are checked:
//
//   - mutual exclusion: a process holds a lock from its acquire's ok
//     completion until it invokes its release (or, if it never does,
//     until the completion of its last operation under the lock: it gave
//     up then; or the end of the history). Two holds of one lock by
//     different processes that overlap in real time (the history's
//     monotonic times) are two holders at once. With fenced writes (every
//     hold Fenced) overlaps are shown but do not make the history
//     invalid: fencing is what is meant to keep the register safe, and
//     the second property checks that it did.
//   - no lost update: a register's final value (the final reads, which
//     must agree) is at least its acknowledged increments and at most
//     those plus the increments whose outcome is unknown; two ok
//     increments that wrote the same value lost one of them.
//
// An overlap is explained by the faults that were active between the
// first holder's grant and the second's: a pause of the member the first
// holder talked to, longer than its session lease's TTL, lets the lease
// expire while the holder still believes it holds the lock (Jepsen's
// finding on etcd's lock).
package lock

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

// MaxOverlaps is how many overlaps Result keeps (all are counted).
const MaxOverlaps = 20

// Holder is one hold of a lock.
type Holder struct {
	Process int    `json:"process"`
	Node    string `json:"node,omitempty"`
	Lock    string `json:"lock"`
	// Lease is the session's lease (hex, as etcdctl prints it) and TTL
	// its granted TTL in seconds; Key and Rev the session's lock key and
	// its create revision.
	Lease string `json:"lease"`
	TTL   int64  `json:"ttl,omitempty"`
	Key   string `json:"key"`
	Rev   int64  `json:"rev"`
	// From is the acquire's ok completion, To the release's invocation
	// (Released) or when the holder gave up; nanoseconds since the run
	// started. AcquireIndex is the acquire's invoke event.
	From         int64 `json:"from"`
	To           int64 `json:"to"`
	Released     bool  `json:"released"`
	AcquireIndex int64 `json:"acquire_index"`
	// Fenced: the holder's writes were fenced.
	Fenced bool `json:"fenced,omitempty"`
}

// Fault is a nemesis fault active during an overlap.
type Fault struct {
	F       string `json:"f"`
	Targets string `json:"targets,omitempty"`
	From    int64  `json:"from"`
	To      int64  `json:"to"` // -1: never healed
}

// Overlap is two holders of one lock at once.
type Overlap struct {
	Lock   string `json:"lock"`
	First  Holder `json:"first"`
	Second Holder `json:"second"`
	// From and To bound the time both held it.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Fenced: both holds wrote fenced (not an anomaly by itself).
	Fenced bool `json:"fenced,omitempty"`
	// Faults were active between First.From and Second.From.
	Faults      []Fault `json:"faults,omitempty"`
	Explanation string  `json:"explanation"`
}

// Incr is one increment.
type Incr struct {
	Index   int64        `json:"index"`
	Process int          `json:"process"`
	Node    string       `json:"node,omitempty"`
	Lease   string       `json:"lease"`
	Type    history.Type `json:"type"`
	Read    int64        `json:"read"`
	Wrote   int64        `json:"wrote"`
	From    int64        `json:"from"`
	To      int64        `json:"to"`
}

// Register is one register's account.
type Register struct {
	Key string `json:"key"`
	// Final is the value the final reads agree on (nil: none read).
	Final *int64 `json:"final"`
	// OK, Fail and Info count its increments by how they ended.
	OK   int `json:"ok"`
	Fail int `json:"fail"`
	Info int `json:"info"`
	// Lost is OK - Final when positive: acknowledged increments missing.
	// Extra is Final - OK - Info when positive: increments nobody made.
	Lost  int64 `json:"lost,omitempty"`
	Extra int64 `json:"extra,omitempty"`
	// SameWrite holds ok increments that wrote a value another ok
	// increment wrote too (the first few pairs).
	SameWrite [][2]Incr `json:"same_write,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// Result is the lock check's outcome.
type Result struct {
	Verdict verdict.Verdict `json:"verdict"`
	Reason  string          `json:"reason,omitempty"`
	// Fenced: every hold wrote fenced.
	Fenced bool `json:"fenced"`
	// Holds counts ok acquires; Acquires, Incrs and Releases count
	// operations by how they ended: [ok, fail, info].
	Holds    int    `json:"holds"`
	Acquires [3]int `json:"acquires"`
	Incrs    [3]int `json:"incrs"`
	Releases [3]int `json:"releases"`
	// OverlapCount counts overlaps; Overlaps are the first MaxOverlaps,
	// unfenced first, then by time.
	OverlapCount int        `json:"overlap_count"`
	Overlaps     []Overlap  `json:"overlaps,omitempty"`
	Registers    []Register `json:"registers"`
	// LostUpdates sums Register.Lost.
	LostUpdates int64 `json:"lost_updates"`
}

func count(c *[3]int, t history.Type) {
	switch t {
	case history.OK:
		c[0]++
	case history.Fail:
		c[1]++
	default:
		c[2]++
	}
}

// LeaseHex renders a lease ID as etcdctl does.
func LeaseHex(id int64) string { return strconv.FormatInt(id, 16) }

// Check checks a lock workload history.
func Check(events []history.Event) Result {
	var res Result
	ops, faults, err := history.Operations(events)
	if err != nil {
		res.Reason = fmt.Sprintf("cannot check: %v", err)
		return res
	}
	end := int64(0)
	if n := len(events); n > 0 {
		end = events[n-1].Time
	}
	doneAt := func(o history.Op) int64 {
		if o.Complete == nil {
			return end
		}
		return o.Complete.Time
	}
	byProcess := map[int][]history.Op{}
	var procs []int
	regs := map[string]*Register{}
	reg := func(k string) *Register {
		if r := regs[k]; r != nil {
			return r
		}
		regs[k] = &Register{Key: k}
		return regs[k]
	}
	writes := map[string]map[int64][]Incr{}
	finals := map[string][]*string{}
	res.Fenced = true
	for _, o := range ops {
		switch o.F() {
		case history.FAcquire, history.FIncr, history.FRelease:
			if _, ok := byProcess[o.Process()]; !ok {
				procs = append(procs, o.Process())
			}
			byProcess[o.Process()] = append(byProcess[o.Process()], o)
		case history.FFinalRead:
			if o.Type() == history.OK {
				finals[o.Key()] = append(finals[o.Key()], o.Complete.Value)
			}
		}
		switch o.F() {
		case history.FAcquire:
			count(&res.Acquires, o.Type())
		case history.FRelease:
			count(&res.Releases, o.Type())
		case history.FIncr:
			count(&res.Incrs, o.Type())
			r := reg(o.Key())
			switch o.Type() {
			case history.OK:
				r.OK++
				var h history.LockHold
				var ir history.IncrResult
				if err := unmarshal(o.Invoke.Value, &h); err != nil {
					res.Reason = fmt.Sprintf("cannot check: incr #%d: %v", o.Invoke.Index, err)
					return res
				}
				if err := unmarshal(o.Complete.Value, &ir); err != nil {
					res.Reason = fmt.Sprintf("cannot check: incr #%d: %v", o.Invoke.Index, err)
					return res
				}
				if writes[o.Key()] == nil {
					writes[o.Key()] = map[int64][]Incr{}
				}
				writes[o.Key()][ir.Wrote] = append(writes[o.Key()][ir.Wrote], Incr{
					Index: o.Invoke.Index, Process: o.Process(), Node: o.Complete.Node, Lease: LeaseHex(h.Lease),
					Type: history.OK, Read: ir.Read, Wrote: ir.Wrote, From: o.Invoke.Time, To: o.Complete.Time,
				})
			case history.Fail:
				r.Fail++
			default:
				r.Info++
			}
		}
	}

	// Holds, per process: from an ok acquire to the next release's
	// invocation, or the last operation's completion.
	holds := map[string][]Holder{}
	for _, p := range procs {
		pops := byProcess[p]
		for i, o := range pops {
			if o.F() != history.FAcquire || o.Type() != history.OK {
				continue
			}
			var h history.LockHold
			if err := unmarshal(o.Complete.Value, &h); err != nil {
				res.Reason = fmt.Sprintf("cannot check: acquire #%d: %v", o.Invoke.Index, err)
				return res
			}
			res.Holds++
			res.Fenced = res.Fenced && h.Fenced
			hd := Holder{Process: p, Node: o.Complete.Node, Lock: o.Key(), Lease: LeaseHex(h.Lease), TTL: h.TTL,
				Key: h.Key, Rev: h.Rev, Fenced: h.Fenced, From: o.Complete.Time, To: o.Complete.Time, AcquireIndex: o.Invoke.Index}
			for _, n := range pops[i+1:] {
				if n.F() == history.FAcquire {
					break
				}
				if n.F() == history.FRelease {
					hd.To, hd.Released = n.Invoke.Time, true
					break
				}
				hd.To = doneAt(n)
			}
			if !hd.Released && i == len(pops)-1 {
				hd.To = end // never released, nothing after: held to the end
			}
			holds[hd.Lock] = append(holds[hd.Lock], hd)
		}
	}
	if res.Holds == 0 {
		res.Fenced = false
	}
	names := make([]string, 0, len(holds))
	for k := range holds {
		names = append(names, k)
	}
	slices.Sort(names)
	var overlaps []Overlap
	for _, name := range names {
		hs := holds[name]
		slices.SortFunc(hs, func(a, b Holder) int { return cmp.Compare(a.From, b.From) })
		for i, a := range hs {
			for _, b := range hs[i+1:] {
				if b.From >= a.To {
					break
				}
				if b.Process == a.Process {
					continue
				}
				overlaps = append(overlaps, overlap(a, b, faults))
			}
		}
	}
	res.OverlapCount = len(overlaps)
	slices.SortStableFunc(overlaps, func(a, b Overlap) int {
		if a.Fenced != b.Fenced {
			if a.Fenced {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.From, b.From)
	})
	res.Overlaps = overlaps[:min(len(overlaps), MaxOverlaps)]

	// Registers.
	for k := range finals {
		reg(k)
	}
	keys := make([]string, 0, len(regs))
	for k := range regs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	unknown := ""
	lostAny := false
	for _, k := range keys {
		r := regs[k]
		var final *int64
		for _, v := range finals[k] {
			n := int64(0)
			if v != nil {
				x, err := strconv.ParseInt(*v, 10, 64)
				if err != nil {
					r.Reason = fmt.Sprintf("final read %q is not a count", *v)
					break
				}
				n = x
			}
			if final != nil && *final != n {
				r.Reason = fmt.Sprintf("final reads disagree: %d and %d", *final, n)
				final = nil
				break
			}
			final = &n
		}
		if final == nil && r.Reason == "" {
			r.Reason = "no final read"
		}
		r.Final = final
		if final != nil {
			if d := int64(r.OK) - *final; d > 0 {
				r.Lost = d
			}
			if d := *final - int64(r.OK+r.Info); d > 0 {
				r.Extra = d
			}
		}
		vals := make([]int64, 0, len(writes[k]))
		for v := range writes[k] {
			vals = append(vals, v)
		}
		slices.Sort(vals)
		for _, v := range vals {
			if w := writes[k][v]; len(w) > 1 && len(r.SameWrite) < 5 {
				r.SameWrite = append(r.SameWrite, [2]Incr{w[0], w[1]})
			}
		}
		res.LostUpdates += r.Lost
		if r.Lost > 0 || r.Extra > 0 || len(r.SameWrite) > 0 {
			lostAny = true
		}
		if r.Final == nil && unknown == "" {
			unknown = fmt.Sprintf("register %s: %s", k, r.Reason)
		}
		res.Registers = append(res.Registers, *r)
	}

	unfenced := len(overlaps) > 0 && !overlaps[0].Fenced
	switch {
	case unfenced || lostAny:
		res.Verdict = verdict.Invalid
	case res.Holds == 0:
		res.Reason = "no lock was acquired: nothing was checked"
	case res.Incrs[0] == 0:
		res.Reason = "no increment completed ok: nothing was checked"
	case unknown != "":
		res.Reason = unknown
	default:
		res.Verdict = verdict.Valid
	}
	return res
}

// overlap describes a and b (b granted while a held) with the faults
// active between a's grant and b's.
func overlap(a, b Holder, faults []history.Fault) Overlap {
	o := Overlap{Lock: a.Lock, First: a, Second: b, From: b.From, To: min(a.To, b.To)}
	o.Fenced = a.Fenced && b.Fenced
	for _, f := range faults {
		to := int64(-1)
		if f.End != nil {
			to = f.End.Time
		}
		if f.Start.Time < b.From && (to < 0 || to > a.From) {
			t := ""
			if f.Start.Value != nil {
				t = *f.Start.Value
			}
			o.Faults = append(o.Faults, Fault{F: f.Start.F, Targets: t, From: f.Start.Time, To: to})
		}
	}
	o.Explanation = fmt.Sprintf("process %d on %s held %s from %s (session lease %s, TTL %d s, key %s) until %s; process %d on %s was granted it at %s (lease %s, key %s)",
		a.Process, a.Node, a.Lock, secs(a.From), a.Lease, a.TTL, a.Key, secs(a.To), b.Process, b.Node, secs(b.From), b.Lease, b.Key)
	for _, f := range o.Faults {
		to := "never healed"
		if f.To >= 0 {
			to = "to " + secs(f.To)
		}
		o.Explanation += fmt.Sprintf("; %s %s from %s %s", f.F, f.Targets, secs(f.From), to)
		if f.To >= 0 && a.TTL > 0 && f.To-f.From > a.TTL*1e9 {
			o.Explanation += fmt.Sprintf(" (%s, longer than the %d s TTL: the first holder's lease expired while its member did not answer its keep-alives)",
				secs(f.To-f.From), a.TTL)
		}
	}
	if o.Fenced {
		o.Explanation += "; both wrote fenced, so the first holder's late writes were refused"
	}
	return o
}

func secs(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

func unmarshal(v *string, into any) error {
	if v == nil {
		return fmt.Errorf("no value")
	}
	return json.Unmarshal([]byte(*v), into)
}
