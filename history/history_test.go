package history

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock returns a fake clock that advances by one microsecond per call.
func stepClock() func() time.Duration {
	var mu sync.Mutex
	var now time.Duration
	return func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		now += time.Microsecond
		return now
	}
}

func TestRecorderCompletionRepeatsInvocationAndCarriesResult(t *testing.T) {
	r := NewRecorder(stepClock())
	w := r.Invoke(0, Invocation{F: FWrite, Key: "k", Value: Str("a"), Node: "n1"})
	rd := r.Invoke(1, Invocation{F: FRead, Key: "k"})
	r.Complete(w, OK, Completion{Revision: 7, Value: Str("ignored")})
	r.Complete(rd, OK, Completion{Value: Str("a"), Revision: 7, Node: "n2"})
	f := r.NemesisStart("kill-leader", "n1")
	r.NemesisEnd(f, nil)

	want := []Event{
		{Index: 0, Time: 1000, Type: Invoke, Process: 0, F: FWrite, Key: "k", Value: Str("a"), Node: "n1"},
		{Index: 1, Time: 2000, Type: Invoke, Process: 1, F: FRead, Key: "k"},
		{Index: 2, Time: 3000, Type: OK, Process: 0, F: FWrite, Key: "k", Value: Str("a"), Revision: 7, Node: "n1"},
		{Index: 3, Time: 4000, Type: OK, Process: 1, F: FRead, Key: "k", Value: Str("a"), Revision: 7, Node: "n2"},
		{Index: 4, Time: 5000, Type: Invoke, Process: NemesisProcess, F: "kill-leader", Value: Str("n1")},
		{Index: 5, Time: 6000, Type: OK, Process: NemesisProcess, F: "kill-leader", Value: Str("n1")},
	}
	if got := r.Events(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
}

func TestRecorderMisuseIsAProgrammingError(t *testing.T) {
	tests := []struct {
		name string
		do   func(r *Recorder)
		want string // substring of the panic message
	}{
		{"second invoke on a busy process", func(r *Recorder) {
			r.Invoke(3, Invocation{F: FRead, Key: "k"})
			r.Invoke(3, Invocation{F: FRead, Key: "k"})
		}, "in flight"},
		{"invoke after an info completion", func(r *Recorder) {
			h := r.Invoke(3, Invocation{F: FWrite, Key: "k", Value: Str("v")})
			r.Complete(h, Info, Completion{Error: "timeout"})
			r.Invoke(3, Invocation{F: FRead, Key: "k"})
		}, "new process id"},
		{"negative client process", func(r *Recorder) {
			r.Invoke(-1, Invocation{F: FRead, Key: "k"})
		}, "must be >= 0"},
		{"complete twice", func(r *Recorder) {
			h := r.Invoke(0, Invocation{F: FRead, Key: "k"})
			r.Complete(h, OK, Completion{})
			r.Complete(h, OK, Completion{})
		}, "already completed"},
		{"complete with invoke type", func(r *Recorder) {
			h := r.Invoke(0, Invocation{F: FRead, Key: "k"})
			r.Complete(h, Invoke, Completion{})
		}, "want ok, fail or info"},
		{"zero handle", func(r *Recorder) {
			r.Complete(Handle{}, OK, Completion{})
		}, "invalid handle"},
		{"end a fault twice", func(r *Recorder) {
			h := r.NemesisStart("pause", "n2")
			r.NemesisEnd(h, nil)
			r.NemesisEnd(h, nil)
		}, "already completed"},
		{"complete a fault", func(r *Recorder) {
			h := r.NemesisStart("pause", "n2")
			r.Complete(h, OK, Completion{})
		}, "use NemesisEnd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("no panic")
				}
				if msg, _ := p.(string); !strings.Contains(msg, tt.want) {
					t.Fatalf("panic %v, want it to mention %q", p, tt.want)
				}
			}()
			tt.do(NewRecorder(stepClock()))
		})
	}
}

func TestRecorderConcurrentClientsYieldAWellFormedHistory(t *testing.T) {
	r := NewRecorder(stepClock())
	var wg sync.WaitGroup
	const clients, opsPerClient = 8, 50
	for p := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range opsPerClient {
				h := r.Invoke(p, Invocation{F: FWrite, Key: "k", Value: Str(string(rune('a'+p)) + string(rune('0'+i%10)))})
				r.Complete(h, OK, Completion{Revision: int64(i + 1)})
			}
		}()
	}
	wg.Wait()
	events := r.Events()
	if len(events) != 2*clients*opsPerClient {
		t.Fatalf("got %d events, want %d", len(events), 2*clients*opsPerClient)
	}
	ops, _, err := Operations(events)
	if err != nil {
		t.Fatalf("Operations: %v", err)
	}
	if len(ops) != clients*opsPerClient {
		t.Fatalf("got %d ops, want %d", len(ops), clients*opsPerClient)
	}
}

func TestRecorderClampsAClockThatGoesBackwards(t *testing.T) {
	times := []time.Duration{5, 3, 9}
	i := 0
	r := NewRecorder(func() time.Duration { d := times[i]; i++; return d })
	h := r.Invoke(0, Invocation{F: FRead, Key: "k"})
	r.Complete(h, OK, Completion{})
	h = r.Invoke(0, Invocation{F: FRead, Key: "k"})
	var got []int64
	for _, e := range r.Events() {
		got = append(got, e.Time)
	}
	if want := []int64{5, 5, 9}; !reflect.DeepEqual(got, want) {
		t.Fatalf("times %v, want %v", got, want)
	}
	_ = h
}

