package docker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/rundir"
)

// Ports inside every member's container (etcd's).
const (
	ClientPort = 2379
	PeerPort   = 2380
	dataDir    = "/data"
	// certDir is where a TLS member finds its certificates (copied in
	// before its container starts; see copyCerts).
	certDir = "/certs"
)

// Cluster is a set of member containers on the run's own network.
type Cluster struct {
	cfg     Config
	eng     *Engine
	netName string
	labels  map[string]string
	nodes   cluster.Members[*Node]
	// certs are a TLS cluster's certificates on the host (Dir/certs) and
	// tls its clients' configuration; both zero for a plaintext cluster.
	certs cluster.TLSFiles
	tls   *tls.Config

	// life is cancelled by Close; member exit watchers run under it.
	life   context.Context
	cancel context.CancelFunc

	faultMu   sync.Mutex // serializes rule changes; guards cut
	cut       []cluster.Link
	netFaults error // why partitions cannot be applied; nil if they can
	netem     error // why the kernel cannot shape links; nil if it can

	closeOnce sync.Once
	closeErr  error
}

var (
	_ cluster.Cluster     = (*Cluster)(nil)
	_ cluster.Partitioner = (*Cluster)(nil)
	_ cluster.TLSCluster  = (*Cluster)(nil)
)

// New creates the run's network (a bridge with a fixed subnet chosen by the
// engine), one volume and one container per member, starts every member with
// etcd's flags
//
//	--name nK --data-dir /data/member
//	--listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://IP:2379   (https with TLS)
//	--listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls http://IP:2380
//	--initial-cluster n1=http://IP1:2380,... --initial-cluster-token --initial-cluster-state new
//	[--heartbeat-interval --election-timeout --snapshot-count] ExtraArgs...
//
// and waits (up to cfg.StartTimeout, or ctx) until every member answers and
// they agree on a leader. With cfg.Server.TLS the URLs are https, a fresh CA
// and certificates are made in Dir/certs (SANs: n1..nN, the member IPs,
// 127.0.0.1 and localhost), each member's own certificate, key and the CA
// are copied into its container under /certs before it starts, etcd's TLS
// flags point there (cluster.TLSFiles.TLSFlags), and the Cluster's
// ClientTLS presents the client certificate. Member IPs are fixed for the run, so peers' URLs
// and partition rules survive restarts. It never pulls: cfg.Server.Image must be
// present (EnsureImage builds one). On any error every resource of the run
// is removed again, and the error carries the failing member's log tail.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, rundir.LogsDir), 0o755); err != nil {
		return nil, fmt.Errorf("docker: create run directory: %w", err)
	}
	eng := cfg.Engine
	if ok, err := eng.HasImage(ctx, cfg.Server.Image); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("docker: image %s is not in the engine; nothing is ever pulled: build or load it first (docker images lists what is there)", cfg.Server.Image)
	}
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Cluster{
		cfg: cfg, eng: eng, life: life, cancel: cancel,
		netName: "quorum-" + cfg.RunID,
		labels:  map[string]string{LabelRun: cfg.RunID, LabelOwner: eng.owner},
	}
	// Known before the members start, so an empty cut set is not even
	// attempted without privileges; probe completes the verdict.
	c.netFaults = checkCapabilities()
	if err := c.create(ctx); err != nil {
		c.Close(ctx)
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.Close(ctx)
		return nil, err
	}
	c.probe(ctx)
	return c, nil
}

// create makes the network, the volumes and the (stopped) containers.
func (c *Cluster) create(ctx context.Context) error {
	subnet, gw, err := c.createNetwork(ctx)
	if err != nil {
		return err
	}
	scheme := cluster.Scheme(c.cfg.Server.TLS)
	ips := make([]netip.Addr, c.cfg.Size)
	initial := make([]string, c.cfg.Size)
	for i := range ips {
		ip := subnet.Addr()
		for range 10 + i {
			ip = ip.Next()
		}
		if !subnet.Contains(ip) || ip == gw {
			return fmt.Errorf("docker: subnet %s of network %s has no room for %d members", subnet, c.netName, c.cfg.Size)
		}
		ips[i] = ip
		initial[i] = fmt.Sprintf("n%d=%s://%s", i+1, scheme, netip.AddrPortFrom(ip, PeerPort))
	}
	if c.cfg.Server.TLS {
		if err := c.makeTLS(ips); err != nil {
			return err
		}
	}
	for i, ip := range ips {
		name := "n" + strconv.Itoa(i+1)
		n := &Node{
			c:         c,
			name:      name,
			ip:        ip,
			clientURL: scheme + "://" + netip.AddrPortFrom(ip, ClientPort).String(),
			peerURL:   scheme + "://" + netip.AddrPortFrom(ip, PeerPort).String(),
			container: "quorum-" + c.cfg.RunID + "-" + name,
			volume:    "quorum-" + c.cfg.RunID + "-" + name,
			logPath:   rundir.MemberLog(c.cfg.Dir, name),
		}
		n.flags = c.memberFlags(n, strings.Join(initial, ","))
		n.args = n.flags.Args()
		c.nodes = append(c.nodes, n)
		if err := n.createContainer(ctx); err != nil {
			return err
		}
	}
	return nil
}

