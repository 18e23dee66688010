package checker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/quorum-kv/quorum/history"
)

const (
	ok   = history.OK
	fail = history.Fail
	info = history.Info
)

func TestRegisterVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		spans   []span
		want    Verdict
		failing []string
	}{
		{"stale read after a completed write is invalid", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			read(1, "x", nil, 20, 30, 0),
		}, Invalid, []string{"x"}},
		{"concurrent overlapping ops are valid", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			read(1, "x", str("1"), 5, 15, 0),
			read(2, "x", nil, 6, 8, 0),
			cas(3, "x", str("1"), "2", 12, 20, ok, ""),
			read(1, "x", str("2"), 25, 30, 0),
		}, Valid, nil},
		{"an info write observed later is valid", []span{
			write(0, "x", "1", 0, 5, info, 0),
			read(1, "x", nil, 6, 7, 0),
			read(1, "x", str("1"), 20, 30, 0),
		}, Valid, nil},
		{"an info write never observed is valid", []span{
			write(0, "x", "1", 0, 5, info, 0),
			read(1, "x", nil, 20, 30, 0),
		}, Valid, nil},
		{"an uncompleted write observed later is valid", []span{
			write(0, "x", "1", 0, -1, "", 0),
			read(1, "x", str("1"), 20, 30, 0),
		}, Valid, nil},
		{"a failed write observed is invalid", []span{
			write(0, "x", "1", 0, 5, fail, 0),
			read(1, "x", str("1"), 10, 20, 0),
		}, Invalid, []string{"x"}},
		{"a value observed before it is written is invalid", []span{
			read(1, "x", str("1"), 0, 5, 0),
			write(0, "x", "1", 10, 20, ok, 0),
		}, Invalid, []string{"x"}},
		{"a value read back after being overwritten is invalid", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			write(0, "x", "2", 20, 30, ok, 0),
			read(1, "x", str("1"), 40, 50, 0),
		}, Invalid, []string{"x"}},
		{"an info read is not checked", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			{p: 1, f: history.FRead, key: "x", call: 20, ret: 30, typ: info, read: str("bogus")},
		}, Valid, nil},
		{"a cas whose compare held must not fail its compare", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			cas(1, "x", str("1"), "2", 20, 30, fail, history.ErrCompareFailed),
		}, Invalid, []string{"x"}},
		{"a cas that failed for another reason is dropped", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			cas(1, "x", str("1"), "2", 20, 30, fail, "etcdserver: no leader"),
			read(2, "x", str("1"), 40, 50, 0),
		}, Valid, nil},
		{"a cas that succeeded without its compare holding is invalid", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			cas(1, "x", str("9"), "2", 20, 30, ok, ""),
		}, Invalid, []string{"x"}},
		{"a cas on an absent key compares with nil", []span{
			cas(1, "x", nil, "1", 0, 10, ok, ""),
			read(2, "x", str("1"), 20, 30, 0),
		}, Valid, nil},
		{"an info cas may apply", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			cas(1, "x", str("1"), "2", 20, 25, info, "timeout"),
			read(2, "x", str("1"), 30, 35, 0),
			read(2, "x", str("2"), 40, 45, 0),
		}, Valid, nil},
		{"an info cas whose compare never held cannot apply", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			cas(1, "x", str("7"), "2", 20, 25, info, "timeout"),
			read(2, "x", str("2"), 40, 45, 0),
		}, Invalid, []string{"x"}},
		{"a read with the written revision is valid", []span{
			write(0, "x", "1", 0, 10, ok, 5),
			read(1, "x", str("1"), 20, 30, 5),
		}, Valid, nil},
		{"a read of the right value at a wrong revision is invalid", []span{
			write(0, "x", "1", 0, 10, ok, 5),
			read(1, "x", str("1"), 20, 30, 6),
		}, Invalid, []string{"x"}},
		{"a revision learned from a read pins later reads", []span{
			write(0, "x", "1", 0, 10, info, 0),
			read(1, "x", str("1"), 20, 30, 7),
			read(1, "x", str("1"), 40, 50, 8),
		}, Invalid, []string{"x"}},
		{"keys are checked independently", []span{
			write(0, "x", "1", 0, 10, ok, 0),
			write(1, "y", "2", 0, 10, ok, 0),
			read(2, "x", str("1"), 20, 30, 0),
			read(3, "y", nil, 20, 30, 0),
			read(4, "z", nil, 20, 30, 0),
		}, Invalid, []string{"y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(context.Background(), build(tt.spans), Options{Workload: WorkloadRegister})
			if res.Verdict != tt.want {
				t.Fatalf("verdict %v, want %v (result %+v, linearizability %+v)", res.Verdict, tt.want, res, res.Linearizability)
			}
			if got := res.Linearizability.FailingKeys; !reflect.DeepEqual(got, tt.failing) {
				t.Fatalf("failing keys %v, want %v", got, tt.failing)
			}
		})
	}
}

