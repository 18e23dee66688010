package mvcc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// Snapshot format, version 1. Integers are varints (encoding/binary); u: unsigned.
//
//	magic      "QMVCCv1\n"
//	rev        varint   current revision
//	compactRev varint   last compaction revision, -1 if none
//	nkeys      uvarint
//	nkeys times, keys in ascending order:
//	  keylen uvarint, key
//	  nrevs  uvarint (>= 1)
//	  nrevs times, oldest first:
//	    main uvarint, sub uvarint, flags byte (bit 0: deletion)
//	    unless a deletion: create uvarint, version uvarint, lease varint,
//	                       vallen uvarint, value
//	crc        4 bytes, big endian: CRC-32C of everything before it
//
// Nothing may follow the checksum. The same state always gives the same bytes.
const snapMagic = "QMVCCv1\n"

// ErrCorruptSnapshot is wrapped by Restore's errors for input that is not a
// complete, intact snapshot.
var ErrCorruptSnapshot = errors.New("mvcc: corrupt snapshot")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes the snapshot's state to w in the format Restore reads. It
// returns the number of bytes written.
func (v *View) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	e := &snapEncoder{bw: bufio.NewWriterSize(cw, 64<<10)}
	e.write([]byte(snapMagic))
	e.varint(v.st.rev)
	e.varint(v.st.compactRev)
	e.uvarint(uint64(v.st.tree.Len()))
	v.st.tree.Ascend(func(it keyItem) bool {
		e.bytes(it.key)
		e.uvarint(uint64(len(it.revs)))
		for i := range it.revs {
			r := &it.revs[i]
			e.uvarint(uint64(r.main))
			e.uvarint(uint64(r.sub))
			if r.tomb {
				e.write([]byte{1})
				continue
			}
			e.write([]byte{0})
			e.uvarint(uint64(r.create))
			e.uvarint(uint64(r.version))
			e.varint(r.lease)
			e.bytes(r.value)
		}
		return e.err == nil
	})
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], e.crc)
	if e.err == nil {
		_, e.err = e.bw.Write(sum[:])
	}
	if e.err == nil {
		e.err = e.bw.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("write mvcc snapshot: %w", e.err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type snapEncoder struct {
	bw  *bufio.Writer
	crc uint32
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *snapEncoder) write(p []byte) {
	if e.err != nil {
		return
	}
	e.crc = crc32.Update(e.crc, crcTable, p)
	_, e.err = e.bw.Write(p)
}

func (e *snapEncoder) uvarint(x uint64) { e.write(binary.AppendUvarint(e.buf[:0], x)) }
func (e *snapEncoder) varint(x int64)   { e.write(binary.AppendVarint(e.buf[:0], x)) }
func (e *snapEncoder) bytes(p []byte) {
	e.uvarint(uint64(len(p)))
	e.write(p)
}

// Restore reads a snapshot written by View.WriteTo and returns a Store with
// that state. Input that is truncated, altered, followed by extra bytes or
// not a snapshot at all gives an error wrapping ErrCorruptSnapshot (or the
// reader's own error).
func Restore(r io.Reader) (*Store, error) {
	s, err := restore(&snapDecoder{r: r, buf: make([]byte, 0, 64<<10)})
	if err != nil {
		return nil, fmt.Errorf("restore mvcc snapshot: %w", err)
	}
	return s, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
}

func restore(d *snapDecoder) (*Store, error) {
	magic, err := d.readN(len(snapMagic))
	if err != nil {
		return nil, err
	}
	if string(magic) != snapMagic {
		return nil, corrupt("bad magic %q (not an mvcc snapshot, or another format version)", magic)
	}
	curRev, err := d.varint()
	if err != nil {
		return nil, err
	}
	compactRev, err := d.varint()
	if err != nil {
		return nil, err
	}
	if curRev < 1 || compactRev < -1 || compactRev > curRev {
		return nil, corrupt("bad revisions: current %d, compacted %d", curRev, compactRev)
	}
	nkeys, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	s := New()
	s.st.rev, s.st.compactRev = curRev, compactRev
	var prevKey []byte
	for k := uint64(0); k < nkeys; k++ {
		it, err := d.item(curRev, compactRev)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", k, err)
		}
		if k > 0 && bytes.Compare(prevKey, it.key) >= 0 {
			return nil, corrupt("key %d (%q) out of order", k, it.key)
		}
		prevKey = it.key
		s.st.tree.ReplaceOrInsert(it)
		for i := range it.revs {
			s.st.size += revSize(len(it.key), len(it.revs[i].value))
		}
	}
	want := d.sum()
	sum, err := d.readN(4)
	if err != nil {
		return nil, err
	}
	if got := binary.BigEndian.Uint32(sum); got != want {
		return nil, corrupt("checksum mismatch: stored %08x, computed %08x", got, want)
	}
	if d.pos < len(d.buf) {
		return nil, corrupt("unexpected data after the checksum")
	}
	if err := d.fill(); err != io.EOF {
		if err != nil {
			return nil, err
		}
		return nil, corrupt("unexpected data after the checksum")
	}
	return s, nil
}

// item reads and validates one key and its revisions.
func (d *snapDecoder) item(curRev, compactRev int64) (keyItem, error) {
	key, err := d.bytes()
	if err != nil {
		return keyItem{}, err
	}
	nrevs, err := d.uvarint()
	if err != nil {
		return keyItem{}, err
	}
	if nrevs == 0 {
		return keyItem{}, corrupt("key %q has no revisions", key)
	}
	it := keyItem{key: key, revs: make([]rev, 0, min(nrevs, 1024))}
	for j := uint64(0); j < nrevs; j++ {
		r, err := d.rev()
		if err != nil {
			return keyItem{}, err
		}
		bad := r.main < 1 || r.main > curRev
		if j > 0 {
			p := it.revs[j-1]
			bad = bad || r.main < p.main || (r.main == p.main && r.sub <= p.sub)
			// After compaction only the first revision may be at or
			// below the compaction revision.
			bad = bad || (compactRev >= 0 && r.main <= compactRev)
		} else {
			bad = bad || (r.tomb && compactRev >= 0 && r.main <= compactRev)
		}
		if !r.tomb {
			bad = bad || r.create < 1 || r.create > r.main || r.version < 1
		}
		if bad {
			return keyItem{}, corrupt("key %q: invalid revision %d (main %d sub %d)", key, j, r.main, r.sub)
		}
		it.revs = append(it.revs, r)
	}
	return it, nil
}

func (d *snapDecoder) rev() (rev, error) {
	var r rev
	main, err := d.uvarint()
	if err != nil {
		return r, err
	}
	sub, err := d.uvarint()
	if err != nil {
		return r, err
	}
	if main > math.MaxInt64 || sub > math.MaxInt32 {
		return r, corrupt("revision out of range")
	}
	r.main, r.sub = int64(main), int32(sub)
	flags, err := d.ReadByte()
	if err != nil {
		return r, err
	}
	switch flags {
	case 1:
		r.tomb = true
		return r, nil
	case 0:
	default:
		return r, corrupt("bad revision flags %#x", flags)
	}
	create, err := d.uvarint()
	if err != nil {
		return r, err
	}
	version, err := d.uvarint()
	if err != nil {
		return r, err
	}
	if create > math.MaxInt64 || version > math.MaxInt64 {
		return r, corrupt("revision out of range")
	}
	r.create, r.version = int64(create), int64(version)
	if r.lease, err = d.varint(); err != nil {
		return r, err
	}
	if r.value, err = d.bytes(); err != nil {
		return r, err
	}
	if len(r.value) == 0 {
		r.value = nil
	}
	return r, nil
}

// snapDecoder reads the snapshot through its own buffer, keeping the CRC
// of everything consumed. The CRC is brought up to date a buffer at a
// time (when the buffer is refilled, and by sum), not per read: most
// reads are varints of a byte or two.
type snapDecoder struct {
	r io.Reader
	// buf holds bytes read from r; buf[:pos] are consumed, and
	// buf[:hashed] are in crc.
	buf         []byte
	pos, hashed int
	crc         uint32
	// err is r's error that came with the last bytes read, returned by
	// the next fill.
	err error
	// readErr is the last error of ReadByte, to tell it from a varint
	// overflow.
	readErr error
}

// fill reads more input into an empty buffer, first adding the consumed
// bytes to the CRC. It returns io.EOF at the end of the input (and r's
// other errors), never an empty buffer with a nil error.
func (d *snapDecoder) fill() error {
	d.sum()
	d.buf, d.pos, d.hashed = d.buf[:0], 0, 0
	if d.err != nil {
		return d.err
	}
	for range 100 { // io.Reader allows (0, nil); give up as bufio does
		n, err := d.r.Read(d.buf[:cap(d.buf)])
		d.buf, d.err = d.buf[:n], err
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// sum is the CRC of every byte consumed so far.
func (d *snapDecoder) sum() uint32 {
	d.crc = crc32.Update(d.crc, crcTable, d.buf[d.hashed:d.pos])
	d.hashed = d.pos
	return d.crc
}

func eofIsCorrupt(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return corrupt("truncated")
	}
	return err
}

func (d *snapDecoder) ReadByte() (byte, error) {
	if d.pos == len(d.buf) {
		if err := d.fill(); err != nil {
			d.readErr = eofIsCorrupt(err)
			return 0, d.readErr
		}
	}
	b := d.buf[d.pos]
	d.pos++
	return b, nil
}

func (d *snapDecoder) uvarint() (uint64, error) {
	x, err := binary.ReadUvarint(d)
	return x, d.varintErr(err)
}

func (d *snapDecoder) varint() (int64, error) {
	x, err := binary.ReadVarint(d)
	return x, d.varintErr(err)
}

func (d *snapDecoder) varintErr(err error) error {
	if err == nil || err == d.readErr {
		return err
	}
	return corrupt("bad varint: %v", err)
}

// maxBytesLen bounds a key's or value's length; larger lengths are corrupt.
const maxBytesLen = 1 << 31

func (d *snapDecoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > maxBytesLen {
		return nil, corrupt("length %d too large", n)
	}
	return d.readN(int(n))
}

// readN reads n bytes into a new slice. Large lengths grow the slice in
// chunks so that a corrupt length fails at the end of the input, not with
// a huge allocation.
func (d *snapDecoder) readN(n int) ([]byte, error) {
	const chunk = 1 << 20
	out := make([]byte, 0, min(n, chunk))
	for len(out) < n {
		if d.pos == len(d.buf) {
			if err := d.fill(); err != nil {
				return nil, eofIsCorrupt(err)
			}
		}
		m := min(n-len(out), len(d.buf)-d.pos, chunk)
		out = slices.Grow(out, m)
		out = append(out, d.buf[d.pos:d.pos+m]...)
		d.pos += m
	}
	return out, nil
}
