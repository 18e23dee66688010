package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// Record types. The values are part of the on-disk format.
const (
	recSegment  byte = 1 // segment header: magic/version, sequence, first index
	recState    byte = 2 // raftpb.HardState
	recEntry    byte = 3 // raftpb.Entry
	recSnapshot byte = 4 // snapshot restore: index, term
)

const (
	headerSize = 16
	// maxPayload bounds a single record. Raft entries are far smaller; the
	// bound keeps a corrupt (but checksum-valid) length from allocating wildly.
	maxPayload = 1 << 30

	// formatVersion is stored in every segment header.
	formatVersion    uint32 = 1
	segmentMagic     uint32 = 0x51574c31 // "QWL1"
	segmentPayload          = 4 + 4 + 8 + 8
	snapshotPayload         = 8 + 8
	defaultSegmentSz        = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// header is a decoded record header.
type header struct {
	length uint32
	typ    byte
	crc    uint32
}

// putHeader encodes a header for payload into b[:headerSize].
func putHeader(b []byte, typ byte, payload []byte) {
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	b[4], b[5], b[6], b[7] = typ, 0, 0, 0
	binary.LittleEndian.PutUint32(b[8:12], crc32.Checksum(payload, crcTable))
	binary.LittleEndian.PutUint32(b[12:16], crc32.Checksum(b[0:12], crcTable))
}

// parseHeader decodes b[:headerSize]. ok is false when the header checksum
// does not match or the reserved bytes are not zero.
func parseHeader(b []byte) (h header, ok bool) {
	if crc32.Checksum(b[0:12], crcTable) != binary.LittleEndian.Uint32(b[12:16]) {
		return header{}, false
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return header{}, false
	}
	return header{
		length: binary.LittleEndian.Uint32(b[0:4]),
		typ:    b[4],
		crc:    binary.LittleEndian.Uint32(b[8:12]),
	}, true
}

// reserveRecord extends buf by a record with an n-byte payload and returns
// the extended buffer and the record's start; the caller writes the payload
// into buf[start+headerSize:] and then calls sealRecord. buf grows at most
// once, by doubling, so a reused buffer stops allocating after warm-up.
func reserveRecord(buf []byte, n int) ([]byte, int) {
	start := len(buf)
	need := start + headerSize + n
	if need > cap(buf) {
		nb := make([]byte, start, max(need, 2*cap(buf)))
		copy(nb, buf)
		buf = nb
	}
	return buf[:need], start
}

// sealRecord writes the header of the record starting at buf[start:], whose
// payload runs to the end of buf.
func sealRecord(buf []byte, start int, typ byte) {
	putHeader(buf[start:start+headerSize], typ, buf[start+headerSize:])
}

// segmentHeader is the payload of a recSegment record.
type segmentHeader struct {
	seq        uint64
	firstIndex uint64
}

func (s segmentHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b[0:4], segmentMagic)
	binary.LittleEndian.PutUint32(b[4:8], formatVersion)
	binary.LittleEndian.PutUint64(b[8:16], s.seq)
	binary.LittleEndian.PutUint64(b[16:24], s.firstIndex)
}

func parseSegmentHeader(b []byte) (segmentHeader, bool) {
	if len(b) != segmentPayload ||
		binary.LittleEndian.Uint32(b[0:4]) != segmentMagic ||
		binary.LittleEndian.Uint32(b[4:8]) != formatVersion {
		return segmentHeader{}, false
	}
	return segmentHeader{
		seq:        binary.LittleEndian.Uint64(b[8:16]),
		firstIndex: binary.LittleEndian.Uint64(b[16:24]),
	}, true
}

func putSnapshot(b []byte, index, term uint64) {
	binary.LittleEndian.PutUint64(b[0:8], index)
	binary.LittleEndian.PutUint64(b[8:16], term)
}

func parseSnapshot(b []byte) (index, term uint64, ok bool) {
	if len(b) != snapshotPayload {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[0:8]), binary.LittleEndian.Uint64(b[8:16]), true
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, crcTable) }
