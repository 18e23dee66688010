package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// memberKind is what a membership nemesis does.
type memberKind int

const (
	// memberReplace removes one member, wipes it and adds it back at once.
	memberReplace memberKind = iota
	// memberReplaceLearner is memberReplace adding it back as a learner,
	// promoted once it has caught up.
	memberReplaceLearner
	// memberShrink removes a minority, which stays out until Heal adds
	// it back (grows the cluster to its launch size).
	memberShrink
)

var memberNames = map[memberKind]string{
	memberReplace:        "member-replace",
	memberReplaceLearner: "member-replace-learner",
	memberShrink:         "member-shrink",
}

// memberNemesis changes the cluster's membership through etcd's Cluster
// API, as an operator does: MemberRemove asked of a surviving member, the
// removed node stopped and wiped, then MemberAdd with the same peer URL
// (the member gets a new ID) and the node started with
// --initial-cluster-state existing and the --initial-cluster the add's
// answer implies (cluster.Joiner, cluster.InitialCluster), and a wait for
// a healthy cluster. Its nodes need cluster.Joiner.
//
// member-replace and member-replace-learner do the whole replacement in
// Apply; their Heal only finishes a replacement that Apply left half done.
// member-shrink removes (n-1)/2 members in Apply (a 5-member cluster runs
// on 3, a 3-member one on 2) and Heal adds them back one at a time.
type memberNemesis struct {
	kind memberKind
	opts Options
}

var (
	_ Nemesis   = (*memberNemesis)(nil)
	_ Planner   = (*memberNemesis)(nil)
	_ Describer = (*memberNemesis)(nil)
)

func (m *memberNemesis) Name() string { return memberNames[m.kind] }

func (m *memberNemesis) minNodes() (int, string) {
	return 3, "a majority must stay up while a member is out"
}

// Check refuses a cluster smaller than 3 and nodes that cannot join a
// running cluster.
func (m *memberNemesis) Check(c cluster.Cluster) error {
	if err := needNodes(m, c); err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if _, ok := n.(cluster.Joiner); !ok {
			return fmt.Errorf("nemesis %s needs nodes that can be started as a member added to a running cluster (cluster.Joiner); node %s (%T) cannot", m.Name(), n.Name(), n)
		}
	}
	return nil
}

// Plan picks one random member (member-replace*) or (n-1)/2 of them
// (member-shrink); the Note says whether the leader is among them.
func (m *memberNemesis) Plan(ctx context.Context, c cluster.Cluster) (Fault, error) {
	if err := m.Check(c); err != nil {
		return Fault{}, err
	}
	names := nodeNames(c)
	k := 1
	if m.kind == memberShrink {
		k = minority(len(names))
	}
	targets := pick(names, k, m.opts.Rand)
	var note string
	lctx, cancel := context.WithTimeout(ctx, m.opts.LeaderTimeout)
	l, err := cluster.Leader(lctx, c)
	cancel()
	switch {
	case err != nil:
		note = fmt.Sprintf("leader unknown: %v", err)
	case slices.Contains(targets, l.Name()):
		note = "the leader " + l.Name() + " among them"
	default:
		note = "leader " + l.Name() + " not among them"
	}
	f := Fault{Nemesis: m.Name(), Targets: targets, Note: note}
	if m.kind == memberShrink {
		// A replacement is over when Apply returns (the Schedule records
		// the fault from then on); removed members stay out until Heal.
		f.Down = targets
	}
	return f, nil
}

func (m *memberNemesis) Apply(ctx context.Context, c cluster.Cluster, f Fault) error {
	_, err := m.ApplyAndDescribe(ctx, c, f)
	return err
}

// ApplyAndDescribe removes each target (member-shrink), or replaces it
// (member-replace*), stopping at the first failure; the Note gains what
// was done (old and new member IDs).
func (m *memberNemesis) ApplyAndDescribe(ctx context.Context, c cluster.Cluster, f Fault) (Fault, error) {
	var done []string
	describe := func() Fault {
		if len(done) > 0 {
			f.Note = strings.TrimPrefix(f.Note+"; "+strings.Join(done, "; "), "; ")
		}
		return f
	}
	for _, name := range f.Targets {
		id, err := m.remove(ctx, c, name)
		if id != 0 {
			done = append(done, fmt.Sprintf("removed %s (%x)", name, id))
		}
		if err != nil {
			return describe(), err
		}
		if m.kind == memberShrink {
			continue
		}
		nid, err := m.add(ctx, c, name, m.kind == memberReplaceLearner)
		if nid != 0 {
			done[len(done)-1] += fmt.Sprintf(", added back as %x", nid)
		}
		if err != nil {
			return describe(), err
		}
	}
	return describe(), nil
}

