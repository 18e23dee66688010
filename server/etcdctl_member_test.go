package server_test

// etcdctl's member and move-leader commands, run verbatim (tools/bin/etcdctl,
// else quorumctl, which is etcd's ctlv3) once against quorumd and once
// against a real etcd (tools/bin/etcd) started with the same flags, and
// their transcripts compared. Without tools/bin/etcd the transcript is
// compared with etcd's, recorded in testdata/etcdctl/member.txt;
// -etcdctl-record rewrites it.
//
// What legitimately differs is normalised away: member and cluster IDs
// (derived from ports and, for added members, the time) become n1, n2 and
// cluster; ports become names; the order of members (by ID) is sorted away.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// etcdctlBinary is tools/bin/etcdctl, or quorumctl without it.
func etcdctlBinary(t *testing.T) string {
	if bin, _ := filepath.Abs("../tools/bin/etcdctl"); bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	return sharedQuorumctl(t)
}

// memberScript is one run of the member transcript against bin (quorumd
// or etcd).
type memberScript struct {
	t       *testing.T
	ctl     string
	out     strings.Builder
	names   map[string]string // literal -> placeholder
	n1, n2  *memberProc
	learner string // n2's ID, hex
}

func (m *memberScript) ctlRun(endpoints []string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var eps []string
	for _, e := range endpoints {
		eps = append(eps, strings.TrimPrefix(e, "http://"))
	}
	cmd := exec.CommandContext(ctx, m.ctl, append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	s := stdout.String() + keptStderr(stderr.String())
	if err != nil {
		s += "exit: " + err.Error() + "\n"
	}
	return s
}

// do runs etcdctl against n1 and writes the command and its output,
// normalised, to the transcript.
func (m *memberScript) do(args ...string) string {
	return m.doOn([]string{m.n1.client}, args...)
}

func (m *memberScript) doOn(endpoints []string, args ...string) string {
	s := m.ctlRun(endpoints, args...)
	fmt.Fprintf(&m.out, "$ %s\n%s", m.normalise(strings.Join(args, " ")), m.normaliseOutput(args, s))
	return s
}

var spaces = regexp.MustCompile(` +`)

func (m *memberScript) normalise(s string) string {
	keys := make([]string, 0, len(m.names))
	for k := range m.names {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, m.names[k])
	}
	return spaces.ReplaceAllString(s, " ")
}

