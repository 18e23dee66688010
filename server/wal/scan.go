package wal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrCorrupt is wrapped by every error reporting damage that recovery must
// not paper over. Match it with errors.Is; errors.As with *CorruptError gives
// the file and offset.
var ErrCorrupt = errors.New("wal: data directory is corrupt")

// ErrLocked is wrapped by the error Create or Open return when another open
// WAL (in this process or another) holds the directory's lock.
var ErrLocked = errors.New("WAL is locked by another process (is another quorumd using this data directory?)")

const corruptHint = "data directory is damaged; restore the member from a snapshot or wipe it and let it rejoin"

// CorruptError describes damage found while reading a WAL.
type CorruptError struct {
	File   string // path of the damaged segment (or the WAL directory)
	Offset int64  // byte offset of the damaged record, or -1 if not about one record
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("wal: corrupt data in %s: %s (%s)", e.File, e.Reason, corruptHint)
	}
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s (%s)", e.File, e.Offset, e.Reason, corruptHint)
}

var _ error = (*CorruptError)(nil)

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// scanSegment reads every record of the segment f (path names it in errors)
// from offset 0 and hands each valid record to visit, whose error is reported
// as corruption of that record. payload is valid only during the call.
//
// Damage that a crash during the final unsynced write can explain is a torn
// tail. When last is true, scanSegment stops there and returns the offset of
// the damaged record as end and a description as torn; otherwise it returns a
// *CorruptError. A torn tail is one of: fewer than headerSize bytes left; a
// header failing its checksum where only zeros, or less than a header, follow
// the damage; a record whose payload runs past end of file; a final record
// whose payload checksum fails and that ends at end of file or is followed
// only by zeros. Everything else is a *CorruptError.
//
// With no damage, end is the file size and torn is "".
func scanSegment(f *os.File, path string, size int64, last bool,
	visit func(typ byte, payload []byte) error) (end int64, torn string, err error) {

	br := bufio.NewReaderSize(f, 1<<20)
	var hdr [headerSize]byte
	var payload []byte
	damaged := func(off int64, tornTail bool, reason string) (int64, string, error) {
		if tornTail && last {
			return off, reason, nil
		}
		return 0, "", &CorruptError{File: path, Offset: off, Reason: reason}
	}
	for off := int64(0); off < size; {
		rem := size - off
		if rem < headerSize {
			return damaged(off, true, fmt.Sprintf("record header cut short by end of file (%d of %d bytes)", rem, headerSize))
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return 0, "", fmt.Errorf("wal: read %s at offset %d: %w", path, off, err)
		}
		h, ok := parseHeader(hdr[:])
		if !ok {
			z, err := zeroSuffix(f, off, size)
			if err != nil {
				return 0, "", fmt.Errorf("wal: read %s: %w", path, err)
			}
			switch {
			case z <= off:
				return damaged(off, true, "zero-filled tail")
			case z <= off+headerSize:
				return damaged(off, true, "record header half written, zeros to end of file")
			case rem-headerSize < headerSize:
				return damaged(off, true, "final record header checksum mismatch")
			}
			return damaged(off, false, "header checksum mismatch")
		}
		if h.length > maxPayload {
			return damaged(off, false, fmt.Sprintf("record length %d exceeds the %d-byte limit", h.length, maxPayload))
		}
		recEnd := off + headerSize + int64(h.length)
		if recEnd > size {
			return damaged(off, true, fmt.Sprintf("record cut short by end of file (payload %d bytes, %d present)",
				h.length, rem-headerSize))
		}
		if cap(payload) < int(h.length) {
			payload = make([]byte, h.length)
		}
		payload = payload[:h.length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return 0, "", fmt.Errorf("wal: read %s at offset %d: %w", path, off, err)
		}
		if crc := crcOf(payload); crc != h.crc {
			if recEnd == size {
				return damaged(off, true, "payload checksum mismatch in the final record")
			}
			z, err := zeroSuffix(f, recEnd, size)
			if err != nil {
				return 0, "", fmt.Errorf("wal: read %s: %w", path, err)
			}
			if z <= recEnd {
				return damaged(off, true, "payload checksum mismatch, zeros to end of file")
			}
			return damaged(off, false, "payload checksum mismatch")
		}
		if err := visit(h.typ, payload); err != nil {
			return damaged(off, false, err.Error())
		}
		off = recEnd
	}
	return size, "", nil
}

// zeroSuffix returns the offset at which the all-zero suffix of f[from:size]
// begins (size when the last byte is not zero, from when all bytes are zero).
func zeroSuffix(f *os.File, from, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	z := from
	for off := from; off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				z = off + i + 1
				break
			}
		}
		off += n
	}
	return z, nil
}
