package server_test

// The log lines that scripts and operators wait for, as a real etcd 3.6
// member writes them (compared with tools/bin/etcd's own log): etcd's zap
// JSON shape, the same msg texts, in etcd's order.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logLine is one decoded line of a member's log, with its keys in order.
type logLine struct {
	keys   []string
	fields map[string]any
	raw    string
}

func (l logLine) msg() string { s, _ := l.fields["msg"].(string); return s }

// parseEtcdLog decodes every quorumd line of log, failing the test on a line that

// is not a JSON object whose keys start as etcd's zap lines do: level, ts,
// logger (only on named loggers such as raft's), caller, msg.
func parseEtcdLog(t *testing.T, log string) []logLine {
	t.Helper()
	var lines []logLine
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		raw := sc.Text()
		if strings.HasPrefix(raw, "=== quorum: ") {
			continue // cluster/local's start and exit markers, not quorumd's
		}
		l := logLine{raw: raw}
		dec := json.NewDecoder(strings.NewReader(raw))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object line: %s", raw)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("bad JSON line %s: %v", raw, err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("bad JSON line %s: %v", raw, err)
			}
			l.keys = append(l.keys, k.(string))
		}
		if err := json.Unmarshal([]byte(raw), &l.fields); err != nil {
			t.Fatalf("bad JSON line %s: %v", raw, err)
		}
		head := []string{"level", "ts", "caller", "msg"}
		if len(l.keys) > 2 && l.keys[2] == "logger" {
			head = []string{"level", "ts", "logger", "caller", "msg"}
		}
		if len(l.keys) < len(head) || strings.Join(l.keys[:len(head)], ",") != strings.Join(head, ",") {
			t.Fatalf("keys %v, want etcd's %v first: %s", l.keys, head, raw)
		}
		lines = append(lines, l)
	}
	return lines
}

// inOrder checks that for each pattern, in order, a later line matches:
// a pattern matches a line whose msg equals it, or, for a pattern ending
// in "…", whose msg contains the rest.
func inOrder(t *testing.T, who string, lines []logLine, patterns ...string) {
	t.Helper()
	i := 0
	for _, p := range patterns {
		for ; i < len(lines); i++ {
			if matchMsg(lines[i].msg(), p) {
				break
			}
		}
		if i == len(lines) {
			var b strings.Builder
			for _, l := range lines {
				fmt.Fprintln(&b, l.msg())
			}
			t.Fatalf("%s: no %q after the lines before it, in order %q; messages:\n%s", who, p, patterns, b.String())
		}
		i++
	}
}

func matchMsg(msg, p string) bool {
	if sub, ok := strings.CutSuffix(p, "…"); ok {
		return strings.Contains(msg, sub)
	}
	return msg == p
}

func count(lines []logLine, msg string) int {
	n := 0
	for _, l := range lines {
		if l.msg() == msg {
			n++
		}
	}
	return n
}

func TestMemberLogHasEtcdsLinesInEtcdsOrder(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	lead := tc.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every member logs "ready to serve client requests" once it has
	// published itself; wait for it before stopping the leader.
	for _, n := range tc.Nodes() {
		eventually(t, 10*time.Second, n.Name()+" ready", func() error {
			if !strings.Contains(tc.logOf(n.Name()), `"msg":"ready to serve client requests"`) {
				return fmt.Errorf("no \"ready to serve client requests\" yet")
			}
			return nil
		})
	}
	if err := lead.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	lines := parseEtcdLog(t, tc.logOf(lead.Name()))
	inOrder(t, lead.Name(), lines,
		"configuring peer listeners",
		"configuring client listeners",
		"starting an etcd server",
		"starting local member",
		"starting etcd server",
		"serving peer traffic",
		"is starting a new election at term…",
		"became candidate at term…",
		"became leader at term…",
		"raft.node: …",
		"published local member to cluster through raft",
		"ready to serve client requests",
		"serving client traffic insecurely; this is strongly discouraged!",
		"received signal; shutting down",
		"closing etcd server",
		"leadership transfer starting",
		"leadership transfer finished",
		"stopping serving peer traffic",
		"stopped serving peer traffic",
		"closed etcd server",
	)
	// "now serving peer/client/metrics" comes after every listener is
	// served and before the member is ready (etcd logs it as StartEtcd
	// returns, before the first election completes).
	inOrder(t, lead.Name(), lines, "starting etcd server", "now serving peer/client/metrics", "published local member to cluster through raft")
	for _, l := range lines {
		m := l.msg()
		switch {
		case strings.Contains(m, " became leader at term "), strings.Contains(m, " elected leader "):
			if l.fields["logger"] != "raft" || !strings.HasPrefix(l.fields["caller"].(string), "v3@") {
				t.Errorf("raft's line not as etcd's (logger raft, raft's caller): %s", l.raw)
			}
		case m == "published local member to cluster through raft":
			for _, k := range []string{"local-member-id", "local-member-attributes", "cluster-id", "publish-timeout"} {
				if _, ok := l.fields[k]; !ok {
					t.Errorf("%q has no %q: %s", m, k, l.raw)
				}
			}
		case m == "serving client traffic insecurely; this is strongly discouraged!":
			if l.fields["traffic"] != "grpc+http" || l.fields["address"] == nil {
				t.Errorf("%q fields: %s", m, l.raw)
			}
		}
		if lvl := l.fields["level"]; lvl != "debug" && lvl != "info" && lvl != "warn" && lvl != "error" {
			t.Errorf("level %v is not one of zap's: %s", lvl, l.raw)
		}
	}
	// A follower: elected leader, then published, then ready.
	for _, n := range tc.Nodes() {
		if n.Name() == lead.Name() {
			continue
		}
		fl := parseEtcdLog(t, tc.logOf(n.Name()))
		inOrder(t, n.Name(), fl, "starting an etcd server", "starting etcd server", "raft.node: …",
			"published local member to cluster through raft", "ready to serve client requests")
		if got := count(fl, "ready to serve client requests"); got != 1 {
			t.Errorf("%s: %d \"ready to serve client requests\" lines for one client listener", n.Name(), got)
		}
	}
}

