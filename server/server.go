package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/auth"

	"github.com/quorum-kv/quorum/server/wal"
	"github.com/quorum-kv/quorum/server/watch"
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
//   - watches (server/watch): the watchable store; the applier hands it
//     every batch's events, its sync loop catches slow watchers up.
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
	tracing *tracing // nil without --enable-distributed-tracing

	raft   *raftNode
	status *raftStatus // raft's, published for every goroutine
	app    *applier
	lessor *lessor
	// auth is etcd's auth store (auth.go); the applier is the only writer
	// of its state.
	auth auth.AuthStore
	// watches is the watchable store the applier notifies and the Watch
	// service's streams read (server/watch).
	watches *watch.Hub
	// peerClient forwards lease renewals and time-to-live questions to
	// the leader's peer URL (lease_leader.go).
	peerClient *http.Client
	transport  Transport
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

	// readyc is closed once this member's attributes are published
	// through Raft (etcd's ReadyNotify): the moment etcd logs "ready to
	// serve client requests".
	readyc chan struct{}
	// initialized: the data dir held a member when New opened it.
	initialized bool

	// removedOnce: the member was removed from the cluster and stops
	// (membership_learner.go).
	removedOnce sync.Once

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
	lg := cfg.Logger
	lns, err := listen(&cfg, lg)
	if err != nil {
		return nil, err
	}
	peerTLS, err := peerClientTLS(&cfg.PeerTLS)
	if err != nil {
		lns.close()
		return nil, err
	}
	var tr8 *tracing
	if cfg.Tracing != nil {
		if tr8, err = newTracing(context.Background(), cfg.Tracing, lg); err != nil {
			lns.close()
			return nil, err
		}
	}
	memberDir := filepath.Join(cfg.DataDir, "member")
	initialized := wal.Exist(cfg.walDir())
	logStarting(lg, &cfg, memberDir, initialized)
	metrics := newServerMetrics()
	ap, err := newAuthParts(&cfg, lg)
	if err != nil {
		lns.close()
		tr8.close(context.Background())
		return nil, err
	}
	p, err := openDataDir(&cfg, lg, metrics.observeWALFsync, peerHTTPClientTransport(peerTLS))
	if err != nil {
		lns.close()
		tr8.close(context.Background())
		return nil, err
	}
	p.auth = ap
	tr := newStreamTransport(lg, p.id, p.cid, p.me.PeerURLs, p.transportMembership(),
		p.node, p.snaps.Load, cfg.HeartbeatInterval, cfg.ElectionTimeout, peerTLS, metrics)
	s := assemble(cfg, lg, metrics, p, tr, peerTLS, started)
	s.peerHandler = s.peerHandlerWithMembers(s.peerHandlerWithHashKV(s.peerHandlerWithLeases(tr.handler())))
	s.lns = lns
	s.tracing = tr8
	s.initialized = initialized
	if initialized && cfg.InitialCorruptCheck { // etcd's embed.StartEtcd
		if err := s.initialCorruptCheck(); err != nil {
			lg.Error("checkInitialHashKV failed", "error", err)
			s.closeUnstarted()
			return nil, err
		}
	}
	return s, nil
}

// assemble builds a member from its parts and a transport built over
// p.node; the member has been leaderless since started; peerTLS (nil: no
// https peer URLs) is what its lease forwarding dials the leader with. It
// starts nothing; the caller owns the listeners, if any.
func assemble(cfg Config, lg *slog.Logger, metrics *serverMetrics, p *memberParts, tr Transport, peerTLS *tls.Config, started time.Time) *Server {
	s := &Server{
		cfg: cfg, lg: lg, id: p.id, cid: p.cid, metrics: metrics,
		transport:  tr,
		wait:       newWaitRegistry(),
		reqIDs:     newIDGenerator(p.id, time.Now()),
		readwaitc:  make(chan struct{}, 1),
		readNotify: newNotifier(),
		readyc:     make(chan struct{}),
		stopc:      make(chan struct{}),
		errc:       make(chan error, 8),
	}
	metrics.setMember(p.id, cfg.QuotaBackendBytes)
	metrics.setDBSize(s.dbSizes)
	s.raft = newRaftNode(raftNodeConfig{
		ID: p.id, Node: p.node, Storage: p.storage, Log: p.log, Snapshots: p.snaps, Transport: tr,
		Heartbeat: cfg.HeartbeatInterval, Started: started, Stop: s.stopc, Logger: lg, Metrics: metrics,
	})
	s.status = s.raft.status
	s.peerClient = &http.Client{Transport: peerHTTPClientTransport(peerTLS), Timeout: cfg.requestTimeout()}
	s.lessor = newLessor(minLeaseTTL(cfg.electionTicks(), cfg.HeartbeatInterval), cfg.leaseCheckpointInterval())
	s.watches = watch.NewHub(p.state.store.Rev(), p.state.store.CompactRev(),
		func() watch.Source { return s.app.readView().view }, metrics.watch)
	var authBe *authBackend
	s.auth, authBe = newAuthStore(&cfg, lg, p.auth, p.state.auth)
	s.app = newApplier(applierConfig{
		State: p.state, Raft: p.node, RaftStorage: p.storage, Snapshots: p.snaps, Lessor: s.lessor,
		Auth: s.auth, AuthBackend: authBe, ApplyWait: p.auth.applyWait,
		ReleaseLog: s.raft.releaseLogTo, Results: s.wait, Watches: s.watches,
		SnapshotCount: cfg.SnapshotCount, CatchUpEntries: cfg.catchUpEntries(), QuotaBackendBytes: cfg.QuotaBackendBytes,
		Self: p.id, Bootstrap: p.bootstrap, Peers: tr, MaxLearners: cfg.MaxLearners, OnRemoved: s.memberRemoved,
		Stop: s.stopc, Logger: lg, Metrics: metrics, WarningApplyDuration: cfg.warningApplyDuration(),
	})
	return s
}

