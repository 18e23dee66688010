package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Disk faults. Two kinds:
//
//   - lose-unfsynced (kill-lose-unfsynced, kill-all-lose-unfsynced): kill
//     members and throw away what they wrote but had not fsynced
//     (cluster.DiskFaulter), then restart them at heal: a power cut of one
//     machine or of all. A correct server loses no acknowledged write.
//   - corruption (bitflip-wal, truncate-wal, bitflip-snap), as jepsen.etcd
//     does it: stop one member, damage its newest WAL segment or snapshot
//     file (etcd's layout, member/wal/*.wal and member/snap/*.snap, which
//     quorumd shares), start it again. It must either refuse to start, with
//     an error naming the file, or recover without serving a different
//     history (the checker, the final reads and the HashKV check judge
//     that). A member that refused is given its original file back and
//     restarted at heal, so the run goes on with a whole cluster; one that
//     recovered is left as it is (restoring a file under a running member
//     would be the harness's own corruption).

// NeedsDiskFaults reports whether the comma-separated nemesis list names
// a fault that needs cluster.DiskFaulter, i.e. a cluster started with
// StartConfig.DiskFaults.
func NeedsDiskFaults(names string) bool {
	for _, n := range strings.Split(names, ",") {
		if strings.HasSuffix(strings.TrimSpace(n), "-lose-unfsynced") {
			return true
		}
	}
	return false
}

// loseNemesis kills members and loses their unsynced writes.
type loseNemesis struct {
	all  bool
	opts Options
}

var _ Nemesis = (*loseNemesis)(nil)

func (l *loseNemesis) Name() string {
	if l.all {
		return "kill-all-lose-unfsynced"
	}
	return "kill-lose-unfsynced"
}

func (l *loseNemesis) Check(c cluster.Cluster) error {
	if _, ok := c.(cluster.DiskFaulter); !ok {
		return fmt.Errorf("nemesis %s needs a cluster whose members' disks can lose unsynced writes (cluster.DiskFaulter: the local backend started with disk faults, which quorum test does for this nemesis); %T cannot", l.Name(), c)
	}
	return needNodes(l, c)
}

