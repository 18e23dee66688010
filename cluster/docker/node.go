package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/quorum-kv/quorum/cluster"
)

// Node is one member container. It implements cluster.Node; its methods are
// safe for concurrent use and operations on one Node are serialized.
type Node struct {
	c         *Cluster
	name      string
	ip        netip.Addr
	clientURL string
	peerURL   string
	container string // container name
	volume    string
	logPath   string

	mu     sync.Mutex // serializes operations; guards ctr, flags and args
	flags  cluster.MemberFlags
	args   []string // flags.Args(), the container's command
	ctr    *testcontainers.DockerContainer
	run    atomic.Pointer[run]
	paused atomic.Bool
}

var (
	_ cluster.Node   = (*Node)(nil)
	_ cluster.Joiner = (*Node)(nil)
)

// run is one start of the container. exited is closed once the engine
// reports the container stopped.
type run struct {
	pid    int
	exited chan struct{}
	once   sync.Once
	status string
}

func (r *run) markExited(status string) {
	r.once.Do(func() { r.status = status; close(r.exited) })
}

func (r *run) hasExited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

func (n *Node) Name() string      { return n.name }
func (n *Node) ClientURL() string { return n.clientURL }
func (n *Node) PeerURL() string   { return n.peerURL }

// IP is the member's fixed address on the run's network.
func (n *Node) IP() netip.Addr { return n.ip }

// ContainerName is the member's container name (quorum-<run>-<name>).
func (n *Node) ContainerName() string { return n.container }

// LogPath is where the member's output is copied (by Close and Wipe).
func (n *Node) LogPath() string { return n.logPath }

// PID is the host pid of the container's main process, 0 if stopped.
func (n *Node) PID() int {
	if r := n.run.Load(); r != nil && !r.hasExited() {
		return r.pid
	}
	return 0
}

// State reports Stopped once the engine says the container exited,
// whatever the cause.
func (n *Node) State() cluster.State {
	r := n.run.Load()
	if r == nil || r.hasExited() {
		return cluster.Stopped
	}
	if n.paused.Load() {
		return cluster.Paused
	}
	return cluster.Running
}

func (n *Node) transition(op cluster.Op) (noop bool, err error) {
	_, noop, err = cluster.NextState(n.State(), op)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", op, n.name, err)
	}
	return noop, nil
}

// createContainer creates the member's volume and container (not started);
// the caller holds mu or owns the node exclusively.
//
// The engine calls run on a context the caller's cancellation does not
// reach (see creating): once they return, nothing of this member is still
// being made, so a cleanup that follows finds all of it. ctx is checked
// after each.
func (n *Node) createContainer(ctx context.Context) error {
	cctx, cancel := creating(ctx)
	defer cancel()
	cli := n.c.eng.cli
	if _, err := cli.VolumeCreate(cctx, client.VolumeCreateOptions{Name: n.volume, Labels: n.c.labels}); err != nil {
		return fmt.Errorf("docker: create volume %s: %w", n.volume, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("docker: create %s: %w", n.name, err)
	}
	ctr, err := n.c.eng.provider.CreateContainer(cctx, n.c.containerRequest(n))
	if err != nil {
		return fmt.Errorf("docker: create container %s from %s: %w", n.container, n.c.cfg.Server.Image, err)
	}
	dc, ok := ctr.(*testcontainers.DockerContainer)
	if !ok {
		return fmt.Errorf("docker: create container %s: unexpected type %T", n.container, ctr)
	}
	n.ctr = dc
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("docker: create %s: %w", n.name, err)
	}
	if n.c.cfg.Server.TLS {
		if err := n.copyCerts(cctx); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// copyCerts copies the CA and the member's own certificate and key (not the
// other members' keys, nor the client's) into the created container under
// /certs: directory 0500, key 0400, certificates 0444, owned by root, which
// the server runs as in a FROM scratch image.
//
// Copied rather than bind-mounted: the engine's archive API writes into a
// created container's filesystem without a shell or tar in the image
// (FROM scratch has neither), and without the engine having to see the
// harness's run directory at the same path (a remote or rootless engine,
// or a harness itself in a container, would not). The copy lives in the
// container's layer, so it survives stop, kill and restart; Wipe recreates
// the container and copies again. Nothing in the member writes there.
func (n *Node) copyCerts(ctx context.Context) error {
	t := n.c.certs
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(certDir, "/")
	if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o500}); err != nil {
		return fmt.Errorf("docker: certificates for %s: %w", n.name, err)
	}
	for _, f := range []struct {
		src  string
		mode int64
	}{{t.CAFile(), 0o444}, {t.MemberCert(n.name), 0o444}, {t.MemberKey(n.name), 0o400}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return fmt.Errorf("docker: certificates for %s: %w", n.name, err)
		}
		hdr := &tar.Header{Name: dir + "/" + filepath.Base(f.src), Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(b))}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("docker: certificates for %s: %w", n.name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("docker: certificates for %s: %w", n.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("docker: certificates for %s: %w", n.name, err)
	}
	if _, err := n.c.eng.cli.CopyToContainer(ctx, n.ctr.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("docker: copy certificates into %s: %w", n.container, err)
	}
	return nil
}

