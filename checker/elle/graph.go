package elle

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/history"
)

// edge is one outgoing edge; kind is a set of edgeKinds when several
// dependencies join the same two transactions.
type edge struct {
	to   int32
	kind edgeKind
}

// graph is the dependency graph over transaction indices in compressed
// form: the edges of node v are edges[start[v]:start[v+1]], sorted by to.
type graph struct {
	start []int32
	edges []edge
}

func (g *graph) out(v int32) []edge { return g.edges[g.start[v]:g.start[v+1]] }

// kinds returns the kinds of the edge from a to b (0: none).
func (g *graph) kinds(a, b int32) edgeKind {
	es := g.out(a)
	i, ok := slices.BinarySearchFunc(es, b, func(e edge, t int32) int { return cmp.Compare(e.to, t) })
	if !ok {
		return 0
	}
	return es[i].kind
}

type edgeRec struct {
	from, to int32
	kind     edgeKind
}

// buildGraph infers the data dependencies from the version orders and adds
// the real-time order in transitively reduced form.
func (a *analysis) buildGraph() {
	var recs []edgeRec
	committed := func(i int32) bool { return a.txns[i].Type != history.Fail }
	add := func(from, to int32, k edgeKind) {
		if from != to && committed(from) && committed(to) {
			recs = append(recs, edgeRec{from, to, k})
		}
	}
	for _, k := range a.keys {
		for p := 1; p < len(k.order); p++ {
			w1, ok1 := k.appender[k.order[p-1]]
			w2, ok2 := k.appender[k.order[p]]
			if ok1 && ok2 {
				add(w1, w2, kWW)
			}
		}
	}
	a.reads(func(r int32, op *MicroOp) {
		k := a.key(op.Key)
		if k.order == nil {
			return
		}
		if n := len(op.Read); n > 0 {
			if w, ok := k.appender[op.Read[n-1]]; ok {
				add(w, r, kWR)
			}
		}
		if n := len(op.Read); n < len(k.order) {
			if w, ok := k.appender[k.order[n]]; ok {
				add(r, w, kRW)
			}
		}
	})
	recs = a.realtime(recs)
	a.g = compress(len(a.txns), recs)
}

// realtime appends an edge T1 -> T2 for every ok T1 that completed before
// T2 (ok or info) was invoked, transitively reduced: T2's predecessors are
// the frontier of completed transactions not yet followed by another
// completed one, so the edges number about the concurrency times the
// transactions, not their square.
func (a *analysis) realtime(recs []edgeRec) []edgeRec {
	type event struct {
		at       int64
		complete bool
		txn      int32
	}
	var events []event
	for i := range a.txns {
		t := &a.txns[i]
		switch t.Type {
		case history.OK:
			events = append(events, event{t.Invoke, false, int32(i)}, event{t.Complete, true, int32(i)})
		case history.Info:
			events = append(events, event{t.Invoke, false, int32(i)})
		}
	}
	// At equal times invocations come first: completing at the instant
	// another is invoked does not order the two.
	slices.SortFunc(events, func(x, y event) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		if x.complete != y.complete {
			if x.complete {
				return 1
			}
			return -1
		}
		return cmp.Compare(x.txn, y.txn)
	})
	var frontier []int32
	preds := map[int32][]int32{}
	dominated := make([]int32, len(a.txns)) // txn+1 of the txn that dominates it
	for _, e := range events {
		if !e.complete {
			for _, f := range frontier {
				recs = append(recs, edgeRec{f, e.txn, kRT})
			}
			if len(frontier) > 0 && a.txns[e.txn].Type == history.OK {
				preds[e.txn] = slices.Clone(frontier)
			}
			continue
		}
		for _, f := range preds[e.txn] {
			dominated[f] = e.txn + 1
		}
		delete(preds, e.txn)
		frontier = slices.DeleteFunc(frontier, func(f int32) bool { return dominated[f] == e.txn+1 })
		frontier = append(frontier, e.txn)
	}
	return recs
}

// compress builds the graph of n nodes from recs, merging parallel edges.
func compress(n int, recs []edgeRec) graph {
	slices.SortFunc(recs, func(x, y edgeRec) int {
		if c := cmp.Compare(x.from, y.from); c != 0 {
			return c
		}
		return cmp.Compare(x.to, y.to)
	})
	g := graph{start: make([]int32, n+1), edges: make([]edge, 0, len(recs))}
	for i, r := range recs {
		if i > 0 && recs[i-1].from == r.from && recs[i-1].to == r.to {
			g.edges[len(g.edges)-1].kind |= r.kind
			continue
		}
		g.edges = append(g.edges, edge{r.to, r.kind})
		g.start[r.from+1]++
	}
	for v := 1; v <= n; v++ {
		g.start[v] += g.start[v-1]
	}
	return g
}

