package checker

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/history"
)

// The saved histories under testdata/histories/<name>/ are small runs with
// known verdicts: history.jsonl plus expected.json. They double as fixtures
// for `quorum check`. Regenerate them from fixtureHistories with
//
//	go test ./checker -run TestSavedHistories -update
var update = flag.Bool("update", false, "rewrite testdata/histories from fixtureHistories")

const fixturesDir = "../testdata/histories"

// expectation is the content of expected.json.
type expectation struct {
	Workload    string  `json:"workload"`
	Verdict     Verdict `json:"verdict"`
	Description string  `json:"description"`
}

type fixture struct {
	name   string
	expect expectation
	spans  []span
	faults []fault
}

// ms converts milliseconds to the nanosecond times of a history.
func ms(n int64) int64 { return n * 1_000_000 }

func nodeSpan(sp span, node string, rev int64) span {
	sp.node, sp.rev = node, rev
	return sp
}

func fixtureHistories() []fixture {
	regFinal := func(p int, key, node string, v string, rev, call, ret int64) span {
		return span{p: p, f: history.FFinalRead, key: key, call: call, ret: ret, typ: ok, read: str(v), rev: rev, node: node}
	}
	return []fixture{
		{
			name: "register-valid",
			expect: expectation{WorkloadRegister, Valid,
				"two keys, overlapping reads, writes and cas under a partition; a timed-out write later observed (its client continues as process 3); final reads agree"},
			spans: []span{
				nodeSpan(write(0, "k0", "0-1", ms(1), ms(3), ok, 0), "n1", 2),
				nodeSpan(read(1, "k0", str("0-1"), ms(2), ms(4), 0), "n2", 2),
				nodeSpan(write(2, "k1", "2-1", ms(2), ms(5), ok, 0), "n3", 3),
				nodeSpan(cas(0, "k0", str("0-1"), "0-2", ms(6), ms(9), ok, ""), "n1", 4),
				nodeSpan(read(1, "k0", str("0-1"), ms(6), ms(7), 0), "n2", 2),
				nodeSpan(write(2, "k1", "2-2", ms(10), ms(60), info, 0), "n3", 0),
				nodeSpan(read(1, "k1", str("2-1"), ms(20), ms(22), 0), "n1", 3),
				nodeSpan(read(0, "k0", str("0-2"), ms(30), ms(31), 0), "n2", 4),
				nodeSpan(cas(3, "k1", str("2-9"), "3-1", ms(61), ms(62), fail, history.ErrCompareFailed), "n1", 0),
				nodeSpan(read(1, "k1", str("2-2"), ms(80), ms(81), 0), "n1", 5),
				regFinal(4, "k0", "n1", "0-2", 4, ms(100), ms(101)),
				regFinal(5, "k0", "n2", "0-2", 4, ms(100), ms(101)),
				regFinal(6, "k1", "n1", "2-2", 5, ms(100), ms(101)),
				regFinal(7, "k1", "n2", "2-2", 5, ms(100), ms(101)),
			},
			faults: []fault{{"partition-halves", ms(8), ms(70), "n1 n2 | n3"}},
		},
		{
			name: "register-stale-read",
			expect: expectation{WorkloadRegister, Invalid,
				"a read served by the minority side of a partition returns the value overwritten by a write that had already completed"},
			spans: []span{
				nodeSpan(write(0, "k0", "0-1", ms(1), ms(2), ok, 0), "n1", 2),
				nodeSpan(write(0, "k0", "0-2", ms(10), ms(12), ok, 0), "n1", 3),
				nodeSpan(read(1, "k0", str("0-1"), ms(20), ms(21), 0), "n3", 2),
			},
			faults: []fault{{"partition-halves", ms(5), ms(30), "n1 n2 | n3"}},
		},
		{
			name: "register-failed-write-observed",
			expect: expectation{WorkloadRegister, Invalid,
				"a write reported as failed (definitely not applied) is later read back"},
			spans: []span{
				nodeSpan(write(0, "k0", "0-1", ms(1), ms(2), ok, 0), "n1", 2),
				{p: 1, f: history.FWrite, key: "k0", val: str("1-1"), call: ms(5), ret: ms(6), typ: fail, err: "etcdserver: not leader", node: "n2"},
				nodeSpan(read(2, "k0", str("1-1"), ms(10), ms(11), 0), "n1", 3),
			},
			faults: []fault{{"kill-leader", ms(4), ms(8), "n2"}},
		},
		{
			name: "register-no-ok-ops",
			expect: expectation{WorkloadRegister, Unknown,
				"every operation timed out during a partition: nothing was checked"},
			spans: []span{
				nodeSpan(write(0, "k0", "0-1", ms(1), ms(1001), info, 0), "n1", 0),
				{p: 1, f: history.FRead, key: "k0", call: ms(1), ret: ms(1001), typ: info, err: "context deadline exceeded", node: "n2"},
			},
			faults: []fault{{"partition-majorities-ring", ms(0), -1, "n1: n2 | n2: n3 | n3: n1"}},
		},
		{
			name: "set-valid",
			expect: expectation{WorkloadSet, Valid,
				"concurrent adds, one timing out but applied (recovered); the three members' final reads agree"},
			spans: []span{
				add(0, "0-1", ms(1), ms(2), ok), add(1, "1-1", ms(1), ms(3), ok),
				add(0, "0-2", ms(4), ms(1004), info), add(2, "2-1", ms(5), ms(6), fail),
				add(1, "1-2", ms(7), ms(8), ok),
				finalRead(3, "n1", ms(2000), ms(2001), "0-1", "0-2", "1-1", "1-2"),
				finalRead(4, "n2", ms(2000), ms(2001), "1-2", "0-1", "0-2", "1-1"),
				finalRead(5, "n3", ms(2000), ms(2002), "0-1", "0-2", "1-1", "1-2"),
			},
			faults: []fault{{"pause-leader", ms(3), ms(1500), "n1"}},
		},
		{
			name: "set-lost-element",
			expect: expectation{WorkloadSet, Invalid,
				"an acknowledged add is missing from every member's final read after the leader was killed"},
			spans: []span{
				add(0, "0-1", ms(1), ms(2), ok), add(1, "1-1", ms(1), ms(3), ok),
				add(0, "0-2", ms(4), ms(5), ok),
				finalRead(3, "n1", ms(2000), ms(2001), "0-1", "1-1"),
				finalRead(4, "n2", ms(2000), ms(2001), "0-1", "1-1"),
			},
			faults: []fault{{"kill-leader", ms(3), ms(1000), "n1"}},
		},
		{
			name: "append-valid",
			expect: expectation{WorkloadAppend, Valid,
				"list-append txns: concurrent appends to two keys, a later txn reads both; a failed guard and a timed-out append (its client continues as process 3)"},
			spans: []span{
				txn(0, `[["append","x",1],["r","y",null]]`, `[["append","x",1],["r","y",null]]`, ms(1), ms(3), ok, ""),
				txn(1, `[["append","y",2]]`, `[["append","y",2]]`, ms(2), ms(4), ok, ""),
				txn(0, `[["r","x",null],["r","y",null]]`, `[["r","x",[1]],["r","y",[2]]]`, ms(5), ms(6), ok, ""),
				txn(1, `[["append","x",3]]`, "", ms(5), ms(6), fail, history.ErrCompareFailed),
				txn(2, `[["append","y",4]]`, "", ms(7), ms(1007), info, "context deadline exceeded"),
				txn(3, `[["r","y",null]]`, `[["r","y",[2,4]]]`, ms(1010), ms(1011), ok, ""),
			},
			faults: []fault{{"kill-leader", ms(6), ms(1000), "n1"}},
		},
		{
			name: "append-stale-read",
			expect: expectation{WorkloadAppend, Invalid,
				"a txn invoked after an append to x completed reads x empty (a stale read), a later one reads it: not strictly serializable"},
			spans: []span{
				txn(0, `[["append","x",1]]`, `[["append","x",1]]`, ms(1), ms(2), ok, ""),
				txn(1, `[["r","x",null]]`, `[["r","x",null]]`, ms(3), ms(4), ok, ""),
				txn(0, `[["r","x",null]]`, `[["r","x",[1]]]`, ms(5), ms(6), ok, ""),
			},
		},
		{
			name: "append-lost",
			expect: expectation{WorkloadAppend, Invalid,
				"two acknowledged appends to x, then reads that see only the second: the first is lost"},
			spans: []span{
				txn(0, `[["append","x",1]]`, `[["append","x",1]]`, ms(1), ms(2), ok, ""),
				txn(1, `[["append","x",2]]`, `[["append","x",2]]`, ms(3), ms(4), ok, ""),
				txn(0, `[["r","x",null]]`, `[["r","x",[2]]]`, ms(5), ms(6), ok, ""),
				txn(1, `[["r","x",null]]`, `[["r","x",[2]]]`, ms(7), ms(8), ok, ""),
			},
		},
		watchFixture("watch-valid", expectation{WorkloadWatch, Valid,
			"puts, deletes (one of an absent key) and a write txn; a prefix watcher with prev_kv cut by a kill and resumed after its last revision, a key watcher without deletes; an unknown-outcome put seen applied; the final watch from revision 1 agrees"}, ""),
		watchFixture("watch-missed-event", expectation{WorkloadWatch, Invalid,
			"the key watcher on n2 gets a progress notification at revision 4 but never the put of k/a at 4: unreliable"}, "missed"),
		watchFixture("watch-duplicate-event", expectation{WorkloadWatch, Invalid,
			"the key watcher on n2 gets the put of k/a at revision 4 twice"}, "duplicate"),
		watchFixture("watch-split-revision", expectation{WorkloadWatch, Invalid,
			"the prefix watcher on n1 gets revision 3 (the txn's put of k/b and delete of k/a) in two responses: not atomic"}, "split"),
		lockFixture("lock-valid", expectation{WorkloadLock, Valid,
			"two sessions take one lock in turn (the second waits for the first's release), each incrementing the register once; both members' final reads agree on 2"}, false),
		lockFixture("lock-two-holders", expectation{WorkloadLock, Invalid,
			"unfenced: the first holder's member is paused longer than its session's TTL, its lease expires and the second session is granted the lock while the first has not released it: two holders at once"}, true),
		leaseFixture("lease-valid", expectation{WorkloadLease, Valid,
			"a kept-alive lease with two keys: renewed once, read with both keys while alive, revoked, then read without them"}, false),
		leaseFixture("lease-outlived", expectation{WorkloadLease, Invalid,
			"an abandoned lease's two keys are still read by a linearizable read sent after its TTL plus the recorded bound ran out"}, true),
	}
}

