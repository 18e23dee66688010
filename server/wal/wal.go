package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

// Options tune a WAL. The zero value is not valid; start from DefaultOptions.
type Options struct {
	// SegmentSize is the size at which the WAL starts a new segment file.
	// A segment may exceed it by at most one batch.
	SegmentSize int64
	// OnFsync, if set, is called with the duration of every fdatasync of a
	// segment (from the goroutine calling Save), e.g. to feed a histogram.
	OnFsync func(time.Duration)
	// NoSync skips every fdatasync (etcd's --unsafe-no-fsync): a crash of
	// the machine may then lose what Save reported durable. For tests and
	// benchmarks that do not care about power loss only.
	NoSync bool
}

// DefaultOptions returns 64 MiB segments and no fsync hook.
func DefaultOptions() Options { return Options{SegmentSize: defaultSegmentSz} }

// Validate names the first invalid field.
func (o Options) Validate() error {
	if o.SegmentSize < headerSize+segmentPayload {
		return fmt.Errorf("wal: Options.SegmentSize %d is too small", o.SegmentSize)
	}
	return nil
}

// Repair describes a torn tail that Open truncated.
type Repair struct {
	File    string // the segment that was truncated
	Offset  int64  // its new size: the offset of the first damaged record
	Dropped int64  // bytes removed
	Reason  string // what the damage looked like
}

// Contents is what Open read back.
type Contents struct {
	// HardState is the newest hard state saved (zero if none).
	HardState raftpb.HardState
	// Entries is the log as raft last knew it: contiguous indexes, later
	// saves overwriting earlier ones, nothing from before the newest
	// snapshot restore. It may start after index 1 when segments were
	// released; entries at or below the caller's snapshot may be present.
	// The caller owns the slice.
	Entries []raftpb.Entry
	// RestoreIndex and RestoreTerm are the newest SaveSnapshotRestore found
	// in the segments still on disk (0 if none).
	RestoreIndex, RestoreTerm uint64
	// Repaired is non-nil when a torn tail was truncated.
	Repaired *Repair
}

// WAL is an open write-ahead log, positioned for appending. It belongs to
// one goroutine; after any failed write or fsync it refuses further writes
// (the state of the file is unknown), and the process should restart and
// recover with Open.
type WAL struct {
	mu   sync.Mutex
	dir  string
	lg   *slog.Logger
	opts Options
	lock *os.File

	f    *os.File // the last segment, open for appending
	size int64    // its size
	segs []segment
	pos  position
	// state is the newest hard state saved; each new segment starts with it.
	state raftpb.HardState
	buf   []byte // reused encoding buffer
	err   error  // sticky write failure
}

// segment is one segment file.
type segment struct {
	seq, first uint64
	path       string
	// maxIndex is the highest index of a live entry written to this segment,
	// 0 when it holds none (for ReleaseTo).
	maxIndex uint64
}

const (
	lockName  = "LOCK"
	tmpSuffix = ".tmp"
	walSuffix = ".wal"
	// maxKeptBuf is the largest encoding buffer kept between batches.
	maxKeptBuf = 4 << 20
)

func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, first, walSuffix)
}

// parseSegmentName parses %016x-%016x.wal.
func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != 16+1+16+len(walSuffix) || name[16] != '-' || !strings.HasSuffix(name, walSuffix) {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(name[:16], 16, 64)
	first, err2 := strconv.ParseUint(name[17:33], 16, 64)
	return seq, first, err1 == nil && err2 == nil
}

// Exist reports whether dir holds at least one WAL segment.
func Exist(dir string) bool {
	names, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range names {
		if _, _, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			return true
		}
	}
	return false
}

// Create makes a new, empty WAL in dir with DefaultOptions.
func Create(dir string, lg *slog.Logger) (*WAL, error) {
	return CreateWithOptions(dir, lg, DefaultOptions())
}

// CreateWithOptions makes a new, empty WAL in dir, which must not exist or
// be empty (apart from a lock file or temp files left by an interrupted
// Create). The first segment is synced and its directory entry made durable
// before CreateWithOptions returns.
func CreateWithOptions(dir string, lg *slog.Logger, opts Options) (*WAL, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	if err := fsyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*WAL, error) {
		lock.Close()
		return nil, err
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return fail(fmt.Errorf("wal: create %s: %w", dir, err))
	}
	for _, e := range names {
		switch {
		case e.Name() == lockName:
		case strings.HasSuffix(e.Name(), tmpSuffix):
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fail(fmt.Errorf("wal: create %s: %w", dir, err))
			}
		default:
			return fail(fmt.Errorf("wal: create %s: directory is not empty (found %s)", dir, e.Name()))
		}
	}
	w := &WAL{dir: dir, lg: orDiscard(lg), opts: opts, lock: lock}
	if err := w.startSegment(1, 1); err != nil {
		return fail(err)
	}
	return w, nil
}

