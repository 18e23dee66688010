package workloads

import (
	"math/rand/v2"
	"strconv"

	"github.com/quorum-kv/quorum/history"
)

// opKind is what a generated operation does.
type opKind int

const (
	opRead     opKind = iota // register read
	opWrite                  // register write
	opCAS                    // register compare-and-set
	opAdd                    // set add
	opReadSet                // set read
	opTxn                    // list-append transaction
	opDelete                 // watch workload: delete one key
	opWriteTxn               // watch workload: puts and deletes in one txn
)

// op is one generated operation.
type op struct {
	kind     opKind
	key      string            // register key, or the set
	value    string            // value written, cas new value, element added
	expected *string           // cas compare value (nil: absent)
	txn      []history.MicroOp // opTxn: the micro-ops, reads nil
	writes   []history.WriteOp // opWriteTxn: the writes, on distinct keys
}

// ownWrites is how many of its recent written values a generator keeps as
// cas candidates.
const ownWrites = 8

// generator is one worker's source of operations: a pure function of the
// seed, the worker index and the outcomes it is told about. Every call to
// next draws exactly three numbers from its *rand.Rand, whatever the
// workload and the state, so the sequence of operation kinds and keys of a
// worker depends only on (Seed, worker). Values are "<process>-<seq>":
// unique in a run because a process id belongs to one worker and seq
// increases with every operation of that worker. Not safe for concurrent
// use: it belongs to its worker's goroutine.
//
// In the append workload the third number chooses the transaction: 1 to 4
// micro-ops, each a read or an append on one of the worker's active keys
// (Config.AppendKeyEvery). An appended value is appends*Concurrency+worker,
// appends counting this worker's append micro-ops from 1: unique per key
// and across the run, whatever the process.
type generator struct {
	cfg     Config
	rng     *rand.Rand
	worker  int
	seq     int
	appends int
	known   map[string]*string // key -> value last read or written (nil: absent); missing: unknown
	own     []string           // recent values this worker wrote (possibly), oldest first
	cum     [3]float64         // cumulative Mix weights: read, write, cas
}

// newGenerator returns worker's generator: its rand.Rand is a PCG seeded
// with (cfg.Seed, worker).
func newGenerator(cfg Config, worker int) *generator {
	g := &generator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(worker))),
		worker: worker,
		known:  map[string]*string{},
	}
	g.cum[0] = cfg.Mix.Read
	g.cum[1] = g.cum[0] + cfg.Mix.Write
	g.cum[2] = g.cum[1] + cfg.Mix.CAS
	return g
}

// next returns the next operation, to be performed by process.
func (g *generator) next(process int) op {
	u, k, aux := g.rng.Float64(), g.rng.IntN(g.cfg.Keys), g.rng.Uint64()
	g.seq++
	value := strconv.Itoa(process) + "-" + strconv.Itoa(g.seq)
	if g.cfg.Workload == WorkloadAppend {
		return g.txn(aux)
	}
	if g.cfg.Workload == WorkloadWatch {
		return g.watchWrite(u, k, aux, value)
	}
	if g.cfg.Workload == WorkloadSet {
		if u < 1.0/SetReadEvery {
			return op{kind: opReadSet, key: g.cfg.SetKey()}
		}
		return op{kind: opAdd, key: g.cfg.SetKey(), value: value}
	}
	key := g.cfg.RegisterKey(k)
	switch x := u * g.cum[2]; {
	case x < g.cum[0]:
		return op{kind: opRead, key: key}
	case x < g.cum[1]:
		return op{kind: opWrite, key: key, value: value}
	}
	o := op{kind: opCAS, key: key, value: value}
	if last, ok := g.known[key]; ok {
		o.expected = last
	}
	// One cas in four compares with a recent value of this worker
	// instead, so that compares both hold and fail.
	if aux%4 == 0 && len(g.own) > 0 {
		o.expected = history.Str(g.own[(aux/4)%uint64(len(g.own))])
	}
	return o
}

// txn returns a list-append transaction chosen by the bits of aux: two
// for the number of micro-ops, then fifteen per micro-op (one for read or
// append, fourteen for the key among the active ones).
func (g *generator) txn(aux uint64) op {
	base := (g.seq - 1) / AppendKeyEvery
	n := 1 + int(aux&3)
	aux >>= 2
	ops := make([]history.MicroOp, 0, n)
	for range n {
		key := g.cfg.AppendKey(base + int((aux>>1)&0x3fff)%g.cfg.Keys)
		if aux&1 == 0 {
			ops = append(ops, history.MicroOp{F: history.MicroRead, Key: key})
		} else {
			g.appends++
			ops = append(ops, history.MicroOp{F: history.MicroAppend, Key: key, Value: g.appends*g.cfg.Concurrency + g.worker})
		}
		aux >>= 15
	}
	return op{kind: opTxn, txn: ops}
}

// watchWrite returns the watch workload's write chosen by u: a put of
// value (half), a delete (a quarter) or a txn (a quarter) that puts value
// at key k and puts or deletes (by aux's low bit) a second, distinct key.
func (g *generator) watchWrite(u float64, k int, aux uint64, value string) op {
	key := g.cfg.WatchKey(k)
	switch {
	case u < 0.5:
		return op{kind: opWrite, key: key, value: value}
	case u < 0.75 || g.cfg.Keys < 2:
		return op{kind: opDelete, key: key}
	}
	other := g.cfg.WatchKey((k + 1 + int(aux>>1)%(g.cfg.Keys-1)) % g.cfg.Keys)
	second := history.WriteOp{F: history.WatchDelete, Key: other}
	if aux&1 == 1 {
		second = history.WriteOp{F: history.WatchPut, Key: other, Value: value + "b"}
	}
	return op{kind: opWriteTxn, writes: []history.WriteOp{{F: history.WatchPut, Key: key, Value: value}, second}}
}

// observe tells the generator how o ended: t, and for an ok read the value
// read.
func (g *generator) observe(o op, t history.Type, read *string) {
	switch o.kind {
	case opRead:
		if t == history.OK {
			g.known[o.key] = read
		}
	case opWrite, opCAS:
		switch t {
		case history.OK:
			g.known[o.key] = history.Str(o.value)
		case history.Fail:
			if o.kind == opCAS {
				delete(g.known, o.key) // the key holds something else
			}
			return
		default:
			delete(g.known, o.key)
		}
		g.own = append(g.own, o.value)
		if len(g.own) > ownWrites {
			g.own = g.own[1:]
		}
	}
}
