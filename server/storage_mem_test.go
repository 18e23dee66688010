package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The in-memory twins of LogStorage and SnapshotStorage. They live in test
// files: quorumd itself only ever persists to disk.

// memDisk is what a member's storage twins keep between incarnations of the
// member, as a data dir does: the log (hard state and entries) and the
// snapshots. Every Save is durable at once (there is no crash to lose an
// unsynced write to). A member restarted over the same memDisk recovers
// what the previous one persisted (openMemMember).
type memDisk struct {
	mu    sync.Mutex
	hs    raftpb.HardState
	ents  []raftpb.Entry
	snaps []raftpb.Snapshot // oldest first, with their data

	// trace, when set, records every call, for the Ready-ordering scripts.
	trace *trace
	// failNext makes the next log write fail.
	failNext bool
}

func newMemDisk() *memDisk { return &memDisk{} }

// memLog is the twin of the WAL.
type memLog struct{ d *memDisk }

var _ LogStorage = memLog{}

var errInjected = errors.New("injected write failure")

func (l memLog) Save(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ents) == 0 && raft.IsEmptyHardState(hs) {
		return nil
	}
	d.trace.add("persist hardstate=%s entries=%s sync=%t", fmtHardState(hs), fmtEntries(ents), sync)
	if d.failNext {
		d.failNext = false
		return errInjected
	}
	if len(ents) > 0 {
		first := ents[0].Index
		keep := d.ents[:0:0]
		for _, e := range d.ents {
			if e.Index < first {
				keep = append(keep, e)
			}
		}
		d.ents = append(keep, ents...)
	}
	if !raft.IsEmptyHardState(hs) {
		d.hs = hs
	}
	return nil
}

// SaveSnapshotRestore discards every earlier entry, as the WAL's replay
// does at a restore marker.
func (l memLog) SaveSnapshotRestore(index, term uint64) error {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trace.add("mark-snapshot %d/%d", term, index)
	d.ents = nil
	return nil
}

func (l memLog) ReleaseTo(index uint64) error {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trace.add("release-log %d", index)
	keep := d.ents[:0:0]
	for _, e := range d.ents {
		if e.Index >= index {
			keep = append(keep, e)
		}
	}
	d.ents = keep
	return nil
}

func (l memLog) Close() error { return nil }

// memSnapshots is the twin of the snapshot directory.
type memSnapshots struct{ d *memDisk }

var _ SnapshotStorage = memSnapshots{}

func (s memSnapshots) Save(sn raftpb.Snapshot) error {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trace.add("save-snapshot %d/%d", sn.Metadata.Term, sn.Metadata.Index)
	sn.Data = append([]byte(nil), sn.Data...)
	s.put(sn)
	return nil
}

func (s memSnapshots) Create(md raftpb.SnapshotMetadata, write func(io.Writer) error) (int64, error) {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return 0, err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trace.add("create-snapshot %d/%d", md.Term, md.Index)
	s.put(raftpb.Snapshot{Metadata: md, Data: b.Bytes()})
	return int64(b.Len()), nil
}

// put keeps the snapshots ordered by index, replacing one at the same
// (term, index). Called with d.mu held.
func (s memSnapshots) put(sn raftpb.Snapshot) {
	d := s.d
	out := d.snaps[:0:0]
	for _, x := range d.snaps {
		if x.Metadata.Index != sn.Metadata.Index || x.Metadata.Term != sn.Metadata.Term {
			out = append(out, x)
		}
	}
	out = append(out, sn)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Metadata.Index < out[j].Metadata.Index })
	d.snaps = out
}

func (s memSnapshots) Load(md raftpb.SnapshotMetadata) ([]byte, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.snaps {
		if x.Metadata.Index == md.Index && x.Metadata.Term == md.Term {
			return x.Data, nil
		}
	}
	return nil, fmt.Errorf("no snapshot %d/%d", md.Term, md.Index)
}

func (s memSnapshots) Purge() error {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.snaps); n > snapshotsKept {
		d.snaps = append([]raftpb.Snapshot(nil), d.snaps[n-snapshotsKept:]...)
	}
	return nil
}

// contents is what the disk holds, as the WAL and snap.LoadNewest read it
// back at restart: the newest snapshot (nil if none), the hard state and
// the entries.
func (d *memDisk) contents() (*raftpb.Snapshot, raftpb.HardState, []raftpb.Entry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sn *raftpb.Snapshot
	if n := len(d.snaps); n > 0 {
		x := d.snaps[n-1]
		sn = &x
	}
	return sn, d.hs, append([]raftpb.Entry(nil), d.ents...)
}

func (d *memDisk) empty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return raft.IsEmptyHardState(d.hs) && len(d.ents) == 0 && len(d.snaps) == 0
}

// trace records what the twins were asked to do, in order. A nil trace
// records nothing.
type trace struct {
	mu    sync.Mutex
	lines []string
}

func (t *trace) add(format string, args ...any) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

// take returns the lines recorded since the last take.
func (t *trace) take() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	t.lines = nil
	return s
}

func fmtHardState(hs raftpb.HardState) string {
	if raft.IsEmptyHardState(hs) {
		return "-"
	}
	return fmt.Sprintf("term:%d,vote:%d,commit:%d", hs.Term, hs.Vote, hs.Commit)
}

// fmtEntries writes entries as term/index, as etcd-io/raft's scripts do.
func fmtEntries(ents []raftpb.Entry) string {
	s := make([]string, len(ents))
	for i, e := range ents {
		s[i] = fmt.Sprintf("%d/%d", e.Term, e.Index)
		if e.Type != raftpb.EntryNormal {
			s[i] += ":" + strings.TrimPrefix(e.Type.String(), "Entry")
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}