func TestJSONLRoundTripPreservesEvents(t *testing.T) {
	events := []Event{
		{Index: 0, Time: 10, Type: Invoke, Process: 2, F: FCAS, Key: "k/1", Value: Str("new <&>"), Expected: Str("old"), Node: "n1"},
		{Index: 1, Time: 11, Type: Invoke, Process: 0, F: FRead, Key: "k/1"},
		{Index: 2, Time: 12, Type: OK, Process: 0, F: FRead, Key: "k/1", Value: nil, Node: "n3"},
		{Index: 3, Time: 15, Type: Fail, Process: 2, F: FCAS, Key: "k/1", Value: Str("new <&>"), Expected: Str("old"), Error: ErrCompareFailed},
		{Index: 4, Time: 16, Type: Invoke, Process: 5, F: FFinalRead, Key: "set"},
		{Index: 5, Time: 17, Type: OK, Process: 5, F: FFinalRead, Key: "set", Elements: []string{"1", "2"}, Revision: 44},
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, events); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(events) {
		t.Fatalf("wrote %d lines, want %d", n, len(events))
	}
	if !strings.Contains(buf.String(), `"value":null`) {
		t.Fatalf("a read of an absent key must keep \"value\":null on disk:\n%s", buf.String())
	}
	got, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Fatalf("round trip:\n got %v\nwant %v", got, events)
	}

	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := Save(path, events); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, events) {
		t.Fatalf("Save/Load:\n got %v\nwant %v", loaded, events)
	}
}

func TestReadJSONLNamesTheBadLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax error", `{"index":0,"type":"invoke","f":"read"}` + "\n\n" + `{"index":1,` + "\n", "line 3"},
		{"unknown type", `{"index":0,"type":"invoke","f":"read"}` + "\n" + `{"index":1,"type":"done"}` + "\n", `line 2: event type "done"`},
		{"wrong field type", `{"index":"zero","type":"invoke"}`, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSONL(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.jsonl")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want it to name %s", err, path)
	}
}

func TestOperationsPairsInvocationsAndCompletions(t *testing.T) {
	r := NewRecorder(stepClock())
	a := r.Invoke(0, Invocation{F: FWrite, Key: "x", Value: Str("1")})
	f1 := r.NemesisStart("partition-halves", "n1,n2 | n3")
	b := r.Invoke(1, Invocation{F: FWrite, Key: "x", Value: Str("2")})
	f2 := r.NemesisStart("kill", "n3")
	r.Complete(a, Info, Completion{Error: "context deadline exceeded"})
	r.NemesisEnd(f1, nil)
	r.Complete(b, Fail, Completion{Error: "etcdserver: no leader"})
	c := r.Invoke(2, Invocation{F: FRead, Key: "x"})
	_ = f2 // still active when the history ends
	_ = c  // never completes

	ops, faults, err := Operations(r.Events())
	if err != nil {
		t.Fatal(err)
	}
	var gotTypes []Type
	for _, op := range ops {
		gotTypes = append(gotTypes, op.Type())
	}
	if want := []Type{Info, Fail, Info}; !reflect.DeepEqual(gotTypes, want) {
		t.Fatalf("op types %v, want %v", gotTypes, want)
	}
	if ops[2].Complete != nil || ops[2].Process() != 2 || ops[2].F() != FRead || ops[2].Key() != "x" {
		t.Fatalf("unfinished op = %+v", ops[2])
	}
	if len(faults) != 2 || faults[0].Start.F != "partition-halves" || faults[0].End == nil || faults[0].End.Type != OK || faults[1].End != nil {
		t.Fatalf("faults = %+v", faults)
	}
}

func TestOperationsRejectsMalformedHistories(t *testing.T) {
	inv := func(i, tm int64, p int) Event {
		return Event{Index: i, Time: tm, Type: Invoke, Process: p, F: FRead, Key: "k"}
	}
	done := func(i, tm int64, p int, ty Type) Event {
		return Event{Index: i, Time: tm, Type: ty, Process: p, F: FRead, Key: "k"}
	}
	tests := []struct {
		name   string
		events []Event
		want   string
	}{
		{"index not increasing", []Event{inv(0, 1, 0), done(0, 2, 0, OK)}, "indexes must strictly increase"},
		{"time going backwards", []Event{inv(0, 5, 0), done(1, 4, 0, OK)}, "time went backwards"},
		{"completion without invoke", []Event{done(0, 1, 0, OK)}, "nothing in flight"},
		{"two invokes in flight", []Event{inv(0, 1, 0), inv(1, 2, 0)}, "in flight"},
		{"reuse after info", []Event{inv(0, 1, 0), done(1, 2, 0, Info), inv(2, 3, 0)}, "after its info completion"},
		{"completion of another key", []Event{inv(0, 1, 0), {Index: 1, Time: 2, Type: OK, Process: 0, F: FRead, Key: "other"}}, "does not match"},
		{"unknown type", []Event{{Index: 0, Type: "maybe", F: FRead}}, "unknown type"},
		{"fault end without start", []Event{{Index: 0, Type: OK, Process: NemesisProcess, F: "kill"}}, "was not started"},
		{"negative client process", []Event{inv(0, 1, -2)}, "client processes are >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Operations(tt.events)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrMalformed mentioning %q", err, tt.want)
			}
		})
	}
}