// ID returns the member's ID; ClusterID the cluster's.
func (s *Server) ID() uint64        { return s.id }
func (s *Server) ClusterID() uint64 { return s.cid }

// Start runs the member: the Raft loop, the applier, the read loop, the
// peer transport and the client API. It returns once everything serves.
func (s *Server) Start() {
	if s.initialized {
		s.lg.Info("starting etcd server", "local-member-id", idString(s.id), "local-server-version", ReportedServerVersion,
			"cluster-id", idString(s.cid), "cluster-version", APIVersion)
	} else {
		s.lg.Info("starting etcd server", "local-member-id", idString(s.id), "local-server-version", ReportedServerVersion,
			"cluster-version", "to_be_decided")
	}
	s.run()
	s.front = newFront(s)
	if s.front.self != nil {
		go s.front.grpc.Serve(s.front.self.ln) // ends with the gRPC server's Stop
	}
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.adjustTicks() }()
	go func() { defer s.wg.Done(); s.healthLoop(s.front.health) }()
	go func() { defer s.wg.Done(); s.monitorLeader(s.front.leaderStreams) }()
	go func() { defer s.wg.Done(); s.announceClients() }()
	s.lns.servePeers(s.peerHandler, s.fatal)
	s.lns.serveClients(s.front, s.fatal)
	s.lns.serveMetrics(s.front.metricsHTTP, s.fatal)
	s.lg.Info("now serving peer/client/metrics",
		"local-member-id", idString(s.id),
		"initial-advertise-peer-urls", urlStrings(s.cfg.InitialAdvertisePeerURLs),
		"listen-peer-urls", urlStrings(s.cfg.ListenPeerURLs),
		"advertise-client-urls", urlStrings(s.cfg.AdvertiseClientURLs),
		"listen-client-urls", urlStrings(s.cfg.ListenClientURLs),
		"listen-metrics-urls", urlStrings(s.cfg.ListenMetricsURLs))
}

// announceClients writes etcd's lines for the client listeners once the
// member is published (readyc), as etcd's serve does: "ready to serve
// client requests" once per listener, then for each "serving client
// traffic insecurely" (an http URL names its address) and "serving client
// traffic securely" (an https URL does). The listeners already accept and
// serve; these lines mark readiness, as etcd's do.
func (s *Server) announceClients() {
	select {
	case <-s.readyc:
	case <-s.stopc:
		return
	}
	for range s.lns.client {
		s.lg.Info("ready to serve client requests")
	}
	for _, ln := range s.lns.client {
		if ln.insecure {
			s.lg.Info("serving client traffic insecurely; this is strongly discouraged!",
				"traffic", ln.traffic(), "address", ln.Addr().String())
		}
		if ln.secure {
			s.lg.Info("serving client traffic securely", "traffic", ln.traffic(), "address", ln.Addr().String())
		}
	}
}

// run starts the member's goroutines, without the client API.
func (s *Server) run() {
	s.transport.Start()
	s.wg.Add(6)
	go func() { defer s.wg.Done(); s.leaseLoop() }()
	go func() { defer s.wg.Done(); s.watches.Run(s.stopc) }()
	go func() { defer s.wg.Done(); s.raft.run(s.fatal) }()
	go func() { defer s.wg.Done(); s.app.run(s.raft.apply(), s.fatal) }()
	go func() { defer s.wg.Done(); s.readLoop() }()
	go func() { defer s.wg.Done(); s.publishAttributes() }()
	s.wg.Add(1) // its own Add: a peer refusing this member as removed
	go func() { defer s.wg.Done(); s.watchRemoved() }()
	s.wg.Add(1) // its own Add: auto compaction (compactor.go)
	go func() { defer s.wg.Done(); s.autoCompact() }()
	s.wg.Add(3) // alarms raised by the applier (alarm.go), corruption checks (corrupt.go)
	go func() { defer s.wg.Done(); s.raiseLoop() }()
	go func() { defer s.wg.Done(); s.corruptCheckLoop() }()
	go func() { defer s.wg.Done(); s.compactHashCheckLoop() }()
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
		s.lg.Info("closing etcd server", closeFields(&s.cfg)...)
		s.raft.transferLeadership(s.cfg.ElectionTimeout)
		if s.lns != nil {
			for _, ln := range s.lns.peer {
				s.lg.Info("stopping serving peer traffic", "address", ln.Addr().String())
			}
			s.lns.closeHTTP()
			if s.front != nil {
				s.front.stop()
			}
			s.lns.close()
			for _, ln := range s.lns.peer {
				s.lg.Info("stopped serving peer traffic", "address", ln.Addr().String())
			}
		}
		close(s.stopc)
		s.raft.node.Stop()
		s.transport.Stop()
		s.wg.Wait()
		_ = s.auth.Close()
		if err := s.raft.log.Close(); err != nil {
			s.lg.Warn("failed to close wal", "error", err)
		}
		s.lg.Info("closed etcd server", closeFields(&s.cfg)...)
		s.tracing.close(context.Background()) // the last requests' spans are flushed
	})
}

// readView is the applier's latest published state.
func (s *Server) readView() *readState { return s.app.readView() }
