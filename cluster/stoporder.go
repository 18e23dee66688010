package cluster

import (
	"context"
	"time"
)

// StopOrder splits c's nodes into the order a whole-cluster stop should
// take them: first every node that no answering node names as leader,
// then the leaders. A member stopped gracefully while it leads tries to
// hand leadership over first (etcd's TransferLeadership, bounded by its
// request timeout, 7 s with the default election timeout); with every
// member stopping at once there is nobody to hand over to, and each stop
// of a cluster waited that long. With the followers already gone the
// leader sees no connected peer and stops at once. Nodes that are not
// Running (and so answer no Status) are in the first group; when no node
// answers within timeout every node is in the first group.
func StopOrder(ctx context.Context, c Cluster, timeout time.Duration) (first, last []Node) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return SplitLeaders(c.Nodes(), Statuses(ctx, c, WithRequestTimeout(timeout)))
}

// SplitLeaders is StopOrder's pure core: nodes in their order, the ones
// whose member ID some answering status reports as leader last.
func SplitLeaders(nodes []Node, sts []MemberStatus) (first, last []Node) {
	leaders := map[uint64]bool{}
	ids := map[Node]uint64{}
	for _, s := range sts {
		if s.Err != nil {
			continue
		}
		ids[s.Node] = s.MemberID
		if s.Leader != 0 {
			leaders[s.Leader] = true
		}
	}
	for _, n := range nodes {
		if id, ok := ids[n]; ok && leaders[id] {
			last = append(last, n)
		} else {
			first = append(first, n)
		}
	}
	return first, last
}
