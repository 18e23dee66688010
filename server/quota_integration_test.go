package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdctlBin is the real etcdctl 3.6 (tools/bin/etcdctl, built by
// tools/build.sh), else quorumctl, which is etcd's ctlv3 built from the
// module.
func etcdctlBin(t *testing.T) string {
	t.Helper()
	if bin, _ := filepath.Abs("../tools/bin/etcdctl"); bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	return sharedQuorumctl(t)
}

// ctl runs etcdctl against endpoints (bounded by 30 s) and returns its
// stdout and stderr together, and its error.
func ctl(t *testing.T, endpoints []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var eps []string
	for _, u := range endpoints {
		eps = append(eps, strings.TrimPrefix(u, "http://"))
	}
	cmd := exec.CommandContext(ctx, etcdctlBin(t), append([]string{"--endpoints=" + strings.Join(eps, ","), "--command-timeout=20s"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustCtl is ctl that fails the test on a non-zero exit.
func mustCtl(t *testing.T, endpoints []string, args ...string) string {
	t.Helper()
	out, err := ctl(t, endpoints, args...)
	if err != nil {
		t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// endpointStatus is `etcdctl endpoint status -w json` parsed.
func endpointStatus(t *testing.T, endpoints []string) []*pb.StatusResponse {
	t.Helper()
	out := mustCtl(t, endpoints, "endpoint", "status", "-w", "json")
	var rows []struct {
		Endpoint string
		Status   *pb.StatusResponse
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("endpoint status -w json: %v\n%s", err, out)
	}
	var sts []*pb.StatusResponse
	for _, r := range rows {
		sts = append(sts, r.Status)
	}
	return sts
}

var alarmLine = regexp.MustCompile(`^memberID:(\d+) alarm:(NOSPACE|CORRUPT)$`)

// alarmLines are the lines of `etcdctl alarm list` (or disarm), checked to
// be etcd's format, sorted.
func alarmLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		// etcdctl prints an AlarmMember with %+v, that is its String(),
		// which ends in a space: "memberID:<id> alarm:<type> ".
		if l = strings.TrimSuffix(l, " "); l == "" {
			continue
		}
		if !alarmLine.MatchString(l) {
			t.Fatalf("alarm output line %q is not etcd's \"memberID:<id> alarm:<type>\":\n%s", l, out)
		}
		lines = append(lines, l)
	}
	return lines
}

// The NOSPACE cycle as etcd's: with a small --quota-backend-bytes, writes
// fill the keyspace until one fails with "database space exceeded" and
// the NOSPACE alarm is raised through Raft; then every member refuses
// puts, txns with puts and lease grants, while reads, deletes and
// compaction work. Disarming after a compaction alone does not help (the
// database file, DbSize, has not shrunk: the next write fails and raises
// the alarm again); after `etcdctl defrag --cluster` and `alarm disarm`
// writes resume, and every acknowledged write is there, also after every
// member restarted (replaying the history raises no alarm again).
func TestNoSpaceAlarmCycleAsEtcd(t *testing.T) {
	const quota = 200_000
	tc := startCluster(t, 3, fmt.Sprintf("--quota-backend-bytes=%d", quota))
	tc.waitHealthy()
	eps := tc.Endpoints()
	cli := tc.client(eps...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Fill: six writers through the three members, distinct keys each
	// written once, until each is refused. Concurrent puts that pass the
	// check before Raft fail when applied (etcd's quotaApplierV3), and
	// then each member raises NOSPACE for itself.
	value := strings.Repeat("v", 1000)
	var mu sync.Mutex
	acked := map[string]bool{}
	refused := 0
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := tc.client(eps[w%3])
			for i := 0; i < 1000; i++ {
				k := fmt.Sprintf("fill/%d/%04d", w, i)
				_, err := c.Put(ctx, k, value)
				mu.Lock()
				switch {
				case err == nil:
					acked[k] = true
				case errors.Is(err, rpctypes.ErrNoSpace):
					refused++
				default:
					t.Errorf("put %s: %v", k, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() || refused != 6 || len(acked) < 100 {
		t.Fatalf("%d puts acknowledged, %d refused with database space exceeded (quota %d)", len(acked), refused, quota)
	}
	t.Logf("%d puts of 1000 bytes acknowledged before each of 6 writers was refused", len(acked))

	// The alarm is replicated: every member lists it, in etcd's format.
	for _, ep := range eps {
		eventually(t, 10*time.Second, "NOSPACE listed on "+ep, func() error {
			out, err := ctl(t, []string{ep}, "alarm", "list")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if ls := alarmLines(t, out); len(ls) == 0 || !strings.HasSuffix(ls[0], "alarm:NOSPACE") {
				return fmt.Errorf("alarm list: %q", out)
			}
			return nil
		})
	}
	raised := alarmLines(t, mustCtl(t, eps, "alarm", "list"))
	t.Logf("alarms raised: %q", raised)
	st := endpointStatus(t, eps)
	for _, s := range st {
		if len(s.Errors) == 0 || !strings.HasSuffix(strings.TrimSpace(s.Errors[len(s.Errors)-1]), "alarm:NOSPACE") || s.DbSizeQuota != quota {
			t.Fatalf("status of %x: errors %q, quota %d", s.Header.MemberId, s.Errors, s.DbSizeQuota)
		}
		t.Logf("member %x full: DbSize %d, DbSizeInUse %d", s.Header.MemberId, s.DbSize, s.DbSizeInUse)
	}

	// Every member refuses writes with etcd's error; reads work.
	for _, ep := range eps {
		for _, args := range [][]string{{"put", "x", "y"}, {"lease", "grant", "60"},
			{"txn"}} {
			var out string
			var err error
			if args[0] == "txn" {
				out, err = ctlStdin(t, []string{ep}, "\nput x y\n\n\n", "txn")
			} else {
				out, err = ctl(t, []string{ep}, args...)
			}
			if err == nil || !strings.Contains(out, "etcdserver: mvcc: database space exceeded") {
				t.Fatalf("%s on %s: %v, %q; want database space exceeded", args, ep, err, out)
			}
		}
		if out := mustCtl(t, []string{ep}, "get", "fill/0/0000", "--print-value-only"); strings.TrimSpace(out) != value {
			t.Fatalf("get fill/0/0000 on %s: %q", ep, out)
		}
		if out := mustCtl(t, []string{ep}, "get", "fill/1/0000", "--consistency=s", "--print-value-only"); strings.TrimSpace(out) != value {
			t.Fatalf("serializable get fill/1/0000 on %s: %q", ep, out)
		}
	}

	// Deletes and compaction work: drop half the writers' keys (a put
	// refused when applied is there too, as etcd applies it).
	for w := 0; w < 3; w++ {
		prefix := fmt.Sprintf("fill/%d/", w)
		n := 0
		for k := range acked {
			if strings.HasPrefix(k, prefix) {
				delete(acked, k)
				n++
			}
		}
		out := mustCtl(t, eps, "del", prefix, "--prefix")
		if d, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || d < n || d > n+1 {
			t.Fatalf("del %s --prefix: %q; %d acknowledged there", prefix, out, n)
		}
	}
	resp, err := cli.Get(ctx, "fill/")
	if err != nil {
		t.Fatal(err)
	}
	if out := mustCtl(t, eps, "compact", fmt.Sprint(resp.Header.Revision)); !strings.Contains(out, "compacted revision") {
		t.Fatalf("compact: %q", out)
	}

	// Disarmed after compaction alone, writes still fail: the database
	// has not shrunk, and the next write raises the alarm again.
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "disarm")); len(ls) == 0 {
		t.Fatal("alarm disarm disarmed nothing")
	}
	if out, err := ctl(t, eps, "put", "x", "y"); err == nil || !strings.Contains(out, "database space exceeded") {
		t.Fatalf("put after compaction without defrag: %v %q", err, out)
	}
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "list")); len(ls) == 0 {
		t.Fatal("the put refused after compaction raised no alarm")
	}

	// Defragment every member: DbSize drops to what is in use.
	before := endpointStatus(t, eps)
	out := mustCtl(t, eps, "defrag", "--cluster")
	if n := strings.Count(out, "Finished defragmenting etcd member["); n != 3 {
		t.Fatalf("defrag --cluster: %q", out)
	}
	after := endpointStatus(t, eps)
	for i := range after {
		b, a := before[i], after[i]
		t.Logf("member %x: DbSize %d -> %d, DbSizeInUse %d -> %d", a.Header.MemberId, b.DbSize, a.DbSize, b.DbSizeInUse, a.DbSizeInUse)
		if a.DbSize >= b.DbSize || a.DbSize != a.DbSizeInUse || a.DbSize > quota*3/5 {
			t.Fatalf("member %x after defrag: DbSize %d (before %d), in use %d", a.Header.MemberId, a.DbSize, b.DbSize, a.DbSizeInUse)
		}
	}
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "disarm")); len(ls) == 0 {
		t.Fatal("alarm disarm disarmed nothing")
	}
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "list")); len(ls) != 0 {
		t.Fatalf("alarms left after disarm: %q", ls)
	}

	// Writes resume on every member; every acknowledged write is there.
	for i, ep := range eps {
		if out := mustCtl(t, []string{ep}, "put", fmt.Sprintf("after/%d", i), "ok"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put on %s after defrag and disarm: %q", ep, out)
		}
	}
	if out := mustCtl(t, eps, "lease", "grant", "60"); !strings.Contains(out, "granted with TTL(60s)") {
		t.Fatalf("lease grant after disarm: %q", out)
	}
	// A restart replays the history, the filling included: it must
	// neither raise NOSPACE again nor bring back the database's peak.
	for _, n := range tc.Nodes() {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitHealthy()
	for _, s := range endpointStatus(t, eps) {
		t.Logf("member %x after restart: DbSize %d, DbSizeInUse %d", s.Header.MemberId, s.DbSize, s.DbSizeInUse)
		if s.DbSize > quota*3/5 || len(s.Errors) != 0 {
			t.Fatalf("member %x after restart: DbSize %d, errors %q", s.Header.MemberId, s.DbSize, s.Errors)
		}
	}
	if ls := alarmLines(t, mustCtl(t, eps, "alarm", "list")); len(ls) != 0 {
		t.Fatalf("alarms after restarting every member: %q", ls)
	}
	if out := mustCtl(t, eps, "put", "after/restart", "ok"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("put after restart: %q", out)
	}
	for _, ep := range eps {
		c := tc.client(ep)
		r, err := c.Get(ctx, "fill/", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, kv := range r.Kvs {
			got[string(kv.Key)] = true
			if string(kv.Value) != value {
				t.Fatalf("%s on %s holds %d bytes", kv.Key, ep, len(kv.Value))
			}
		}
		for k := range acked {
			if !got[k] {
				t.Fatalf("acknowledged %s missing on %s", k, ep)
			}
		}
	}
}

// ctlStdin is ctl with stdin (etcdctl txn reads its ops there).
func ctlStdin(t *testing.T, endpoints []string, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var eps []string
	for _, u := range endpoints {
		eps = append(eps, strings.TrimPrefix(u, "http://"))
	}
	cmd := exec.CommandContext(ctx, etcdctlBin(t), append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
