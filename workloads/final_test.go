package workloads

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/history"
)

func TestFinalReadsReadEveryKeyOnEveryMemberUnderFreshProcesses(t *testing.T) {
	cfg := memConfig(WorkloadRegister, 100)
	store := NewMemStore(MemBugs{})
	_, events := runMem(t, cfg, store)
	maxWorkload := -1
	reads := map[string]map[string]bool{} // node -> keys
	procs := map[int]string{}             // final-read process -> node
	for _, e := range events {
		if e.F != history.FFinalRead {
			maxWorkload = max(maxWorkload, e.Process)
			continue
		}
		if e.Process <= maxWorkload {
			t.Fatalf("final read %v reuses a workload process (max %d)", e, maxWorkload)
		}
		if n, ok := procs[e.Process]; ok && n != e.Node {
			t.Fatalf("process %d read on %s and %s", e.Process, n, e.Node)
		}
		procs[e.Process] = e.Node
		if e.Type == history.OK {
			if reads[e.Node] == nil {
				reads[e.Node] = map[string]bool{}
			}
			reads[e.Node][e.Key] = true
		}
	}
	for _, m := range threeMembers {
		if len(reads[m.Name]) != cfg.Keys {
			t.Fatalf("member %s: final reads of %v, want all %d keys", m.Name, reads[m.Name], cfg.Keys)
		}
	}
}

func TestFinalReadsNameTheMemberThatNeverAnswered(t *testing.T) {
	cfg := memConfig(WorkloadSet, 50)
	store := NewMemStore(MemBugs{})
	down := errors.New("connection refused")
	dial := func(tg Target) (Client, error) {
		if tg.Name == "n3" {
			return nil, down
		}
		return store.Dialer()(tg)
	}
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Run(ctx, cfg, threeMembers[:2], dial, rec, nil); err != nil {
		t.Fatal(err)
	}
	err := FinalReads(ctx, cfg, threeMembers, dial, rec)
	if !errors.Is(err, down) || !strings.Contains(err.Error(), "n3") || strings.Contains(err.Error(), "n1") {
		t.Fatalf("FinalReads error %v, want n3's dial error only", err)
	}
	nodes := map[string]bool{}
	for _, e := range rec.Events() {
		if e.F == history.FFinalRead && e.Type == history.OK {
			nodes[e.Node] = true
			if len(e.Elements) == 0 {
				t.Fatalf("final read %v: empty set after acknowledged adds", e)
			}
		}
	}
	if !nodes["n1"] || !nodes["n2"] || nodes["n3"] {
		t.Fatalf("ok final reads on %v, want n1 and n2", nodes)
	}
}