// Open opens the WAL in dir with DefaultOptions; see OpenWithOptions.
func Open(dir string, lg *slog.Logger) (*WAL, Contents, error) {
	return OpenWithOptions(dir, lg, DefaultOptions())
}

// OpenWithOptions locks the WAL in dir, reads it all, truncates a torn tail
// of the last segment (logging it at WARN and reporting it in
// Contents.Repaired) and positions the WAL for appending. Damage that is not
// a torn tail yields an error wrapping ErrCorrupt (see CorruptError); a WAL
// locked by another open WAL yields an error wrapping ErrLocked.
func OpenWithOptions(dir string, lg *slog.Logger, opts Options) (*WAL, Contents, error) {
	lg = orDiscard(lg)
	if err := opts.Validate(); err != nil {
		return nil, Contents{}, err
	}
	if !Exist(dir) {
		return nil, Contents{}, fmt.Errorf("wal: open %s: no WAL segments found", dir)
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return nil, Contents{}, err
	}
	w := &WAL{dir: dir, lg: lg, opts: opts, lock: lock}
	c, err := w.recover()
	if err != nil {
		if w.f != nil {
			w.f.Close()
		}
		lock.Close()
		return nil, Contents{}, err
	}
	if bugzoo.Enabled(bugzoo.LoseLastWrite) {
		c = loseLastEntries(c)
	}
	return w, c, nil
}

// recover lists and replays the segments, repairs a torn tail and leaves the
// last segment open in w.f.
func (w *WAL) recover() (Contents, error) {
	names, err := os.ReadDir(w.dir)
	if err != nil {
		return Contents{}, fmt.Errorf("wal: open %s: %w", w.dir, err)
	}
	removedTmp := false
	for _, e := range names {
		name := e.Name()
		if strings.HasSuffix(name, walSuffix+tmpSuffix) {
			// A segment whose creation was interrupted before its rename.
			if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
				return Contents{}, fmt.Errorf("wal: remove leftover %s: %w", name, err)
			}
			removedTmp = true
			continue
		}
		if seq, first, ok := parseSegmentName(name); ok {
			w.segs = append(w.segs, segment{seq: seq, first: first, path: filepath.Join(w.dir, name)})
		}
	}
	if removedTmp {
		if err := fsyncDir(w.dir); err != nil {
			return Contents{}, err
		}
	}
	// os.ReadDir sorts by name, and the fixed-width hex names sort by seq.
	for i := 1; i < len(w.segs); i++ {
		if w.segs[i].seq != w.segs[i-1].seq+1 {
			return Contents{}, &CorruptError{File: w.dir, Offset: -1, Reason: fmt.Sprintf(
				"segment sequence %d missing between %s and %s",
				w.segs[i-1].seq+1, filepath.Base(w.segs[i-1].path), filepath.Base(w.segs[i].path))}
		}
	}

	var r replayer
	var c Contents
	for i := range w.segs {
		s := &w.segs[i]
		last := i == len(w.segs)-1
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR | os.O_APPEND
		}
		f, err := os.OpenFile(s.path, flag, 0)
		if err != nil {
			return Contents{}, fmt.Errorf("wal: open segment: %w", err)
		}
		if last {
			w.f = f
		}
		end, torn, err := w.replaySegment(f, s, last, &r)
		if !last {
			f.Close()
		}
		if err != nil {
			return Contents{}, err
		}
		if torn != "" {
			rep, err := truncateTail(f, s.path, end, torn)
			if err != nil {
				return Contents{}, err
			}
			c.Repaired = rep
			w.lg.Warn("wal: truncated torn tail",
				"file", rep.File, "offset", rep.Offset, "dropped-bytes", rep.Dropped, "reason", rep.Reason)
		}
		if last {
			w.size = end
		}
	}
	for i := range w.segs {
		w.segs[i].maxIndex = r.segMax[i]
	}
	w.pos = r.pos
	w.state = r.hs
	c.HardState = r.hs
	c.Entries = r.ents
	c.RestoreIndex, c.RestoreTerm = r.restoreIndex, r.restoreTerm
	return c, nil
}