// tarjan finds strongly connected components over the edges of kinds in
// mask between nodes of one region. Its arrays are reused between runs:
// each run resets what it touched.
type tarjan struct {
	g       *graph
	region  []int32
	index   []int32 // 0: not visited
	low     []int32
	onStack []bool
	stack   []int32
	next    int32
}

func newTarjan(g *graph, n int) *tarjan {
	return &tarjan{g: g, region: make([]int32, n), index: make([]int32, n), low: make([]int32, n), onStack: make([]bool, n)}
}

// components returns the components of two or more nodes reachable among
// nodes, within the region of nodes[0].
func (t *tarjan) components(nodes []int32, mask edgeKind) [][]int32 {
	var comps [][]int32
	rid := t.region[nodes[0]]
	var visit func(v int32)
	visit = func(v int32) {
		t.next++
		t.index[v], t.low[v] = t.next, t.next
		t.stack = append(t.stack, v)
		t.onStack[v] = true
		for _, e := range t.g.out(v) {
			w := e.to
			if e.kind&mask == 0 || t.region[w] != rid {
				continue
			}
			if t.index[w] == 0 {
				visit(w)
				t.low[v] = min(t.low[v], t.low[w])
			} else if t.onStack[w] {
				t.low[v] = min(t.low[v], t.index[w])
			}
		}
		if t.low[v] != t.index[v] {
			return
		}
		i := len(t.stack) - 1
		for t.stack[i] != v {
			i--
		}
		comp := slices.Clone(t.stack[i:])
		for _, w := range comp {
			t.onStack[w] = false
		}
		t.stack = t.stack[:i]
		if len(comp) > 1 {
			comps = append(comps, comp)
		}
	}
	for _, v := range nodes {
		if t.index[v] == 0 {
			visit(v)
		}
	}
	for _, v := range nodes {
		t.index[v], t.low[v] = 0, 0
	}
	t.next = 0
	return comps
}