func (l *loseNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f := Fault{Nemesis: l.Name()}
	if err := l.Check(c); err != nil {
		return f, err
	}
	names := nodeNames(c)
	if l.all {
		f.Targets = names
	} else {
		f.Targets = pick(names, 1, l.opts.Rand)
	}
	f.Down = f.Targets
	df := c.(cluster.DiskFaulter)
	var errs, lost []string
	for _, name := range f.Targets {
		n, _ := c.Node(name)
		if err := n.Kill(ctx); err != nil {
			errs = append(errs, fmt.Sprintf("kill %s: %v", name, err))
			continue
		}
	}
	for _, name := range f.Targets {
		what, err := df.LoseUnsynced(ctx, name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		lost = append(lost, name+": "+what)
	}
	f.Note = strings.Join(lost, "; ")
	if len(errs) > 0 {
		return f, errors.New(strings.Join(errs, "; "))
	}
	return f, nil
}

// Heal starts the killed members again, on what their disks kept.
func (l *loseNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	var errs []error
	for _, name := range f.Targets {
		if n, ok := c.Node(name); ok {
			if err := n.Start(ctx); err != nil {
				errs = append(errs, fmt.Errorf("start %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// corruption is one way of damaging a member's file.
type corruption struct {
	name string
	dir  string // under the data dir
	ext  string
	// damage returns the damaged content and a description.
	damage func(b []byte, rng *rand.Rand) ([]byte, string)
}

var corruptions = map[string]corruption{
	"bitflip-wal":  {name: "bitflip-wal", dir: "member/wal", ext: ".wal", damage: bitflip},
	"truncate-wal": {name: "truncate-wal", dir: "member/wal", ext: ".wal", damage: truncateTail},
	"bitflip-snap": {name: "bitflip-snap", dir: "member/snap", ext: ".snap", damage: bitflip},
}

// bitflip flips one random bit of b's non-zero part (a preallocated file's
// zero tail is not data).
func bitflip(b []byte, rng *rand.Rand) ([]byte, string) {
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	if end == 0 {
		return b, "nothing to flip (empty)"
	}
	out := slices.Clone(b)
	off := rng.IntN(end)
	bit := rng.IntN(8)
	out[off] ^= 1 << bit
	return out, fmt.Sprintf("bit %d of byte %d of %d flipped", bit, off, end)
}

// truncateTail cuts b at a random offset in its second half.
func truncateTail(b []byte, rng *rand.Rand) ([]byte, string) {
	if len(b) < 2 {
		return b, "nothing to truncate"
	}
	at := len(b)/2 + rng.IntN(len(b)-len(b)/2)
	return b[:at], fmt.Sprintf("truncated from %d to %d bytes", len(b), at)
}

// corruptNemesis damages one member's newest file of one kind.
type corruptNemesis struct {
	c    corruption
	opts Options
	// originals keeps each damaged file's content, by fault target and
	// path, to give back to a member that refused to start.
	originals map[string][]byte
}

var _ Nemesis = (*corruptNemesis)(nil)

func (n *corruptNemesis) Name() string { return n.c.name }

func (n *corruptNemesis) Check(c cluster.Cluster) error {
	for _, node := range c.Nodes() {
		if _, ok := node.(cluster.DataDirer); !ok {
			return fmt.Errorf("nemesis %s needs members whose data directory is on this machine (cluster.DataDirer: the local backend); %T is not", n.Name(), node)
		}
	}
	return needNodes(n, c)
}

// refusedAfter is how long a corrupted member may run before it counts as
// having recovered.
const refusedAfter = 3 * time.Second

func (n *corruptNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f := Fault{Nemesis: n.Name()}
	if err := n.Check(c); err != nil {
		return f, err
	}
	f.Targets = pick(nodeNames(c), 1, n.opts.Rand)
	name := f.Targets[0]
	node, _ := c.Node(name)
	if err := node.Kill(ctx); err != nil {
		return f, fmt.Errorf("%s: kill %s: %w", n.Name(), name, err)
	}
	f.Down = f.Targets
	dir := filepath.Join(node.(cluster.DataDirer).DataDir(), n.c.dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*"+n.c.ext))
	if len(files) == 0 {
		f.Note = fmt.Sprintf("no %s file in %s yet: nothing damaged", n.c.ext, dir)
		return f, nil
	}
	slices.Sort(files)
	path := files[len(files)-1] // the newest: names sort by sequence / index
	orig, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("%s: read %s: %w", n.Name(), path, err)
	}
	damaged, what := n.c.damage(orig, n.opts.Rand)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		return f, fmt.Errorf("%s: write %s: %w", n.Name(), path, err)
	}
	if n.originals == nil {
		n.originals = map[string][]byte{}
	}
	n.originals[path] = orig
	rel, _ := filepath.Rel(node.(cluster.DataDirer).DataDir(), path)
	// Start it on the damaged file; it may exit at once.
	startErr := node.Start(ctx)
	if startErr == nil {
		select {
		case <-time.After(refusedAfter):
		case <-ctx.Done():
		}
	}
	if startErr != nil || node.State() == cluster.Stopped {
		f.Note = fmt.Sprintf("%s %s: %s refused to start", rel, what, name)
	} else {
		f.Note = fmt.Sprintf("%s %s: %s started on it", rel, what, name)
		delete(n.originals, path) // it runs on it now: never restored
		f.Down = nil
	}
	f.File = path
	return f, nil
}

// Heal gives a member that refused to start its original file back and
// starts it; a member that started on the damaged file is left alone.
func (n *corruptNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	if len(f.Targets) == 0 {
		return nil
	}
	node, ok := c.Node(f.Targets[0])
	if !ok || node.State() != cluster.Stopped {
		return nil
	}
	if orig, ok := n.originals[f.File]; ok {
		if err := os.WriteFile(f.File, orig, 0o600); err != nil {
			return fmt.Errorf("%s: restore %s: %w", n.Name(), f.File, err)
		}
		delete(n.originals, f.File)
	}
	if err := node.Start(ctx); err != nil {
		return fmt.Errorf("%s: start %s again: %w", n.Name(), f.Targets[0], err)
	}
	return nil
}

func (l *loseNemesis) minNodes() (int, string)    { return 1, "a member to kill" }
func (n *corruptNemesis) minNodes() (int, string) { return 1, "a member whose file to damage" }
