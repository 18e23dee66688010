package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// reference is the expected state, kept by raft's own MemoryStorage.
type reference struct {
	ms *raft.MemoryStorage
	hs raftpb.HardState
}

func newReference() *reference { return &reference{ms: raft.NewMemoryStorage()} }

func (r *reference) save(t testing.TB, st raftpb.HardState, ents []raftpb.Entry) {
	t.Helper()
	if !raft.IsEmptyHardState(st) {
		r.hs = st
	}
	if err := r.ms.Append(ents); err != nil {
		t.Fatalf("reference append: %v", err)
	}
}

func (r *reference) restore(t testing.TB, index, term uint64) {
	t.Helper()
	snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: index, Term: term}}
	if err := r.ms.ApplySnapshot(snap); err != nil {
		t.Fatalf("reference restore: %v", err)
	}
}

func (r *reference) entries(t testing.TB) []raftpb.Entry {
	t.Helper()
	first, _ := r.ms.FirstIndex()
	last, _ := r.ms.LastIndex()
	if last < first {
		return nil
	}
	ents, err := r.ms.Entries(first, last+1, ^uint64(0))
	if err != nil {
		t.Fatalf("reference entries: %v", err)
	}
	return ents
}

// gen produces raft-like batches from a seed: mostly appends, sometimes an
// overwrite of a recent suffix under a new term.
type gen struct {
	rng        *rand.Rand
	base, last uint64
	term       uint64
	commit     uint64
}

func newGen(seed uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), term: 1}
}

func (g *gen) data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + g.rng.IntN(255)) // never zero: tests zero-fill the tail
	}
	return b
}

func (g *gen) batch(maxEnts int) (raftpb.HardState, []raftpb.Entry) {
	start := g.last + 1
	if g.last > g.commit && g.rng.IntN(5) == 0 {
		// Overwrite an uncommitted suffix, as a new leader would.
		start = g.commit + 1 + uint64(g.rng.IntN(int(g.last-g.commit)))
		g.term++
	}
	n := 1 + g.rng.IntN(maxEnts)
	ents := make([]raftpb.Entry, n)
	for i := range ents {
		ents[i] = raftpb.Entry{Term: g.term, Index: start + uint64(i), Data: g.data(1 + g.rng.IntN(40))}
	}
	g.last = start + uint64(n) - 1
	var st raftpb.HardState
	if g.rng.IntN(2) == 0 {
		g.commit = max(g.commit, g.last-uint64(g.rng.IntN(int(g.last-g.base))))
		st = raftpb.HardState{Term: g.term, Vote: 1 + uint64(g.rng.IntN(3)), Commit: g.commit}
	}
	return st, ents
}