// createNetwork creates the run's bridge network with a subnet of the
// engine's choosing, then recreates it with that subnet spelled out (Docker
// only assigns fixed container IPs on user-configured subnets).
//
// Like createContainer, it waits out the engine's answers rather than
// abandoning them on cancel (see creating), and checks ctx at the end.
func (c *Cluster) createNetwork(ctx context.Context) (netip.Prefix, netip.Addr, error) {
	caller := ctx
	ctx, cancel := creating(ctx)
	defer cancel()
	cli := c.eng.cli
	opts := client.NetworkCreateOptions{Driver: "bridge", Labels: c.labels}
	if _, err := cli.NetworkCreate(ctx, c.netName, opts); err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: create network %s: %w", c.netName, err)
	}
	ins, err := cli.NetworkInspect(ctx, c.netName, client.NetworkInspectOptions{})
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: inspect network %s: %w", c.netName, err)
	}
	var subnet netip.Prefix
	var gw netip.Addr
	for _, ic := range ins.Network.IPAM.Config {
		if ic.Subnet.Addr().Is4() {
			subnet, gw = ic.Subnet.Masked(), ic.Gateway
			break
		}
	}
	if !subnet.IsValid() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: network %s got no IPv4 subnet", c.netName)
	}
	if _, err := cli.NetworkRemove(ctx, c.netName, client.NetworkRemoveOptions{}); err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: remove network %s: %w", c.netName, err)
	}
	cfg := network.IPAMConfig{Subnet: subnet}
	if gw.IsValid() {
		cfg.Gateway = gw
	}
	opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{cfg}}
	if _, err := cli.NetworkCreate(ctx, c.netName, opts); err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: create network %s on %s: %w", c.netName, subnet, err)
	}
	c.cfg.Logger.Info("network created", "network", c.netName, "subnet", subnet)
	if err := caller.Err(); err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("docker: create network %s: %w", c.netName, err)
	}
	return subnet, gw, nil
}

// makeTLS makes the run's CA and certificates in Dir/certs, valid for every
// name and address a member is reached at: its hostname and network alias
// (n1..nN), its fixed IP on the run's network (peers and the harness's
// clients dial these), and 127.0.0.1/localhost (the backend publishes no
// ports today, but a client on the host going through a mapped port would
// use them).
func (c *Cluster) makeTLS(ips []netip.Addr) error {
	names := make([]string, c.cfg.Size)
	hosts := []string{"127.0.0.1", "localhost"}
	for i, ip := range ips {
		names[i] = "n" + strconv.Itoa(i+1)
		hosts = append(hosts, names[i], ip.String())
	}
	files, err := cluster.MakeTLS(filepath.Join(c.cfg.Dir, rundir.CertsDir), names, hosts)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	cc, err := files.ClientConfig()
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	c.certs, c.tls = files, cc
	return nil
}

// ClientTLS is the clients' TLS configuration (cluster.TLSCluster): it
// trusts the run's CA and presents its client certificate; nil for a
// plaintext cluster. Callers must not modify it.
func (c *Cluster) ClientTLS() *tls.Config { return c.tls }

func (c *Cluster) memberFlags(n *Node, initialCluster string) cluster.MemberFlags {
	f := c.cfg.Flags()
	scheme := cluster.Scheme(c.cfg.Server.TLS)
	if c.cfg.Server.TLS {
		f.TLS = c.certs.TLSFlags(n.name, certDir)
	}
	f.Name, f.DataDir = n.name, dataDir+"/member"
	f.ListenClientURL, f.AdvertiseClientURL = fmt.Sprintf("%s://0.0.0.0:%d", scheme, ClientPort), n.clientURL
	f.ListenPeerURL, f.AdvertisePeerURL = fmt.Sprintf("%s://0.0.0.0:%d", scheme, PeerPort), n.peerURL
	f.InitialCluster, f.ClusterToken = initialCluster, c.cfg.ClusterToken
	return f
}

