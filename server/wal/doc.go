// Package wal is quorumd's write-ahead log: the durable copy of the Raft hard
// state and log entries that raft.MemoryStorage holds in memory.
//
// The log is a directory of segment files named %016x-%016x.wal (sequence
// number, index of the first entry expected in the segment), each at most
// about Options.SegmentSize bytes. A segment is a sequence of records:
//
//	length  uint32  payload length, little endian
//	type    uint8   record type; three zero bytes follow
//	crc     uint32  CRC-32C (Castagnoli) of the payload
//	hcrc    uint32  CRC-32C of the 12 header bytes above
//	payload [length]byte
//
// Every segment starts with a segment-header record (sequence number and
// first index) and the hard state current when it was created, so deleting
// old segments never loses the hard state.
//
// Recovery distinguishes a torn tail from corruption. A crash while the last,
// unsynced batch was being written can only damage the end of the last
// segment; such damage (a record cut short by end of file, a zero-filled
// tail, a final record whose payload checksum fails) is truncated away and
// reported in Contents.Repaired. Any other damage is corruption: Open fails
// with an error wrapping ErrCorrupt that names the file and byte offset.
//
// A WAL is owned by one goroutine (quorumd's Raft loop); its methods are
// serialised by a mutex but are not meant to be called concurrently.
package wal