func (g *gen) restore() (index, term uint64) {
	g.term++
	g.last += uint64(g.rng.IntN(10))
	g.base, g.commit = g.last, g.last
	return g.last, g.term
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func opts(segSize int64) Options {
	o := DefaultOptions()
	o.SegmentSize = segSize
	return o
}

func mustCreate(t testing.TB, dir string, o Options) *WAL {
	t.Helper()
	w, err := CreateWithOptions(dir, testLogger(t), o)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, dir string, o Options) (*WAL, Contents) {
	t.Helper()
	w, c, err := OpenWithOptions(dir, testLogger(t), o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w, c
}

func mustSave(t testing.TB, w *WAL, st raftpb.HardState, ents []raftpb.Entry) {
	t.Helper()
	if err := w.Save(st, ents, true); err != nil {
		t.Fatalf("save: %v", err)
	}
}

func checkContents(t testing.TB, c Contents, ref *reference) {
	t.Helper()
	if c.HardState != ref.hs {
		t.Fatalf("hard state = %+v, want %+v", c.HardState, ref.hs)
	}
	want := ref.entries(t)
	if len(c.Entries) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(c.Entries, want) {
		t.Fatalf("entries differ:\n got %s\nwant %s", describe(c.Entries), describe(want))
	}
}

func describe(ents []raftpb.Entry) string {
	var b strings.Builder
	for _, e := range ents {
		fmt.Fprintf(&b, "%d/%d(%d) ", e.Index, e.Term, len(e.Data))
	}
	return b.String()
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRoundTripMatchesRaftMemoryStorage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		segSize int64
		seed    uint64
	}{
		{"one segment", 64 << 20, 1},
		{"many small segments", 512, 2},
		{"tiny segments one batch each", 64, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			g, ref := newGen(tc.seed), newReference()
			w := mustCreate(t, dir, opts(tc.segSize))
			for round := range 6 {
				for range 25 {
					if g.rng.IntN(40) == 0 {
						index, term := g.restore()
						if err := w.SaveSnapshotRestore(index, term); err != nil {
							t.Fatal(err)
						}
						ref.restore(t, index, term)
						continue
					}
					st, ents := g.batch(8)
					mustSave(t, w, st, ents)
					ref.save(t, st, ents)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				var c Contents
				w, c = mustOpen(t, dir, opts(tc.segSize))
				if c.Repaired != nil {
					t.Fatalf("round %d: clean WAL reported repair %+v", round, c.Repaired)
				}
				checkContents(t, c, ref)
			}
			w.Close()
			if tc.segSize < 1024 && len(segmentFiles(t, dir)) < 3 {
				t.Fatalf("expected several segments, got %v", segmentFiles(t, dir))
			}
		})
	}
}

func TestUnsyncedSavesSurviveCleanClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, DefaultOptions())
	ref := newReference()
	g := newGen(7)
	for range 10 {
		st, ents := g.batch(5)
		if err := w.Save(st, ents, false); err != nil {
			t.Fatal(err)
		}
		ref.save(t, st, ents)
	}
	w.Close()
	w, c := mustOpen(t, dir, DefaultOptions())
	defer w.Close()
	checkContents(t, c, ref)
}

func TestSaveRejectsGapsAndEntriesBeforeRestoreWithoutWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, DefaultOptions())
	ents := []raftpb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}}
	mustSave(t, w, raftpb.HardState{}, ents)
	for _, tc := range []struct {
		name string
		ents []raftpb.Entry
	}{
		{"first entry leaves a gap", []raftpb.Entry{{Index: 4, Term: 1}}},
		{"gap inside the batch", []raftpb.Entry{{Index: 3, Term: 1}, {Index: 5, Term: 1}}},
		{"index zero", []raftpb.Entry{{Index: 0, Term: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.Save(raftpb.HardState{Term: 9, Commit: 1}, tc.ents, true); err == nil {
				t.Fatal("Save accepted a gap")
			}
		})
	}
	if err := w.SaveSnapshotRestore(10, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{}, []raftpb.Entry{{Index: 10, Term: 2}}, true); err == nil {
		t.Fatal("Save accepted an entry at the restored snapshot's index")
	}
	w.Close()
	w, c := mustOpen(t, dir, DefaultOptions())
	defer w.Close()
	if len(c.Entries) != 0 || c.HardState != (raftpb.HardState{}) || c.RestoreIndex != 10 || c.RestoreTerm != 2 {
		t.Fatalf("contents after rejected saves: %+v", c)
	}
}