// quorumdProcess is a single-member quorumd started directly (not through
// cluster/local), for flags the harness does not pass.
type quorumdProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer // stdout and stderr
	done chan error
	once sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startQuorumd starts a single member on loopback ports with extra flags;
// clientURLs is how many --listen-client-urls it gets. It is stopped with
// SIGTERM (then killed) when the test ends.
func startQuorumd(t *testing.T, clientURLs int, extra ...string) (*quorumdProcess, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts real processes (skipped with -short)")
	}
	ports := freePorts(t, clientURLs+1)
	var curls []string
	for _, p := range ports[:clientURLs] {
		curls = append(curls, fmt.Sprintf("http://127.0.0.1:%d", p))
	}
	purl := fmt.Sprintf("http://127.0.0.1:%d", ports[clientURLs])
	args := append([]string{
		"--name", "s1", "--data-dir", filepath.Join(t.TempDir(), "s1"),
		"--listen-client-urls", strings.Join(curls, ","), "--advertise-client-urls", curls[0],
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", "s1=" + purl,
	}, extra...)
	p := &quorumdProcess{cmd: exec.Command(quorumdBinary, args...), out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.out
	p.cmd.Stdout = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p, curls
}

// stop sends SIGTERM and waits up to 20s, then kills. Idempotent.
func (p *quorumdProcess) stop(t *testing.T) {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Errorf("quorumd did not exit 20s after SIGTERM; killing")
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *quorumdProcess) log() string { return p.out.String() }

func TestReadyToServeOncePerClientListener(t *testing.T) {
	p, curls := startQuorumd(t, 2)
	eventually(t, 15*time.Second, "ready to serve client requests", func() error {
		if strings.Count(p.log(), `"msg":"serving client traffic insecurely; this is strongly discouraged!"`) < 2 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	p.stop(t)
	lines := parseEtcdLog(t, p.log())
	if got := count(lines, "ready to serve client requests"); got != 2 {
		t.Errorf("%d \"ready to serve client requests\" lines for 2 client URLs", got)
	}
	addrs := map[string]bool{}
	for _, l := range lines {
		if l.msg() == "serving client traffic insecurely; this is strongly discouraged!" {
			addrs[l.fields["address"].(string)] = true
		}
	}
	for _, u := range curls {
		if !addrs[strings.TrimPrefix(u, "http://")] {
			t.Errorf("no \"serving client traffic insecurely\" for %s", u)
		}
	}
	inOrder(t, "s1", lines, "published local member to cluster through raft", "ready to serve client requests",
		"ready to serve client requests", "serving client traffic insecurely; this is strongly discouraged!",
		"received signal; shutting down", "closing etcd server", "skipped leadership transfer for single voting member cluster",
		"closed etcd server")
}

// --log-format console and --log-outputs FILE reach etcd's logger set-up:
// the lines go to the file, in zap's console encoding.
func TestLogFormatConsoleToFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "member.log")
	p, _ := startQuorumd(t, 1, "--log-format", "console", "--log-outputs", file)
	eventually(t, 15*time.Second, "ready in the log file", func() error {
		b, _ := os.ReadFile(file)
		if !bytes.Contains(b, []byte("\tready to serve client requests")) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	p.stop(t)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// zap's console encoder: ts, level, [logger,] caller, msg, then the
		// fields as JSON, separated by tabs.
		parts := strings.Split(line, "\t")
		if len(parts) < 4 || strings.HasPrefix(line, "{") {
			t.Fatalf("not a console line: %q", line)
		}
		if parts[3] == "ready to serve client requests" && parts[1] == "info" && strings.HasPrefix(parts[2], "server/") {
			seen = true
		}
	}
	if !seen {
		t.Errorf("no console \"ready to serve client requests\" line from server/ in:\n%s", b)
	}
	if strings.Contains(p.log(), "ready to serve client requests") {
		t.Errorf("with --log-outputs FILE the log still went to stderr:\n%s", p.log())
	}
}
