package server

// The Watch service: etcd v3.6.16's etcdserver/api/v3rpc/watch.go, kept
// close to the original so that the wire behaviour is etcd's — created and
// canceled responses, responses buffered until their watcher's creation is
// sent, prev_kv read at the event's revision - 1, fragments, progress
// notifications — over quorumd's watchable store (server/watch).

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/quorum-kv/quorum/server/bugzoo"
	"github.com/quorum-kv/quorum/server/watch"
)

// minWatchProgressInterval is etcd's floor for
// --watch-progress-notify-interval.
const minWatchProgressInterval = 100 * time.Millisecond

// ctrlStreamBufLen is etcd's buffer of control responses (created,
// canceled) per stream.
const ctrlStreamBufLen = 16

type watchServer struct {
	s *Server
	// closing ends every stream: the member is stopping.
	closing <-chan struct{}
	// progressInterval is --watch-progress-notify-interval, at least
	// minWatchProgressInterval.
	progressInterval time.Duration
}

func newWatchServer(s *Server, closing <-chan struct{}) *watchServer {
	iv := s.cfg.WatchProgressNotifyInterval
	if iv > 0 && iv < minWatchProgressInterval {
		s.lg.Warn("adjusting watch progress notify interval to minimum period",
			"min-watch-progress-notify-interval", minWatchProgressInterval)
		iv = minWatchProgressInterval
	}
	return &watchServer{s: s, closing: closing, progressInterval: iv}
}

// progressReportInterval adds etcd's jitter (up to a tenth) so that
// watchers created together do not get their notifications together.
func (ws *watchServer) progressReportInterval() time.Duration {
	iv := ws.progressInterval
	if iv <= 0 {
		iv = DefaultWatchProgressNotifyInterval
	}
	return iv + time.Duration(rand.Int64N(int64(iv)/10))
}

// serverWatchStream is one client stream: recvLoop turns requests into
// watchers, sendLoop turns the watchers' responses into gRPC messages.
type serverWatchStream struct {
	ws          *watchServer
	s           *Server
	gRPCStream  pb.Watch_WatchServer
	watchStream *watch.Stream
	ctrlStream  chan *pb.WatchResponse

	// mu protects progress, fragment.
	mu       sync.RWMutex
	progress map[watch.WatchID]bool
	fragment map[watch.WatchID]bool

	closec chan struct{}
	wg     sync.WaitGroup
}

func (ws *watchServer) Watch(stream pb.Watch_WatchServer) (err error) {
	sws := &serverWatchStream{
		ws: ws, s: ws.s,
		gRPCStream:  stream,
		watchStream: ws.s.watches.NewStream(),
		ctrlStream:  make(chan *pb.WatchResponse, ctrlStreamBufLen),
		progress:    map[watch.WatchID]bool{},
		fragment:    map[watch.WatchID]bool{},
		closec:      make(chan struct{}),
	}
	sws.wg.Add(1)
	go func() {
		defer sws.wg.Done()
		sws.sendLoop()
	}()
	errc := make(chan error, 1)
	// As in etcd, the receive loop is not waited for: Recv may block past
	// the stream's end.
	go func() {
		if rerr := sws.recvLoop(); rerr != nil {
			if isClientCtxErr(stream.Context().Err(), rerr) {
				ws.s.lg.Debug("failed to receive watch request from gRPC stream", "error", rerr)
			} else {
				ws.s.lg.Warn("failed to receive watch request from gRPC stream", "error", rerr)
				ws.s.metrics.streamFailures.WithLabelValues("receive", "watch").Inc()
			}
			errc <- rerr
		}
	}()
	select {
	case err = <-errc:
		if errors.Is(err, context.Canceled) {
			err = rpctypes.ErrGRPCWatchCanceled
		}
		close(sws.ctrlStream)
	case <-stream.Context().Done():
		err = stream.Context().Err()
		if errors.Is(err, context.Canceled) {
			err = rpctypes.ErrGRPCWatchCanceled
		}
		if cause := context.Cause(stream.Context()); errors.Is(cause, rpctypes.ErrGRPCNoLeader) {
			err = rpctypes.ErrGRPCNoLeader
		}
	case <-ws.closing:
		err = rpctypes.ErrGRPCStopped
	}
	sws.close()
	return err
}

