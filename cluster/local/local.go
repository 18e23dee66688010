package local

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/faultproxy"
	"github.com/quorum-kv/quorum/cluster/lazyfs"
	"github.com/quorum-kv/quorum/rundir"
)

// Cluster is a set of member processes and the fault proxies between them.
type Cluster struct {
	cfg   Config
	nodes cluster.Members[*Node]
	net   *faultproxy.Network
	ports *portSet    // held until Close
	tls   *tls.Config // clients' TLS configuration; nil without TLS
	// disk is the lazy file system the data directory is mounted on
	// (StartConfig.DiskFaults); nil without.
	disk *lazyfs.FS

	closeOnce sync.Once
	closeErr  error
}

var (
	_ cluster.Cluster     = (*Cluster)(nil)
	_ cluster.Partitioner = (*Cluster)(nil)
	_ cluster.LinkShaper  = (*Cluster)(nil)
	_ cluster.TLSCluster  = (*Cluster)(nil)
)

// New allocates free ports, starts every member with etcd's flags
//
//	--name --data-dir --listen-client-urls --advertise-client-urls
//	--listen-peer-urls --initial-advertise-peer-urls --initial-cluster
//	--initial-cluster-token --initial-cluster-state new
//	[--heartbeat-interval --election-timeout --snapshot-count] ExtraArgs...
//
// and waits (up to cfg.StartTimeout, or ctx) until every member answers and
// they agree on a leader. If a member exits during start-up, the error
// carries the tail of its log. On any error nothing is left running.
//
// Ports are drawn from cfg.Seed (see reservePorts) and reserved against
// other harness processes until Close. A process outside Quorum could
// still take one before the member binds it; a member that then fails to
// bind ("address already in use") makes New start the cluster again on
// other ports and empty data directories, up to three times.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	binary, err := filepath.Abs(cfg.Server.Binary)
	if err != nil {
		return nil, fmt.Errorf("local: binary path: %w", err)
	}
	for _, d := range []string{rundir.DataDir, rundir.LogsDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("local: create run directory: %w", err)
		}
	}
	var sec *security
	if cfg.Server.TLS {
		if sec, err = makeSecurity(cfg); err != nil {
			return nil, err
		}
	}
	disk, err := mountDisk(cfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_0f_9075))
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c, err := newCluster(ctx, cfg, binary, rng, sec, disk)
		if err == nil {
			return c, nil
		}
		if attempt == attempts || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			unmountDisk(disk, cfg)
		}
		if attempt == attempts || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			return nil, err
		}
		cfg.Logger.Warn("local: a member port was taken before the member bound it; starting again on other ports", "attempt", attempt, "err", err)
		for i := range cfg.Size {
			if err := os.RemoveAll(rundir.MemberData(cfg.Dir, memberName(i))); err != nil {
				return nil, fmt.Errorf("local: clear data of a failed start: %w", err)
			}
		}
	}
}

// errPortTaken is wrapped by start when a member exited because one of its
// ports was in use.
var errPortTaken = errors.New("member port taken")

func memberName(i int) string { return "n" + strconv.Itoa(i+1) }