// Start starts the container on its existing volume, re-applies the
// cluster's cut links inside its new network namespace, and waits until its
// client port accepts connections. If the container exits first, the error
// carries the tail of its log; if ctx ends first the container is left
// running (State says so) and the error wraps ctx's.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpStart); noop || err != nil {
		return err
	}
	return n.start(ctx)
}

// Join starts the stopped member with --initial-cluster-state existing and
// j's --initial-cluster (cluster.Joiner). A container's command is fixed
// when it is created, so its output so far is appended to the log file
// and it is created again with the new flags, on the same volume, name
// and address; then it starts as Start does. Later Starts keep the flags.
func (n *Node) Join(ctx context.Context, j cluster.Join) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st := n.State(); st != cluster.Stopped {
		return fmt.Errorf("join %s: %w: the node is %s, not stopped", n.name, cluster.ErrInvalidState, st)
	}
	if j.InitialCluster == "" {
		return fmt.Errorf("join %s: the initial cluster is empty", n.name)
	}
	if err := n.saveLogs(ctx); err != nil {
		n.c.cfg.Logger.Warn("saving log before join", "node", n.name, "err", err)
	}
	if n.ctr != nil {
		if _, err := n.c.eng.cli.ContainerRemove(ctx, n.ctr.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			return fmt.Errorf("join %s: remove container: %w", n.name, err)
		}
		n.ctr = nil
	}
	n.flags.InitialCluster, n.flags.InitialClusterState = j.InitialCluster, "existing"
	n.args = n.flags.Args()
	if err := n.createContainer(ctx); err != nil {
		return fmt.Errorf("join %s: %w", n.name, err)
	}
	n.c.cfg.Logger.Info("member joining", "node", n.name, "id", fmt.Sprintf("%x", j.MemberID), "initial-cluster", j.InitialCluster)
	return n.start(ctx)
}

// engineCreateTimeout bounds one engine call that makes a resource (a
// network, a volume, a container); each takes well under a second.
const engineCreateTimeout = 60 * time.Second

// creating returns the context for engine calls that make resources: ctx's
// values, none of its cancellation, and a deadline of engineCreateTimeout.
// A request the client abandons on cancel has often reached the engine,
// which carries it out anyway; the resource then appears after the
// cleanup listed what to remove, and outlives it (a container seen in CI,
// holding its volume: "volume is in use"). Waiting out the engine's answer
// instead costs at most a second after a cancel.
func creating(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), engineCreateTimeout)
}

// engineStartTimeout bounds the engine's answer to one container start (a
// start takes well under a second; under load, a few).
const engineStartTimeout = 60 * time.Second

