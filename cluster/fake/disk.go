package fake

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/quorum-kv/quorum/cluster"
)

var (
	_ cluster.DiskFaulter = (*Cluster)(nil)
	_ cluster.DataDirer   = (*Node)(nil)
)

// SetDataDirs gives every node a data directory root/<name> (not created),
// for nemeses that damage files there.
func (c *Cluster) SetDataDirs(root string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.dir = filepath.Join(root, n.name)
	}
}

// DataDir is the directory SetDataDirs gave the node ("" before).
func (n *Node) DataDir() string {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.dir
}

// LoseUnsynced records the call; the node must be stopped, as the real
// backends require.
func (c *Cluster) LoseUnsynced(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	node, ok := c.nodes.Node(name)
	var n *Node
	if ok {
		n = node.(*Node)
	}
	switch {
	case !ok:
		err = fmt.Errorf("lose unsynced: %w %q", cluster.ErrUnknownNode, name)
	case n.state != cluster.Stopped:
		err = fmt.Errorf("lose unsynced writes of %s: it is %v", name, n.state)
	default:
		err = c.refuse(ctx, "lose-unsynced", name)
	}
	return "nothing (fake)", c.record(Call{Op: "lose-unsynced", Node: name, Err: err})
}