func TestSnapshotRestoreDiscardsEarlierEntriesOnReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, opts(256))
	ref := newReference()
	var ents []raftpb.Entry
	for i := uint64(1); i <= 30; i++ {
		ents = append(ents, raftpb.Entry{Index: i, Term: 1, Data: []byte("before")})
	}
	hs := raftpb.HardState{Term: 1, Vote: 1, Commit: 20}
	mustSave(t, w, hs, ents)
	ref.save(t, hs, ents)
	// The leader's snapshot is at 25 with a newer term; 26..30 are discarded too.
	if err := w.SaveSnapshotRestore(25, 2); err != nil {
		t.Fatal(err)
	}
	ref.restore(t, 25, 2)
	after := []raftpb.Entry{{Index: 26, Term: 2, Data: []byte("after")}, {Index: 27, Term: 2}}
	hs = raftpb.HardState{Term: 2, Vote: 2, Commit: 26}
	mustSave(t, w, hs, after)
	ref.save(t, hs, after)
	w.Close()

	w, c := mustOpen(t, dir, opts(256))
	checkContents(t, c, ref)
	if c.RestoreIndex != 25 || c.RestoreTerm != 2 {
		t.Fatalf("restore = (%d, %d), want (25, 2)", c.RestoreIndex, c.RestoreTerm)
	}
	// Everything before the restore is dead, so ReleaseTo may drop every
	// segment but the last, both as replayed and as written.
	next, restoreAt := uint64(28), uint64(30)
	for round := range 2 {
		n := len(segmentFiles(t, dir))
		if err := w.ReleaseTo(1); err != nil {
			t.Fatal(err)
		}
		if got := len(segmentFiles(t, dir)); n < 2 || got != 1 {
			t.Fatalf("round %d: segments before/after ReleaseTo(1): %d/%d", round, n, got)
		}
		w.Close()
		w, c = mustOpen(t, dir, opts(256))
		checkContents(t, c, ref)
		// Fill a few segments with stale entries, then restore past them.
		for i := range 20 {
			e := raftpb.Entry{Index: next + uint64(i), Term: 3, Data: []byte("stale")}
			mustSave(t, w, raftpb.HardState{}, []raftpb.Entry{e})
			ref.save(t, raftpb.HardState{}, []raftpb.Entry{e})
		}
		if err := w.SaveSnapshotRestore(restoreAt, 4); err != nil {
			t.Fatal(err)
		}
		ref.restore(t, restoreAt, 4)
		next, restoreAt = restoreAt+1, restoreAt+5
	}
	w.Close()
}

func TestSegmentRollOverAndReleaseTo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	const segSize = 300
	w := mustCreate(t, dir, opts(segSize))
	ref := newReference()
	// Ten batches of ten entries: each batch overflows a 300-byte segment, so
	// every batch after the first starts a new segment.
	for b := uint64(0); b < 10; b++ {
		var ents []raftpb.Entry
		for i := uint64(1); i <= 10; i++ {
			ents = append(ents, raftpb.Entry{Index: b*10 + i, Term: 1, Data: bytes.Repeat([]byte{'x'}, 20)})
		}
		hs := raftpb.HardState{Term: 1, Vote: 1, Commit: b*10 + 10}
		mustSave(t, w, hs, ents)
		ref.save(t, hs, ents)
	}
	files := segmentFiles(t, dir)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if len(names) != 10 || names[0] != segmentName(1, 1) || names[1] != segmentName(2, 11) || names[9] != segmentName(10, 91) {
		t.Fatalf("segments = %v", names)
	}
	for _, tc := range []struct {
		releaseTo uint64
		wantFirst string // oldest segment left
	}{
		{10, segmentName(1, 1)}, // segment 1 holds entry 10
		{11, segmentName(2, 11)},
		{35, segmentName(4, 31)},
		{1000, segmentName(10, 91)}, // never the segment being written
	} {
		if err := w.ReleaseTo(tc.releaseTo); err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(segmentFiles(t, dir)[0]); got != tc.wantFirst {
			t.Fatalf("after ReleaseTo(%d) oldest segment = %s, want %s", tc.releaseTo, got, tc.wantFirst)
		}
	}
	w.Close()
	w, c := mustOpen(t, dir, opts(segSize))
	if c.HardState != ref.hs {
		t.Fatalf("hard state lost with released segments: %+v", c.HardState)
	}
	if want := ref.entries(t)[90:]; !reflect.DeepEqual(c.Entries, want) {
		t.Fatalf("entries = %s, want %s", describe(c.Entries), describe(want))
	}
	// Overwrite below the first kept segment's first index: legal, since
	// raft may rewrite uncommitted entries the caller released.
	over := []raftpb.Entry{{Index: 95, Term: 2}, {Index: 96, Term: 2}}
	mustSave(t, w, raftpb.HardState{}, over)
	ref.save(t, raftpb.HardState{}, over)
	mustSave(t, w, raftpb.HardState{}, []raftpb.Entry{{Index: 97, Term: 2}})
	ref.save(t, raftpb.HardState{}, []raftpb.Entry{{Index: 97, Term: 2}})
	if err := w.ReleaseTo(96); err != nil { // keeps the segment holding 95..100
		t.Fatal(err)
	}
	w.Close()
	w, c = mustOpen(t, dir, opts(segSize))
	defer w.Close()
	if want := ref.entries(t)[90:]; !reflect.DeepEqual(c.Entries, want) {
		t.Fatalf("entries = %s, want %s", describe(c.Entries), describe(want))
	}
}