// errEngineStart is wrapped by start when the engine failed to start a
// container, or did not answer within engineStartTimeout, while the
// caller's context was still live: the engine's trouble, not the member's
// (it has not run yet). Seen once on these machines with two test binaries
// starting containers at once: runc's task died a second after it was
// created and the start request hung until the caller gave up.
var errEngineStart = errors.New("the Docker engine did not start the container")

// start starts the created container; the caller holds mu and has checked
// the transition.
func (n *Node) start(ctx context.Context) error {
	if n.ctr == nil {
		return fmt.Errorf("start %s: container was not created", n.name)
	}
	cli := n.c.eng.cli
	r := &run{exited: make(chan struct{})}
	// Watch for the exit before starting, so a fast crash is not missed.
	wait := cli.ContainerWait(n.c.life, n.ctr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	sctx, cancel := context.WithTimeout(ctx, engineStartTimeout)
	err := n.ctr.Start(sctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			return fmt.Errorf("start %s: %w (within %v): %w", n.name, errEngineStart, engineStartTimeout, err)
		}
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	ins, err := cli.ContainerInspect(ctx, n.ctr.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("start %s: inspect: %w", n.name, err)
	}
	r.pid = ins.Container.State.Pid
	if !ins.Container.State.Running {
		r.markExited("exited at once: " + string(ins.Container.State.Status))
	}
	go func() {
		select {
		case res := <-wait.Result:
			msg := "exit status " + strconv.FormatInt(res.StatusCode, 10)
			r.markExited(msg)
			n.c.cfg.Logger.Info("member exited", "node", n.name, "status", msg)
		case err := <-wait.Error:
			// Lost the watch (the cluster is closing, or the engine
			// hiccupped): ask the engine directly until it says stopped.
			n.pollExit(r, err)
		}
	}()
	n.paused.Store(false)
	n.run.Store(r)
	n.c.cfg.Logger.Info("member started", "node", n.name, "pid", r.pid, "ip", n.ip)
	if r.pid > 0 {
		if err := n.c.applyTo(n); err != nil {
			return fmt.Errorf("start %s: re-apply partition: %w", n.name, err)
		}
	}
	return n.waitListening(ctx, r)
}

// pollExit inspects the container every 500ms until it is not running or
// the cluster is closed.
func (n *Node) pollExit(r *run, why error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		ins, err := n.c.eng.cli.ContainerInspect(n.c.life, n.ctr.ID, client.ContainerInspectOptions{})
		if err == nil && !ins.Container.State.Running {
			r.markExited("exit status " + strconv.Itoa(ins.Container.State.ExitCode))
			return
		}
		if err != nil && isNotFound(err) {
			r.markExited("container removed")
			return
		}
		select {
		case <-n.c.life.Done():
			r.markExited(fmt.Sprintf("unknown (stopped watching: %v)", why))
			return
		case <-t.C:
		}
	}
}

func (n *Node) waitListening(ctx context.Context, r *run) error {
	addr := netip.AddrPortFrom(n.ip, ClientPort).String()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if r.hasExited() {
			return n.exitError(ctx)
		}
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s: client port %s not listening: %w", n.name, addr, ctx.Err())
		case <-r.exited:
		case <-t.C:
		}
	}
}

// exitError describes a container that exited when it should not have.
func (n *Node) exitError(ctx context.Context) error {
	status := "unknown"
	if r := n.run.Load(); r != nil && r.hasExited() {
		status = r.status
	}
	return fmt.Errorf("member %s (container %s) exited during start-up (%s); last lines of its log:\n%s",
		n.name, n.container, status, n.logTail(context.WithoutCancel(ctx), 20))
}

// logTail returns the container's last lines of output.
func (n *Node) logTail(ctx context.Context, lines int) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := n.c.eng.cli.ContainerLogs(ctx, n.container, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer rc.Close()
	var b strings.Builder
	stdcopy.StdCopy(&b, &b, rc)
	return strings.TrimRight(b.String(), "\n")
}