// newCluster makes one attempt at starting the cluster, on ports from rng.
func newCluster(ctx context.Context, cfg Config, binary string, rng *rand.Rand, sec *security, disk *lazyfs.FS) (*Cluster, error) {
	// Member ports are picked below the kernel's ephemeral range, so that
	// neither the proxies' ":0" listeners nor any outgoing connection's
	// source port can take one between the pick and the member's bind.
	ports, err := reservePorts(cfg.Host, 2*cfg.Size, rng)
	if err != nil {
		return nil, err
	}
	names := make([]string, cfg.Size)
	members := make([]faultproxy.Member, cfg.Size)
	for i := range names {
		names[i] = memberName(i)
		members[i] = faultproxy.Member{
			Name:   names[i],
			Listen: net.JoinHostPort(cfg.Host, "0"),
			Target: net.JoinHostPort(cfg.Host, strconv.Itoa(ports.ports[2*i+1])),
		}
	}
	pcfg := faultproxy.Config{Members: members, Seed: cfg.Seed, Logger: cfg.Logger}
	scheme := "http"
	c := &Cluster{cfg: cfg, ports: ports}
	if sec != nil {
		pcfg.TLS, scheme, c.tls = sec.proxy, "https", sec.client
	}
	nw, err := faultproxy.New(pcfg)
	if err != nil {
		ports.release()
		return nil, fmt.Errorf("local: fault proxies: %w", err)
	}
	c.net = nw
	initial := make([]string, cfg.Size)
	for i, name := range names {
		initial[i] = name + "=" + nw.URL(name)
	}
	for i, name := range names {
		n := &Node{
			name:          name,
			clientURL:     scheme + "://" + net.JoinHostPort(cfg.Host, strconv.Itoa(ports.ports[2*i])),
			peerURL:       nw.URL(name),
			listenPeerURL: scheme + "://" + members[i].Target,
			dataDir:       rundir.MemberData(cfg.Dir, name),
			logPath:       rundir.MemberLog(cfg.Dir, name),
			binary:        binary,
			env:           append([]string(nil), cfg.Env...),
			grace:         cfg.StopGrace,
			log:           cfg.Logger,
		}
		n.flags = memberFlags(cfg, n, strings.Join(initial, ","), sec)
		n.args = n.flags.Args()
		n.net = nw
		c.nodes = append(c.nodes, n)
	}
	if err := c.start(ctx); err != nil {
		c.Close(ctx)
		return nil, err
	}
	// Only now: a failed attempt's Close must leave the mount to the next.
	c.disk = disk
	return c, nil
}

func memberFlags(cfg Config, n *Node, initialCluster string, sec *security) cluster.MemberFlags {
	f := cfg.Flags()
	if sec != nil {
		f.TLS = sec.files.TLSFlags(n.name, sec.files.Dir)
	}
	f.Name, f.DataDir = n.name, n.dataDir
	f.ListenClientURL, f.AdvertiseClientURL = n.clientURL, n.clientURL
	f.ListenPeerURL, f.AdvertisePeerURL = n.listenPeerURL, n.peerURL
	f.InitialCluster, f.ClusterToken = initialCluster, cfg.ClusterToken
	return f
}

