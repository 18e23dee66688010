package workloads

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
)

// etcdBinary is the real etcd built by tools/, relative to this package.
const etcdBinary = "../tools/bin/etcd"

// etcdTargets returns the members to test against: those named in
// QUORUM_TEST_ETCD_ENDPOINTS (comma-separated client URLs), else one etcd
// started from etcdBinary on loopback for the test. The boolean says
// whether the cluster is external (shared, possibly holding data).
func etcdTargets(t *testing.T) ([]Target, bool) {
	t.Helper()
	if env := os.Getenv("QUORUM_TEST_ETCD_ENDPOINTS"); env != "" {
		var targets []Target
		for i, ep := range strings.Split(env, ",") {
			targets = append(targets, Target{Name: fmt.Sprintf("n%d", i+1), Endpoint: strings.TrimSpace(ep)})
		}
		return targets, true
	}
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Skipf("no etcd: QUORUM_TEST_ETCD_ENDPOINTS unset and %s absent (build it in tools/)", etcdBinary)
	}
	return []Target{startEtcd(t)}, false
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd starts one etcd member on loopback in a temporary directory,
// waits (at most 15 s) until it serves a linearizable read, and kills it
// when the test ends.
func startEtcd(t *testing.T) Target {
	t.Helper()
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(etcdBinary,
		"--name", "n1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "n1="+peer, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", etcdBinary, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	target := Target{Name: "n1", Endpoint: client}
	dial := EtcdDialer(EtcdOptions{})
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := func() error {
			c, err := dial(target)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, _, err = c.Read(ctx, "/ready", false)
			return err
		}()
		if err == nil {
			return target
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("etcd at %s not ready after 15 s: %v\n%s", client, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEtcdClientSemantics(t *testing.T) {
	targets, _ := etcdTargets(t)
	c, err := EtcdDialer(EtcdOptions{})(targets[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := fmt.Sprintf("/quorum-test/semantics-%d/", time.Now().UnixNano())
	key := prefix + "k"

	if v, rev, err := c.Read(ctx, key, false); err != nil || v != nil || rev != 0 {
		t.Fatalf("read of an absent key = %v, %d, %v", v, rev, err)
	}
	if ok, _, err := c.CAS(ctx, key, history.Str("x"), "no"); err != nil || ok {
		t.Fatalf("cas on an absent key expecting a value = %v, %v: want compare failed", ok, err)
	}
	ok, rev1, err := c.CAS(ctx, key, nil, "a")
	if err != nil || !ok || rev1 == 0 {
		t.Fatalf("cas expecting absent on an absent key = %v, %d, %v", ok, rev1, err)
	}
	if v, rev, err := c.Read(ctx, key, true); err != nil || v == nil || *v != "a" || rev != rev1 {
		t.Fatalf("serializable read after cas = %v, %d, %v; want \"a\" @%d", v, rev, err, rev1)
	}
	if ok, _, err := c.CAS(ctx, key, nil, "no"); err != nil || ok {
		t.Fatalf("cas expecting absent on a present key = %v, %v: want compare failed", ok, err)
	}
	rev2, err := c.Write(ctx, key, "b")
	if err != nil || rev2 <= rev1 {
		t.Fatalf("write = %d, %v; want a revision > %d", rev2, err, rev1)
	}
	if ok, rev3, err := c.CAS(ctx, key, history.Str("b"), "c"); err != nil || !ok || rev3 <= rev2 {
		t.Fatalf("cas b->c = %v, %d, %v", ok, rev3, err)
	}
	if v, _, err := c.Read(ctx, key, false); err != nil || v == nil || *v != "c" {
		t.Fatalf("read after cas = %v, %v; want c", v, err)
	}
	set := prefix + "set"
	for _, el := range []string{"2-1", "1-1", "1-2"} {
		if err := c.Add(ctx, set, el); err != nil {
			t.Fatal(err)
		}
	}
	// A key sharing the set's name as a prefix but not below it.
	if _, err := c.Write(ctx, set+"x", "v"); err != nil {
		t.Fatal(err)
	}
	if els, err := c.ReadSet(ctx, set, false); err != nil || strings.Join(els, ",") != "1-1,1-2,2-1" {
		t.Fatalf("read set = %v, %v", els, err)
	}
}

func TestEtcdClientDoesNotSendToAnUnreachableMember(t *testing.T) {
	target := Target{Name: "n9", Endpoint: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	c, err := EtcdDialer(EtcdOptions{DialTimeout: time.Second})(target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 2 { // a fresh connection, then one known to be down
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err = c.Write(ctx, "/k", "v")
		cancel()
		if !errors.Is(err, ErrNotSent) || Classify(err, true) != history.Fail {
			t.Fatalf("write %d to a closed port: %v (%s), want ErrNotSent, fail", i, err, Classify(err, true))
		}
	}
}

func TestWorkloadsAgainstARealServerAreValid(t *testing.T) {
	targets, external := etcdTargets(t)
	prefix := "/quorum/"
	if external {
		prefix = fmt.Sprintf("/quorum-test/%d/", time.Now().UnixNano())
	}
	dial := EtcdDialer(EtcdOptions{})
	workloads := []string{WorkloadRegister, WorkloadSet, WorkloadAppend, WorkloadWatch}
	if external {
		// Not watch either: its final watch reads from revision 1, which
		// a shared cluster may have compacted.
		workloads = []string{WorkloadRegister, WorkloadAppend}
	}
	for _, workload := range workloads {
		t.Run(workload, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Workload = workload
			cfg.KeyPrefix = prefix
			cfg.Concurrency = 6
			cfg.MaxOps = 4000
			cfg.Seed = 7
			rec := newRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := Run(ctx, cfg, targets, dial, rec, testLogger(t))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if st.OK == 0 {
				t.Fatalf("stats %+v: nothing succeeded", st)
			}
			fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer fcancel()
			if err := FinalReads(fctx, cfg, targets, dial, rec); err != nil {
				t.Fatal(err)
			}
			res := check(t, rec.Events(), workload)
			if res.Verdict != checker.Valid {
				t.Fatalf("stats %+v, verdict %s: %+v %+v %+v %+v %+v", st, res.Verdict, res.Linearizability, res.Set, res.Append, res.Watch, res.FinalReads)
			}
			switch workload {
			case WorkloadWatch:
				// Watchers of every kind got events; deletes of absent
				// keys and txns were acknowledged.
				if w := res.Watch; w.Events == 0 || len(w.Watchers) != 2 || res.Counts[history.FDelete].OK == 0 || res.Counts[history.FWriteTxn].OK == 0 {
					t.Fatalf("watch %+v, counts %v", w, res.Counts)
				}
			case WorkloadAppend:
				// Concurrent appends to a key: some guards fail.
				if c := res.Counts[history.FTxn]; c.OK == 0 || c.Fail == 0 {
					t.Fatalf("txn counts %+v: want committed and failed-guard txns", c)
				}
			default:
				if res.FinalReads == nil || res.FinalReads.Verdict != checker.Valid {
					t.Fatalf("final reads %+v", res.FinalReads)
				}
			}
			t.Logf("%s: %+v, counts %v", workload, st, res.Counts)
		})
	}
}