// saveLogs appends the container's whole output (every start, with the
// engine's timestamps) to the member's log file.
func (n *Node) saveLogs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("save log of %s: %w", n.name, err)
	}
	defer f.Close()
	rc, err := n.c.eng.cli.ContainerLogs(ctx, n.container, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("save log of %s: %w", n.name, err)
	}
	defer rc.Close()
	fmt.Fprintf(f, "=== quorum: output of container %s (%s), saved at %s\n", n.container, strings.Join(n.args, " "), time.Now().Format(time.RFC3339Nano))
	if _, err := stdcopy.StdCopy(f, f, rc); err != nil {
		return fmt.Errorf("save log of %s: %w", n.name, err)
	}
	return nil
}

// Stop stops the container: SIGTERM, then SIGKILL after the grace period
// (a paused container is unpaused first). A done ctx skips to SIGKILL.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpStop); noop || err != nil {
		return err
	}
	if ctx.Err() != nil {
		return n.kill(context.WithoutCancel(ctx))
	}
	if err := n.unpause(ctx); err != nil {
		return err
	}
	grace := n.c.cfg.StopGrace
	if err := n.ctr.Stop(ctx, &grace); err != nil {
		if ctx.Err() != nil {
			return n.kill(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("stop %s: %w", n.name, err)
	}
	return n.waitExited(ctx, "stop")
}

// Kill sends SIGKILL to the container and waits until it has exited.
func (n *Node) Kill(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpKill); noop || err != nil {
		return err
	}
	return n.kill(ctx)
}

func (n *Node) kill(ctx context.Context) error {
	// The engine refuses to signal a paused container; thaw it first (the
	// SIGKILL follows at once).
	if err := n.unpause(ctx); err != nil {
		return err
	}
	if _, err := n.c.eng.cli.ContainerKill(ctx, n.ctr.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !isNotRunning(err) {
		return fmt.Errorf("kill %s: %w", n.name, err)
	}
	return n.waitExited(ctx, "kill")
}

func isNotRunning(err error) bool {
	return strings.Contains(err.Error(), "is not running")
}

func (n *Node) unpause(ctx context.Context) error {
	if !n.paused.Load() {
		return nil
	}
	if _, err := n.c.eng.cli.ContainerUnpause(ctx, n.ctr.ID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w", n.name, err)
	}
	n.paused.Store(false)
	return nil
}

// waitExited waits until the exit watcher has seen the container stop.
func (n *Node) waitExited(ctx context.Context, op string) error {
	r := n.run.Load()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s %s: container %s still not reported stopped after 30s", op, n.name, n.container)
	}
	n.paused.Store(false)
	return nil
}

// Pause freezes the container (the engine's cgroup freezer).
func (n *Node) Pause(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpPause); noop || err != nil {
		return err
	}
	if _, err := n.c.eng.cli.ContainerPause(ctx, n.ctr.ID, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", n.name, err)
	}
	n.paused.Store(true)
	return nil
}

// Resume thaws a paused container.
func (n *Node) Resume(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if noop, err := n.transition(cluster.OpResume); noop || err != nil {
		return err
	}
	return n.unpause(ctx)
}

// Wipe replaces the member's volume with an empty one: its output so far is
// appended to its log file, then the container and volume are removed and
// created again (same name, address and flags). The node must be stopped.
func (n *Node) Wipe(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.transition(cluster.OpWipe); err != nil {
		return err
	}
	if err := n.saveLogs(ctx); err != nil {
		n.c.cfg.Logger.Warn("saving log before wipe", "node", n.name, "err", err)
	}
	cli := n.c.eng.cli
	if n.ctr != nil {
		if _, err := cli.ContainerRemove(ctx, n.ctr.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			return fmt.Errorf("wipe %s: remove container: %w", n.name, err)
		}
		n.ctr = nil
	}
	if _, err := cli.VolumeRemove(ctx, n.volume, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("wipe %s: remove volume %s: %w", n.name, n.volume, err)
	}
	if err := n.createContainer(ctx); err != nil {
		return fmt.Errorf("wipe %s: %w", n.name, err)
	}
	n.c.cfg.Logger.Info("member wiped", "node", n.name, "volume", n.volume)
	return nil
}
