package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/quorum-kv/quorum/cluster"
)

// TableName is the nftables table (family inet) the Cluster owns in every
// member's network namespace. Nothing else there is ever touched.
const TableName = "quorum"

// Partition cuts exactly the given links (see cluster.Partitioner): in each
// member's namespace, an input rule drops packets whose source is a peer
// across a cut link, so traffic on a cut link is lost in both directions
// (and silently: nothing is refused). Members that are stopped get their
// rules when they start.
func (c *Cluster) Partition(ctx context.Context, cut []cluster.Link) error {
	links, err := cluster.ValidateLinks(c, cut)
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if c.netFaults != nil && len(links) > 0 {
		return fmt.Errorf("partition: %w", c.netFaults)
	}
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	c.cut = links
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, c.applyLocked(n, false))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partition %v: %w", links, err)
	}
	c.cfg.Logger.Info("partition applied", "cut", links)
	return nil
}

// Heal removes the Cluster's table from every member's namespace.
func (c *Cluster) Heal(ctx context.Context) error { return c.Partition(ctx, nil) }

// CutLinks returns the links currently cut; the slice is the caller's.
func (c *Cluster) CutLinks() []cluster.Link {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	return append([]cluster.Link(nil), c.cut...)
}

// applyTo writes the current cut set into n's new namespace (just started).
func (c *Cluster) applyTo(n *Node) error {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	return c.applyLocked(n, true)
}

// applyLocked replaces n's table with drop rules for its peers across cut
// links (no table when there are none). A stopped member is skipped, and
// so is a fresh namespace (clean by construction) with nothing to drop.
// The caller holds faultMu.
func (c *Cluster) applyLocked(n *Node, fresh bool) error {
	pid := n.PID()
	if pid == 0 {
		return nil
	}
	var drops [][]byte
	for _, l := range c.cut {
		if !l.Has(n.name) {
			continue
		}
		peer := l.A
		if peer == n.name {
			peer = l.B
		}
		p := c.DockerNode(peer)
		a := p.ip.As4()
		drops = append(drops, a[:])
	}
	if len(drops) == 0 && (fresh || c.netFaults != nil) {
		return nil // nothing to remove
	}
	err := withMemberNetns(pid, n.containerID(), func(ns netns.NsHandle) error { return replaceTable(ns, drops) })
	if errors.Is(err, os.ErrNotExist) && n.PID() == 0 {
		return nil // exited meanwhile; rules are re-applied when it starts
	}
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	return nil
}

func (n *Node) containerID() string {
	if n.ctr == nil {
		return ""
	}
	return n.ctr.ID
}

// withMemberNetns opens /proc/pid/ns/net, checks that it is a container's
// namespace and not this process's own (a reused pid must not make us write
// rules on the host), and calls f with it.
func withMemberNetns(pid int, containerID string, f func(netns.NsHandle) error) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("open network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	self, err := netns.Get()
	if err != nil {
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer self.Close()
	if ns.Equal(self) {
		return fmt.Errorf("pid %d is in the harness's own network namespace, not a member's: refusing to change its firewall (is the Docker engine on another host?)", pid)
	}
	if containerID != "" {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); err == nil &&
			bytes.Contains(b, []byte("docker")) && !bytes.Contains(b, []byte(containerID)) {
			return fmt.Errorf("pid %d does not belong to container %.12s (its cgroup: %s)", pid, containerID, strings.TrimSpace(string(b)))
		}
	}
	return f(ns)
}

// replaceTable deletes the Cluster's table in ns (if present) and, when
// drops is not empty, creates it again with an input chain dropping IPv4
// packets from each address in drops — all in one atomic transaction.
func replaceTable(ns netns.NsHandle, drops [][]byte) error {
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables connection: %w", privilegeHint(err))
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", privilegeHint(err))
	}
	changed := false
	for _, t := range tables {
		if t.Name == TableName {
			conn.DelTable(t)
			changed = true
		}
	}
	if len(drops) > 0 {
		t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
		accept := nftables.ChainPolicyAccept
		ch := conn.AddChain(&nftables.Chain{
			Name: "input", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept,
		})
		for _, ip := range drops {
			conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
		changed = true
	}
	if !changed {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", TableName, privilegeHint(err))
	}
	return nil
}

