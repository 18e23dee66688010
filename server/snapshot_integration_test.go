package server_test

// Snapshots interchangeable with etcd's: Maintenance.Snapshot from quorumd
// restored by etcdutl into a real etcd, etcd's snapshot restored by
// server.RestoreDataDir into a 3-member quorumd, quorumd's into quorumd,
// every key, revision and lease compared. They need tools/bin/etcd,
// etcdctl and etcdutl (bash tools/build.sh) and skip without them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/server"
	"github.com/quorum-kv/quorum/server/etcdbolt"
	"github.com/quorum-kv/quorum/server/mvcc"
)

// etcdTool is tools/bin/<name>, or the test skips.
func etcdTool(t *testing.T, name string) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join("..", "tools", "bin", name))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("needs tools/bin/%s: run `bash tools/build.sh` first (%v)", name, err)
	}
	return p
}

// member is one member's flags: name, URLs, data dir.
type member struct {
	name, client, peer, dataDir string
}

func newMembers(t *testing.T, dir string, n int) []member {
	ms := make([]member, n)
	for i := range ms {
		ms[i] = member{name: fmt.Sprintf("m%d", i+1),
			client:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peer:    fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			dataDir: filepath.Join(dir, fmt.Sprintf("m%d", i+1))}
	}
	return ms
}

func initialCluster(ms []member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.name + "=" + m.peer
	}
	return strings.Join(parts, ",")
}

func endpoints(ms []member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.client
	}
	return out
}

// startMember runs bin (quorumd or etcd, whose flags are the same) as m of
// ms, logging to <dataDir>.log; it is killed at cleanup.
func startMember(t *testing.T, bin string, m member, ms []member, token string) {
	t.Helper()
	logf, err := os.Create(m.dataDir + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", initialCluster(ms), "--initial-cluster-token", token)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(m.dataDir + ".log")
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			t.Logf("--- last lines of %s (%s):\n%s", m.name, filepath.Base(bin), strings.Join(lines, "\n"))
		}
	})
}

func newClient(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// waitServing waits until every endpoint answers a linearizable read.
func waitServing(t *testing.T, eps []string) {
	t.Helper()
	for _, ep := range eps {
		cli := newClient(t, ep)
		eventually(t, 30*time.Second, "serving on "+ep, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := cli.Get(ctx, "probe")
			return err
		})
	}
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func stdout(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return string(out)
}

// writeHistory makes a history with every kind of change: puts, deletes,
// txns, a second generation of a key, two leases (one with two keys), a
// compaction, and writes after it. It returns the compaction revision.
func writeHistory(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cli.Put(ctx, "a", "1"))
	must(cli.Put(ctx, "b", "2"))
	must(cli.Put(ctx, "a", "3"))
	must(cli.Delete(ctx, "b"))
	must(cli.Txn(ctx).Then(clientv3.OpPut("t1", "x"), clientv3.OpPut("t2", "y"), clientv3.OpDelete("a")).Commit())
	l1, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	must(cli.Grant(ctx, 7200))
	must(cli.Put(ctx, "lk1", "v", clientv3.WithLease(l1.ID)))
	must(cli.Put(ctx, "lk2", "v", clientv3.WithLease(l1.ID)))
	resp, err := cli.Put(ctx, "b", "again")
	if err != nil {
		t.Fatal(err)
	}
	compactRev := resp.Header.Revision
	must(cli.Put(ctx, "c", "4"))
	must(cli.Compact(ctx, compactRev))
	must(cli.Delete(ctx, "t1"))
	must(cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("t2"), "=", 1)).
		Then(clientv3.OpPut("t2", "z"), clientv3.OpPut("d", strings.Repeat("v", 5000))).Commit())
	must(cli.Put(ctx, "a", "new generation"))
	must(cli.Put(ctx, "lk2", "detached"))
	return compactRev
}

