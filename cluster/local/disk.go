package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/lazyfs"
	"github.com/quorum-kv/quorum/rundir"
)

var _ cluster.DiskFaulter = (*Cluster)(nil)

// diskBacking is where, with DiskFaults, the data directory's contents
// really are: the lazy mount over Dir/data mirrors Dir/.data-backing.
const diskBacking = ".data-backing"

// mountDisk mounts a lazy file system over the run's data directory when
// cfg.DiskFaults asks for one, so that every member's data is on it; nil
// otherwise.
func mountDisk(cfg Config) (*lazyfs.FS, error) {
	if !cfg.DiskFaults {
		return nil, nil
	}
	if err := lazyfs.Available(); err != nil {
		return nil, fmt.Errorf("local: disk faults (lose unsynced writes): %w", err)
	}
	backing := filepath.Join(cfg.Dir, diskBacking)
	if err := os.MkdirAll(backing, 0o755); err != nil {
		return nil, fmt.Errorf("local: disk faults: %w", err)
	}
	fs, err := lazyfs.Mount(backing, filepath.Join(cfg.Dir, rundir.DataDir))
	if err != nil {
		return nil, fmt.Errorf("local: disk faults: %w", err)
	}
	cfg.Logger.Info("members' data on a lazy file system: unsynced writes can be lost", "mount", fs.Mountpoint(), "backing", backing)
	return fs, nil
}

// unmountDisk unmounts it, once every member has stopped; the data stays in
// the backing directory, which the run keeps in place of data/.
func unmountDisk(fs *lazyfs.FS, cfg Config) {
	if fs == nil {
		return
	}
	if err := fs.Unmount(); err != nil {
		cfg.Logger.Warn("local: unmount the lazy file system", "err", err)
		return
	}
	data, backing := filepath.Join(cfg.Dir, rundir.DataDir), filepath.Join(cfg.Dir, diskBacking)
	if err := os.Remove(data); err == nil {
		os.Rename(backing, data)
	}
}

// LoseUnsynced drops what member name wrote and did not fsync (see
// cluster.DiskFaulter). The member must not be running.
func (c *Cluster) LoseUnsynced(ctx context.Context, name string) (string, error) {
	if c.disk == nil {
		return "", fmt.Errorf("lose unsynced writes of %s: the cluster was started without disk faults (StartConfig.DiskFaults)", name)
	}
	n, ok := c.Node(name)
	if !ok {
		return "", fmt.Errorf("lose unsynced writes: %w %q", cluster.ErrUnknownNode, name)
	}
	if st := n.State(); st != cluster.Stopped {
		return "", fmt.Errorf("lose unsynced writes of %s: it is %v; kill it first (a running process would go on writing)", name, st)
	}
	st := c.disk.DropUnsyncedUnder(name)
	return fmt.Sprintf("%d unsynced pages (%d bytes) in %d files lost", st.Pages, st.Bytes, st.Files), nil
}
