package server

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Server is one quorumd member, assembled from owned parts:
//
//   - raft (raftNode, raftnode.go): the raft.Node, Raft's in-memory
//     storage, the durable log and snapshots, and the transport; its
//     goroutine is the Raft loop. It publishes the leader, term and commit
//     index in status (status.go).
//   - app (applier, applier.go): the MVCC store, the membership, the
//     applied index and the snapshot policy; its goroutine is the only
//     writer of them and publishes a read view after each batch.
//   - the read loop (read.go): batched ReadIndex rounds for linearizable
//     reads.
//   - front (front.go, front_*.go): the gRPC services and HTTP endpoints,
//     served on lns (listeners.go).
//
// The Server itself proposes requests (propose.go: request IDs from
// reqIDs, results back through wait) and runs the lifecycle: New prepares
// the member (binds every listener, opens or bootstraps the data dir);
// Start runs it; Stop shuts it down, handing leadership over first when it
// is the leader.
type Server struct {
	cfg     Config
	lg      *slog.Logger
	id      uint64
	cid     uint64
	metrics *serverMetrics

	raft      *raftNode
	status    *raftStatus // raft's, published for every goroutine
	app       *applier
	transport Transport
	// peerHandler serves the peer listeners (the stream transport's
	// handler); nil for a member assembled without the network.
	peerHandler http.Handler

	wait   *waitRegistry
	reqIDs *idGenerator

	// The read loop's.
	readwaitc  chan struct{}
	readMu     sync.RWMutex
	readNotify *notifier

	lns   *listeners // nil for a member assembled without the network
	front *front

	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	errc     chan error
}

// New binds the member's listeners and opens its data dir (bootstrapping it
// from the --initial-* settings when empty). It returns an error, never
// exits, when anything is wrong; nothing is served until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	lg := cfg.Logger.With("member", cfg.Name)
	lns, err := listen(&cfg, lg)
	if err != nil {
		return nil, err
	}
	p, err := openDataDir(&cfg, lg)
	if err != nil {
		lns.close()
		return nil, err
	}
	metrics := newServerMetrics()
	tr := newStreamTransport(lg, p.id, p.cid, p.me.PeerURLs, p.state.membership.Members,
		p.node, p.snaps.Load, cfg.HeartbeatInterval, cfg.ElectionTimeout, metrics)
	s := assemble(cfg, lg, metrics, p, tr, started)
	s.peerHandler = tr.handler()
	s.lns = lns
	return s, nil
}

// assemble builds a member from its parts and a transport built over
// p.node; the member has been leaderless since started. It starts nothing;
// the caller owns the listeners, if any.
func assemble(cfg Config, lg *slog.Logger, metrics *serverMetrics, p *memberParts, tr Transport, started time.Time) *Server {
	s := &Server{
		cfg: cfg, lg: lg, id: p.id, cid: p.cid, metrics: metrics,
		transport:  tr,
		wait:       newWaitRegistry(),
		reqIDs:     newIDGenerator(p.id, time.Now()),
		readwaitc:  make(chan struct{}, 1),
		readNotify: newNotifier(),
		stopc:      make(chan struct{}),
		errc:       make(chan error, 8),
	}
	s.raft = newRaftNode(raftNodeConfig{
		ID: p.id, Node: p.node, Storage: p.storage, Log: p.log, Snapshots: p.snaps, Transport: tr,
		Heartbeat: cfg.HeartbeatInterval, Started: started, Stop: s.stopc, Logger: lg, Metrics: metrics,
	})
	s.status = s.raft.status
	s.app = newApplier(applierConfig{
		State: p.state, Raft: p.node, RaftStorage: p.storage, Snapshots: p.snaps,
		ReleaseLog: s.raft.releaseLogTo, Results: s.wait,
		SnapshotCount: cfg.SnapshotCount, CatchUpEntries: cfg.catchUpEntries(),
		Stop: s.stopc, Logger: lg, Metrics: metrics,
	})
	return s
}

// ID returns the member's ID; ClusterID the cluster's.
func (s *Server) ID() uint64        { return s.id }
func (s *Server) ClusterID() uint64 { return s.cid }

// Start runs the member: the Raft loop, the applier, the read loop, the
// peer transport and the client API. It returns once everything serves.
func (s *Server) Start() {
	s.run()
	s.front = newFront(s)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.healthLoop(s.front.health) }()
	s.lns.servePeers(s.peerHandler, s.fatal)
	s.lns.serveClients(s.front, s.fatal)
	s.lg.Info("serving clients", "urls", FormatURLs(s.cfg.ListenClientURLs))
}

// run starts the member's goroutines, without the client API.
func (s *Server) run() {
	s.transport.Start()
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.raft.run(s.fatal) }()
	go func() { defer s.wg.Done(); s.app.run(s.raft.apply(), s.fatal) }()
	go func() { defer s.wg.Done(); s.readLoop() }()
	go func() { defer s.wg.Done(); s.publishAttributes() }()
}

// Err returns a channel that receives a fatal error (a listener failing, the
// disk failing); the member should then be stopped and exit non-zero.
func (s *Server) Err() <-chan error { return s.errc }

func (s *Server) fatal(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// Stop shuts the member down. A leader first transfers leadership to the
// most up-to-date follower (waiting at most one election timeout), so the
// cluster does not sit out an election. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.raft.transferLeadership(s.cfg.ElectionTimeout)
		if s.lns != nil {
			s.lns.closeHTTP()
			if s.front != nil {
				s.front.stop()
			}
			s.lns.close()
		}
		close(s.stopc)
		s.raft.node.Stop()
		s.transport.Stop()
		s.wg.Wait()
		if err := s.raft.log.Close(); err != nil {
			s.lg.Warn("closing wal", "err", err)
		}
		s.lg.Info("stopped")
	})
}

// readView is the applier's latest published state.
func (s *Server) readView() *readState { return s.app.readView() }
