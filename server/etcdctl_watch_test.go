package server_test

// etcdctl scripts, verbatim through quorumctl (etcd's ctlv3), run once
// against a 3-member quorumd and once against a real etcd (tools/bin/etcd),
// and their transcripts compared. Without tools/bin/etcd a transcript is
// compared with etcd's, recorded in testdata/etcdctl/; -etcdctl-record
// rewrites those files from a real etcd run.
//
// Both clusters start at revision 1 and the scripts write the same keys in
// the same order, so revisions match and are left in the transcripts. What
// legitimately differs is normalised away: lease IDs (and the lock and
// election keys named after them).

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var etcdctlRecord = flag.Bool("etcdctl-record", false, "rewrite testdata/etcdctl/*.txt from a real etcd run (needs tools/bin/etcd)")

// syncBuffer is an io.Writer that a child process writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ctlEnv runs quorumctl against one cluster's endpoints and writes the
// transcript of a script.
type ctlEnv struct {
	t         *testing.T
	bin       string
	endpoints []string // http URLs
	out       strings.Builder
}

func (e *ctlEnv) args(args []string) []string {
	var eps []string
	for _, u := range e.endpoints {
		eps = append(eps, strings.TrimPrefix(u, "http://"))
	}
	return append([]string{"--endpoints=" + strings.Join(eps, ",")}, args...)
}

// keptStderr keeps the lines of etcdctl's stderr that are its output
// (errors, watch cancellations, refused interactive lines), not the
// client's retry log lines.
func keptStderr(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Error:") || strings.HasPrefix(l, "watch was canceled") || strings.HasPrefix(l, "Invalid command") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// run runs one command in the foreground (bounded by 20 s) and returns
// its stdout, the kept stderr lines, and the exit status if not 0.
func (e *ctlEnv) run(stdin string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, e.args(args)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	s := stdout.String() + keptStderr(stderr.String())
	if err != nil {
		s += "exit: " + err.Error() + "\n"
	}
	return s
}

// do runs a command and writes "$ command" and its output to the transcript.
func (e *ctlEnv) do(args ...string) string {
	s := e.run("", args...)
	e.logf("$ %s\n%s", strings.Join(args, " "), s)
	return s
}

func (e *ctlEnv) logf(format string, a ...any) { fmt.Fprintf(&e.out, format, a...) }

// bgCtl is a quorumctl process running in the background.
type bgCtl struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// start starts a command in the background; it is killed after 60 s at the
// latest, and at the test's end.
func (e *ctlEnv) start(args ...string) *bgCtl {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	b := &bgCtl{name: strings.Join(args, " "), done: make(chan struct{})}
	b.cmd = exec.CommandContext(ctx, e.bin, e.args(args)...)
	b.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	stdin, err := b.cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	b.stdin = stdin
	if err := b.cmd.Start(); err != nil {
		cancel()
		e.t.Fatalf("start quorumctl %s: %v", b.name, err)
	}
	go func() {
		b.err = b.cmd.Wait()
		cancel()
		close(b.done)
	}()
	e.t.Cleanup(func() { b.kill() })
	return b
}

// send writes one line to the process's standard input.
func (b *bgCtl) send(line string) { _, _ = io.WriteString(b.stdin, line+"\n") }

// waitOutput waits up to d for pred to hold on the process's stdout; it
// reports whether it did.
func (b *bgCtl) waitOutput(d time.Duration, pred func(string) bool) bool {
	deadline := time.Now().Add(d)
	for {
		if pred(b.stdout.String()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-b.done:
			return pred(b.stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitExit waits up to d for the process to exit by itself.
func (b *bgCtl) waitExit(d time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (b *bgCtl) kill() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}

// interrupt sends SIGINT (etcdctl unlocks or resigns on it) and waits up to
// 10 s for the process to exit, killing it after that.
func (b *bgCtl) interrupt() {
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	if !b.waitExit(10 * time.Second) {
		b.kill()
	}
}

// transcript stops the process and returns what it printed.
func (b *bgCtl) transcript() string {
	b.kill()
	return b.stdout.String() + keptStderr(b.stderr.String())
}

// stopAndLog stops the process and writes its output to the transcript.
func (e *ctlEnv) stopAndLog(b *bgCtl) {
	e.logf("$ %s &\n%s", b.name, b.transcript())
}

var watcherTotal = regexp.MustCompile(`(?m)^etcd_debugging_mvcc_watcher_total (\d+)`)

// watchers is the number of watchers over all members
// (etcd_debugging_mvcc_watcher_total summed over their /metrics).
func (e *ctlEnv) watchers() (int, error) {
	n := 0
	for _, u := range e.endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil {
			return 0, err
		}
		m := watcherTotal.FindSubmatch(body)
		if m == nil {
			return 0, fmt.Errorf("%s/metrics has no etcd_debugging_mvcc_watcher_total", u)
		}
		v, _ := strconv.Atoi(string(m[1]))
		n += v
	}
	return n, nil
}

// waitWatchers waits (10 s at most) until the members hold exactly n
// watchers, so that a write is not made before the watch that should see
// it exists.
func (e *ctlEnv) waitWatchers(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.watchers()
		if err == nil && got == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("%v: watcher_total = %d (%v), want %d", e.endpoints, got, err, n)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	leaseGranted = regexp.MustCompile(`lease ([0-9a-f]+) granted`)
	leaseKey     = regexp.MustCompile(`(mylock|myelection)/[0-9a-f]+`)
	// -w fields prints the cluster's and the member's IDs and the Raft term.
	headerIDs = regexp.MustCompile(`"(ClusterID|MemberID|RaftTerm)" : \d+`)
)

// normaliseTranscript replaces lease IDs (which etcd and quorumd draw
// differently) with LEASE1, LEASE2, … in order of first appearance, and
// the cluster ID, member ID and Raft term with N.
func normaliseTranscript(s string) string {
	s = leaseKey.ReplaceAllString(s, "$1/LEASE")
	s = headerIDs.ReplaceAllString(s, `"$1" : N`)
	ids := map[string]string{}
	for _, m := range leaseGranted.FindAllStringSubmatch(s, -1) {
		if _, ok := ids[m[1]]; !ok {
			ids[m[1]] = fmt.Sprintf("LEASE%d", len(ids)+1)
		}
	}
	for id, name := range ids {
		s = regexp.MustCompile(`\b`+id+`\b`).ReplaceAllString(s, name)
	}
	return s
}

var quorumctlOnce struct {
	sync.Once
	bin string
	err error
}

// sharedQuorumctl builds cmd/quorumctl once per test binary, beside the
// quorumd binary (whose directory testbin.Main removes at the end).
func sharedQuorumctl(t *testing.T) string {
	t.Helper()
	quorumctlOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(quorumdBinary), "quorumctl")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/quorum-kv/quorum/cmd/quorumctl").CombinedOutput()
		if err != nil {
			quorumctlOnce.err = fmt.Errorf("build quorumctl: %v\n%s", err, out)
			return
		}
		quorumctlOnce.bin = bin
	})
	if quorumctlOnce.err != nil {
		t.Fatal(quorumctlOnce.err)
	}
	return quorumctlOnce.bin
}

// compareWithEtcd runs script against a fresh 3-member quorumd and a fresh
// real etcd (or etcd's recorded transcript testdata/etcdctl/NAME.txt) and
// requires the same transcript.
func compareWithEtcd(t *testing.T, name string, script func(e *ctlEnv)) {
	t.Helper()
	tc := startCluster(t, 3)
	tc.waitHealthy()
	bin := sharedQuorumctl(t)
	runOn := func(endpoints []string) string {
		e := &ctlEnv{t: t, bin: bin, endpoints: endpoints}
		script(e)
		return normaliseTranscript(e.out.String())
	}
	got := runOn(tc.Endpoints())
	var run func() string
	if etcd := startRealEtcd(t); etcd != "" {
		run = func() string { return runOn([]string{etcd}) }
	}
	requireTranscript(t, got, etcdTranscript(t, name, run))
}

// etcdTranscript is what etcd prints for the script recorded in
// testdata/etcdctl/NAME.txt: run's output (run against a real etcd, nil
// without one), which must equal the recording unless -etcdctl-record
// rewrites it; without run, the recording.
func etcdTranscript(t *testing.T, name string, run func() string) string {
	t.Helper()
	path := filepath.Join("testdata", "etcdctl", name+".txt")
	if run == nil {
		rec, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("no tools/bin/etcd and no recorded transcript: %v", err)
		}
		return string(rec)
	}
	want := run()
	if *etcdctlRecord {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if rec, err := os.ReadFile(path); err == nil && string(rec) != want {
		t.Errorf("%s is not what etcd prints now (rerun with -etcdctl-record):\n%s", path, want)
	}
	return want
}

// requireTranscript fails the test unless quorumd's transcript got is
// etcd's want.
func requireTranscript(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("etcdctl against quorumd printed:\n%s\netcd prints:\n%s\ndiff (- etcd, + quorumd):\n%s", got, want, lineDiff(want, got))
	}
}

