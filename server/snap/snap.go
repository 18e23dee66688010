// Package snap stores quorumd's Raft snapshots as files, one per snapshot,
// named %016x-%016x.snap (term, index). A file is written to a temp file,
// fsynced, renamed into place and its directory fsynced, so a crash leaves
// either the whole snapshot or none of it (plus perhaps a temp file that
// Purge removes). The format is
//
//	magic    "QSNAP001"
//	metaLen  uint32, little endian
//	meta     raftpb.SnapshotMetadata, protobuf
//	dataLen  uint64, little endian
//	data     the state machine snapshot (raftpb.Snapshot.Data)
//	crc      uint32, CRC-32C (Castagnoli) of every byte from metaLen through data
//
// The data is streamed to and from disk: Save and Load hold no copy of it
// beyond raftpb.Snapshot.Data, and Create holds none at all (the state
// machine writes straight into the file). The functions are safe to call
// from any goroutine; RemoveTemp only at start-up, before any Save or
// Create (it removes their temp files).
package snap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// ErrCorrupt is wrapped by errors about a snapshot file that fails its
// checks; the error names the file.
var ErrCorrupt = errors.New("snap: snapshot file is corrupt")

const (
	magic      = "QSNAP001"
	snapSuffix = ".snap"
	tmpSuffix  = ".tmp"
	// maxMeta bounds the metadata (a ConfState of a few voters is tiny).
	maxMeta = 64 << 20
	// overhead is the file size of a snapshot with empty metadata and data.
	overhead = len(magic) + 4 + 8 + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Name returns the file name Save uses for a snapshot at (term, index).
func Name(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapSuffix)
}

// parseName parses %016x-%016x.snap.
func parseName(name string) (term, index uint64, ok bool) {
	if len(name) != 16+1+16+len(snapSuffix) || name[16] != '-' || !strings.HasSuffix(name, snapSuffix) {
		return 0, 0, false
	}
	term, err1 := strconv.ParseUint(name[:16], 16, 64)
	index, err2 := strconv.ParseUint(name[17:33], 16, 64)
	return term, index, err1 == nil && err2 == nil
}