// replaySegment feeds one segment's records to r.
func (w *WAL) replaySegment(f *os.File, s *segment, last bool, r *replayer) (end int64, torn string, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("wal: stat %s: %w", s.path, err)
	}
	n := 0
	var e raftpb.Entry
	end, torn, err = scanSegment(f, s.path, fi.Size(), last, func(typ byte, p []byte) error {
		n++
		if n == 1 {
			h, ok := parseSegmentHeader(p)
			if typ != recSegment || !ok {
				return errors.New("segment does not start with a valid segment header record")
			}
			return r.segment(s.seq, s.first, h)
		}
		switch typ {
		case recState:
			var st raftpb.HardState
			if err := st.Unmarshal(p); err != nil {
				return fmt.Errorf("decode hard state: %w", err)
			}
			r.state(st)
		case recEntry:
			e = raftpb.Entry{}
			if err := e.Unmarshal(p); err != nil {
				return fmt.Errorf("decode entry: %w", err)
			}
			return r.entry(e)
		case recSnapshot:
			index, term, ok := parseSnapshot(p)
			if !ok {
				return errors.New("malformed snapshot restore record")
			}
			r.restore(index, term)
		case recSegment:
			return errors.New("segment header record in the middle of a segment")
		default:
			return fmt.Errorf("unknown record type %d", typ)
		}
		return nil
	})
	if err == nil && n == 0 {
		// Segments are synced before they are renamed into place, so even a
		// torn last segment keeps its header.
		return 0, "", &CorruptError{File: s.path, Offset: 0, Reason: "segment has no valid header record"}
	}
	return end, torn, err
}

// truncateTail cuts f (named path) to end and syncs it.
func truncateTail(f *os.File, path string, end int64, reason string) (*Repair, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wal: repair %s: %w", path, err)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("wal: repair %s: truncate to %d: %w", path, end, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("wal: repair %s: fsync: %w", path, err)
	}
	return &Repair{File: path, Offset: end, Dropped: fi.Size() - end, Reason: reason}, nil
}

// startSegment creates segment (seq, first) holding a segment header and the
// current hard state: written to a temp file, synced, renamed into place and
// the directory synced. It becomes w.f.
func (w *WAL) startSegment(seq, first uint64) error {
	path := filepath.Join(w.dir, segmentName(seq, first))
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	buf, start := reserveRecord(w.buf[:0], segmentPayload)
	segmentHeader{seq: seq, firstIndex: first}.put(buf[start+headerSize:])
	sealRecord(buf, start, recSegment)
	buf, err = appendState(buf, &w.state)
	w.buf = buf
	if err == nil {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = w.sync(f)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = fsyncDir(w.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("wal: create segment %s: %w", path, err)
	}
	w.f = f
	w.size = int64(len(buf))
	w.segs = append(w.segs, segment{seq: seq, first: first, path: path})
	return nil
}

func appendState(buf []byte, st *raftpb.HardState) ([]byte, error) {
	buf, start := reserveRecord(buf, st.Size())
	if _, err := st.MarshalToSizedBuffer(buf[start+headerSize:]); err != nil {
		return buf[:start], fmt.Errorf("marshal hard state: %w", err)
	}
	sealRecord(buf, start, recState)
	return buf, nil
}

// Save appends the entries and then the hard state (unless empty) as one
// batch, with one write; when sync is true it returns only after fdatasync.
// A batch with neither is a no-op. Entries
// follow raft's rules: an entry with index k discards every earlier-saved
// entry with index >= k; each entry's index must be at most one past the
// previous one and after the newest snapshot restore, or Save fails without
// writing anything. Save does not retain st or ents.
func (w *WAL) Save(st raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	hasState := !raft.IsEmptyHardState(st)
	if !hasState && len(ents) == 0 {
		return nil
	}
	pos := w.pos
	for i := range ents {
		if err := pos.checkEntry(ents[i].Index); err != nil {
			return fmt.Errorf("wal: save: %w", err)
		}
		pos.last = ents[i].Index
	}
	if err := w.maybeCut(); err != nil {
		return err
	}
	// Entries before the hard state: a torn tail may keep a prefix of the
	// batch, and a hard state whose Commit points past the surviving
	// entries would make raft refuse to restart.
	buf := w.buf[:0]
	for i := range ents {
		e := &ents[i]
		var start int
		buf, start = reserveRecord(buf, e.Size())
		if _, err := e.MarshalToSizedBuffer(buf[start+headerSize:]); err != nil {
			return fmt.Errorf("wal: save: marshal entry %d: %w", e.Index, err)
		}
		sealRecord(buf, start, recEntry)
	}
	if hasState {
		var err error
		if buf, err = appendState(buf, &st); err != nil {
			return fmt.Errorf("wal: save: %w", err)
		}
	}
	if err := w.write(buf, sync); err != nil {
		return err
	}
	if hasState {
		w.state = st
	}
	w.pos = pos
	seg := &w.segs[len(w.segs)-1]
	for i := range ents {
		seg.maxIndex = max(seg.maxIndex, ents[i].Index)
	}
	return nil
}

// SaveSnapshotRestore records, synced, that the log was replaced by a
// snapshot received from the leader at (index, term): replay discards every
// entry saved before this record, and later entries must have indexes above
// index. Call it after the snapshot file is durable and before saving the
// entries that follow it.
func (w *WAL) SaveSnapshotRestore(index, term uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if index == 0 {
		return errors.New("wal: save snapshot restore: index 0")
	}
	if err := w.maybeCut(); err != nil {
		return err
	}
	buf, start := reserveRecord(w.buf[:0], snapshotPayload)
	putSnapshot(buf[start+headerSize:], index, term)
	sealRecord(buf, start, recSnapshot)
	if err := w.write(buf, true); err != nil {
		return err
	}
	w.pos = position{base: index, last: index}
	// Every entry written so far is dead; no segment needs keeping for them.
	for i := range w.segs {
		w.segs[i].maxIndex = 0
	}
	return nil
}

// write appends buf to the current segment in one write and optionally
// syncs; a failure is sticky. buf is kept for reuse unless it grew large.
func (w *WAL) write(buf []byte, sync bool) error {
	_, err := w.f.Write(buf)
	if err == nil {
		w.size += int64(len(buf))
		// The bug zoo's skip-fsync: entries are acknowledged undurable
		// (segment headers and cuts are still synced, so a power cut
		// leaves a WAL that opens, only shorter).
		if sync && !bugzoo.Enabled(bugzoo.SkipFsync) {
			err = w.sync(w.f)
		}
	}
	if cap(buf) <= maxKeptBuf {
		w.buf = buf[:0]
	} else {
		w.buf = nil
	}
	if err != nil {
		w.err = fmt.Errorf("wal: write %s (WAL is now unusable; restart to recover): %w", w.f.Name(), err)
		return w.err
	}
	return nil
}

func (w *WAL) sync(f *os.File) error {
	if w.opts.NoSync {
		return nil
	}
	if w.opts.OnFsync == nil {
		return fdatasync(f)
	}
	start := time.Now()
	err := fdatasync(f)
	w.opts.OnFsync(time.Since(start))
	return err
}

// maybeCut starts a new segment once the current one is full. The full one
// is synced first, so only the last segment can ever have a torn tail.
func (w *WAL) maybeCut() error {
	if w.size < w.opts.SegmentSize {
		return nil
	}
	err := w.sync(w.f)
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err == nil {
		cur := w.segs[len(w.segs)-1]
		err = w.startSegment(cur.seq+1, w.pos.last+1)
	}
	if err != nil {
		w.err = fmt.Errorf("wal: start new segment (WAL is now unusable; restart to recover): %w", err)
		return w.err
	}
	return nil
}

// ReleaseTo deletes the oldest segment files, in order, as long as every
// entry still live in them has an index below index; it never deletes the
// segment being written. The caller must no longer need entries below index
// (they are in a durable snapshot). Entries below index may survive in kept
// segments.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for n < len(w.segs)-1 && w.segs[n].maxIndex < index {
		n++
	}
	if n == 0 {
		return nil
	}
	for i := 0; i < n; i++ {
		if err := os.Remove(w.segs[i].path); err != nil {
			w.segs = slices.Delete(w.segs, 0, i)
			return fmt.Errorf("wal: release segment: %w", err)
		}
	}
	w.segs = slices.Delete(w.segs, 0, n)
	return fsyncDir(w.dir)
}