// lockFixture is a small unfenced lock run on /quorum/lock/0 (register
// /quorum/lock-register/0, session TTL 2 s): process 0 on n1 (lease 3e8)
// takes the lock and increments, process 1 on n2 (lease 7d0) waits for it,
// increments and releases. Without overlap process 0 releases before
// process 1 is granted; with overlap n1 is paused after process 0's
// increment for longer than the TTL, and process 1 is granted the lock
// (at 5.5 s) before process 0 invokes its release (at 8.1 s).
func lockFixture(name string, expect expectation, overlap bool) fixture {
	const lk, reg = "/quorum/lock/0", "/quorum/lock-register/0"
	want := func(lease int64) history.LockHold { return history.LockHold{Lock: lk, Lease: lease, TTL: 2} }
	h0 := history.LockHold{Lock: lk, Lease: 1000, TTL: 2, Key: lk + "/3e8", Rev: 2, Granted: 2}
	h1 := history.LockHold{Lock: lk, Lease: 2000, TTL: 2, Key: lk + "/7d0", Rev: 3, Granted: 5}
	js := history.WatchJSON
	incr := func(read int64) *string { return js(history.IncrResult{Read: read, Wrote: read + 1}) }
	rel0, grant1 := ms(5), ms(7) // process 0's release, process 1's grant
	if overlap {
		rel0, grant1 = ms(8100), ms(5500)
	}
	spans := []span{
		{p: 0, f: history.FAcquire, key: lk, val: js(want(1000)), call: ms(1), ret: ms(2), typ: ok, read: js(h0), rev: 2, node: "n1"},
		{p: 1, f: history.FAcquire, key: lk, val: js(want(2000)), call: ms(1), ret: grant1, typ: ok, read: js(h1), rev: 5, node: "n2"},
		{p: 0, f: history.FIncr, key: reg, val: js(h0), call: ms(3), ret: ms(4), typ: ok, read: incr(0), rev: 4, node: "n1"},
		{p: 0, f: history.FRelease, key: lk, val: js(h0), call: rel0, ret: rel0 + ms(1), typ: ok, node: "n1"},
		{p: 1, f: history.FIncr, key: reg, val: js(h1), call: grant1 + ms(1), ret: grant1 + ms(2), typ: ok, read: incr(1), rev: 6, node: "n2"},
		{p: 1, f: history.FRelease, key: lk, val: js(h1), call: grant1 + ms(3), ret: grant1 + ms(4), typ: ok, node: "n2"},
		regFinalRead(2, reg, "n1", "2", 6, ms(9000), ms(9001)),
		regFinalRead(3, reg, "n2", "2", 6, ms(9000), ms(9001)),
	}
	var faults []fault
	if overlap {
		faults = []fault{{"pause-leader", ms(5), ms(8000), "n1"}}
	}
	return fixture{name: name, expect: expect, spans: spans, faults: faults}
}

