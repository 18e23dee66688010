package workloads

import (
	"reflect"
	"testing"

	"github.com/quorum-kv/quorum/history"
)

func TestGeneratorKindsAndKeysDependOnlyOnSeedAndWorker(t *testing.T) {
	cfg := DefaultConfig()
	kindsKeys := func(g *generator, feedback history.Type) []op {
		var out []op
		for range 200 {
			o := g.next(3)
			g.observe(o, feedback, history.Str("x"))
			out = append(out, op{kind: o.kind, key: o.key, value: o.value})
		}
		return out
	}
	a := kindsKeys(newGenerator(cfg, 3), history.OK)
	b := kindsKeys(newGenerator(cfg, 3), history.Fail) // other outcomes, same draws
	if !reflect.DeepEqual(a, b) {
		t.Fatal("outcomes changed the kinds, keys or values generated")
	}
	if reflect.DeepEqual(a, kindsKeys(newGenerator(cfg, 4), history.OK)) {
		t.Fatal("workers 3 and 4 generated the same operations")
	}
	counts := map[opKind]int{}
	for _, o := range a {
		counts[o.kind]++
	}
	if counts[opRead] == 0 || counts[opWrite] == 0 || counts[opCAS] == 0 || counts[opAdd]+counts[opReadSet] != 0 {
		t.Fatalf("register op kinds %v", counts)
	}
}

func TestGeneratorCASExpectsWhatTheWorkerLastSaw(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Keys = 1
	cfg.Mix = Mix{CAS: 1}
	g := newGenerator(cfg, 0)
	key := cfg.RegisterKey(0)
	if o := g.next(0); o.kind != opCAS || o.expected != nil {
		t.Fatalf("first cas %+v: want expected absent (nothing seen yet)", o)
	}
	g.observe(op{kind: opRead, key: key}, history.OK, history.Str("seen"))
	for range 20 {
		o := g.next(0)
		if o.expected == nil || *o.expected != "seen" {
			t.Fatalf("cas %+v: want expected %q (no own writes to choose from)", o, "seen")
		}
	}
	g.observe(op{kind: opWrite, key: key, value: "mine"}, history.OK, nil)
	for range 50 {
		if o := g.next(0); o.expected == nil || *o.expected != "mine" {
			t.Fatalf("cas %+v: want expected %q", o, "mine")
		}
	}
	g.observe(op{kind: opWrite, key: key, value: "maybe"}, history.Info, nil)
	for range 50 {
		if o := g.next(0); o.expected != nil && *o.expected != "mine" && *o.expected != "maybe" {
			t.Fatalf("after an info write, cas %+v expects neither an own value nor absent", o)
		}
	}
}