func TestSetVerdicts(t *testing.T) {
	tests := []struct {
		name  string
		spans []span
		want  Verdict
		check func(t *testing.T, r *SetResult)
	}{
		{"every acknowledged add read back is valid", []span{
			add(0, "a", 0, 10, ok), add(1, "b", 0, 10, ok),
			finalRead(2, "n1", 20, 30, "a", "b"), finalRead(3, "n2", 20, 30, "b", "a"),
		}, Valid, nil},
		{"a lost element is invalid", []span{
			add(0, "a", 0, 10, ok), add(1, "b", 0, 10, ok),
			finalRead(2, "n1", 20, 30, "a"),
		}, Invalid, func(t *testing.T, r *SetResult) {
			if !reflect.DeepEqual(r.Lost, []string{"b"}) {
				t.Errorf("lost %v, want [b]", r.Lost)
			}
		}},
		{"an unexpected element is invalid", []span{
			add(0, "a", 0, 10, ok),
			finalRead(2, "n1", 20, 30, "a", "zz"),
		}, Invalid, func(t *testing.T, r *SetResult) {
			if !reflect.DeepEqual(r.Unexpected, []string{"zz"}) {
				t.Errorf("unexpected %v, want [zz]", r.Unexpected)
			}
		}},
		{"a failed add present is invalid", []span{
			add(0, "a", 0, 10, ok), add(1, "b", 0, 10, fail),
			finalRead(2, "n1", 20, 30, "a", "b"),
		}, Invalid, func(t *testing.T, r *SetResult) {
			if !reflect.DeepEqual(r.FailedPresent, []string{"b"}) {
				t.Errorf("failed present %v, want [b]", r.FailedPresent)
			}
		}},
		{"an info add present is recovered and valid", []span{
			add(0, "a", 0, 10, ok), add(1, "b", 0, 10, info), add(2, "c", 0, -1, ""),
			finalRead(3, "n1", 20, 30, "a", "b"),
		}, Valid, func(t *testing.T, r *SetResult) {
			if !reflect.DeepEqual(r.Recovered, []string{"b"}) || r.Attempted != 3 || r.Acknowledged != 1 {
				t.Errorf("result %+v, want recovered [b], 3 attempted, 1 acknowledged", r)
			}
		}},
		{"adds without a final read are unknown", []span{
			add(0, "a", 0, 10, ok),
		}, Unknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(context.Background(), build(tt.spans), Options{Workload: WorkloadSet})
			if res.Verdict != tt.want || res.Set.Verdict != tt.want {
				t.Fatalf("verdict %v (set %+v), want %v", res.Verdict, res.Set, tt.want)
			}
			if res.Linearizability != nil {
				t.Errorf("set workload ran a linearizability check: %+v", res.Linearizability)
			}
			if tt.check != nil {
				tt.check(t, res.Set)
			}
		})
	}
}

func TestFinalReadsMustAgree(t *testing.T) {
	tests := []struct {
		name     string
		workload string
		spans    []span
		want     Verdict
		missing  map[string][]string // node -> missing elements
	}{
		{"set members that differ disagree", WorkloadSet, []span{
			add(0, "a", 0, 10, info), add(1, "b", 0, 10, ok),
			finalRead(2, "n1", 20, 30, "a", "b"), finalRead(3, "n2", 20, 30, "b"),
		}, Invalid, map[string][]string{"n2": {"a"}}},
		{"register members that differ disagree", WorkloadRegister, []span{
			write(0, "x", "1", 0, 10, ok, 0),
			{p: 2, f: history.FFinalRead, key: "x", call: 20, ret: 30, typ: ok, read: str("1"), node: "n1"},
			{p: 3, f: history.FFinalRead, key: "x", call: 20, ret: 30, typ: ok, read: nil, node: "n2"},
		}, Invalid, nil},
		{"register members that agree", WorkloadRegister, []span{
			write(0, "x", "1", 0, 10, ok, 3),
			{p: 2, f: history.FFinalRead, key: "x", call: 20, ret: 30, typ: ok, read: str("1"), rev: 3, node: "n1"},
			{p: 3, f: history.FFinalRead, key: "x", call: 20, ret: 30, typ: ok, read: str("1"), rev: 3, node: "n2"},
			{p: 4, f: history.FFinalRead, key: "x", call: 20, ret: 30, typ: info, node: "n3"},
		}, Valid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(context.Background(), build(tt.spans), Options{Workload: tt.workload})
			fr := res.FinalReads
			if fr == nil || fr.Verdict != tt.want || res.Verdict != tt.want {
				t.Fatalf("verdict %v, final reads %+v, want %v", res.Verdict, fr, tt.want)
			}
			for _, r := range fr.Reads {
				if want := tt.missing[r.Node]; !reflect.DeepEqual(r.Missing, want) {
					t.Errorf("node %s missing %v, want %v", r.Node, r.Missing, want)
				}
			}
		})
	}
}