// writeSmallWAL saves three synced batches to a one-segment WAL and returns
// the segment path, the reference after each batch, the file size after each
// batch and the record boundaries inside the last batch.
type smallWAL struct {
	dir, seg   string
	refs       []*reference // refs[i]: state after i batches
	batchEnds  []int64      // file size after batch i (index 0: empty WAL)
	lastRecEnd []int64      // end offset of each record of the last batch
	lastBatch  struct {
		st   raftpb.HardState
		ents []raftpb.Entry
	}
}

func writeSmallWAL(t *testing.T) *smallWAL {
	t.Helper()
	s := &smallWAL{dir: filepath.Join(t.TempDir(), "wal")}
	w := mustCreate(t, s.dir, DefaultOptions())
	s.seg = segmentFiles(t, s.dir)[0]
	size := func() int64 {
		fi, err := os.Stat(s.seg)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	ref := newReference()
	s.refs = append(s.refs, &reference{ms: raft.NewMemoryStorage()})
	s.batchEnds = append(s.batchEnds, size())
	d := func(s string) []byte { return []byte(s) }
	batches := []struct {
		st   raftpb.HardState
		ents []raftpb.Entry
	}{
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 1}, []raftpb.Entry{{Term: 1, Index: 1, Data: d("one")}, {Term: 1, Index: 2, Data: d("two")}, {Term: 1, Index: 3, Data: d("three")}}},
		{raftpb.HardState{Term: 2, Vote: 2, Commit: 2}, []raftpb.Entry{{Term: 2, Index: 3, Data: d("three'")}, {Term: 2, Index: 4, Data: d("four")}}},
		// The last batch overwrites 4, appends 5 and 6 and commits them all,
		// as a follower does when the leader's commit index covers them.
		{raftpb.HardState{Term: 3, Vote: 3, Commit: 6}, []raftpb.Entry{{Term: 3, Index: 4, Data: d("four'")}, {Term: 3, Index: 5, Data: d("five")}, {Term: 3, Index: 6, Data: d("six")}}},
	}
	for _, b := range batches {
		mustSave(t, w, b.st, b.ents)
		ref.save(t, b.st, b.ents)
		snap := &reference{ms: raft.NewMemoryStorage(), hs: ref.hs}
		snap.ms.Append(ref.entries(t))
		s.refs = append(s.refs, snap)
		s.batchEnds = append(s.batchEnds, size())
	}
	last := batches[len(batches)-1]
	s.lastBatch.st, s.lastBatch.ents = last.st, last.ents
	off := s.batchEnds[len(batches)-1]
	for _, e := range last.ents {
		off += headerSize + int64(e.Size())
		s.lastRecEnd = append(s.lastRecEnd, off)
	}
	off += headerSize + int64(last.st.Size())
	s.lastRecEnd = append(s.lastRecEnd, off)
	if off != s.batchEnds[len(batches)] {
		t.Fatalf("record arithmetic: %d != file size %d", off, s.batchEnds[len(batches)])
	}
	w.Close()
	return s
}

