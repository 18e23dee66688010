package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorum-kv/quorum/cluster/lazyfs"
)

// TestPowerLossLosesNoAcknowledgedWrite puts each member's data dir on its
// own lazyfs mount, writes under load, kills every member at once with
// SIGKILL and throws away everything they had not fsynced (a power cut of
// the whole cluster), restarts them, and reads back every write the
// cluster acknowledged. quorumd fsyncs its WAL before a member counts an
// entry as its own (and before a follower acknowledges it), so a quorum
// holds every acknowledged write durably; a member that skipped the fsync
// would lose them here (TestPowerLossWithUnsafeNoFsyncIsCaught).
func TestPowerLossLosesNoAcknowledgedWrite(t *testing.T) {
	r := powerLoss(t)
	for i, err := range r.restartErrs {
		if err != nil {
			t.Fatalf("m%d after the power cut: %v", i+1, err)
		}
	}
	for i, lost := range r.lost {
		if len(lost) > 0 {
			t.Fatalf("m%d lost %d of %d acknowledged writes, e.g. %s", i+1, len(lost), r.acked, lost[0])
		}
	}
}

// The same power cut with --unsafe-no-fsync (etcd's flag: the WAL is never
// fsynced) is seen: acknowledged writes are missing afterwards, or a member
// cannot serve its data any more. The test above would fail on such a
// quorumd; this one proves it can.
func TestPowerLossWithUnsafeNoFsyncIsCaught(t *testing.T) {
	r := powerLoss(t, "--unsafe-no-fsync")
	seen := false
	for i := range r.lost {
		if r.restartErrs[i] != nil {
			t.Logf("m%d after the power cut: %v", i+1, r.restartErrs[i])
			seen = true
		} else if len(r.lost[i]) > 0 {
			t.Logf("m%d lost %d of %d acknowledged writes, e.g. %s", i+1, len(r.lost[i]), r.acked, r.lost[i][0])
			seen = true
		}
	}
	if !seen {
		t.Fatalf("without fsync every member kept all %d acknowledged writes through the power cut: lazyfs did not drop what was never synced", r.acked)
	}
}

// powerLossResult is what a power cut did: per member (m1..m3), the error
// that kept it from serving after the restart, or the acknowledged writes
// it no longer has ("key=value").
type powerLossResult struct {
	acked       int
	restartErrs []error
	lost        [][]string
}

// powerLoss runs three members with extra flags on lazyfs, writes under
// load, cuts the power (SIGKILL all, drop every unsynced page), restarts
// them and reads back every acknowledged write from each member.
func powerLoss(t *testing.T, extra ...string) powerLossResult {
	t.Helper()
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	if err := lazyfs.Available(); err != nil {
		t.Skipf("power-loss test needs FUSE: %v", err)
	}
	dir, base := t.TempDir(), freeBase(t)
	const n = 3
	var mounts []*lazyfs.FS
	for i := 1; i <= n; i++ {
		backing, mnt := filepath.Join(dir, fmt.Sprintf("backing%d", i)), filepath.Join(dir, fmt.Sprintf("mnt%d", i))
		for _, d := range []string{backing, mnt} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		fs, err := lazyfs.Mount(backing, mnt)
		if err != nil {
			t.Skipf("power-loss test cannot mount FUSE here: %v", err)
		}
		mounts = append(mounts, fs)
	}
	u := func(j, off int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+j*10+off) }
	var members []string
	for j := 1; j <= n; j++ {
		members = append(members, fmt.Sprintf("m%d=%s", j, u(j, 1)))
	}
	args := func(i int) []string {
		args := []string{"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("mnt%d", i), "data"),
			"--listen-client-urls", u(i, 0), "--advertise-client-urls", u(i, 0),
			"--listen-peer-urls", u(i, 1), "--initial-advertise-peer-urls", u(i, 1),
			"--initial-cluster", strings.Join(members, ","), "--snapshot-count", "300"}
		return append(args, extra...)
	}
	var procs []*exec.Cmd
	start := func() {
		procs = procs[:0]
		for i := 1; i <= n; i++ {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("m%d.log", i)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(quorumdBinary, args(i)...)
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			procs = append(procs, cmd)
		}
	}
	killAll := func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}
	t.Cleanup(func() {
		killAll()
		for _, m := range mounts {
			if err := m.Unmount(); err != nil {
				t.Errorf("%v", err)
			}
		}
		if t.Failed() {
			for i := 1; i <= n; i++ {
				b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("m%d.log", i)))
				t.Logf("m%d.log (tail):\n%s", i, tail(string(b), 3000))
			}
		}
	})
	var eps []string
	for i := 1; i <= n; i++ {
		eps = append(eps, strings.TrimPrefix(u(i, 0), "http://"))
	}
	start()
	putGet(t, eps, nil)

	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var mu sync.Mutex
	acked := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400 && ctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("/k/%d/%d", w, i), fmt.Sprintf("v%d", i)
				c, cc := context.WithTimeout(ctx, 2*time.Second)
				_, err := cli.Put(c, k, v)
				cc()
				if err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}()
	}
	// The power goes while writes are in flight.
	time.Sleep(2 * time.Second)
	killAll()
	cancel()
	wg.Wait()
	var dropped lazyfs.Stats
	for _, m := range mounts {
		st := m.DropUnsynced()
		dropped.Files += st.Files
		dropped.Pages += st.Pages
	}
	t.Logf("%d acknowledged writes; the power cut dropped %d unsynced pages in %d files", len(acked), dropped.Pages, dropped.Files)
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the power cut: too few to test anything", len(acked))
	}

	start()
	r := powerLossResult{acked: len(acked), restartErrs: make([]error, n), lost: make([][]string, n)}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for i, ep := range eps {
		c1, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		// Linearizable first: the member has rejoined a cluster with a
		// leader; then its own copy.
		var resp *clientv3.GetResponse
		for {
			if _, err = c1.Get(rctx, "/k/0/0"); err == nil {
				resp, err = c1.Get(rctx, "/k/", clientv3.WithPrefix(), clientv3.WithSerializable())
			}
			if err == nil || rctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		c1.Close()
		if err != nil {
			r.restartErrs[i] = fmt.Errorf("no answer within 20 s of the restart: %w (its log: m%d.log)", err, i+1)
			continue
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
		for k, v := range acked {
			if got[k] != v {
				r.lost[i] = append(r.lost[i], k+"="+v)
			}
		}
		sort.Strings(r.lost[i])
	}
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