// Close syncs and closes the current segment and releases the lock. The WAL
// cannot be used afterwards.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	if w.f != nil {
		if w.err == nil && !w.opts.NoSync {
			if err := fdatasync(w.f); err != nil {
				errs = append(errs, fmt.Errorf("wal: close: fsync %s: %w", w.f.Name(), err))
			}
		}
		if err := w.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("wal: close %s: %w", w.f.Name(), err))
		}
		w.f = nil
	}
	if w.lock != nil {
		if err := w.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("wal: close lock: %w", err))
		}
		w.lock = nil
	}
	if w.err == nil {
		w.err = errors.New("wal: closed")
	}
	return errors.Join(errs...)
}

// fsyncDir makes the directory entries of dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: fsync directory %s: %w", dir, err)
	}
	return nil
}

func orDiscard(lg *slog.Logger) *slog.Logger {
	if lg == nil {
		return slog.New(slog.DiscardHandler)
	}
	return lg
}

// loseLastEntries is the bug zoo's lose-last-write: the newest entries
// read back are dropped (up to zooLostEntries) and the commit index
// clamped to what is left, as a WAL that trusted an unsynced tail would
// restart.
func loseLastEntries(c Contents) Contents {
	n := min(len(c.Entries), zooLostEntries)
	c.Entries = c.Entries[:len(c.Entries)-n]
	if len(c.Entries) > 0 {
		c.HardState.Commit = min(c.HardState.Commit, c.Entries[len(c.Entries)-1].Index)
	}
	return c
}

const zooLostEntries = 20