// expectAt is the reference for a last batch cut after its first k records.
func (s *smallWAL) expectAt(t *testing.T, k int) *reference {
	prev := s.refs[len(s.refs)-2]
	ref := &reference{ms: raft.NewMemoryStorage(), hs: prev.hs}
	ref.ms.Append(prev.entries(t))
	// Records are the entries, then the hard state.
	if n := min(k, len(s.lastBatch.ents)); n > 0 {
		ref.save(t, raftpb.HardState{}, s.lastBatch.ents[:n])
	}
	if k > len(s.lastBatch.ents) {
		ref.hs = s.lastBatch.st
	}
	return ref
}

// completeRecords is how many records of the last batch end at or before n.
func (s *smallWAL) completeRecords(n int64) (k int, end int64) {
	end = s.batchEnds[len(s.batchEnds)-2]
	for _, e := range s.lastRecEnd {
		if e > n {
			break
		}
		k, end = k+1, e
	}
	return k, end
}

// copyDir copies the WAL directory (without its lock) to a fresh directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "wal")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range segmentFiles(t, from) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func TestTornTailAtEveryOffsetOfTheLastBatch(t *testing.T) {
	s := writeSmallWAL(t)
	full, err := os.ReadFile(s.seg)
	if err != nil {
		t.Fatal(err)
	}
	start, end := s.batchEnds[len(s.batchEnds)-2], s.batchEnds[len(s.batchEnds)-1]
	for n := start; n <= end; n++ {
		dir := copyDir(t, s.dir)
		seg := filepath.Join(dir, filepath.Base(s.seg))
		if err := os.WriteFile(seg, full[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		k, good := s.completeRecords(n)
		w, c, err := OpenWithOptions(dir, slog.New(slog.DiscardHandler), DefaultOptions())
		if err != nil {
			t.Fatalf("length %d: open: %v", n, err)
		}
		checkContents(t, c, s.expectAt(t, k))
		if last := c.Entries[len(c.Entries)-1].Index; c.HardState.Commit > last {
			t.Fatalf("length %d: recovered commit %d beyond last entry %d; raft would refuse to start",
				n, c.HardState.Commit, last)
		}
		switch {
		case good == n && c.Repaired != nil:
			t.Fatalf("length %d ends on a record boundary but repair reported: %+v", n, c.Repaired)
		case good < n && (c.Repaired == nil || c.Repaired.Offset != good || c.Repaired.Dropped != n-good || c.Repaired.File != seg):
			t.Fatalf("length %d: repair = %+v, want offset %d dropped %d", n, c.Repaired, good, n-good)
		}
		// The repaired WAL takes new writes and replays them.
		ref := s.expectAt(t, k)
		next := raftpb.Entry{Term: 9, Index: ref.entries(t)[len(ref.entries(t))-1].Index + 1, Data: []byte("next")}
		hs := raftpb.HardState{Term: 9, Vote: 1, Commit: 2}
		mustSave(t, w, hs, []raftpb.Entry{next})
		ref.save(t, hs, []raftpb.Entry{next})
		w.Close()
		w, c = mustOpen(t, dir, DefaultOptions())
		if c.Repaired != nil {
			t.Fatalf("length %d: second open repaired again: %+v", n, c.Repaired)
		}
		checkContents(t, c, ref)
		w.Close()
	}
}

func TestZeroFilledTailIsTruncated(t *testing.T) {
	s := writeSmallWAL(t)
	full, err := os.ReadFile(s.seg)
	if err != nil {
		t.Fatal(err)
	}
	start, end := s.batchEnds[len(s.batchEnds)-2], s.batchEnds[len(s.batchEnds)-1]
	type tc struct {
		name   string
		data   []byte
		wantK  int   // complete records of the last batch kept
		wantAt int64 // repair offset
	}
	var cases []tc
	for _, n := range []int{1, headerSize - 1, headerSize, headerSize + 1, 4096} {
		cases = append(cases, tc{fmt.Sprintf("%d zero bytes appended", n),
			append(bytes.Clone(full), make([]byte, n)...), len(s.lastRecEnd), end})
	}
	// Zeros from every offset of the last batch to its end: a filesystem that
	// extended the file before writing its data.
	for z := start; z < end; z++ {
		b := bytes.Clone(full)
		clear(b[z:])
		k, good := s.completeRecords(z)
		cases = append(cases, tc{fmt.Sprintf("zeroed from %d", z), b, k, good})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, s.dir)
			seg := filepath.Join(dir, filepath.Base(s.seg))
			if err := os.WriteFile(seg, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			w, got, err := OpenWithOptions(dir, slog.New(slog.DiscardHandler), DefaultOptions())
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer w.Close()
			checkContents(t, got, s.expectAt(t, c.wantK))
			if got.Repaired == nil || got.Repaired.Offset != c.wantAt || got.Repaired.Dropped != int64(len(c.data))-c.wantAt {
				t.Fatalf("repair = %+v, want offset %d", got.Repaired, c.wantAt)
			}
			if fi, _ := os.Stat(seg); fi.Size() != c.wantAt {
				t.Fatalf("file size after repair = %d, want %d", fi.Size(), c.wantAt)
			}
		})
	}
}