// isClientCtxErr is etcd's: the error is the client going away.
func isClientCtxErr(ctxErr, err error) bool {
	if ctxErr != nil {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		rpctypes.ErrorDesc(err) == context.Canceled.Error()
}

func (sws *serverWatchStream) recvLoop() error {
	for {
		req, err := sws.gRPCStream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch uv := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if uv.CreateRequest == nil {
				break
			}
			creq := uv.CreateRequest
			if len(creq.Key) == 0 {
				// \x00 is the smallest key
				creq.Key = []byte{0}
			}
			if creq.StartRevision < 0 {
				wr := &pb.WatchResponse{
					Header:       sws.header(sws.watchStream.Rev()),
					WatchId:      int64(watch.InvalidWatchID),
					Canceled:     true,
					Created:      true,
					CancelReason: rpctypes.ErrCompacted.Error(),
				}
				select {
				case sws.ctrlStream <- wr:
					continue
				case <-sws.closec:
					return nil
				}
			}
			if reason := sws.s.watchDenied(sws.gRPCStream.Context(), creq); reason != "" {
				wr := &pb.WatchResponse{
					Header:       sws.header(sws.watchStream.Rev()),
					WatchId:      int64(watch.InvalidWatchID),
					Canceled:     true,
					Created:      true,
					CancelReason: reason,
				}
				select {
				case sws.ctrlStream <- wr:
					continue
				case <-sws.closec:
					return nil
				}
			}
			if len(creq.RangeEnd) == 0 {
				// nil: the single key
				creq.RangeEnd = nil
			}
			if len(creq.RangeEnd) == 1 && creq.RangeEnd[0] == 0 {
				// every key >= key
				creq.RangeEnd = []byte{}
			}
			var filters []watch.FilterFunc
			for _, ft := range creq.Filters {
				switch ft {
				case pb.WatchCreateRequest_NOPUT:
					filters = append(filters, watch.FilterNoPut)
				case pb.WatchCreateRequest_NODELETE:
					filters = append(filters, watch.FilterNoDelete)
				}
			}
			// prev_kv goes with the watcher (and its responses): its first
			// response can be on its way before Watch returns, which with
			// etcd's map here would go out without previous values.
			id, err := sws.watchStream.WatchPrevKV(watch.WatchID(creq.WatchId), creq.Key, creq.RangeEnd, creq.StartRevision, creq.PrevKv, filters...)
			if err == nil {
				sws.mu.Lock()
				if creq.ProgressNotify {
					sws.progress[id] = true
				}
				if creq.Fragment {
					sws.fragment[id] = true
				}
				sws.mu.Unlock()
			} else {
				id = watch.InvalidWatchID
			}
			wr := &pb.WatchResponse{
				Header:   sws.header(sws.watchStream.Rev()),
				WatchId:  int64(id),
				Created:  true,
				Canceled: err != nil,
			}
			if err != nil {
				wr.CancelReason = err.Error()
			}
			select {
			case sws.ctrlStream <- wr:
			case <-sws.closec:
				return nil
			}
		case *pb.WatchRequest_CancelRequest:
			if uv.CancelRequest != nil {
				id := uv.CancelRequest.WatchId
				if err := sws.watchStream.Cancel(watch.WatchID(id)); err == nil {
					wr := &pb.WatchResponse{
						Header:   sws.header(sws.watchStream.Rev()),
						WatchId:  id,
						Canceled: true,
					}
					select {
					case sws.ctrlStream <- wr:
					case <-sws.closec:
						return nil
					}
					sws.mu.Lock()
					delete(sws.progress, watch.WatchID(id))
					delete(sws.fragment, watch.WatchID(id))
					sws.mu.Unlock()
				}
			}
		case *pb.WatchRequest_ProgressRequest:
			if uv.ProgressRequest != nil {
				sws.mu.Lock()
				sws.watchStream.RequestProgressAll()
				sws.mu.Unlock()
			}
		default:
			// An unknown request does not end the stream (etcd).
			sws.s.lg.Info("invalid watch request type received in gRPC stream")
			continue
		}
	}
}

