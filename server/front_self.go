package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	gw "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	etcdservergw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	v3electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	v3lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quorum-kv/quorum/internal/etcdlog"
)

// selfConn is the member's client connection to its own gRPC server, for
// the services etcd builds on a client of itself: the Lock and Election
// services (etcd's v3lock and v3election servers, which run the client
// library's concurrency recipes; etcd gives them its in-process v3client)
// and the grpc-gateway (which etcd dials to its own client URL). Here an
// in-memory listener the gRPC server also serves carries it: no client
// URL, TLS or certificate is needed, and every call passes the same
// interceptors as a client's (metrics, learner, leader, auth).
//
// The caller's credentials go along: a call made while serving an RPC
// forwards that RPC's auth token (etcd's "token" or the gateway's
// "authorization" metadata), as etcd's v3client passes the caller's
// context to the server.
type selfConn struct {
	lg   *slog.Logger
	ln   *bufconn.Listener
	conn *grpc.ClientConn // the gateway's
	cli  *clientv3.Client // v3lock's and v3election's
}

// selfBufSize is the in-memory listener's buffer per connection direction.
const selfBufSize = 1 << 20

func newSelfConn(lg *slog.Logger) (*selfConn, error) {
	ln := bufconn.Listen(selfBufSize)
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }
	opts := []grpc.DialOption{
		grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(forwardTokenUnary),
		grpc.WithChainStreamInterceptor(forwardTokenStream),
	}
	conn, err := grpc.NewClient("passthrough:///quorumd-self", append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1)))...)
	if err != nil {
		return nil, fmt.Errorf("self connection: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"quorumd-self"},
		DialOptions: opts,
		Logger:      etcdlog.Zap(etcdlog.Named(lg, "etcd-client")),
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("self client: %w", err)
	}
	return &selfConn{lg: lg, ln: ln, conn: conn, cli: cli}, nil
}

// gateway is etcd's grpc-gateway (embed's registerGateway and createMux):
// JSON over HTTP at /v3/... for every service, marshalled with etcd's
// options (proto field names, unset fields left out, unknown fields
// ignored), streams (Watch, LeaseKeepAlive, Observe) also over websockets,
// each request a call on the self connection with the HTTP Authorization
// header as its token.
func (sc *selfConn) gateway() (http.Handler, error) {
	gwmux := gw.NewServeMux(
		gw.WithMarshalerOption(gw.MIMEWildcard, &gw.HTTPBodyMarshaler{
			Marshaler: &gw.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
			},
		}),
	)
	for _, register := range []func(context.Context, *gw.ServeMux, *grpc.ClientConn) error{
		etcdservergw.RegisterKVHandler,
		etcdservergw.RegisterWatchHandler,
		etcdservergw.RegisterLeaseHandler,
		etcdservergw.RegisterClusterHandler,
		etcdservergw.RegisterMaintenanceHandler,
		etcdservergw.RegisterAuthHandler,
		v3lockgw.RegisterLockHandler,
		v3electiongw.RegisterElectionHandler,
	} {
		if err := register(context.Background(), gwmux, sc.conn); err != nil {
			return nil, fmt.Errorf("grpc-gateway: %w", err)
		}
	}
	return wsproxy.WebsocketProxy(gwmux,
		// Streams are POST methods; a websocket upgrade is a GET.
		wsproxy.WithRequestMutator(func(_ *http.Request, out *http.Request) *http.Request {
			out.Method = http.MethodPost
			return out
		}),
		wsproxy.WithMaxRespBodyBufferSize(0x7fffffff),
		wsproxy.WithLogger(wsLogger{sc.lg}),
	), nil
}

// wsLogger is wsproxy's logger on the member's, as etcd's wsProxyZapLogger.
type wsLogger struct{ lg *slog.Logger }

func (w wsLogger) Warnln(args ...any)  { w.lg.Warn(fmt.Sprint(args...)) }
func (w wsLogger) Debugln(args ...any) { w.lg.Debug(fmt.Sprint(args...)) }

// register adds the services built on the self connection to g.
func (sc *selfConn) register(g *grpc.Server) {
	v3lockpb.RegisterLockServer(g, v3lock.NewLockServer(sc.cli))
	v3electionpb.RegisterElectionServer(g, v3election.NewElectionServer(sc.cli))
}

// close ends the self client and connection; the gRPC server's Stop closes
// the listener.
func (sc *selfConn) close() {
	sc.cli.Close()
	sc.conn.Close()
	sc.ln.Close()
}

// tokenFields are the metadata keys etcd reads an auth token from.
var tokenFields = []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger}

// withCallerToken copies the auth token of the RPC being served (incoming
// metadata of ctx) into the outgoing metadata of a call made on its behalf,
// unless the call sets one itself.
func withCallerToken(ctx context.Context) context.Context {
	in, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	out, _ := metadata.FromOutgoingContext(ctx)
	for _, k := range tokenFields {
		if len(out.Get(k)) > 0 {
			return ctx
		}
	}
	for _, k := range tokenFields {
		if v := in.Get(k); len(v) > 0 {
			return metadata.AppendToOutgoingContext(ctx, k, v[0])
		}
	}
	return ctx
}

func forwardTokenUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withCallerToken(ctx), method, req, reply, cc, opts...)
}

func forwardTokenStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withCallerToken(ctx), desc, cc, method, opts...)
}
