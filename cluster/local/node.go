package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Node is one member process. It implements cluster.Node; its methods are
// safe for concurrent use and operations on one Node are serialized.
type Node struct {
	name          string
	clientURL     string
	peerURL       string // advertised: the fault proxy
	listenPeerURL string
	dataDir       string
	logPath       string
	binary        string
	flags         cluster.MemberFlags // args is flags.Args(); both guarded by mu after New
	args          []string
	net           memberIDs
	env           []string
	grace         time.Duration
	log           *slog.Logger

	mu     sync.Mutex // serializes operations
	proc   atomic.Pointer[process]
	paused atomic.Bool
}

var (
	_ cluster.Node   = (*Node)(nil)
	_ cluster.Joiner = (*Node)(nil)
)

// memberIDs is the part of the fault proxies a Node teaches its member ID.
type memberIDs interface {
	SetMemberID(name string, id uint64) error
}

// process is one run of the member's server. exited is closed (after
// waitErr is set) once the process has been reaped.
type process struct {
	cmd     *exec.Cmd
	pid     int
	exited  chan struct{}
	waitErr error
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (n *Node) Name() string      { return n.name }
func (n *Node) ClientURL() string { return n.clientURL }
func (n *Node) PeerURL() string   { return n.peerURL }

// ListenPeerURL is the server's real peer listener, behind the proxy.
func (n *Node) ListenPeerURL() string { return n.listenPeerURL }

// DataDir is the member's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// LogPath is the member's log file (stdout and stderr of every run).
func (n *Node) LogPath() string { return n.logPath }

// Args returns the member's command-line arguments (a copy).
func (n *Node) Args() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.args...)
}

// PID is the current process id (also its process group id), 0 if stopped.
func (n *Node) PID() int {
	if p := n.proc.Load(); p != nil && !p.hasExited() {
		return p.pid
	}
	return 0
}

// State reports Stopped once the process has exited, whatever the cause.
func (n *Node) State() cluster.State {
	p := n.proc.Load()
	if p == nil || p.hasExited() {
		return cluster.Stopped
	}
	if n.paused.Load() {
		return cluster.Paused
	}
	return cluster.Running
}

// transition checks op against the current state; noop means nothing to do.
func (n *Node) transition(op cluster.Op) (noop bool, err error) {
	_, noop, err = cluster.NextState(n.State(), op)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", op, n.name, err)
	}
	return noop, nil
}

// Start launches the server on its existing data and waits until its client
// port accepts connections. If the process exits first, the error carries
// the tail of its log; if ctx ends first, the process is left running (State
// says so) and the error wraps ctx's.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpStart); noop || err != nil {
		return err
	}
	p, err := n.launch()
	if err != nil {
		return err
	}
	return n.waitListening(ctx, p)
}

// Join starts the stopped member with --initial-cluster-state existing and
// j's --initial-cluster (cluster.Joiner), teaches the fault proxies its new
// member ID, and waits until its client port accepts connections. Later
// Starts keep these flags.
func (n *Node) Join(ctx context.Context, j cluster.Join) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.State() != cluster.Stopped {
		return fmt.Errorf("join %s: %w: the node is %s, not stopped", n.name, cluster.ErrInvalidState, n.State())
	}
	if j.InitialCluster == "" {
		return fmt.Errorf("join %s: the initial cluster is empty", n.name)
	}
	n.flags.InitialCluster, n.flags.InitialClusterState = j.InitialCluster, "existing"
	n.args = n.flags.Args()
	if n.net != nil && j.MemberID != 0 {
		if err := n.net.SetMemberID(n.name, j.MemberID); err != nil {
			return fmt.Errorf("join %s: %w", n.name, err)
		}
	}
	p, err := n.launch()
	if err != nil {
		return err
	}
	return n.waitListening(ctx, p)
}

