//go:build !unix

package wal

import (
	"fmt"
	"os"
)

// lockFile opens (creating if needed) path. Without flock(2) it cannot keep
// a second process out; quorumd supports only unix platforms in production.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: open lock file: %w", err)
	}
	return f, nil
}