// lineDiff is a small line diff (longest common subsequence) for failure
// messages.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out.WriteString("  " + x[i] + "\n")
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + y[j] + "\n")
			j++
		default:
			out.WriteString("- " + x[i] + "\n")
			i++
		}
	}
	return out.String()
}

// lineCount is a predicate: the output has at least n lines.
func lineCount(n int) func(string) bool {
	return func(s string) bool { return strings.Count(s, "\n") >= n }
}

func contains(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

// watch name, watch --prefix / and watch --rev=1 --prev-kv name see the
// puts and deletes that etcd's watchers see, in the same format.
func TestEtcdctlWatchMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "watch", func(e *ctlEnv) {
		e.waitWatchers(0)
		name := e.start("watch", "name")
		prefix := e.start("watch", "--prefix", "/")
		e.waitWatchers(2)
		e.do("put", "name", "john")
		e.do("put", "/a", "1")
		e.do("put", "name", "jane")
		e.do("put", "/dir/b", "2")
		e.do("del", "name")
		e.do("del", "/", "--prefix")
		e.do("put", "name", "end")
		e.do("put", "/end", "x")
		name.waitOutput(10*time.Second, contains("\nend\n"))
		prefix.waitOutput(10*time.Second, contains("/end\nx\n"))
		e.stopAndLog(name)
		e.stopAndLog(prefix)
		e.waitWatchers(0)
		hist := e.start("watch", "--rev=1", "--prev-kv", "name")
		hist.waitOutput(10*time.Second, contains("\nend\n"))
		e.stopAndLog(hist)
		e.do("get", "name", "-w", "fields")
	})
}

// watch -i takes "watch ..." and "progress" lines on standard input.
func TestEtcdctlInteractiveWatchMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "watch-interactive", func(e *ctlEnv) {
		e.waitWatchers(0)
		w := e.start("watch", "-i")
		w.send("watch name")
		e.waitWatchers(1)
		w.send("watch --prefix /")
		e.waitWatchers(2)
		e.do("put", "name", "john")
		w.waitOutput(10*time.Second, contains("john\n"))
		e.do("put", "/a", "1")
		w.waitOutput(10*time.Second, contains("/a\n1\n"))
		e.do("del", "name")
		w.waitOutput(10*time.Second, contains("DELETE\nname\n"))
		// A progress request is answered on the stream once every watcher is
		// synced, with the current revision; etcdctl prints it for each
		// watch of the stream.
		w.send("progress")
		w.waitOutput(10*time.Second, func(s string) bool { return strings.Count(s, "progress notify") >= 2 })
		w.send("watch --rev=2 --prev-kv name")
		e.waitWatchers(3)
		w.waitOutput(10*time.Second, func(s string) bool { return strings.Count(s, "DELETE") >= 2 })
		w.send("bogus")
		w.send("watch")
		time.Sleep(300 * time.Millisecond) // the two bad lines only go to stderr
		e.stopAndLog(w)
	})
}

// The lease commands, with a watch seeing the leased key go at revoke.
func TestEtcdctlLeaseMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "lease", func(e *ctlEnv) {
		e.waitWatchers(0)
		w := e.start("watch", "--prev-kv", "k")
		e.waitWatchers(1)
		grant := e.do("lease", "grant", "60")
		m := leaseGranted.FindStringSubmatch(grant)
		if m == nil {
			return
		}
		id := m[1]
		e.do("put", "--lease="+id, "k", "v")
		e.do("lease", "keep-alive", "--once", id)
		out := e.run("", "lease", "timetolive", "--keys", id)
		// The remaining TTL depends on when the second ticks.
		e.logf("$ lease timetolive --keys %s\n%s", id, regexp.MustCompile(`remaining\((59|60)s\)`).ReplaceAllString(out, "remaining(Ns)"))
		e.do("lease", "list")
		e.do("lease", "revoke", id)
		w.waitOutput(10*time.Second, contains("DELETE"))
		e.do("lease", "timetolive", id)
		e.do("lease", "revoke", id)
		e.do("lease", "keep-alive", "--once", id)
		e.do("get", "k")
		e.stopAndLog(w)
	})
}