// path returns a shortest path from one node to another over edges of
// kinds in mask within their region, both ends included, or nil.
func (t *tarjan) path(from, to int32, mask edgeKind) []int32 {
	rid := t.region[from]
	parent := map[int32]int32{from: -1}
	queue := []int32{from}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range t.g.out(v) {
			w := e.to
			if e.kind&mask == 0 || t.region[w] != rid {
				continue
			}
			if w == to {
				p := []int32{to, v}
				for u := parent[v]; u >= 0; u = parent[u] {
					p = append(p, u)
				}
				slices.Reverse(p)
				return p
			}
			if _, seen := parent[w]; !seen {
				parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	return nil
}

// cycles finds every strongly connected component of the dependency graph
// and reports, in each, one short cycle per kind of anomaly it shows.
func (a *analysis) cycles() {
	n := len(a.txns)
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	t := newTarjan(&a.g, n)
	comps := t.components(all, kWW|kWR|kRW|kRT)
	for c, comp := range comps {
		for _, v := range comp {
			t.region[v] = int32(c + 1)
		}
		slices.Sort(comp)
		seen := map[string]bool{}
		for _, s := range a.search(t, comp) {
			an := a.describeCycle(s.cycle, s.masks)
			if !seen[an.Kind] {
				seen[an.Kind] = true
				a.report(an)
			}
		}
	}
}

// found is a cycle and the edge kinds allowed for each of its steps.
type found struct {
	cycle []int32
	masks []edgeKind
}

// search looks for a cycle in comp with each anomaly's edge set, weakest
// first: G0, G1c, G-single, G2, then the same with real-time edges. The
// component has a cycle over all its edges, so the last search succeeds.
func (a *analysis) search(t *tarjan, comp []int32) []found {
	var out []found
	for _, rt := range []edgeKind{0, kRT} {
		if c, m := a.single(t, comp, kWW|kWR|rt); c != nil {
			out = append(out, found{c, m})
		}
		for _, mask := range []edgeKind{kWW | rt, kWW | kWR | rt, kWW | kWR | kRW | rt} {
			if c := a.cycle(t, comp, mask); c != nil {
				masks := make([]edgeKind, len(c))
				for i := range masks {
					masks[i] = mask
				}
				out = append(out, found{c, masks})
			}
		}
	}
	if len(out) == 0 {
		panic("elle: a strongly connected component without a cycle")
	}
	return out
}

// cycle returns a short cycle in comp over edges of kinds in mask, or nil.
func (a *analysis) cycle(t *tarjan, comp []int32, mask edgeKind) []int32 {
	sub := t.components(comp, mask)
	if len(sub) == 0 {
		return nil
	}
	s := sub[0][0]
	var best []int32
	for _, e := range t.g.out(s) {
		if e.kind&mask == 0 || t.region[e.to] != t.region[s] {
			continue
		}
		if p := t.path(e.to, s, mask); p != nil && (best == nil || len(p) < len(best)) {
			best = p
		}
	}
	// best runs from a successor of s back to s: put s first.
	return append([]int32{s}, best[:len(best)-1]...)
}

// single looks for a cycle of exactly one read-write edge and otherwise
// edges of kinds in mask.
func (a *analysis) single(t *tarjan, comp []int32, mask edgeKind) ([]int32, []edgeKind) {
	tries := 0
	for _, v := range comp {
		for _, e := range t.g.out(v) {
			if e.kind&kRW == 0 || t.region[e.to] != t.region[v] {
				continue
			}
			if tries++; tries > maxSingleSearches {
				return nil, nil
			}
			p := t.path(e.to, v, mask)
			if p == nil {
				continue
			}
			cycle := append([]int32{v}, p[:len(p)-1]...)
			masks := make([]edgeKind, len(cycle))
			masks[0] = kRW
			for i := 1; i < len(masks); i++ {
				masks[i] = mask
			}
			return cycle, masks
		}
	}
	return nil, nil
}

// describeCycle names the cycle by the kinds of its steps.
func (a *analysis) describeCycle(cycle []int32, masks []edgeKind) Anomaly {
	steps := make([]Step, len(cycle))
	var rw, wr, rt int
	for i, v := range cycle {
		w := cycle[(i+1)%len(cycle)]
		have := a.g.kinds(v, w) & masks[i]
		var k edgeKind
		for _, pref := range []edgeKind{kWW, kWR, kRW, kRT} {
			if have&pref != 0 {
				k = pref
				break
			}
		}
		switch k {
		case kWR:
			wr++
		case kRW:
			rw++
		case kRT:
			rt++
		}
		steps[i] = Step{Txn: a.ref(v), Edge: k.String(), Why: a.explain(v, w, k)}
	}
	var kind string
	switch {
	case rw == 0 && wr == 0:
		kind = G0
	case rw == 0:
		kind = G1c
	case rw == 1:
		kind = GSingle
	default:
		kind = G2
	}
	if rt > 0 {
		kind += RealtimeSuffix
	}
	names := make([]string, len(cycle))
	for i, s := range steps {
		names[i] = fmt.Sprintf("T%d -%s->", s.Txn.Index, s.Edge)
	}
	return Anomaly{Kind: kind, Cycle: steps,
		Explanation: fmt.Sprintf("cycle of %d transactions: %s T%d", len(cycle), strings.Join(names, " "), cycle[0])}
}

// explain says which key and values (or times) make the edge v -> w.
func (a *analysis) explain(v, w int32, k edgeKind) string {
	tv, tw := &a.txns[v], &a.txns[w]
	switch k {
	case kWW:
		for _, op := range tv.Ops {
			ks := a.key(op.Key)
			p, ok := ks.pos[op.Value]
			if op.F == FAppend && ok && ks.order != nil && p+1 < len(ks.order) && ks.appender[ks.order[p+1]] == w {
				return fmt.Sprintf("T%d appended %d to %s; T%d appended the next element, %d", v, op.Value, op.Key, w, ks.order[p+1])
			}
		}
	case kWR:
		for _, op := range tw.Ops {
			ks := a.key(op.Key)
			if op.F == FRead && ks.order != nil && len(op.Read) > 0 && ks.appender[op.Read[len(op.Read)-1]] == v {
				return fmt.Sprintf("T%d appended %d to %s; T%d read %s ending in it", v, op.Read[len(op.Read)-1], op.Key, w, op.Key)
			}
		}
	case kRW:
		for _, op := range tv.Ops {
			ks := a.key(op.Key)
			if op.F == FRead && ks.order != nil && len(op.Read) < len(ks.order) && ks.appender[ks.order[len(op.Read)]] == w {
				return fmt.Sprintf("T%d read %s = %s; T%d appended the next element, %d", v, op.Key, brief(op.Read), w, ks.order[len(op.Read)])
			}
		}
	case kRT:
		return fmt.Sprintf("T%d completed at %d before T%d was invoked at %d", v, tv.Complete, w, tw.Invoke)
	}
	return ""
}