func TestNothingCheckedIsUnknown(t *testing.T) {
	tests := []struct {
		name   string
		events []history.Event
		reason string
	}{
		{"empty history", nil, "nothing was checked"},
		{"only failed and info operations", build([]span{
			write(0, "x", "1", 0, 10, fail, 0),
			write(1, "x", "2", 0, 10, info, 0),
			{p: 2, f: history.FRead, key: "x", call: 0, ret: 10, typ: info},
		}), "nothing was checked"},
		{"malformed history", []history.Event{
			{Index: 0, Type: history.OK, Process: 0, F: history.FRead, Key: "x"},
		}, "nothing in flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(context.Background(), tt.events, Options{Workload: WorkloadRegister})
			if res.Verdict != Unknown || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("verdict %v reason %q, want unknown because %q", res.Verdict, res.Reason, tt.reason)
			}
			if l := res.Linearizability; l != nil && l.Verdict != Unknown {
				t.Fatalf("linearizability verdict %v with nothing checked, want unknown", l.Verdict)
			}
		})
	}
}

func TestUnknownWorkloadIsUnknown(t *testing.T) {
	res := Check(context.Background(), build([]span{write(0, "x", "1", 0, 10, ok, 0)}), Options{Workload: "bank"})
	if res.Verdict != Unknown || !strings.Contains(res.Reason, `"bank"`) {
		t.Fatalf("verdict %v reason %q", res.Verdict, res.Reason)
	}
}

func TestWorkloadIsInferredFromOperations(t *testing.T) {
	set := Check(context.Background(), build([]span{add(0, "a", 0, 1, ok), finalRead(1, "n1", 2, 3, "a")}), Options{})
	reg := Check(context.Background(), build([]span{write(0, "x", "1", 0, 1, ok, 0)}), Options{})
	if set.Workload != WorkloadSet || set.Verdict != Valid || reg.Workload != WorkloadRegister || reg.Verdict != Valid {
		t.Fatalf("set: %s %v; register: %s %v", set.Workload, set.Verdict, reg.Workload, reg.Verdict)
	}
}

// hardHistory returns a key whose history is not linearizable but takes
// porcupine an exhaustive search of about n*2^(n-1) states to refute: n
// concurrent writes of distinct values, then a read of a value never
// written.
func hardHistory(n int) []history.Event {
	var spans []span
	for i := range n {
		spans = append(spans, write(i, "x", string(rune('a'+i)), 0, 100, ok, 0))
	}
	spans = append(spans, read(n, "x", str("never written"), 200, 300, 0))
	return build(spans)
}

func TestTimeoutIsUnknownNeverValid(t *testing.T) {
	// 18 writes: ~2.4M states, seconds of search and a large memo table;
	// the 1ms limit stops it long before.
	events := hardHistory(18)
	res := Check(context.Background(), events, Options{Workload: WorkloadRegister, Timeout: time.Millisecond})
	if res.Verdict != Unknown || !reflect.DeepEqual(res.Linearizability.UnknownKeys, []string{"x"}) {
		t.Fatalf("verdict %v, linearizability %+v, want unknown on key x", res.Verdict, res.Linearizability)
	}
	// The same shape, small enough to finish, is refuted: the unknown
	// above is the timeout, not the history.
	res = Check(context.Background(), hardHistory(6), Options{Workload: WorkloadRegister, Timeout: time.Minute})
	if res.Verdict != Invalid {
		t.Fatalf("small hard history: verdict %v, want invalid", res.Verdict)
	}
}

func TestCancelledContextIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Check(ctx, hardHistory(6), Options{Workload: WorkloadRegister})
	if res.Verdict != Unknown {
		t.Fatalf("verdict %v, want unknown", res.Verdict)
	}
}