// DropCounts returns, for each peer address the member currently drops,
// the number of packets dropped so far (read from the rules' counters).
func (n *Node) DropCounts() (map[string]uint64, error) {
	pid := n.PID()
	if pid == 0 {
		return nil, fmt.Errorf("drop counts of %s: %w (stopped)", n.name, cluster.ErrInvalidState)
	}
	out := map[string]uint64{}
	err := withMemberNetns(pid, n.containerID(), func(ns netns.NsHandle) error {
		conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
		if err != nil {
			return err
		}
		defer conn.CloseLasting()
		t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
		rules, err := conn.GetRules(t, &nftables.Chain{Name: "input", Table: t})
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				return nil
			}
			return err
		}
		for _, r := range rules {
			var ip string
			var count uint64
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Cmp:
					if len(e.Data) == 4 {
						ip = fmt.Sprintf("%d.%d.%d.%d", e.Data[0], e.Data[1], e.Data[2], e.Data[3])
					}
				case *expr.Counter:
					count = e.Packets
				}
			}
			if ip != "" {
				out[ip] = count
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drop counts of %s: %w", n.name, err)
	}
	return out, nil
}

// privilegeHint adds what to do to a permission error.
func privilegeHint(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w (partitions need root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)", err)
	}
	return err
}

// checkCapabilities returns nil if this process has CAP_NET_ADMIN and
// CAP_SYS_ADMIN (needed to enter members' namespaces and change their
// firewall), or an error naming the missing ones.
func checkCapabilities() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("parse CapEff %q: %w", hex, err)
		}
		var missing []string
		if caps&(1<<unix.CAP_NET_ADMIN) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if caps&(1<<unix.CAP_SYS_ADMIN) == 0 {
			missing = append(missing, "CAP_SYS_ADMIN")
		}
		if len(missing) > 0 {
			return fmt.Errorf("partitions need root, or %s, which this process lacks (run as root, e.g. sudo)", strings.Join(missing, " and "))
		}
		return nil
	}
	return errors.New("no CapEff line in /proc/self/status")
}

// probe decides, once, whether partitions can be applied (privileges, an
// engine on this host) and whether the kernel has netem, and says so in
// the log.
func (c *Cluster) probe(ctx context.Context) {
	lg := c.cfg.Logger
	n := c.nodes[0]
	pid := n.PID()
	if c.netFaults == nil {
		c.netFaults = withMemberNetns(pid, n.containerID(), func(ns netns.NsHandle) error {
			if err := replaceTable(ns, [][]byte{{192, 0, 2, 255}}); err != nil {
				return err
			}
			return replaceTable(ns, nil)
		})
		if c.netFaults != nil {
			c.netFaults = fmt.Errorf("cannot write firewall rules in member namespaces: %w", c.netFaults)
		}
	}
	if c.netFaults != nil {
		lg.Warn("docker: partitions unavailable", "reason", c.netFaults)
		c.netem = c.netFaults
		return
	}
	c.netem = withMemberNetns(pid, n.containerID(), probeNetem)
	if c.netem != nil {
		lg.Warn("docker: latency faults unavailable: the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); the latency nemesis is refused", "probe", c.netem)
	} else {
		lg.Warn("docker: the kernel has netem, but this backend implements no latency faults yet; the latency nemesis is refused")
	}
}

// probeNetem adds and removes a netem qdisc on the namespace's loopback.
func probeNetem(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in member namespace: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: netlink.MakeHandle(0x7e57, 0), Parent: netlink.HANDLE_ROOT}, netlink.NetemQdiscAttrs{})
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("add netem qdisc: %w", err)
	}
	if err := h.QdiscDel(q); err != nil {
		return fmt.Errorf("remove probe netem qdisc from lo: %w", err)
	}
	return nil
}