func (m *memberScript) normaliseOutput(args []string, s string) string {
	s = m.normalise(s)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, `ETCD_INITIAL_CLUSTER="`); ok {
			parts := strings.Split(strings.TrimSuffix(v, `"`), ",")
			sort.Strings(parts)
			lines[i] = `ETCD_INITIAL_CLUSTER="` + strings.Join(parts, ",") + `"`
		}
	}
	if len(args) >= 2 && args[0] == "member" && args[1] == "list" {
		sort.Strings(lines)
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// name records literal's placeholder.
func (m *memberScript) name(literal, placeholder string) { m.names[literal] = placeholder }

// status is n's member and cluster ID, from etcdctl's JSON status.
func (m *memberScript) status(n *memberProc) (member, cluster string) {
	s := m.ctlRun([]string{n.client}, "endpoint", "status", "-w", "json")
	mid := regexp.MustCompile(`"member_id":(\d+)`).FindStringSubmatch(s)
	cid := regexp.MustCompile(`"cluster_id":(\d+)`).FindStringSubmatch(s)
	if mid == nil || cid == nil {
		m.t.Fatalf("endpoint status of %s: %s", n.name, s)
	}
	a, _ := strconv.ParseUint(mid[1], 10, 64)
	b, _ := strconv.ParseUint(cid[1], 10, 64)
	return strconv.FormatUint(a, 16), strconv.FormatUint(b, 16)
}

// runMemberScript: a learner added (its promotion refused until it runs
// and catches up; a second learner refused), a voter with a peer URL in
// use refused, the learner updated, started (serving serializable reads
// only), promoted (then serving everything), leadership moved to it and
// back, the last voter's removal refused, the learner removed
// (twice: the second is "member not found"), an unknown ID removed.
func runMemberScript(t *testing.T, bin, ctl string) string {
	dir := t.TempDir()
	m := &memberScript{t: t, ctl: ctl, names: map[string]string{}}
	m.n1, m.n2 = newMemberURLs(t, dir, "n1"), newMemberURLs(t, dir, "n2")
	spare := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	for lit, ph := range map[string]string{m.n1.client: "http://127.0.0.1:C1", m.n1.peer: "http://127.0.0.1:P1",
		m.n2.client: "http://127.0.0.1:C2", m.n2.peer: "http://127.0.0.1:P2", spare: "http://127.0.0.1:P3"} {
		m.name(lit, ph)
		m.name(strings.TrimPrefix(lit, "http://"), strings.TrimPrefix(ph, "http://"))
	}
	m.n1.start(t, bin, "n1="+m.n1.peer, "new", "--log-level", "error")
	eventually(t, 20*time.Second, "n1 up", func() error {
		if s := m.ctlRun([]string{m.n1.client}, "put", "up", "1"); s != "OK\n" {
			return fmt.Errorf("put: %s", s)
		}
		return nil
	})
	id1, cid := m.status(m.n1)
	m.name(id1, "n1")
	m.name(cid, "cluster")

	m.do("member", "list")
	out := m.ctlRun([]string{m.n1.client}, "member", "add", "n2", "--learner", "--peer-urls="+spare)
	f := regexp.MustCompile(`Member +([0-9a-f]+) added`).FindStringSubmatch(out)
	if f == nil {
		t.Fatalf("member add: %s", out)
	}
	m.learner = f[1]
	m.name(m.learner, "n2")
	fmt.Fprintf(&m.out, "$ member add n2 --learner --peer-urls=http://127.0.0.1:P3\n%s", m.normaliseOutput(nil, out))
	m.do("member", "list")
	m.do("member", "promote", m.learner)
	m.do("member", "add", "n3", "--learner", "--peer-urls=http://127.0.0.1:1")
	m.do("member", "add", "n3", "--peer-urls="+m.n1.peer)
	m.do("member", "update", m.learner, "--peer-urls="+m.n2.peer)
	m.do("member", "list")

	m.n2.start(t, bin, "n1="+m.n1.peer+",n2="+m.n2.peer, "existing", "--log-level", "error")
	// A learner serves serializable reads and Status, and refuses the rest.
	on2 := []string{m.n2.client}
	eventually(t, 30*time.Second, "n2 caught up", func() error {
		if s := m.ctlRun(on2, "get", "up", "--consistency=s"); s != "up\n1\n" {
			return fmt.Errorf("serializable get on the learner: %q", s)
		}
		return nil
	})
	m.doOn(on2, "get", "up", "--consistency=s")
	m.doOn(on2, "get", "up")
	m.doOn(on2, "put", "k", "v")
	m.doOn(on2, "member", "list")
	if s := m.ctlRun(on2, "endpoint", "status", "-w", "json"); !strings.Contains(s, `"isLearner":true`) {
		t.Errorf("the learner's status does not say so: %s", s)
	}
	eventually(t, 30*time.Second, "n2 promoted", func() error {
		s := m.ctlRun([]string{m.n1.client}, "member", "promote", m.learner)
		if !strings.Contains(s, "promoted") {
			return fmt.Errorf("promote: %s", s)
		}
		fmt.Fprintf(&m.out, "$ member promote n2\n%s", m.normaliseOutput(nil, s))
		return nil
	})
	m.do("member", "list")
	m.doOn(on2, "get", "up")
	m.doOn(on2, "put", "k", "v")
	both := []string{m.n1.client, m.n2.client}
	m.doOn(both, "move-leader", m.learner)
	m.doOn(both, "move-leader", id1)
	m.doOn(both, "move-leader", "1234")
	// --strict-reconfig-check wants n2 connected for 5 s before it goes.
	time.Sleep(6 * time.Second)
	m.do("member", "remove", m.learner)
	// The removed member stops by itself and exits 0, etcd and quorumd.
	select {
	case <-m.n2.done:
		if m.n2.err != nil {
			t.Errorf("removed n2 exited with %v, want status 0", m.n2.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("removed n2 is still running")
	}
	m.do("member", "remove", m.learner)
	m.do("member", "remove", "1234")
	m.do("member", "remove", id1)
	m.do("member", "list")
	return m.out.String()
}

func TestEtcdctlMemberCommandsMatchEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	ctl := etcdctlBinary(t)
	got := runMemberScript(t, quorumdBinary, ctl)
	var run func() string
	if etcd, _ := filepath.Abs("../tools/bin/etcd"); fileExists(etcd) {
		run = func() string { return runMemberScript(t, etcd, ctl) }
	}
	requireTranscript(t, got, etcdTranscript(t, "member", run))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