func TestTornTailIsLoggedAtWarn(t *testing.T) {
	s := writeSmallWAL(t)
	if err := os.Truncate(s.seg, s.batchEnds[len(s.batchEnds)-1]-3); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w, _, err := Open(s.dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), s.seg) {
		t.Fatalf("log = %q", logs.String())
	}
}

// checkCorrupt asserts err wraps ErrCorrupt and names file and offset.
func checkCorrupt(t *testing.T, err error, file string, offset int64) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != file || ce.Offset != offset {
		t.Fatalf("err = %v, want file %s offset %d", err, file, offset)
	}
	msg := err.Error()
	if offset >= 0 && !strings.Contains(msg, fmt.Sprintf("%s at offset %d", file, offset)) || !strings.Contains(msg, "data directory is damaged") {
		t.Fatalf("message does not name file, offset and damage: %q", msg)
	}
}

func TestFlippedByteInAnEarlierRecordIsCorruption(t *testing.T) {
	s := writeSmallWAL(t)
	full, err := os.ReadFile(s.seg)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte of the second batch (hard state + two entries), which is
	// followed by the whole third batch.
	recStart := s.batchEnds[1]
	// Batch 2 is {entry 3', entry 4, hard state}.
	e3, _ := s.refs[2].ms.Entries(3, 4, ^uint64(0))
	e4, _ := s.refs[2].ms.Entries(4, 5, ^uint64(0))
	recEnds := []int64{recStart + headerSize + int64(e3[0].Size())}
	recEnds = append(recEnds, recEnds[0]+headerSize+int64(e4[0].Size()))
	recEnds = append(recEnds, recEnds[1]+headerSize+int64(s.refs[2].hs.Size()))
	if recEnds[2] != s.batchEnds[2] {
		t.Fatalf("record arithmetic: %v vs %d", recEnds, s.batchEnds[2])
	}
	for off := s.batchEnds[1]; off < s.batchEnds[2]; off++ {
		for _, recEnd := range recEnds {
			if off < recEnd {
				break
			}
			recStart = recEnd
		}
		dir := copyDir(t, s.dir)
		seg := filepath.Join(dir, filepath.Base(s.seg))
		b := bytes.Clone(full)
		b[off] ^= 0x40
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := OpenWithOptions(dir, slog.New(slog.DiscardHandler), DefaultOptions())
		checkCorrupt(t, err, seg, recStart)
		recStart = s.batchEnds[1]
	}
}

