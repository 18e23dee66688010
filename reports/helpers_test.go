package reports

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/quorum-kv/quorum/history"
)

// opSpec is one client operation of a hand-made history. done < 0 means
// the operation never completes.
type opSpec struct {
	p         int
	f         string
	inv, done time.Duration
	typ       history.Type
}

// faultSpec is one fault; end < 0 means it is still active at the end.
type faultSpec struct {
	name       string
	start, end time.Duration
}

// timed is an event before indexes are assigned; seq keeps the order of
// events at the same time stable (an invoke before its completion).
type timed struct {
	e   history.Event
	seq int
}

// build turns specs into a well-formed history, events sorted by time.
func build(ops []opSpec, faults []faultSpec) []history.Event {
	var ts []timed
	add := func(e history.Event) { ts = append(ts, timed{e, len(ts)}) }
	for _, o := range ops {
		key := "k"
		var val *string
		if o.f != history.FRead && o.f != history.FFinalRead {
			val = history.Str(fmt.Sprint(o.inv))
		}
		add(history.Event{Time: int64(o.inv), Type: history.Invoke, Process: o.p, F: o.f, Key: key, Value: val})
		if o.done >= 0 {
			add(history.Event{Time: int64(o.done), Type: o.typ, Process: o.p, F: o.f, Key: key, Value: val})
		}
	}
	for _, f := range faults {
		add(history.Event{Time: int64(f.start), Type: history.Invoke, Process: history.NemesisProcess, F: f.name, Value: history.Str("n1")})
		if f.end >= 0 {
			add(history.Event{Time: int64(f.end), Type: history.OK, Process: history.NemesisProcess, F: f.name, Value: history.Str("n1")})
		}
	}
	slices.SortStableFunc(ts, func(a, b timed) int { return cmp.Or(cmp.Compare(a.e.Time, b.e.Time), cmp.Compare(a.seq, b.seq)) })
	events := make([]history.Event, len(ts))
	for i, t := range ts {
		t.e.Index = int64(i)
		events[i] = t.e
	}
	return events
}

// synthetic builds a register-workload history of about n operations over
// 40s from 8 clients, with a kill-leader fault at 10s-13s and a partition
// at 25s-30s during which writes fail or time out, then final reads.
func synthetic(seed uint64, n int) []history.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	const clients = 8
	const span = 40 * time.Second
	faults := []faultSpec{{"kill-leader", 10 * time.Second, 13 * time.Second}, {"partition-halves", 25 * time.Second, 30 * time.Second}}
	inFault := func(t time.Duration) bool {
		for _, f := range faults {
			if t >= f.start && t < f.end {
				return true
			}
		}
		return false
	}
	var ops []opSpec
	nextProc := clients
	for c := range clients {
		p := c
		t := time.Duration(rng.IntN(20)) * time.Millisecond
		for t < span && len(ops) < n {
			f := []string{history.FRead, history.FWrite, history.FCAS}[rng.IntN(3)]
			lat := time.Duration(2+rng.ExpFloat64()*8) * time.Millisecond
			typ := history.OK
			if inFault(t) && f != history.FRead {
				switch rng.IntN(3) {
				case 0:
					typ = history.Fail
					lat = time.Duration(rng.IntN(50)+1) * time.Millisecond
				case 1:
					typ = history.Info
					lat = time.Second
				default:
					lat += time.Duration(rng.IntN(2000)) * time.Millisecond
				}
			}
			ops = append(ops, opSpec{p, f, t, t + lat, typ})
			t += lat + time.Duration(rng.IntN(200))*time.Millisecond
			if typ == history.Info {
				p = nextProc
				nextProc++
			}
		}
	}
	for m := range 3 {
		ops = append(ops, opSpec{1000 + m, history.FFinalRead, span + time.Second, span + time.Second + time.Millisecond, history.OK})
	}
	return build(ops, faults)
}