// Save writes s durably to dir (created if missing) as Name(term, index):
// temp file, fsync, rename, fsync dir. An existing file of that name is
// replaced. s.Data is written straight from the caller's slice.
func Save(dir string, s raftpb.Snapshot) (err error) {
	if raft.IsEmptySnap(s) {
		return errors.New("snap: save: empty snapshot (index 0)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("snap: save: %w", err)
	}
	name := Name(s.Metadata.Term, s.Metadata.Index)
	path := filepath.Join(dir, name)
	meta, err := s.Metadata.Marshal()
	if err != nil {
		return fmt.Errorf("snap: save %s: marshal metadata: %w", path, err)
	}
	f, err := os.CreateTemp(dir, name+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("snap: save %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	var crc uint32
	put := func(b []byte) {
		crc = crc32.Update(crc, crcTable, b)
		bw.Write(b) // a write error is sticky in bw and reported by Flush
	}
	bw.WriteString(magic)
	put(binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	put(meta)
	put(binary.LittleEndian.AppendUint64(nil, uint64(len(s.Data))))
	put(s.Data) // bufio passes large writes straight to the file
	bw.Write(binary.LittleEndian.AppendUint32(nil, crc))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snap: save %s: write: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snap: save %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snap: save %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("snap: save %s: %w", path, err)
	}
	return fsyncDir(dir)
}

// Create writes a snapshot at md durably to dir (created if missing) as
// Name(md.Term, md.Index), its data produced by write straight into the
// file: nothing of it is held in memory. It is atomic as Save (temp file,
// fsync, rename, fsync dir) and returns the data's length. The checksum is
// computed by reading the temp file back, from the page cache.
func Create(dir string, md raftpb.SnapshotMetadata, write func(io.Writer) error) (n int64, err error) {
	if md.Index == 0 {
		return 0, errors.New("snap: create: empty snapshot (index 0)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("snap: create: %w", err)
	}
	name := Name(md.Term, md.Index)
	path := filepath.Join(dir, name)
	meta, err := md.Marshal()
	if err != nil {
		return 0, fmt.Errorf("snap: create %s: marshal metadata: %w", path, err)
	}
	f, err := os.CreateTemp(dir, name+".*"+tmpSuffix)
	if err != nil {
		return 0, fmt.Errorf("snap: create %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Header with a placeholder data length, then the data.
	head := binary.LittleEndian.AppendUint32([]byte(magic), uint32(len(meta)))
	head = append(head, meta...)
	lenAt := int64(len(head))
	head = append(head, make([]byte, 8)...)
	bw := bufio.NewWriterSize(f, 256<<10)
	bw.Write(head)
	if err := write(bw); err != nil {
		return 0, fmt.Errorf("snap: create %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("snap: create %s: write: %w", path, err)
	}
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("snap: create %s: %w", path, err)
	}
	n = end - int64(len(head))
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, uint64(n)), lenAt); err != nil {
		return 0, fmt.Errorf("snap: create %s: write data length: %w", path, err)
	}
	crc, err := checksumFrom(f, int64(len(magic)))
	if err != nil {
		return 0, fmt.Errorf("snap: create %s: read back: %w", path, err)
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc)); err != nil {
		return 0, fmt.Errorf("snap: create %s: write checksum: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("snap: create %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("snap: create %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("snap: create %s: %w", path, err)
	}
	return n, fsyncDir(dir)
}

// checksumFrom is the CRC-32C of f's bytes from off to its end.
func checksumFrom(f *os.File, off int64) (uint32, error) {
	h := crc32.New(crcTable)
	_, err := io.CopyBuffer(h, io.NewSectionReader(f, off, 1<<62), make([]byte, 256<<10))
	return h.Sum32(), err
}

// Load reads and verifies the snapshot file at path. Damage of any kind
// (bad magic, lengths that disagree with the file size, checksum mismatch,
// metadata that disagrees with the file name) is an error wrapping
// ErrCorrupt that names the file.
func Load(path string) (*raftpb.Snapshot, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s (delete it to fall back to an older snapshot, or let the member rejoin)",
			ErrCorrupt, path, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snap: load: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snap: load: %w", err)
	}
	size := fi.Size()
	if size < int64(overhead) {
		return nil, corrupt("file is %d bytes, shorter than any snapshot", size)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var head [len(magic) + 4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return nil, fmt.Errorf("snap: load %s: %w", path, err)
	}
	if string(head[:len(magic)]) != magic {
		return nil, corrupt("bad magic %q", head[:len(magic)])
	}
	crc := crc32.Update(0, crcTable, head[len(magic):])
	metaLen := int64(binary.LittleEndian.Uint32(head[len(magic):]))
	if metaLen > maxMeta || metaLen > size-int64(overhead) {
		return nil, corrupt("metadata length %d does not fit the %d-byte file", metaLen, size)
	}
	meta := make([]byte, metaLen+8)
	if _, err := io.ReadFull(br, meta); err != nil {
		return nil, fmt.Errorf("snap: load %s: %w", path, err)
	}
	crc = crc32.Update(crc, crcTable, meta)
	dataLen := binary.LittleEndian.Uint64(meta[metaLen:])
	if want := size - int64(overhead) - metaLen; dataLen != uint64(want) {
		return nil, corrupt("data length %d disagrees with the file size (%d bytes of data present)", dataLen, want)
	}
	s := &raftpb.Snapshot{Data: make([]byte, dataLen)}
	if _, err := io.ReadFull(br, s.Data); err != nil {
		return nil, fmt.Errorf("snap: load %s: %w", path, err)
	}
	crc = crc32.Update(crc, crcTable, s.Data)
	var tail [4]byte
	if _, err := io.ReadFull(br, tail[:]); err != nil {
		return nil, fmt.Errorf("snap: load %s: %w", path, err)
	}
	if got := binary.LittleEndian.Uint32(tail[:]); got != crc {
		return nil, corrupt("checksum mismatch (stored %08x, computed %08x)", got, crc)
	}
	if err := s.Metadata.Unmarshal(meta[:metaLen]); err != nil {
		return nil, corrupt("decode metadata: %v", err)
	}
	if term, index, ok := parseName(filepath.Base(path)); ok &&
		(term != s.Metadata.Term || index != s.Metadata.Index) {
		return nil, corrupt("file name says term %d index %d, contents say term %d index %d",
			term, index, s.Metadata.Term, s.Metadata.Index)
	}
	return s, nil
}

// snapFile is a snapshot file name parsed.
type snapFile struct {
	name        string
	term, index uint64
}

// list returns dir's snapshot files, oldest first (by index, then term).
// A missing dir holds none.
func list(dir string) ([]snapFile, []string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("snap: list %s: %w", dir, err)
	}
	var snaps []snapFile
	var tmps []string
	for _, e := range ents {
		if term, index, ok := parseName(e.Name()); ok && e.Type().IsRegular() {
			snaps = append(snaps, snapFile{e.Name(), term, index})
		} else if strings.HasSuffix(e.Name(), tmpSuffix) && strings.Contains(e.Name(), snapSuffix) {
			tmps = append(tmps, e.Name())
		}
	}
	slices.SortFunc(snaps, func(a, b snapFile) int {
		if a.index != b.index {
			return cmpU64(a.index, b.index)
		}
		return cmpU64(a.term, b.term)
	})
	return snaps, tmps, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// LoadNewest returns the snapshot in dir with the highest index, or (nil,
// nil) if dir holds none or does not exist. If that file is damaged,
// LoadNewest returns its error (wrapping ErrCorrupt and naming the file)
// rather than silently falling back to an older snapshot.
func LoadNewest(dir string) (*raftpb.Snapshot, error) {
	snaps, _, err := list(dir)
	if err != nil || len(snaps) == 0 {
		return nil, err
	}
	return Load(filepath.Join(dir, snaps[len(snaps)-1].name))
}

// Purge keeps the newest keep (at least 1) snapshot files in dir and
// deletes the others, then fsyncs dir. It leaves temp files alone (a Save
// or Create may be writing one): RemoveTemp clears those at start-up.
func Purge(dir string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("snap: purge %s: keep = %d, must be at least 1", dir, keep)
	}
	snaps, _, err := list(dir)
	if err != nil {
		return err
	}
	var remove []string
	for _, s := range snaps[:max(0, len(snaps)-keep)] {
		remove = append(remove, s.name)
	}
	if len(remove) == 0 {
		return nil
	}
	for _, name := range remove {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snap: purge: %w", err)
		}
	}
	return fsyncDir(dir)
}

// RemoveTemp deletes the temp files that interrupted Saves and Creates
// left in dir. Call it only when nothing is writing snapshots to dir.
func RemoveTemp(dir string) error {
	_, tmps, err := list(dir)
	if err != nil || len(tmps) == 0 {
		return err
	}
	for _, name := range tmps {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snap: remove temp files: %w", err)
		}
	}
	return fsyncDir(dir)
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snap: fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snap: fsync directory %s: %w", dir, err)
	}
	return nil
}
