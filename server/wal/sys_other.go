//go:build !linux

package wal

import "os"

// fdatasync flushes f to stable storage; where fdatasync(2) is unavailable
// it falls back to a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }
