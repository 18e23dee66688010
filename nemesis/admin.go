package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster"
)

// adminKind is what an admin nemesis does.
type adminKind int

const (
	adminCompact   adminKind = iota // KV.Compact at the current revision
	adminDefrag                     // Maintenance.Defragment on every running member, one after another
	adminDefragOne                  // Maintenance.Defragment on one random running member
	adminSnapshot                   // Maintenance.Snapshot of one random running member, to a file
)

var adminNames = map[adminKind]string{
	adminCompact:   "compact",
	adminDefrag:    "defrag",
	adminDefragOne: "defrag-one",
	adminSnapshot:  "snapshot",
}

// SnapshotsDir is the directory, under Options.Dir, the snapshot nemesis
// writes its files to.
const SnapshotsDir = "snapshots"

// adminNemesis is an operator's maintenance task run during load, as a
// cron job would: compact (KV.Compact at the revision the cluster is at,
// read just before), defrag / defrag-one (Maintenance.Defragment, which
// blocks the member's writes while it rewrites its database) and snapshot
// (Maintenance.Snapshot of one member streamed to
// Options.Dir/snapshots/NNN-<member>.db; the Note gives its size and the
// member's revision when it was taken — an interval, when writes were
// applied while the stream opened). They are instantaneous: all the work is done
// in Apply, and Heal does nothing.
type adminNemesis struct {
	kind adminKind
	opts Options
	seq  int // snapshot files made so far
}

var (
	_ Nemesis   = (*adminNemesis)(nil)
	_ Planner   = (*adminNemesis)(nil)
	_ Describer = (*adminNemesis)(nil)
)

func (a *adminNemesis) Name() string { return adminNames[a.kind] }

func (a *adminNemesis) minNodes() (int, string) { return 1, "a member to ask" }

// Check refuses the snapshot nemesis without a directory for its files.
func (a *adminNemesis) Check(c cluster.Cluster) error {
	if err := needNodes(a, c); err != nil {
		return err
	}
	if a.kind == adminSnapshot && a.opts.Dir == "" {
		return fmt.Errorf("nemesis %s needs a directory for its snapshot files (nemesis.Options.Dir, the run's directory)", a.Name())
	}
	return nil
}

// Plan picks the member(s) asked: every node for defrag, one random node
// for defrag-one and snapshot, none (any running member answers) for
// compact.
func (a *adminNemesis) Plan(ctx context.Context, c cluster.Cluster) (Fault, error) {
	if err := a.Check(c); err != nil {
		return Fault{}, err
	}
	f := Fault{Nemesis: a.Name()}
	switch a.kind {
	case adminDefrag:
		f.Targets = nodeNames(c)
	case adminDefragOne, adminSnapshot:
		f.Targets = pick(nodeNames(c), 1, a.opts.Rand)
	}
	return f, nil
}

func (a *adminNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	_, err := a.ApplyAndDescribe(ctx, c, f)
	return err
}

func (a *adminNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := a.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return a.ApplyAndDescribe(ctx, c, f)
}

// Heal does nothing: the task is over once Apply returns.
func (a *adminNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error { return nil }

// adminRequestTimeout bounds each request (a defragment of a small
// database takes well under a second; a snapshot streams it whole).
const adminRequestTimeout = 30 * time.Second

// ApplyAndDescribe does the task; the Note says what was done.
func (a *adminNemesis) ApplyAndDescribe(ctx context.Context, c cluster.Cluster, f Fault) (Fault, error) {
	var eps []string
	if len(f.Targets) == 0 {
		for _, n := range c.Nodes() {
			if n.State() == cluster.Running {
				eps = append(eps, n.ClientURL())
			}
		}
	} else {
		for _, name := range f.Targets {
			n, ok := c.Node(name)
			if !ok {
				return f, fmt.Errorf("%s %s: %w", a.Name(), name, cluster.ErrUnknownNode)
			}
			eps = append(eps, n.ClientURL())
		}
	}
	if len(eps) == 0 {
		return f, fmt.Errorf("%s: no running member to ask", a.Name())
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: eps, TLS: cluster.ClientTLS(c), DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx,
	})
	if err != nil {
		return f, fmt.Errorf("%s: client for %v: %w", a.Name(), eps, err)
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, adminRequestTimeout)
	defer cancel()
	var note string
	switch a.kind {
	case adminCompact:
		note, err = compact(rctx, cli)
	case adminDefrag, adminDefragOne:
		note, err = defragment(rctx, cli, f.Targets, eps)
	case adminSnapshot:
		a.seq++
		path := filepath.Join(a.opts.Dir, SnapshotsDir, fmt.Sprintf("%03d-%s.db", a.seq, f.Targets[0]))
		note, err = snapshot(rctx, cli, path)
	}
	f.Note = note
	if err != nil {
		return f, fmt.Errorf("%s: %w", a.Name(), err)
	}
	return f, nil
}

// compact compacts at the revision a read sees just before (any key: the
// header carries the store's revision). A revision already compacted (an
// earlier compaction got there first) is reported, not an error.
func compact(ctx context.Context, cli *clientv3.Client) (string, error) {
	resp, err := cli.Get(ctx, "quorum-compact-probe")
	if err != nil {
		return "", fmt.Errorf("read the current revision: %w", err)
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Sprintf("revision %d already compacted", rev), nil
		}
		return fmt.Sprintf("compact at %d failed", rev), fmt.Errorf("compact at revision %d: %w", rev, err)
	}
	return fmt.Sprintf("compacted at revision %d", rev), nil
}

// defragment defragments each endpoint in turn (etcdctl defrag --cluster
// does one member at a time, so that a majority keeps serving).
func defragment(ctx context.Context, cli *clientv3.Client, names, eps []string) (string, error) {
	var done []string
	for i, ep := range eps {
		start := time.Now()
		if _, err := cli.Defragment(ctx, ep); err != nil {
			return strings.Join(done, ", "), fmt.Errorf("defragment %s at %s: %w", names[i], ep, err)
		}
		done = append(done, fmt.Sprintf("%s in %v", names[i], time.Since(start).Round(time.Millisecond)))
	}
	return "defragmented " + strings.Join(done, ", "), nil
}

// snapshot streams the member's snapshot to path (written to a temporary
// file, renamed once complete).
func snapshot(ctx context.Context, cli *clientv3.Client, path string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("snapshot directory: %w", err)
	}
	// etcd's snapshot stream carries no header: the member's revision
	// read just before the stream opens and just after (the first chunk
	// has arrived, so the member has taken its backend snapshot) brackets
	// the snapshot's.
	before, err := cli.Get(ctx, "quorum-snapshot-probe", clientv3.WithSerializable())
	if err != nil {
		return "", fmt.Errorf("read the member's revision: %w", err)
	}
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("open snapshot stream: %w", err)
	}
	after, err := cli.Get(ctx, "quorum-snapshot-probe", clientv3.WithSerializable())
	if err != nil {
		resp.Snapshot.Close()
		return "", fmt.Errorf("read the member's revision: %w", err)
	}
	revs := fmt.Sprintf("revision %d", before.Header.Revision)
	if r := resp.Header.GetRevision(); r != 0 {
		revs = fmt.Sprintf("revision %d", r)
	} else if after.Header.Revision != before.Header.Revision {
		revs = fmt.Sprintf("revision %d..%d", before.Header.Revision, after.Header.Revision)
	}
	defer resp.Snapshot.Close()
	tmp := path + ".part"
	out, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("snapshot file: %w", err)
	}
	n, err := io.Copy(out, resp.Snapshot)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Sprintf("snapshot at %s failed after %d bytes", revs, n), fmt.Errorf("stream snapshot to %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("snapshot file: %w", err)
	}
	return fmt.Sprintf("snapshot %s: %d bytes at %s (storage version %s)", filepath.Base(path), n, revs, resp.Version), nil
}