// containerRequest is the testcontainers request for n's container.
func (c *Cluster) containerRequest(n *Node) testcontainers.ContainerRequest {
	env := make(map[string]string, len(c.cfg.Env))
	for _, kv := range c.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	labels := make(map[string]string, len(c.labels)+1)
	for k, v := range c.labels {
		labels[k] = v
	}
	labels["io.quorum-kv.member"] = n.name
	return testcontainers.ContainerRequest{
		Image:          c.cfg.Server.Image,
		Name:           n.container,
		Cmd:            n.args,
		Env:            env,
		Labels:         labels,
		Networks:       []string{c.netName},
		NetworkAliases: map[string][]string{c.netName: {n.name}},
		ConfigModifier: func(cc *container.Config) { cc.Hostname = n.name },
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: n.volume, Target: dataDir}}
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
		},
		EndpointSettingsModifier: func(m map[string]*network.EndpointSettings) {
			if es, ok := m[c.netName]; ok {
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.ip}
			}
		},
	}
}

// start starts every member at once and waits for health, failing fast if
// a member exits.
func (c *Cluster) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		for _, n := range c.nodes {
			if n.State() == cluster.Stopped {
				return n.exitError(ctx)
			}
		}
		if last = cluster.CheckHealthy(cluster.Statuses(ctx, c, cluster.WithRequestTimeout(time.Second))); last == nil {
			c.cfg.Logger.Info("cluster healthy", "endpoints", c.Endpoints(), "network", c.netName)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: cluster %s not healthy: %w (last check: %v)", c.netName, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Nodes returns the nodes in name order; the slice is the caller's.
func (c *Cluster) Nodes() []cluster.Node { return c.nodes.Nodes() }

// Node returns the named node.
func (c *Cluster) Node(name string) (cluster.Node, bool) { return c.nodes.Node(name) }

// DockerNode returns the named node with its backend-specific methods, or nil.
func (c *Cluster) DockerNode(name string) *Node {
	n, _ := c.nodes.Get(name)
	return n
}

// Endpoints returns every node's client URL in node order.
func (c *Cluster) Endpoints() []string { return c.nodes.Endpoints() }

// Network is the name of the run's Docker network.
func (c *Cluster) Network() string { return c.netName }

// RunID is the run id every resource is labelled with.
func (c *Cluster) RunID() string { return c.cfg.RunID }

// NetFaults returns nil if partitions can be applied, or why not (missing
// privileges, an engine on another host). It is decided once, in New.
func (c *Cluster) NetFaults() error { return c.netFaults }

// Netem returns nil if the kernel can shape links with netem, or why not.
// The Cluster implements no latency faults either way (see the package doc).
func (c *Cluster) Netem() error { return c.netem }

// Close resumes paused members, stops all members (SIGTERM, then SIGKILL
// after the grace period, or at once if ctx is done; the followers first,
// then the leaders, as cluster.StopOrder says), copies their logs to
// the run directory, then removes every container, volume and the network
// of the run. Idempotent; it does its work even when ctx is already done.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		var errs []error
		var mu sync.Mutex
		for _, resume := range c.nodes {
			if resume.State() == cluster.Paused {
				resume.Resume(ctx)
			}
		}
		byName := map[string]*Node{}
		for _, n := range c.nodes {
			byName[n.Name()] = n
		}
		first, last := cluster.StopOrder(ctx, c, time.Second)
		for _, group := range [][]cluster.Node{first, last} {
			var wg sync.WaitGroup
			for _, cn := range group {
				n := byName[cn.Name()]
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := n.Stop(ctx)
					if err != nil && ctx.Err() != nil {
						err = n.Kill(context.WithoutCancel(ctx))
					}
					n.saveLogs(context.WithoutCancel(ctx))
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		errs = append(errs, c.eng.RemoveRun(rctx, c.cfg.RunID))
		c.cancel()
		c.closeErr = errors.Join(errs...)
		c.cfg.Logger.Info("cluster closed", "run", c.cfg.RunID, "dir", c.cfg.Dir, "err", c.closeErr)
	})
	return c.closeErr
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