func regFinalRead(p int, key, node, v string, rev, call, ret int64) span {
	return span{p: p, f: history.FFinalRead, key: key, call: call, ret: ret, typ: ok, read: str(v), rev: rev, node: node}
}

// leaseFixture is a small lease run under /quorum/lease/ on n1: process 0
// grants lease 3e8 (TTL 2 s, bound 6.5 s: workloads.LeaseBound(2, 1s)),
// puts two keys on it and reads them back. Kept (not outlived): renewed
// once, revoked at revision 4 and read again without its keys. Outlived:
// abandoned, and a linearizable read sent at 10 s, after the grant's
// acknowledgement + TTL + bound (8.502 s), still sees both keys.
func leaseFixture(name string, expect expectation, outlived bool) fixture {
	const prefix = "/quorum/lease/"
	k0, k1 := prefix+"0-1-0", prefix+"0-1-1"
	spec := history.LeaseSpec{TTL: 2, Plan: history.LeaseKeep, BoundNS: int64(6500 * time.Millisecond)}
	if outlived {
		spec.Plan = history.LeaseAbandon
	}
	granted := spec
	granted.ID = 1000
	js := history.WatchJSON
	both := js(history.LeaseRead{Keys: map[string]int64{k0: 1000, k1: 1000}})
	lread := func(call int64, rev int64, seen *string) span {
		return span{p: 0, f: history.FLeaseRead, key: prefix, val: str("linearizable"), call: call, ret: call + ms(1), typ: ok, read: seen, rev: rev, node: "n1"}
	}
	spans := []span{
		{p: 0, f: history.FGrant, val: js(spec), call: ms(1), ret: ms(2), typ: ok, read: js(granted), node: "n1"},
		{p: 0, f: history.FLeasePut, key: k0, val: js(granted), call: ms(3), ret: ms(4), typ: ok, rev: 2, node: "n1"},
		{p: 0, f: history.FLeasePut, key: k1, val: js(granted), call: ms(5), ret: ms(6), typ: ok, rev: 3, node: "n1"},
		lread(ms(500), 3, both),
	}
	if outlived {
		spans = append(spans, lread(ms(10000), 3, both))
	} else {
		spans = append(spans,
			span{p: 0, f: history.FKeepAlive, val: js(granted), call: ms(700), ret: ms(701), typ: ok, read: js(granted), node: "n1"},
			span{p: 0, f: history.FRevoke, val: js(granted), call: ms(1000), ret: ms(1001), typ: ok, rev: 4, node: "n1"},
			lread(ms(1002), 4, js(history.LeaseRead{Keys: map[string]int64{}})))
	}
	return fixture{name: name, expect: expect, spans: spans}
}