// start launches every member at once (a member may not listen before its
// peers are up) and waits for health, failing fast if a member exits.
func (c *Cluster) start(ctx context.Context) error {
	for _, n := range c.nodes {
		if _, err := n.launch(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		for _, n := range c.nodes {
			if p := n.proc.Load(); p.hasExited() {
				err := n.exitError(p)
				if strings.Contains(LogTail(n.logPath, 20), "address already in use") {
					err = fmt.Errorf("%w: %w", errPortTaken, err)
				}
				return err
			}
		}
		sts := cluster.Statuses(ctx, c, cluster.WithRequestTimeout(time.Second))
		if last = cluster.CheckHealthy(sts); last == nil {
			for _, s := range sts {
				c.net.SetMemberID(s.Node.Name(), s.MemberID)
			}
			c.cfg.Logger.Info("cluster healthy", "endpoints", c.Endpoints(), "dir", c.cfg.Dir)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: cluster in %s not healthy: %w (last check: %v)", c.cfg.Dir, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// security is a TLS cluster's certificates and the configurations made
// from them, made once per New (every start attempt uses them).
type security struct {
	files  cluster.TLSFiles
	proxy  *faultproxy.TLS
	client *tls.Config
}

// makeSecurity makes a fresh CA and certificates in Dir/certs for the
// members n1..nSize, valid for cfg.Host and localhost (the members, the
// proxies and the clients are all reached at cfg.Host).
func makeSecurity(cfg Config) (*security, error) {
	names := make([]string, cfg.Size)
	for i := range names {
		names[i] = memberName(i)
	}
	files, err := cluster.MakeTLS(filepath.Join(cfg.Dir, rundir.CertsDir), names, []string{cfg.Host, "localhost"})
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	roots, err := files.Roots()
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	pt := &faultproxy.TLS{Roots: roots, Certs: make(map[string]tls.Certificate, len(names))}
	for _, name := range names {
		if pt.Certs[name], err = tls.LoadX509KeyPair(files.MemberCert(name), files.MemberKey(name)); err != nil {
			return nil, fmt.Errorf("local: member certificate: %w", err)
		}
	}
	client, err := files.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return &security{files: files, proxy: pt, client: client}, nil
}

// ClientTLS is the clients' TLS configuration (cluster.TLSCluster), nil
// for a plaintext cluster. Callers must not modify it.
func (c *Cluster) ClientTLS() *tls.Config { return c.tls }

// Nodes returns the nodes in name order; the slice is the caller's.
func (c *Cluster) Nodes() []cluster.Node { return c.nodes.Nodes() }

// Node returns the named node.
func (c *Cluster) Node(name string) (cluster.Node, bool) { return c.nodes.Node(name) }

// LocalNode returns the named node with its backend-specific methods, or nil.
func (c *Cluster) LocalNode(name string) *Node {
	n, _ := c.nodes.Get(name)
	return n
}

// Endpoints returns every node's client URL in node order.
func (c *Cluster) Endpoints() []string { return c.nodes.Endpoints() }

// Dir is the run directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Partition cuts exactly the given links (see cluster.Partitioner).
func (c *Cluster) Partition(ctx context.Context, cut []cluster.Link) error {
	links, err := cluster.ValidateLinks(c, cut)
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	return c.net.Partition(links)
}

// Heal restores every link.
func (c *Cluster) Heal(ctx context.Context) error { return c.net.Heal() }

// SetLatency delays the given links (see cluster.LinkShaper).
func (c *Cluster) SetLatency(ctx context.Context, links []cluster.Link, delay, jitter time.Duration) error {
	ls, err := cluster.ValidateLinks(c, links)
	if err != nil {
		return fmt.Errorf("set latency: %w", err)
	}
	return c.net.SetLatency(ls, delay, jitter)
}

// LinkStats returns the fault proxies' byte counters per directed link (see
// faultproxy.Network.Stats); the map is the caller's.
func (c *Cluster) LinkStats() map[cluster.DirectedLink]faultproxy.LinkStats {
	return c.net.Stats()
}

// Close resumes paused members, stops all members (SIGTERM, then SIGKILL
// after the grace period, or at once if ctx is done; the followers first,
// then the leaders, as cluster.StopOrder says), heals and closes the
// proxies. Idempotent; logs and data stay in the run directory.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		var errs []error
		var mu sync.Mutex
		for _, resume := range c.nodes {
			if resume.State() == cluster.Paused {
				resume.Resume(ctx)
			}
		}
		first, last := cluster.StopOrder(ctx, c, time.Second)
		for _, group := range [][]cluster.Node{first, last} {
			var wg sync.WaitGroup
			for _, n := range group {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := n.Stop(ctx)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		unmountDisk(c.disk, c.cfg)
		c.net.Heal()
		errs = append(errs, c.net.Close())
		c.ports.release()
		c.closeErr = errors.Join(errs...)
		c.cfg.Logger.Info("cluster closed", "dir", c.cfg.Dir, "err", c.closeErr)
	})
	return c.closeErr
}

// BuildQuorumd builds github.com/quorum-kv/quorum/cmd/quorumd into outDir
// with the go command on PATH and returns the binary's absolute path. It
// must run inside the quorum module (the working directory, as in tests).
func BuildQuorumd(ctx context.Context, outDir string) (string, error) {
	out, err := filepath.Abs(filepath.Join(outDir, "quorumd"))
	if err != nil {
		return "", fmt.Errorf("build quorumd: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/quorum-kv/quorum/cmd/quorumd")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build quorumd: %w\n%s", err, b)
	}
	return out, nil
}
