package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// hashKVHistory writes the same history to a cluster: puts, an
// overwrite, deletes, a txn that puts and deletes, a compaction in the
// middle, more writes after it. It returns the compaction revision and a
// revision between it and the current one.
func hashKVHistory(t *testing.T, cli *clientv3.Client) (compactRev, midRev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	do := func(op clientv3.Op) int64 {
		t.Helper()
		r, err := cli.Do(ctx, op)
		if err != nil {
			t.Fatalf("%v: %v", op, err)
		}
		switch {
		case r.Put() != nil:
			return r.Put().Header.Revision
		case r.Del() != nil:
			return r.Del().Header.Revision
		case r.Txn() != nil:
			return r.Txn().Header.Revision
		}
		return r.Get().Header.Revision
	}
	do(clientv3.OpPut("a", "1"))
	do(clientv3.OpPut("b", "2"))
	do(clientv3.OpPut("c", "3"))
	do(clientv3.OpPut("a", "4"))
	do(clientv3.OpDelete("b"))
	do(clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "=", "4")},
		[]clientv3.Op{clientv3.OpPut("d", "5"), clientv3.OpDelete("c"), clientv3.OpPut("e", "6")},
		[]clientv3.Op{clientv3.OpPut("never", "x")}))
	do(clientv3.OpPut("b", "7"))
	compactRev = do(clientv3.OpPut("e", "8"))
	if _, err := cli.Compact(ctx, compactRev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact %d: %v", compactRev, err)
	}
	do(clientv3.OpPut("f", "9"))
	midRev = do(clientv3.OpDelete("a"))
	do(clientv3.OpPut("g", "10"))
	do(clientv3.OpPut("d", "", clientv3.WithIgnoreValue()))
	return compactRev, midRev
}

type hashKVRow struct {
	Endpoint string
	HashKV   struct {
		Header struct {
			MemberID uint64 `json:"member_id"`
			Revision int64  `json:"revision"`
		} `json:"header"`
		Hash            uint32 `json:"hash"`
		CompactRevision int64  `json:"compact_revision"`
		HashRevision    int64  `json:"hash_revision"`
	}
}

func hashKVs(t *testing.T, eps []string, args ...string) []hashKVRow {
	t.Helper()
	out := mustCtl(t, eps, append([]string{"endpoint", "hashkv", "-w", "json"}, args...)...)
	var rows []hashKVRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("endpoint hashkv -w json: %v\n%s", err, out)
	}
	return rows
}

var endpointRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// `etcdctl endpoint hashkv --cluster` shows the same hash on every member
// at the same revision, and the same hash real etcd computes for the same
// history: at the current revision, at one between the compaction and it,
// and at the compaction revision itself (which etcd answers from the hash
// it stored while compacting). The simple output and the errors for a
// future and a compacted revision are etcd's too.
func TestHashKVEqualOnEveryMemberAndToEtcds(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	eps := tc.Endpoints()
	compactRev, midRev := hashKVHistory(t, tc.client(eps...))

	etcd := startRealEtcd(t)
	if etcd == "" {
		t.Skip("no tools/bin/etcd to compare with (run bash tools/build.sh)")
	}
	eCli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer eCli.Close()
	if c, m := hashKVHistory(t, eCli); c != compactRev || m != midRev {
		t.Fatalf("etcd's revisions %d %d, quorumd's %d %d", c, m, compactRev, midRev)
	}

	for _, rev := range []int64{0, midRev, compactRev} {
		args := []string{fmt.Sprintf("--rev=%d", rev)}
		want := hashKVs(t, []string{etcd}, args...)[0].HashKV
		var got []hashKVRow
		eventually(t, 10*time.Second, "compaction hash stored", func() error {
			got = hashKVs(t, eps, append(args, "--cluster")...)
			if len(got) != 3 {
				return fmt.Errorf("%d rows", len(got))
			}
			for _, g := range got {
				if g.HashKV.Hash != want.Hash {
					return fmt.Errorf("hash %d at %d on %s", g.HashKV.Hash, rev, g.Endpoint)
				}
			}
			return nil
		})
		for _, g := range got {
			h := g.HashKV
			t.Logf("rev %d: %s hash %d hash_revision %d compact_revision %d (etcd: %d %d %d)", rev, g.Endpoint,
				h.Hash, h.HashRevision, h.CompactRevision, want.Hash, want.HashRevision, want.CompactRevision)
			if h.Hash != want.Hash || h.HashRevision != want.HashRevision || h.CompactRevision != want.CompactRevision ||
				h.Header.Revision != want.Header.Revision {
				t.Errorf("rev %d on %s: %+v; etcd %+v", rev, g.Endpoint, h, want)
			}
		}
	}

	// The simple output and the errors, endpoints aside.
	norm := func(s string) string {
		var kept []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, `{"level"`) { // the client's retry log lines
				kept = append(kept, endpointRE.ReplaceAllString(l, "EP"))
			}
		}
		return strings.Join(kept, "\n")
	}
	for _, args := range [][]string{{"endpoint", "hashkv"}, {"endpoint", "hashkv", "--rev=1000"}, {"endpoint", "hashkv", "--rev=2"}} {
		g, _ := ctl(t, eps[:1], args...)
		w, _ := ctl(t, []string{etcd}, args...)
		t.Logf("etcdctl %s: %s", strings.Join(args, " "), norm(g))
		if norm(g) != norm(w) {
			t.Errorf("etcdctl %s: quorumd printed %q, etcd %q", strings.Join(args, " "), g, w)
		}
	}
}