// retryUnhealthy calls op until it succeeds, fails otherwise than with
// etcd's "unhealthy cluster" or MemberTimeout passes. etcd's strict
// reconfiguration check refuses MemberAdd and MemberRemove while a member
// needed for the quorum after the change has not been connected for 5
// seconds (etcdserver's HealthInterval) — right after a start or an
// earlier change — and an operator's script waits and tries again.
func (m *memberNemesis) retryUnhealthy(ctx context.Context, op func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, m.opts.MemberTimeout)
	defer cancel()
	for {
		err := op(rctx)
		if err == nil || !cluster.IsUnhealthyCluster(err) {
			return err
		}
		select {
		case <-rctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("still refused when the nemesis had to stop (%w): %w", ctx.Err(), err)
			}
			return fmt.Errorf("still refused after %v: %w", m.opts.MemberTimeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (m *memberNemesis) Inject(ctx context.Context, c cluster.Cluster) (Fault, error) {
	f, err := m.Plan(ctx, c)
	if err != nil {
		return f, err
	}
	return m.ApplyAndDescribe(ctx, c, f)
}

// Heal brings back every target that is not a healthy voting member:
// whatever step a replacement or a shrink stopped at (removed but still
// running, removed and stopped, added but not started, a learner not
// promoted, or stopped), it finishes the re-add. A fully restored target
// is left alone, so Heal after a complete replacement does nothing but
// check the list.
func (m *memberNemesis) Heal(ctx context.Context, c cluster.Cluster, f Fault) error {
	var errs []error
	for _, name := range f.Targets {
		if err := m.restore(ctx, c, name); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// joiner returns the named node as a cluster.Joiner.
func joiner(c cluster.Cluster, name string) (cluster.Joiner, error) {
	n, ok := c.Node(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", cluster.ErrUnknownNode, name)
	}
	j, ok := n.(cluster.Joiner)
	if !ok {
		return nil, fmt.Errorf("node %s (%T) cannot join a running cluster", name, n)
	}
	return j, nil
}

// remove removes name's member through another member, then stops and
// wipes the node; it returns the removed member's ID.
func (m *memberNemesis) remove(ctx context.Context, c cluster.Cluster, name string) (uint64, error) {
	n, err := joiner(c, name)
	if err != nil {
		return 0, err
	}
	api, err := cluster.OpenMembership(ctx, c, name)
	if err != nil {
		return 0, err
	}
	defer api.Close()
	ms, err := api.List(ctx)
	if err != nil {
		return 0, err
	}
	mem, ok := cluster.MemberByPeerURL(ms, n.PeerURL())
	if !ok {
		return 0, fmt.Errorf("remove %s: no member advertises its peer URL %s", name, n.PeerURL())
	}
	if err := m.retryUnhealthy(ctx, func(ctx context.Context) error { return api.Remove(ctx, mem.ID) }); err != nil {
		return 0, fmt.Errorf("remove %s: %w", name, err)
	}
	// A removed etcd member stops by itself; Stop is a no-op then.
	if err := n.Stop(ctx); err != nil {
		return mem.ID, fmt.Errorf("stop removed member %s: %w", name, err)
	}
	if err := n.Wipe(ctx); err != nil {
		return mem.ID, fmt.Errorf("wipe removed member %s: %w", name, err)
	}
	return mem.ID, nil
}

// add adds the stopped, wiped node name back with its peer URL, starts it
// as a member of the running cluster, promotes it if added as a learner,
// and waits for a healthy cluster. It returns the new member ID.
func (m *memberNemesis) add(ctx context.Context, c cluster.Cluster, name string, learner bool) (uint64, error) {
	n, err := joiner(c, name)
	if err != nil {
		return 0, err
	}
	api, err := cluster.OpenMembership(ctx, c, name)
	if err != nil {
		return 0, err
	}
	defer api.Close()
	added, ms, err := m.addMember(ctx, api, n.PeerURL(), learner)
	if err != nil {
		return 0, fmt.Errorf("add %s back: %w", name, err)
	}
	if err := m.join(ctx, c, api, n, added, ms); err != nil {
		return added.ID, err
	}
	return added.ID, nil
}

// addMember is MemberAdd, retried while etcd finds the cluster unhealthy.
func (m *memberNemesis) addMember(ctx context.Context, api cluster.Membership, peerURL string, learner bool) (added cluster.Member, ms []cluster.Member, err error) {
	err = m.retryUnhealthy(ctx, func(ctx context.Context) error {
		var err error
		added, ms, err = api.Add(ctx, peerURL, learner)
		return err
	})
	return added, ms, err
}

// join starts n as the added member, promotes it if it is a learner and
// waits for a healthy cluster, each wait bounded by MemberTimeout.
func (m *memberNemesis) join(ctx context.Context, c cluster.Cluster, api cluster.Membership, n cluster.Joiner, added cluster.Member, ms []cluster.Member) error {
	j := cluster.Join{MemberID: added.ID, InitialCluster: cluster.InitialCluster(n.Name(), added, ms)}
	if err := n.Join(ctx, j); err != nil {
		return fmt.Errorf("start %s as member %x with --initial-cluster %s: %w", n.Name(), added.ID, j.InitialCluster, err)
	}
	if added.Learner {
		if err := m.promote(ctx, api, n.Name(), added.ID); err != nil {
			return err
		}
	}
	hctx, cancel := context.WithTimeout(ctx, m.opts.MemberTimeout)
	defer cancel()
	if err := cluster.WaitHealthy(hctx, c); err != nil {
		return fmt.Errorf("after adding %s back: %w", n.Name(), err)
	}
	return nil
}

// promote retries MemberPromote while etcd answers that the learner is
// not in sync with the leader yet, up to MemberTimeout.
func (m *memberNemesis) promote(ctx context.Context, api cluster.Membership, name string, id uint64) error {
	pctx, cancel := context.WithTimeout(ctx, m.opts.MemberTimeout)
	defer cancel()
	for {
		err := api.Promote(pctx, id)
		if err == nil {
			return nil
		}
		if !cluster.IsLearnerNotReady(err) {
			return fmt.Errorf("promote learner %s: %w", name, err)
		}
		select {
		case <-pctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("promote learner %s: not in sync with the leader when the nemesis had to stop (%w): %w", name, ctx.Err(), err)
			}
			return fmt.Errorf("promote learner %s: not in sync with the leader within %v: %w", name, m.opts.MemberTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// restore makes name a running voting member again, from whatever state
// a partial Apply (or a shrink) left it in.
func (m *memberNemesis) restore(ctx context.Context, c cluster.Cluster, name string) error {
	n, err := joiner(c, name)
	if err != nil {
		return err
	}
	api, err := cluster.OpenMembership(ctx, c, name)
	if err != nil {
		return err
	}
	defer api.Close()
	ms, err := api.List(ctx)
	if err != nil {
		return err
	}
	mem, listed := cluster.MemberByPeerURL(ms, n.PeerURL())
	switch {
	case !listed:
		// Removed (and maybe stopped and wiped): add it back.
		if err := n.Stop(ctx); err != nil {
			return fmt.Errorf("stop removed member: %w", err)
		}
		if err := n.Wipe(ctx); err != nil {
			return fmt.Errorf("wipe removed member: %w", err)
		}
		added, ms, err := m.addMember(ctx, api, n.PeerURL(), false)
		if err != nil {
			return fmt.Errorf("add back: %w", err)
		}
		return m.join(ctx, c, api, n, added, ms)
	case n.State() == cluster.Stopped && mem.Name == "":
		// Added, never started as that member.
		if err := n.Wipe(ctx); err != nil {
			return fmt.Errorf("wipe before joining: %w", err)
		}
		return m.join(ctx, c, api, n, mem, ms)
	case n.State() == cluster.Stopped:
		if err := n.Start(ctx); err != nil {
			return err
		}
	case n.State() == cluster.Paused:
		if err := n.Resume(ctx); err != nil {
			return err
		}
	}
	if mem.Learner {
		if err := m.promote(ctx, api, name, mem.ID); err != nil {
			return err
		}
	}
	hctx, cancel := context.WithTimeout(ctx, m.opts.MemberTimeout)
	defer cancel()
	return cluster.WaitHealthy(hctx, c)
}