func TestCancellationStopsASearchInProgress(t *testing.T) {
	// No deadline: only cancellation can stop this seconds-long search,
	// and the refused steps it causes must not be read as a violation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	res := Check(ctx, hardHistory(18), Options{Workload: WorkloadRegister})
	if res.Verdict != Unknown || !reflect.DeepEqual(res.Linearizability.UnknownKeys, []string{"x"}) {
		t.Fatalf("verdict %v, linearizability %+v, want unknown on key x", res.Verdict, res.Linearizability)
	}
	// A liveness bound, not a performance one: the uncancelled search
	// takes about 10s (much more under -race); honouring the
	// cancellation takes milliseconds.
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Check returned %v after the start, long after its context was cancelled at 20ms", d)
	}
}

func TestContextDeadlineBoundsTheSearch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res := Check(ctx, hardHistory(18), Options{Workload: WorkloadRegister, Timeout: time.Hour})
	if res.Verdict != Unknown {
		t.Fatalf("verdict %v, want unknown", res.Verdict)
	}
}

func TestInvalidHistoryWritesVisualizationOfFailingKeys(t *testing.T) {
	dir := t.TempDir()
	events := build([]span{
		write(0, "good", "1", 0, 10, ok, 0),
		read(1, "good", str("1"), 20, 30, 0),
		write(0, "bad", "2", 40, 50, ok, 0),
		read(1, "bad", nil, 60, 70, 0),
	}, fault{"partition-halves", 5, 65, "n1 n2 | n3"}, fault{"kill-leader", 66, -1, "n2"})
	res := Check(context.Background(), events, Options{Workload: WorkloadRegister, VisualizeDir: dir})
	lin := res.Linearizability
	want := filepath.Join(dir, VisualizationFile)
	if res.Verdict != Invalid || lin.Visualization != want || lin.VisualizationError != "" {
		t.Fatalf("verdict %v, linearizability %+v, want invalid with visualization %s", res.Verdict, lin, want)
	}
	html, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`write(bad, \"2\") -\u003e ok`, "partition-halves n1 n2 | n3", "kill-leader n2"} {
		if !strings.Contains(string(html), s) {
			t.Errorf("visualization lacks %q", s)
		}
	}
	if strings.Contains(string(html), `write(good`) {
		t.Errorf("visualization includes the linearizable key")
	}
	if res.Faults["partition-halves"] != 1 || res.Faults["kill-leader"] != 1 {
		t.Errorf("faults %v", res.Faults)
	}
}

func TestValidHistoryWritesNoVisualization(t *testing.T) {
	dir := t.TempDir()
	res := Check(context.Background(), build([]span{write(0, "x", "1", 0, 10, ok, 0)}), Options{Workload: WorkloadRegister, VisualizeDir: dir})
	if res.Verdict != Valid || res.Linearizability.Visualization != "" {
		t.Fatalf("verdict %v, linearizability %+v", res.Verdict, res.Linearizability)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("wrote %v", entries)
	}
}

func TestResultJSONFieldNamesAreStable(t *testing.T) {
	events := build([]span{
		write(0, "x", "1", 0, 10, ok, 4),
		write(1, "x", "2", 0, 10, fail, 0),
		read(2, "x", nil, 20, 30, 0),
	})
	res := Check(context.Background(), events, Options{Workload: WorkloadRegister})
	res.Linearizability.Duration = 1500
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"verdict":"invalid","workload":"register",` +
		`"linearizability":{"verdict":"invalid","keys":1,"operations":2,"failing_keys":["x"],"duration_ns":1500},` +
		`"counts":{"read":{"ok":1,"fail":0,"info":0},"write":{"ok":1,"fail":1,"info":0}}}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, res) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, res)
	}
}

func TestRegisterModelWorksOnPorcupineEvents(t *testing.T) {
	// The event form partitions by key too: x is fine, y is stale.
	w := func(id int, k, v string) porcupine.Event {
		return porcupine.Event{Kind: porcupine.CallEvent, Id: id, Value: RegisterOp{Key: k, F: history.FWrite, Value: str(v)}}
	}
	r := func(id int, k string) porcupine.Event {
		return porcupine.Event{Kind: porcupine.CallEvent, Id: id, Value: RegisterOp{Key: k, F: history.FRead}}
	}
	ret := func(id int, v *string) porcupine.Event {
		return porcupine.Event{Kind: porcupine.ReturnEvent, Id: id, Value: RegisterResult{Value: v}}
	}
	good := []porcupine.Event{w(0, "x", "1"), ret(0, nil), w(1, "y", "2"), ret(1, nil), r(2, "x"), ret(2, str("1"))}
	if !porcupine.CheckEvents(RegisterModel(), good) {
		t.Fatal("linearizable event history refuted")
	}
	bad := append(good, r(3, "y"), ret(3, nil))
	if porcupine.CheckEvents(RegisterModel(), bad) {
		t.Fatal("stale read on y accepted")
	}
}
