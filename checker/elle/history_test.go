package elle

import (
	"errors"
	"slices"
	"testing"

	"github.com/quorum-kv/quorum/checker/verdict"
	"github.com/quorum-kv/quorum/history"
)

func str(s string) *string { return &s }

func TestFromHistoryTakesReadsFromOkCompletionsAndKeepsOutcomes(t *testing.T) {
	events := []history.Event{
		{Index: 0, Time: 0, Type: history.Invoke, Process: 0, F: history.FTxn, Value: str(`[["append","x",1]]`)},
		{Index: 1, Time: 1, Type: history.Invoke, Process: 1, F: history.FTxn, Value: str(`[["r","x",null],["append","y",1]]`)},
		{Index: 2, Time: 2, Type: history.Invoke, Process: history.NemesisProcess, F: "kill-leader"},
		{Index: 3, Time: 3, Type: history.Invoke, Process: 2, F: history.FRead, Key: "r"},
		{Index: 4, Time: 10, Type: history.OK, Process: 0, F: history.FTxn, Value: str(`[["append","x",1]]`)},
		{Index: 5, Time: 11, Type: history.OK, Process: 1, F: history.FTxn, Value: str(`[["r","x",[1]],["append","y",1]]`)},
		{Index: 6, Time: 12, Type: history.Invoke, Process: 0, F: history.FTxn, Value: str(`[["append","y",2]]`)},
		{Index: 7, Time: 13, Type: history.Invoke, Process: 3, F: history.FTxn, Value: str(`[["r","y",null]]`)},
		{Index: 8, Time: 14, Type: history.Fail, Process: 3, F: history.FTxn, Value: str(`[["r","y",null]]`)},
	}
	txns, err := FromHistory(events)
	if err != nil {
		t.Fatal(err)
	}
	if len(txns) != 4 {
		t.Fatalf("got %d txns, want 4: %+v", len(txns), txns)
	}
	want := []struct {
		process          int
		invoke, complete int64
		typ              history.Type
	}{{0, 0, 10, history.OK}, {1, 1, 11, history.OK}, {0, 12, 0, history.Info}, {3, 13, 14, history.Fail}}
	for i, w := range want {
		got := txns[i]
		if got.Process != w.process || got.Invoke != w.invoke || got.Complete != w.complete || got.Type != w.typ {
			t.Errorf("txn %d = %+v, want %+v", i, got, w)
		}
	}
	if !slices.Equal(txns[1].Ops[0].Read, []int{1}) {
		t.Errorf("read %v, want [1] from the completion", txns[1].Ops[0].Read)
	}
	if res := Check(txns); res.Verdict != verdict.Valid {
		t.Errorf("verdict %v, want valid: %+v", res.Verdict, res.Anomalies)
	}
}

func TestFromHistoryRejectsMalformedTransactions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invoke, ok *string
	}{
		{"no micro-ops", nil, nil},
		{"micro-ops that do not parse", str(`[["append","x"]]`), str(`[["append","x"]]`)},
		{"a completion unlike its invocation", str(`[["append","x",1]]`), str(`[["append","x",2]]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := []history.Event{
				{Index: 0, Time: 0, Type: history.Invoke, Process: 0, F: history.FTxn, Value: tc.invoke},
				{Index: 1, Time: 1, Type: history.OK, Process: 0, F: history.FTxn, Value: tc.ok},
			}
			if _, err := FromHistory(events); !errors.Is(err, history.ErrMalformed) {
				t.Fatalf("err %v, want one wrapping history.ErrMalformed", err)
			}
		})
	}
}