func TestFlippedByteInAnEarlierSegmentIsCorruption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, opts(200))
	g := newGen(11)
	for range 20 {
		st, ents := g.batch(4)
		mustSave(t, w, st, ents)
	}
	w.Close()
	files := segmentFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("want several segments, got %d", len(files))
	}
	first, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Walk the first segment's records and flip a byte in each, including
	// the last one: a non-last segment never has a torn tail.
	for off := int64(0); off < int64(len(first)); {
		h, ok := parseHeader(first[off:])
		if !ok {
			t.Fatalf("bad header at %d", off)
		}
		recEnd := off + headerSize + int64(h.length)
		for _, at := range []int64{off, off + 5, off + headerSize - 1, recEnd - 1} {
			c := copyDir(t, dir)
			seg := filepath.Join(c, filepath.Base(files[0]))
			b := bytes.Clone(first)
			b[at] ^= 0x01
			os.WriteFile(seg, b, 0o600)
			_, _, err := OpenWithOptions(c, slog.New(slog.DiscardHandler), opts(200))
			checkCorrupt(t, err, seg, off)
		}
		off = recEnd
	}
}

// appendRaw appends a well-formed record to path, bypassing Save's checks.
func appendRaw(t *testing.T, path string, typ byte, payload []byte) {
	t.Helper()
	buf, start := reserveRecord(nil, len(payload))
	copy(buf[start+headerSize:], payload)
	sealRecord(buf, start, typ)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func TestDamageOtherThanATornTailIsCorruption(t *testing.T) {
	mk := func(t *testing.T) (string, []string) {
		dir := filepath.Join(t.TempDir(), "wal")
		w := mustCreate(t, dir, opts(200))
		g := newGen(5)
		for range 12 {
			st, ents := g.batch(4)
			mustSave(t, w, st, ents)
		}
		w.Close()
		files := segmentFiles(t, dir)
		if len(files) < 4 {
			t.Fatalf("want at least 4 segments, got %d", len(files))
		}
		return dir, files
	}
	entry := func(index uint64) []byte {
		e := raftpb.Entry{Index: index, Term: 100, Data: []byte("x")}
		b, _ := e.Marshal()
		return b
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, files []string) (file string, offset int64)
		want   string
	}{
		{"missing segment in the sequence", func(t *testing.T, files []string) (string, int64) {
			os.Remove(files[1])
			return filepath.Dir(files[0]), -1
		}, "segment sequence 2 missing"},
		{"record cut short in a non-last segment", func(t *testing.T, files []string) (string, int64) {
			fi, _ := os.Stat(files[1])
			os.Truncate(files[1], fi.Size()-1)
			return files[1], lastRecordOffset(t, files[1], fi.Size())
		}, "cut short"},
		{"zero-filled tail of a non-last segment", func(t *testing.T, files []string) (string, int64) {
			fi, _ := os.Stat(files[1])
			f, _ := os.OpenFile(files[1], os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, 64))
			f.Close()
			return files[1], fi.Size()
		}, "zero-filled"},
		{"gap in entry indexes", func(t *testing.T, files []string) (string, int64) {
			last := files[len(files)-1]
			fi, _ := os.Stat(last)
			appendRaw(t, last, recEntry, entry(1000))
			appendRaw(t, last, recEntry, entry(1001)) // so the bad record is not the tail
			return last, fi.Size()
		}, "gap"},
		{"bad header followed by more data", func(t *testing.T, files []string) (string, int64) {
			last := files[len(files)-1]
			fi, _ := os.Stat(last)
			f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(bytes.Repeat([]byte{0xff}, 40))
			f.Close()
			return last, fi.Size()
		}, "header checksum mismatch"},
		{"unknown record type", func(t *testing.T, files []string) (string, int64) {
			last := files[len(files)-1]
			fi, _ := os.Stat(last)
			appendRaw(t, last, 77, []byte("?"))
			return last, fi.Size()
		}, "unknown record type 77"},
		{"segment renamed out of place", func(t *testing.T, files []string) (string, int64) {
			last := files[len(files)-1]
			seq, first, _ := parseSegmentName(filepath.Base(last))
			renamed := filepath.Join(filepath.Dir(last), segmentName(seq, first+1))
			os.Rename(last, renamed)
			return renamed, 0
		}, "file name says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, files := mk(t)
			file, off := tc.damage(t, files)
			_, _, err := OpenWithOptions(dir, slog.New(slog.DiscardHandler), opts(200))
			checkCorrupt(t, err, file, off)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// lastRecordOffset returns the start of the last record in a segment of the given size.
func lastRecordOffset(t *testing.T, path string, size int64) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var off, prev int64
	for off < size {
		h, ok := parseHeader(b[off:])
		if !ok {
			t.Fatalf("bad header at %d", off)
		}
		prev, off = off, off+headerSize+int64(h.length)
	}
	return prev
}

func TestSecondOpenOfALockedWALFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, DefaultOptions())
	if _, _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open while created: err = %v, want ErrLocked", err)
	}
	w.Close()
	w, _ = mustOpen(t, dir, DefaultOptions())
	if _, _, err := Open(dir, nil); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: err = %v, want ErrLocked naming %s", err, dir)
	}
	w.Close()
	w, _ = mustOpen(t, dir, DefaultOptions())
	w.Close()
}

func TestCreateRefusesANonEmptyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, DefaultOptions())
	w.Close()
	if _, err := Create(dir, nil); err == nil {
		t.Fatal("Create over an existing WAL succeeded")
	}
	empty := t.TempDir()
	w, err := Create(empty, nil)
	if err != nil {
		t.Fatalf("Create in an empty directory: %v", err)
	}
	w.Close()
	if !Exist(empty) || Exist(t.TempDir()) {
		t.Fatal("Exist is wrong")
	}
}

func TestLeftoverTempSegmentIsIgnored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, DefaultOptions())
	mustSave(t, w, raftpb.HardState{Term: 1, Commit: 1}, []raftpb.Entry{{Index: 1, Term: 1}})
	w.Close()
	// A crash between creating a segment's temp file and renaming it.
	tmp := filepath.Join(dir, segmentName(2, 2)+tmpSuffix)
	os.WriteFile(tmp, []byte("partial"), 0o600)
	w, c := mustOpen(t, dir, DefaultOptions())
	defer w.Close()
	if len(c.Entries) != 1 || c.Repaired != nil {
		t.Fatalf("contents = %+v", c)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp segment not removed: %v", err)
	}
}

func TestOnFsyncIsCalledPerSyncedBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	var calls int
	o := DefaultOptions()
	o.OnFsync = func(time.Duration) { calls++ }
	w := mustCreate(t, dir, o)
	defer w.Close()
	calls = 0
	mustSave(t, w, raftpb.HardState{Term: 1}, []raftpb.Entry{{Index: 1, Term: 1}})
	if err := w.Save(raftpb.HardState{}, []raftpb.Entry{{Index: 2, Term: 1}}, false); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("OnFsync called %d times, want 1", calls)
	}
}

var _ io.Writer = tWriter{}

func BenchmarkSaveSync(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "wal")
	w, err := Create(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ents := make([]raftpb.Entry, 100)
	data := bytes.Repeat([]byte{'v'}, 300)
	for i := range ents {
		ents[i] = raftpb.Entry{Term: 1, Data: data}
	}
	next := uint64(1)
	b.SetBytes(int64(len(ents) * len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range ents {
			ents[i].Index = next
			next++
		}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: next - 1}, ents, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ents))/b.Elapsed().Seconds(), "entries/s")
}
