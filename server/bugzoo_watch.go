package server

import (
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

// zooEvents counts the watch events sent, for bugzoo.DropWatchEvent.
var zooEvents atomic.Uint64

// zooWatchSend sends wr with the planted watch bug: one event in
// bugzoo.DropEvery dropped, or a revision's events split across two
// responses. Only reached in a -tags bugzoo build with one of those bugs
// planted.
func zooWatchSend(wr *pb.WatchResponse, send func(*pb.WatchResponse) error) error {
	if bugzoo.Enabled(bugzoo.DropWatchEvent) && len(wr.Events) > 0 {
		kept := make([]*mvccpb.Event, 0, len(wr.Events))
		for _, ev := range wr.Events {
			if zooEvents.Add(1)%bugzoo.DropEvery != 0 {
				kept = append(kept, ev)
			}
		}
		c := *wr
		c.Events = kept
		if len(kept) == 0 {
			return nil
		}
		return send(&c)
	}
	if bugzoo.Enabled(bugzoo.SplitWatchRevision) && len(wr.Events) >= 2 &&
		wr.Events[0].Kv.ModRevision == wr.Events[1].Kv.ModRevision {
		first, rest := *wr, *wr
		first.Events, rest.Events = wr.Events[:1], wr.Events[1:]
		if err := send(&first); err != nil {
			return err
		}
		return send(&rest)
	}
	return send(wr)
}
