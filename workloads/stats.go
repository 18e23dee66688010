package workloads

import (
	"sync/atomic"

	"github.com/quorum-kv/quorum/history"
)

// Stats counts a run's operations: invoked, and by how they ended.
// Invoked - OK - Fail - Info operations are in flight.
type Stats struct {
	Invoked int64 `json:"invoked"`
	OK      int64 `json:"ok"`
	Fail    int64 `json:"fail"`
	Info    int64 `json:"info"`
}

// Progress holds live counters of a run. Its methods are safe for
// concurrent use and cheap (atomic loads and adds): a progress bar may
// poll Snapshot while Run updates it. The zero Progress is ready.
type Progress struct {
	invoked, ok, fail, info atomic.Int64
}

// Snapshot returns the counters now. The fields are read one by one,
// completions before invocations, so Invoked >= OK+Fail+Info always holds.
func (p *Progress) Snapshot() Stats {
	var s Stats
	s.OK, s.Fail, s.Info = p.ok.Load(), p.fail.Load(), p.info.Load()
	s.Invoked = p.invoked.Load()
	return s
}

func (p *Progress) invoke() { p.invoked.Add(1) }

func (p *Progress) complete(t history.Type) {
	switch t {
	case history.OK:
		p.ok.Add(1)
	case history.Fail:
		p.fail.Add(1)
	default:
		p.info.Add(1)
	}
}
