package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopMember ends m with SIGTERM and waits for it (20 s, then it is
// killed and the test fails).
func stopMember(t *testing.T, m *memberProc) {
	t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		m.kill()
		t.Fatalf("%s did not stop 20 s after SIGTERM", m.name)
	}
}

// runForceNewClusterScript: a 3-member cluster takes writes and every
// member stops (the quorum is lost for good); n1 restarts on its data dir
// with --force-new-cluster and serves alone — one member in the list,
// every committed key, new writes; it restarts without the flag the same;
// and n2, started on its old data dir, is refused as a removed member and
// stops (n2Exit is how it exited).
func runForceNewClusterScript(t *testing.T, bin, ctl string) (transcript string, n2Exit error) {
	dir := t.TempDir()
	m := &memberScript{t: t, ctl: ctl, names: map[string]string{}}
	ms := []*memberProc{newMemberURLs(t, dir, "n1"), newMemberURLs(t, dir, "n2"), newMemberURLs(t, dir, "n3")}
	var initial []string
	for i, p := range ms {
		initial = append(initial, p.name+"="+p.peer)
		for lit, ph := range map[string]string{p.client: fmt.Sprintf("http://127.0.0.1:C%d", i+1), p.peer: fmt.Sprintf("http://127.0.0.1:P%d", i+1)} {
			m.name(lit, ph)
			m.name(strings.TrimPrefix(lit, "http://"), strings.TrimPrefix(ph, "http://"))
		}
	}
	cluster := strings.Join(initial, ",")
	for _, p := range ms {
		p.start(t, bin, cluster, "new", "--log-level", "error")
	}
	m.n1 = ms[0]
	eventually(t, 30*time.Second, "the cluster up", func() error {
		if s := m.ctlRun([]string{m.n1.client}, "put", "k1", "v1"); s != "OK\n" {
			return fmt.Errorf("put: %s", s)
		}
		return nil
	})
	for _, p := range ms {
		id, cid := m.status(p)
		m.name(id, p.name)
		m.name(cid, "cluster")
	}
	m.do("put", "k2", "v2")
	m.do("member", "list")
	for _, p := range ms {
		stopMember(t, p)
	}

	m.n1.start(t, bin, cluster, "new", "--log-level", "error", "--force-new-cluster")
	eventually(t, 30*time.Second, "n1 alone serves writes", func() error {
		if s := m.ctlRun([]string{m.n1.client}, "put", "k3", "v3"); s != "OK\n" {
			return fmt.Errorf("put: %s", s)
		}
		return nil
	})
	m.do("member", "list")
	m.do("get", "k", "--prefix")
	m.do("put", "k4", "v4")
	stopMember(t, m.n1)

	m.n1.start(t, bin, cluster, "new", "--log-level", "error")
	eventually(t, 30*time.Second, "n1 restarted without the flag serves", func() error {
		if s := m.ctlRun([]string{m.n1.client}, "get", "k4"); s != "k4\nv4\n" {
			return fmt.Errorf("get: %q", s)
		}
		return nil
	})
	m.do("member", "list")
	m.do("get", "k", "--prefix", "--keys-only")

	// The old n2 finds itself removed and stops by itself.
	n2 := ms[1]
	n2.start(t, bin, cluster, "new", "--log-level", "error")
	// Its status is left out of the transcript: etcd's is 0, or 1 when its
	// listeners lose the race with the stop ("listener failed", "server is
	// stopping").

	select {
	case <-n2.done:
		fmt.Fprintf(&m.out, "# n2 on its old data dir: exited\n")
		n2Exit = n2.err
	case <-time.After(30 * time.Second):
		fmt.Fprintf(&m.out, "# n2 on its old data dir: still running after 30 s\n")
	}
	m.do("member", "list")
	return m.out.String(), n2Exit
}

// --force-new-cluster as etcd's: the same transcript from quorumd as from
// a real etcd started with the same flags (or the recorded one).
func TestForceNewClusterMatchesEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	ctl := etcdctlBinary(t)
	got, n2Exit := runForceNewClusterScript(t, quorumdBinary, ctl)
	if n2Exit != nil {
		t.Errorf("quorumd's removed n2 exited with %v, want status 0", n2Exit)
	}
	var run func() string
	if etcd, _ := filepath.Abs("../tools/bin/etcd"); fileExists(etcd) {
		run = func() string { s, _ := runForceNewClusterScript(t, etcd, ctl); return s }
	}
	requireTranscript(t, got, etcdTranscript(t, "force-new-cluster", run))
}
