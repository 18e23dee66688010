package checker

import (
	"sort"

	"github.com/quorum-kv/quorum/history"
)

// span is one client operation for building test histories: invoked at
// call, completed with typ at ret (no completion if ret < 0).
type span struct {
	p         int
	f, key    string
	val, exp  *string // invocation Value and Expected
	call, ret int64
	typ       history.Type
	read      *string  // completion Value of a read, of an ok txn, of a watch
	rev       int64    // completion Revision
	els       []string // completion Elements
	node, err string
}

// fault is one nemesis fault for test histories.
type fault struct {
	f          string
	start, end int64  // end < 0: never healed
	targets    string // the fault's Value; "n1" if empty
}

var str = history.Str

// build turns spans and faults into a history: events sorted by time
// (completions before invocations at equal times), indexed from 0.
func build(spans []span, faults ...fault) []history.Event {
	type ev struct {
		e     history.Event
		order int // completions first at equal times
	}
	var evs []ev
	for _, sp := range spans {
		inv := history.Event{Time: sp.call, Type: history.Invoke, Process: sp.p, F: sp.f, Key: sp.key, Value: sp.val, Expected: sp.exp, Node: sp.node}
		evs = append(evs, ev{inv, 1})
		if sp.ret < 0 {
			continue
		}
		c := inv
		c.Time, c.Type, c.Revision, c.Elements, c.Error = sp.ret, sp.typ, sp.rev, sp.els, sp.err
		if sp.f == history.FRead || sp.f == history.FFinalRead || sp.f == history.FTxn && sp.typ == history.OK ||
			sp.f == history.FWatch || sp.f == history.FFinalWatch ||
			(sp.f == history.FAcquire || sp.f == history.FIncr || sp.f == history.FGrant || sp.f == history.FKeepAlive || sp.f == history.FLeaseRead) && sp.typ == history.OK {
			c.Value = sp.read
		}
		evs = append(evs, ev{c, 0})
	}
	for _, f := range faults {
		if f.targets == "" {
			f.targets = "n1"
		}
		evs = append(evs, ev{history.Event{Time: f.start, Type: history.Invoke, Process: history.NemesisProcess, F: f.f, Value: str(f.targets)}, 1})
		if f.end >= 0 {
			evs = append(evs, ev{history.Event{Time: f.end, Type: history.OK, Process: history.NemesisProcess, F: f.f, Value: str(f.targets)}, 0})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].e.Time != evs[j].e.Time {
			return evs[i].e.Time < evs[j].e.Time
		}
		return evs[i].order < evs[j].order
	})
	out := make([]history.Event, len(evs))
	for i, e := range evs {
		e.e.Index = int64(i)
		out[i] = e.e
	}
	return out
}

// Shorthands for register spans.
func write(p int, key, v string, call, ret int64, typ history.Type, rev int64) span {
	return span{p: p, f: history.FWrite, key: key, val: str(v), call: call, ret: ret, typ: typ, rev: rev}
}

func read(p int, key string, got *string, call, ret int64, rev int64) span {
	return span{p: p, f: history.FRead, key: key, call: call, ret: ret, typ: history.OK, read: got, rev: rev}
}

func cas(p int, key string, from *string, to string, call, ret int64, typ history.Type, errStr string) span {
	return span{p: p, f: history.FCAS, key: key, exp: from, val: str(to), call: call, ret: ret, typ: typ, err: errStr}
}

func add(p int, el string, call, ret int64, typ history.Type) span {
	return span{p: p, f: history.FAdd, key: "set", val: str(el), call: call, ret: ret, typ: typ}
}

func finalRead(p int, node string, call, ret int64, els ...string) span {
	return span{p: p, f: history.FFinalRead, key: "set", call: call, ret: ret, typ: history.OK, els: els, node: node}
}

// txn is a list-append transaction: ops is its invocation's micro-ops
// JSON, done (ok only) its completion's.
func txn(p int, ops, done string, call, ret int64, typ history.Type, errStr string) span {
	sp := span{p: p, f: history.FTxn, val: str(ops), call: call, ret: ret, typ: typ, err: errStr}
	if typ == history.OK {
		sp.read = str(done)
	}
	return sp
}

// watchSpan is a watch session (history.FWatch, or FFinalWatch for
// spec.Watcher -1) with its responses; rev is the completion's Revision.
func watchSpan(p int, node string, spec history.WatchSpec, call, ret int64, typ history.Type, errStr string, rev int64, resps ...history.WatchResponse) span {
	f := history.FWatch
	if spec.Watcher == -1 {
		f = history.FFinalWatch
	}
	return span{p: p, f: f, key: spec.Key, val: history.WatchJSON(spec), call: call, ret: ret, typ: typ, err: errStr, node: node,
		read: history.WatchJSON(resps), rev: rev}
}

// wput and wdel are watch events; wresp a response of events at one
// revision, wprogress a progress notification.
func wput(key, value string, mod, create, ver int64, prev *history.KV) history.WatchEvent {
	return history.WatchEvent{Type: history.WatchPut, Kv: history.KV{Key: key, Value: value, ModRev: mod, CreateRev: create, Version: ver}, PrevKV: prev}
}

func wdel(key string, mod int64, prev *history.KV) history.WatchEvent {
	return history.WatchEvent{Type: history.WatchDelete, Kv: history.KV{Key: key, ModRev: mod}, PrevKV: prev}
}

func wresp(evs ...history.WatchEvent) history.WatchResponse {
	return history.WatchResponse{Revision: evs[0].Kv.ModRev, Events: evs}
}

func wprogress(rev int64) history.WatchResponse {
	return history.WatchResponse{Revision: rev, Progress: true}
}