// launch starts the process without waiting for it; the caller holds mu
// (or owns the Node exclusively, as New does).
func (n *Node) launch() (*process, error) {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", n.name, err)
	}
	fmt.Fprintf(logf, "=== quorum: %s starting at %s: %s %s\n", n.name, time.Now().Format(time.RFC3339Nano), n.binary, strings.Join(n.args, " "))
	cmd := exec.Command(n.binary, n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), n.env...)
	// Own process group, so signals reach every process the server forks;
	// Pdeathsig kills the member if the harness dies without closing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: exec %s: %w", n.name, n.binary, err)
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.waitErr = err
		fmt.Fprintf(logf, "=== quorum: %s exited at %s: %s\n", n.name, time.Now().Format(time.RFC3339Nano), exitString(err))
		logf.Close()
		close(p.exited)
		n.log.Info("member exited", "node", n.name, "pid", p.pid, "status", exitString(err))
	}()
	n.paused.Store(false)
	n.proc.Store(p)
	n.log.Info("member started", "node", n.name, "pid", p.pid)
	return p, nil
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// exitError describes a process that exited when it should not have.
func (n *Node) exitError(p *process) error {
	return fmt.Errorf("member %s exited during start-up (%s); last lines of %s:\n%s",
		n.name, exitString(p.waitErr), n.logPath, LogTail(n.logPath, 20))
}

func (n *Node) waitListening(ctx context.Context, p *process) error {
	addr := n.clientURL[strings.Index(n.clientURL, "://")+3:]
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if p.hasExited() {
			return n.exitError(p)
		}
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s: client port %s not listening: %w", n.name, addr, ctx.Err())
		case <-p.exited:
		case <-t.C:
		}
	}
}

// signal sends sig to the process group of p (ESRCH, a group already gone,
// is not an error).
func (n *Node) signal(p *process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %s (pgid %d): %w", sig, n.name, p.pid, err)
	}
	return nil
}

// Stop sends SIGTERM (and SIGCONT, should the member be paused), waits up to
// the grace period, then SIGKILLs. A done ctx skips straight to SIGKILL.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpStop); noop || err != nil {
		return err
	}
	p := n.proc.Load()
	if err := n.signal(p, syscall.SIGTERM); err != nil {
		return err
	}
	if n.paused.Load() {
		if err := n.signal(p, syscall.SIGCONT); err != nil {
			return err
		}
	}
	t := time.NewTimer(n.grace)
	defer t.Stop()
	select {
	case <-p.exited:
		n.signal(p, syscall.SIGKILL) // stragglers in the group
		n.paused.Store(false)
		return nil
	case <-t.C:
		n.log.Warn("member ignored SIGTERM; killing", "node", n.name, "grace", n.grace)
	case <-ctx.Done():
	}
	return n.kill(p)
}

// Kill sends SIGKILL to the member's process group and waits for the exit.
func (n *Node) Kill(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpKill); noop || err != nil {
		return err
	}
	return n.kill(n.proc.Load())
}

func (n *Node) kill(p *process) error {
	if err := n.signal(p, syscall.SIGKILL); err != nil {
		return err
	}
	// SIGKILL cannot be ignored and works on stopped processes; the wait is
	// bounded only against a kernel stuck in uninterruptible I/O.
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("kill %s: pid %d still not reaped 30s after SIGKILL", n.name, p.pid)
	}
	n.paused.Store(false)
	return nil
}

// Pause freezes the member's process group with SIGSTOP and returns once the
// kernel reports the main process stopped.
func (n *Node) Pause(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpPause); noop || err != nil {
		return err
	}
	p := n.proc.Load()
	if err := n.signal(p, syscall.SIGSTOP); err != nil {
		return err
	}
	n.paused.Store(true)
	for i := 0; i < 100 && procState(p.pid) != 'T'; i++ {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pause %s: %w", n.name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Resume continues a paused member with SIGCONT.
func (n *Node) Resume(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpResume); noop || err != nil {
		return err
	}
	if err := n.signal(n.proc.Load(), syscall.SIGCONT); err != nil {
		return err
	}
	n.paused.Store(false)
	return nil
}

// Wipe deletes the member's data directory; the member must be stopped.
func (n *Node) Wipe(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.transition(cluster.OpWipe); err != nil {
		return err
	}
	if err := os.RemoveAll(n.dataDir); err != nil {
		return fmt.Errorf("wipe %s: %w", n.name, err)
	}
	n.log.Info("member wiped", "node", n.name, "dir", n.dataDir)
	return nil
}

// procState returns the state letter of /proc/<pid>/stat ('R', 'S', 'T'...),
// or 0 if it cannot be read.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) S ... — comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// LogTail returns up to the last lines lines of the file at path (reading at
// most its last 16 KiB), or a note saying why it could not be read.
func LogTail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