// captureState describes what a member serves: the keyspace (key, create
// and mod revision, version, value, lease) at every revision from the
// compaction revision to the current one, the compaction revision (the
// oldest readable), and every lease with its granted TTL and keys.
func captureState(t *testing.T, ep string) string {
	t.Helper()
	cli := newClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	cur, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	rev := cur.Header.Revision
	fmt.Fprintf(&b, "current revision %d\n", rev)
	compact := int64(0)
	for r := int64(1); r <= rev; r++ {
		resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(r))
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue
		}
		if err != nil {
			t.Fatalf("get at %d on %s: %v", r, ep, err)
		}
		if compact == 0 {
			compact = r
		}
		fmt.Fprintf(&b, "at %d:\n", r)
		for _, kv := range resp.Kvs {
			fmt.Fprintf(&b, "  %q create %d mod %d version %d lease %x value %q\n",
				kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value)
		}
	}
	fmt.Fprintf(&b, "oldest readable revision %d\n", compact)
	ls, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 0, len(ls.Leases))
	for _, l := range ls.Leases {
		ids = append(ids, int64(l.ID))
	}
	slices.Sort(ids)
	for _, id := range ids {
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(id), clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, len(ttl.Keys))
		for i, k := range ttl.Keys {
			keys[i] = string(k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "lease %x granted %d keys %q\n", id, ttl.GrantedTTL, keys)
	}
	return b.String()
}

// saveSnapshot runs etcdctl snapshot save against ep into path.
func saveSnapshot(t *testing.T, ep, path string) {
	t.Helper()
	run(t, etcdTool(t, "etcdctl"), "--endpoints", ep, "snapshot", "save", path)
}

// storeOf is the keyspace in a snapshot file, restored as etcd restores
// it.
func storeOf(t *testing.T, path string) *mvcc.Store {
	t.Helper()
	f, err := etcdbolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := f.Backend()
	if err != nil {
		t.Fatal(err)
	}
	bl := mvcc.NewBuilder()
	if err := b.Keyspace(bl.Add); err != nil {
		t.Fatal(err)
	}
	compact := int64(-1)
	if b.CompactRev > 0 {
		compact = b.CompactRev
	}
	s, err := bl.Finish(compact)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hashKVOf is the lead's HashKV (etcd's) of the keyspace in a snapshot
