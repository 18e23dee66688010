package wal

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// position is the index bookkeeping shared by the writer and the replayer.
// It is pure: no I/O, no clock.
type position struct {
	// base is the index of the newest snapshot restore; entries at or below
	// it can never be written again. 0 when no restore is known.
	base uint64
	// last is the index of the newest entry in the log (or base, or the
	// index before the first segment's first index when nothing else is
	// known).
	last uint64
}

// checkEntry reports whether an entry with index idx may follow the log as
// it stands: it must lie after the newest restore and must not leave a gap.
// An index at or below last overwrites that suffix of the log.
func (p position) checkEntry(idx uint64) error {
	if idx <= p.base {
		return fmt.Errorf("entry index %d is not after the snapshot restored at index %d", idx, p.base)
	}
	if idx > p.last+1 {
		return fmt.Errorf("entry index %d leaves a gap after index %d", idx, p.last)
	}
	return nil
}

// replayer rebuilds Contents from decoded records, applying the same rules
// raft's log does: an entry with index k discards every earlier entry >= k,
// and a snapshot restore discards every earlier entry.
type replayer struct {
	pos     position
	started bool // a segment header has been applied
	hs      raftpb.HardState
	ents    []raftpb.Entry
	// restoreIndex and restoreTerm are the newest snapshot restore seen.
	restoreIndex, restoreTerm uint64
	// segMax holds, per segment applied so far, the highest index of an entry
	// from that segment that is still live (0 when none is).
	segMax []uint64
}

// segment starts a new segment whose file name says (seq, first).
func (r *replayer) segment(nameSeq, nameFirst uint64, h segmentHeader) error {
	if h.seq != nameSeq || h.firstIndex != nameFirst {
		return fmt.Errorf("segment header says sequence %d, first index %d; the file name says %d, %d",
			h.seq, h.firstIndex, nameSeq, nameFirst)
	}
	if !r.started {
		r.started = true
		if h.firstIndex > 0 {
			r.pos.last = h.firstIndex - 1
		}
	} else if h.firstIndex != r.pos.last+1 {
		return fmt.Errorf("segment starts at index %d but the log before it ends at index %d",
			h.firstIndex, r.pos.last)
	}
	r.segMax = append(r.segMax, 0)
	return nil
}

func (r *replayer) state(st raftpb.HardState) { r.hs = st }

func (r *replayer) entry(e raftpb.Entry) error {
	if err := r.pos.checkEntry(e.Index); err != nil {
		return err
	}
	switch {
	case len(r.ents) == 0 || e.Index < r.ents[0].Index:
		// The first entry after a restore, or after segments released by
		// ReleaseTo, or an overwrite reaching below everything still held.
		r.ents = append(r.ents[:0], e)
	default:
		r.ents = append(r.ents[:e.Index-r.ents[0].Index], e)
	}
	r.pos.last = e.Index
	r.segMax[len(r.segMax)-1] = max(r.segMax[len(r.segMax)-1], e.Index)
	return nil
}

func (r *replayer) restore(index, term uint64) {
	clear(r.ents) // drop references to the discarded entries' data
	r.ents = r.ents[:0]
	r.pos = position{base: index, last: index}
	r.restoreIndex, r.restoreTerm = index, term
	clear(r.segMax)
}