func (sws *serverWatchStream) sendLoop() {
	// watch IDs whose creation was sent
	ids := map[watch.WatchID]struct{}{}
	// responses waiting for their watcher's creation to be sent
	pending := map[watch.WatchID][]*pb.WatchResponse{}
	progressTicker := time.NewTicker(sws.ws.progressReportInterval())
	defer progressTicker.Stop()
	events := sws.s.metrics.watchEvents
	defer func() {
		// Drain, so the pending-events gauge goes back down.
		for wr := range sws.watchStream.Chan() {
			events.received(len(wr.Events))
		}
		for _, wrs := range pending {
			for _, wr := range wrs {
				events.received(len(wr.Events))
			}
		}
	}()
	for {
		select {
		case wresp, ok := <-sws.watchStream.Chan():
			if !ok {
				return
			}
			sws.watchStream.Drained()
			evs := wresp.Events
			out := make([]*mvccpb.Event, len(evs))
			needPrevKV := wresp.PrevKV
			var view *readState
			for i := range evs {
				out[i] = &evs[i]
				if needPrevKV && !isCreateEvent(evs[i]) {
					if view == nil {
						view = sws.s.readView()
					}
					// As etcd: the key at the event's revision - 1, absent
					// when that revision is compacted.
					r, err := view.view.Range(&pb.RangeRequest{Key: evs[i].Kv.Key, Revision: evs[i].Kv.ModRevision - 1})
					if err == nil && len(r.Kvs) != 0 {
						out[i].PrevKv = r.Kvs[0]
					}
				}
			}
			wr := &pb.WatchResponse{
				Header:          sws.header(wresp.Revision),
				WatchId:         int64(wresp.WatchID),
				Events:          out,
				CompactRevision: wresp.CompactRevision,
				Canceled:        wresp.CompactRevision != 0,
			}
			// A progress notification for every watcher has ID -1.
			if wresp.WatchID != watch.InvalidWatchID {
				if _, ok := ids[wresp.WatchID]; !ok {
					pending[wresp.WatchID] = append(pending[wresp.WatchID], wr)
					continue
				}
			}
			events.received(len(evs))
			if serr := sws.send(wr); serr != nil {
				sws.sendFailed("failed to send watch response to gRPC stream", serr)
				return
			}
			sws.mu.Lock()
			if len(evs) > 0 && sws.progress[wresp.WatchID] {
				// elide the next progress update after a key update
				sws.progress[wresp.WatchID] = false
			}
			sws.mu.Unlock()

		case c, ok := <-sws.ctrlStream:
			if !ok {
				return
			}
			if err := sws.gRPCStream.Send(c); err != nil {
				sws.sendFailed("failed to send watch control response to gRPC stream", err)
				return
			}
			wid := watch.WatchID(c.WatchId)
			if c.Canceled && wid != watch.InvalidWatchID {
				delete(ids, wid)
				continue
			}
			if c.Created {
				ids[wid] = struct{}{}
				for _, v := range pending[wid] {
					events.received(len(v.Events))
					// etcd sends these whole; a catch-up can be waiting
					// here, so it is fragmented when asked, like any
					// response.
					if err := sws.send(v); err != nil {
						sws.sendFailed("failed to send pending watch response to gRPC stream", err)
						return
					}
				}
				delete(pending, wid)
			}

		case <-progressTicker.C:
			sws.mu.Lock()
			for id, ok := range sws.progress {
				if ok {
					sws.watchStream.RequestProgress(id)
				}
				sws.progress[id] = true
			}
			sws.mu.Unlock()

		case <-sws.closec:
			return
		}
	}
}

// send sends one watcher's response, in fragments if the watcher asked
// for them.
func (sws *serverWatchStream) send(wr *pb.WatchResponse) error {
	sws.mu.RLock()
	fragmented := sws.fragment[watch.WatchID(wr.WatchId)]
	sws.mu.RUnlock()
	if bugzoo.Enabled(bugzoo.DropWatchEvent) || bugzoo.Enabled(bugzoo.SplitWatchRevision) {
		return zooWatchSend(wr, sws.gRPCStream.Send)
	}
	if !fragmented {
		return sws.gRPCStream.Send(wr)
	}
	return sendFragments(wr, sws.s.cfg.MaxRequestBytes+grpcOverheadBytes, sws.gRPCStream.Send)
}

func (sws *serverWatchStream) sendFailed(msg string, err error) {
	if isClientCtxErr(sws.gRPCStream.Context().Err(), err) {
		sws.s.lg.Debug(msg, "error", err)
		return
	}
	sws.s.lg.Warn(msg, "error", err)
	sws.s.metrics.streamFailures.WithLabelValues("send", "watch").Inc()
}

func isCreateEvent(e mvccpb.Event) bool {
	return e.Type == mvccpb.PUT && e.Kv.CreateRevision == e.Kv.ModRevision
}

// sendFragments is etcd's: a response beyond maxRequestBytes with more
// than one event goes out in pieces, each but the last with Fragment set.
func sendFragments(wr *pb.WatchResponse, maxRequestBytes uint, send func(*pb.WatchResponse) error) error {
	if uint(wr.Size()) < maxRequestBytes || len(wr.Events) < 2 {
		return send(wr)
	}
	ow := *wr
	ow.Events = make([]*mvccpb.Event, 0)
	ow.Fragment = true
	var idx int
	for {
		cur := ow
		for _, ev := range wr.Events[idx:] {
			cur.Events = append(cur.Events, ev)
			if len(cur.Events) > 1 && uint(cur.Size()) >= maxRequestBytes {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			idx++
		}
		if idx == len(wr.Events) {
			cur.Fragment = false
		}
		if err := send(&cur); err != nil {
			return err
		}
		if !cur.Fragment {
			break
		}
	}
	return nil
}

func (sws *serverWatchStream) close() {
	sws.watchStream.Close()
	close(sws.closec)
	sws.wg.Wait()
}

func (sws *serverWatchStream) header(rev int64) *pb.ResponseHeader { return sws.s.header(rev) }