// watchFixture is a small watch run on keys k/a and k/b:
//
//	2 put a=1   3 txn: put b=2, delete a   4 put a=3 (unknown outcome)
//
// with missed, watcher 1 misses revision 4 but gets a progress
// notification at 4.
// watchFixture is a small watch run; bug is "" (valid), "missed" (the key
// watcher misses an event), "duplicate" (it gets one twice) or "split"
// (the prefix watcher gets one revision in two responses).
func watchFixture(name string, expect expectation, bug string) fixture {
	prefix := history.WatchSpec{Watcher: 0, Kind: "prefix", Key: "k/", RangeEnd: "k0", StartRev: 1, PrevKV: true}
	resumed := prefix
	resumed.StartRev = 4
	key := history.WatchSpec{Watcher: 1, Kind: "key", Key: "k/a", StartRev: 2, NoDelete: true, ProgressNotify: true}
	final := history.WatchSpec{Watcher: -1, Kind: "prefix", Key: "k/", RangeEnd: "k0", StartRev: 1, PrevKV: true, ProgressNotify: true}
	a1 := history.KV{Key: "k/a", Value: "1", ModRev: 2, CreateRev: 2, Version: 1}
	txnOps := `[{"f":"put","key":"k/b","value":"2"},{"f":"delete","key":"k/a"}]`
	keyResps := []history.WatchResponse{wresp(wput("k/a", "1", 2, 2, 1, nil)), wresp(wput("k/a", "3", 4, 4, 1, nil)), wprogress(4)}
	switch bug {
	case "missed":
		keyResps = slices.Delete(keyResps, 1, 2)
	case "duplicate":
		keyResps = slices.Insert(keyResps, 2, wresp(wput("k/a", "3", 4, 4, 1, nil)))
	}
	rev3 := []history.WatchResponse{wresp(wput("k/b", "2", 3, 3, 1, nil), wdel("k/a", 3, &a1))}
	if bug == "split" {
		rev3 = []history.WatchResponse{wresp(wput("k/b", "2", 3, 3, 1, nil)), wresp(wdel("k/a", 3, &a1))}
	}
	return fixture{
		name:   name,
		expect: expect,
		spans: []span{
			watchSpan(1000000, "n1", prefix, ms(0), ms(500), fail, "member n1: connection TRANSIENT_FAILURE", 0,
				append([]history.WatchResponse{wresp(wput("k/a", "1", 2, 2, 1, nil))}, rev3...)...),
			watchSpan(1000001, "n2", key, ms(0), ms(1100), ok, "", 0, keyResps...),
			nodeSpan(span{p: 0, f: history.FWrite, key: "k/a", val: str("1"), call: ms(1), ret: ms(2), typ: ok}, "n3", 2),
			nodeSpan(span{p: 1, f: history.FDelete, key: "k/b", call: ms(2), ret: ms(3), typ: ok}, "n3", 2),
			nodeSpan(span{p: 1, f: history.FWriteTxn, val: str(txnOps), call: ms(4), ret: ms(5), typ: ok}, "n2", 3),
			nodeSpan(span{p: 2, f: history.FWrite, key: "k/a", val: str("3"), call: ms(6), ret: ms(1006), typ: info, err: "context deadline exceeded"}, "n1", 0),
			watchSpan(1000000, "n1", resumed, ms(600), ms(1100), ok, "", 0,
				wresp(wput("k/a", "3", 4, 4, 1, nil))),
			watchSpan(1000002, "n1", final, ms(1200), ms(1300), ok, "", 4,
				wresp(wput("k/a", "1", 2, 2, 1, nil)),
				wresp(wput("k/b", "2", 3, 3, 1, nil), wdel("k/a", 3, &a1)),
				wresp(wput("k/a", "3", 4, 4, 1, nil)),
				wprogress(4)),
		},
		faults: []fault{{"kill-one", ms(400), ms(1000), "n1"}},
	}
}

func writeFixture(t *testing.T, f fixture) {
	dir := filepath.Join(fixturesDir, f.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := history.Save(filepath.Join(dir, "history.jsonl"), build(f.spans, f.faults...)); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(f.expect, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSavedHistories re-checks every saved history offline, as `quorum
// check` would, with the workload inferred, and expects its saved verdict.
func TestSavedHistories(t *testing.T) {
	if *update {
		for _, f := range fixtureHistories() {
			writeFixture(t, f)
		}
	}
	dirs, err := filepath.Glob(filepath.Join(fixturesDir, "*", "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < len(fixtureHistories()) {
		t.Fatalf("found %d saved histories under %s, want at least %d (run with -update)", len(dirs), fixturesDir, len(fixtureHistories()))
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want expectation
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("expected.json: %v", err)
			}
			events, err := history.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			res := Check(context.Background(), events, Options{})
			if res.Verdict != want.Verdict || res.Workload != want.Workload {
				t.Fatalf("%s: %s %v, want %s %v (%s)\nresult: %+v", dir, res.Workload, res.Verdict, want.Workload, want.Verdict, want.Description, res)
			}
		})
	}
}