// file at rev (0: its current revision).
func hashKVOf(t *testing.T, path string, rev int64) etcdbolt.KeyValueHash {
	t.Helper()
	h, err := etcdbolt.HashKV(storeOf(t, path).View(), rev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func restoreQuorumd(t *testing.T, path string, m member, ms []member, token string) {
	t.Helper()
	err := server.RestoreDataDir(server.RestoreConfig{
		SnapshotPath: path, Name: m.name, InitialCluster: initialCluster(ms), InitialClusterToken: token,
		InitialAdvertisePeerURLs: m.peer, DataDir: m.dataDir,
	})
	if err != nil {
		t.Fatalf("restore %s for %s: %v", path, m.name, err)
	}
}

func diffStates(t *testing.T, what, want, got string) {
	t.Helper()
	if want != got {
		t.Fatalf("%s differs from the source\n%s", what, lineDiff(want, got))
	}
}

// A snapshot from any member of a 3-member quorumd: etcdctl saves it,
// etcdutl's status reads it as quorumutl's does, Maintenance.Hash agrees on
// every member, etcdutl restores it and a real etcd started on the restored
// dir serves every key, revision and lease of the source; quorumd restored
// from the same file serves them too, with the same HashKV.
func TestSnapshotFromQuorumdRestoresIntoEtcdAndQuorumd(t *testing.T) {
	etcd, etcdutl := etcdTool(t, "etcd"), etcdTool(t, "etcdutl")
	etcdTool(t, "etcdctl")
	tc := startCluster(t, 3)
	tc.waitHealthy()
	eps := tc.Endpoints()
	cli := tc.client(eps...)
	writeHistory(t, cli)
	want := captureState(t, eps[0])
	for _, ep := range eps[1:] {
		eventually(t, 10*time.Second, "members agree", func() error {
			if got := captureState(t, ep); got != want {
				return fmt.Errorf("member %s differs:\n%s", ep, lineDiff(want, got))
			}
			return nil
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var hashes []uint32
	for _, ep := range eps {
		resp, err := pb.NewMaintenanceClient(newClient(t, ep).ActiveConnection()).Hash(ctx, &pb.HashRequest{})
		if err != nil {
			t.Fatalf("Maintenance.Hash on %s: %v", ep, err)
		}
		hashes = append(hashes, resp.Hash)
	}
	if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
		t.Fatalf("Maintenance.Hash differs between members at the same state: %v", hashes)
	}

	dir := t.TempDir()
	var files []string
	for i, ep := range eps {
		p := filepath.Join(dir, fmt.Sprintf("backup%d.db", i+1))
		saveSnapshot(t, ep, p)
		files = append(files, p)
	}
	backup := files[0]
	st := stdout(t, etcdutl, "snapshot", "status", backup, "-w", "json")
	if !strings.Contains(st, `"version":"3.6.0"`) {
		t.Fatalf("etcdutl snapshot status: %s", st)
	}
	for _, f := range files[1:] {
		// The hash covers the consistent index: equal once every member
		// applied the same entries.
		if got := stdout(t, etcdutl, "snapshot", "status", f, "-w", "json"); got != st {
			t.Errorf("status of %s: %s, of %s: %s", f, got, backup, st)
		}
	}

	// etcdutl restore + real etcd.
	ems := newMembers(t, dir, 1)
	run(t, etcdutl, "snapshot", "restore", backup, "--name", ems[0].name, "--initial-cluster", initialCluster(ems),
		"--initial-cluster-token", "t", "--initial-advertise-peer-urls", ems[0].peer, "--data-dir", ems[0].dataDir)
	startMember(t, etcd, ems[0], ems, "t")
	waitServing(t, endpoints(ems))
	diffStates(t, "real etcd restored by etcdutl", want, captureState(t, ems[0].client))

	// quorumutl's restore (server.RestoreDataDir) + one quorumd.
	qms := newMembers(t, filepath.Join(dir, "q"), 1)
	os.MkdirAll(filepath.Join(dir, "q"), 0o700)
	restoreQuorumd(t, backup, qms[0], qms, "t")
	startMember(t, quorumdBinary, qms[0], qms, "t")
	waitServing(t, endpoints(qms))
	diffStates(t, "quorumd restored from quorumd's snapshot", want, captureState(t, qms[0].client))
	again := filepath.Join(dir, "again.db")
	saveSnapshot(t, qms[0].client, again)
	if a, b := hashKVOf(t, backup, 0), hashKVOf(t, again, 0); a != b {
		t.Fatalf("HashKV of the restored quorumd %+v, of the source %+v", b, a)
	}
}

// etcd's snapshot restored by server.RestoreDataDir into three members
// makes one 3-member quorumd cluster serving every key, revision and lease
// of the source etcd, with etcd's HashKV.
func TestSnapshotFromEtcdRestoresIntoThreeMemberQuorumd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	etcd := etcdTool(t, "etcd")
	etcdTool(t, "etcdctl")
	dir := t.TempDir()
	src := newMembers(t, filepath.Join(dir, "etcd"), 1)
	os.MkdirAll(filepath.Join(dir, "etcd"), 0o700)
	startMember(t, etcd, src[0], src, "src")
	waitServing(t, endpoints(src))
	cli := newClient(t, src[0].client)
	writeHistory(t, cli)
	want := captureState(t, src[0].client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srcHash, err := cli.HashKV(ctx, src[0].client, 0)
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "etcd.db")
	saveSnapshot(t, src[0].client, backup)

	qdir := filepath.Join(dir, "q")
	os.MkdirAll(qdir, 0o700)
	ms := newMembers(t, qdir, 3)
	for _, m := range ms {
		restoreQuorumd(t, backup, m, ms, "restored")
	}
	for _, m := range ms {
		startMember(t, quorumdBinary, m, ms, "restored")
	}
	waitServing(t, endpoints(ms))
	for _, m := range ms {
		diffStates(t, "quorumd member "+m.name+" restored from etcd's snapshot", want, captureState(t, m.client))
	}
	// One cluster: a write through one member is read on every other.
	qcli := newClient(t, endpoints(ms)...)
	put, err := qcli.Put(ctx, "after-restore", "x")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision != srcHash.Header.Revision+1 {
		t.Fatalf("first write after restore at revision %d, want %d", put.Header.Revision, srcHash.Header.Revision+1)
	}
	for _, m := range ms {
		c := newClient(t, m.client)
		resp, err := c.Get(ctx, "after-restore")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get on %s: %v %v", m.name, resp, err)
		}
	}
	snapAfter := filepath.Join(dir, "restored.db")
	saveSnapshot(t, ms[1].client, snapAfter)
	// etcd's HashKV at the source's revision: the put above comes after it.
	at := hashKVOf(t, snapAfter, srcHash.Header.Revision)
	if at.Hash != srcHash.Hash || at.CompactRevision != srcHash.CompactRevision {
		t.Fatalf("HashKV of the restored cluster at %d: %+v; etcd's: hash %d compact revision %d",
			srcHash.Header.Revision, at, srcHash.Hash, srcHash.CompactRevision)
	}
}

// Bad input is refused with an error naming the file or the data dir, and
// nothing is written: no data dir, no temporary directory beside it.
func TestRestoreDataDirRefusesBadInput(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("etcdbolt", "testdata", "etcd-3.6.16.db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	noBuckets := write("nobuckets.db", nil)
	os.Remove(noBuckets)
	if err := etcdbolt.WriteFile(noBuckets, &etcdbolt.Backend{}); err != nil {
		t.Fatal(err)
	}
	// etcdbolt.WriteFile always writes etcd's buckets; strip them with
	// bbolt to get a bbolt file without them.
	stripBuckets(t, noBuckets)
	nonEmpty := filepath.Join(dir, "nonempty")
	os.MkdirAll(nonEmpty, 0o700)
	os.WriteFile(filepath.Join(nonEmpty, "keep"), []byte("x"), 0o600)
	cases := []struct {
		name, file, dataDir string
		skipHash            bool
		want                string
	}{
		{"sha256 mismatch", write("flipped.db", flipped), "", false, "sha256 mismatch"},
		{"truncated", write("truncated.db", good[:len(good)/2]), "", false, "missing hash"},
		{"truncated, hash check skipped", write("truncated2.db", good[:len(good)/2]), "", true, "truncated"},
		{"not bbolt", write("text.db", []byte(strings.Repeat("not a database\n", 100))), "", true, "not an etcd v3 backend"},
		{"bbolt without etcd's buckets", noBuckets, "", true, `no "key" bucket`},
		{"existing non-empty data dir", write("good.db", good), nonEmpty, false, "not empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dataDir := c.dataDir
			if dataDir == "" {
				dataDir = filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
			}
			err := server.RestoreDataDir(server.RestoreConfig{
				SnapshotPath: c.file, Name: "m1", InitialCluster: "m1=http://127.0.0.1:2380",
				InitialAdvertisePeerURLs: "http://127.0.0.1:2380", DataDir: dataDir, SkipHashCheck: c.skipHash,
			})
			if err == nil {
				t.Fatal("restore succeeded")
			}
			named := c.file
			if c.dataDir != "" {
				named = c.dataDir
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), named) {
				t.Fatalf("error %q: want one naming %s and saying %q", err, named, c.want)
			}
			if c.dataDir == "" {
				if _, serr := os.Stat(dataDir); !errors.Is(serr, os.ErrNotExist) {
					t.Fatalf("restore left %s behind: %v", dataDir, serr)
				}
			} else if ents, _ := os.ReadDir(c.dataDir); len(ents) != 1 {
				t.Fatalf("restore changed %s: %v", c.dataDir, ents)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*restore-*"))
			if len(left) > 0 {
				t.Fatalf("restore left temporary dirs: %v", left)
			}
		})
	}
	// The good file restores (the cases above fail for their reason).
	out := filepath.Join(dir, "restored")
	if err := server.RestoreDataDir(server.RestoreConfig{
		SnapshotPath: write("good2.db", good), Name: "m1", InitialCluster: "m1=http://127.0.0.1:2380",
		InitialAdvertisePeerURLs: "http://127.0.0.1:2380", DataDir: out,
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"member/meta.json", "member/wal", "member/snap"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Fatal(err)
		}
	}
}

// stripBuckets deletes every bucket of the bbolt file at path.
func stripBuckets(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		var names [][]byte
		tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, slices.Clone(name))
			return nil
		})
		for _, n := range names {
			if err := tx.DeleteBucket(n); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucket([]byte("other"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