// lock mylock holds the lock until interrupted; a second contender running
// "echo held" under the lock waits until then.
func TestEtcdctlLockMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "lock", func(e *ctlEnv) {
		e.waitWatchers(0)
		holder := e.start("lock", "mylock")
		holder.waitOutput(10*time.Second, lineCount(2))
		e.logf("holder: %s", holder.stdout.String())
		waiter := e.start("lock", "mylock", "echo", "held")
		// The waiter's key exists and it watches the holder's key.
		e.waitWatchers(1)
		e.do("get", "--prefix", "mylock/", "--keys-only", "--sort-by=CREATE")
		time.Sleep(500 * time.Millisecond)
		e.logf("waiter before unlock: %q\n", waiter.stdout.String())
		holder.interrupt()
		e.logf("holder exited: %v\n", holder.err)
		if !waiter.waitExit(10 * time.Second) {
			e.logf("waiter did not finish\n")
		}
		e.logf("waiter: %q exited: %v\n", waiter.stdout.String(), waiter.err)
		e.do("lock", "mylock", "--", "sh", "-c", "echo $ETCD_LOCK_KEY $ETCD_LOCK_REV")
		e.do("lock", "mylock", "false")
		e.do("get", "--prefix", "mylock/")
	})
}

// elect myelection p1 leads; p2 waits; the observer (elect -l) sees p1,
// then p2 once p1 resigns.
func TestEtcdctlElectMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "elect", func(e *ctlEnv) {
		e.waitWatchers(0)
		obs := e.start("elect", "-l", "myelection")
		e.waitWatchers(1)
		p1 := e.start("elect", "myelection", "p1")
		p1.waitOutput(10*time.Second, lineCount(2))
		obs.waitOutput(10*time.Second, contains("p1\n"))
		p2 := e.start("elect", "myelection", "p2")
		e.waitWatchers(2) // p2 watches p1's key
		time.Sleep(300 * time.Millisecond)
		e.logf("p2 before p1 resigns: %q\n", p2.stdout.String())
		e.do("get", "--prefix", "myelection/", "--print-value-only", "--sort-by=CREATE")
		p1.interrupt()
		e.logf("p1: %q exited: %v\n", p1.stdout.String(), p1.err)
		p2.waitOutput(10*time.Second, lineCount(2))
		obs.waitOutput(10*time.Second, contains("p2\n"))
		p2.interrupt()
		e.logf("p2: %q exited: %v\n", p2.stdout.String(), p2.err)
		e.stopAndLog(obs)
		e.do("get", "--prefix", "myelection/")
	})
}

// compact N and compact --physical N; reads and watches below the
// compacted revision fail as on etcd.
func TestEtcdctlCompactMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "compact", func(e *ctlEnv) {
		for i := 1; i <= 6; i++ {
			e.do("put", "c", strconv.Itoa(i)) // revisions 2..7
		}
		e.do("compact", "3")
		e.do("get", "c", "--rev=2")
		e.do("get", "c", "--rev=3")
		e.do("compact", "3")
		e.do("compact", "2")
		e.do("compact", "--physical", "5")
		e.do("get", "c", "--rev=4")
		e.do("get", "c", "--rev=5", "-w", "fields")
		e.do("compact", "100")
		e.waitWatchers(0)
		w := e.start("watch", "--rev=2", "c")
		if !w.waitExit(10 * time.Second) {
			e.logf("watch below the compacted revision still running\n")
		}
		e.logf("$ watch --rev=2 c\n%sexit: %v\n", w.transcript(), w.err)
		w2 := e.start("watch", "--rev=5", "c")
		w2.waitOutput(10*time.Second, contains("\n6\n"))
		e.stopAndLog(w2)
	})
}
