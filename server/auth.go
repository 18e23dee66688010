package server

import (
	"context"
	"errors"
	"log/slog"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/auth"

	"github.com/quorum-kv/quorum/internal/etcdlog"
)

// Auth is etcd's own: go.etcd.io/etcd/server/v3/auth's AuthStore does all
// of it (users, roles, permissions and their range cache, the root rules,
// simple and JWT tokens) over quorumd's in-memory authBackend
// (auth_backend.go). What quorumd adds is etcd's wiring around it:
//
//   - The auth state changes only in the applier, from committed entries
//     (the Auth* InternalRaftRequests), so every member has the same; the
//     snapshot carries it (authRecord), so it survives restarts and
//     snapshot catch-up.
//   - Authenticate checks the password on the member asked, then proposes
//     an InternalAuthenticateRequest with a token prefix generated before
//     proposing (etcd's v3_server.go); every member applies it, so a
//     simple token ("prefix.index") is known to every member.
//   - A proposal carries the caller's user name and auth revision in its
//     header (taken from the token, or the client certificate's CN with
//     --client-cert-auth); the applier checks Put, DeleteRange, Txn and
//     LeaseRevoke against them when it applies (etcd's authApplierV3), so
//     a permission revoked in between is refused on every member alike.
//   - Reads served by the member (Range, read-only Txn, Watch creation,
//     the lease queries) are checked where etcd checks them, before they
//     are served, and fail with etcd's "auth: revision in header is old"
//     when the auth state changed meanwhile.

// authParts are what a member's auth is built from, before the member:
// the token provider and the applied-index waiter it waits on (a simple
// token names the index of its Authenticate entry).
type authParts struct {
	tokens    auth.TokenProvider
	applyWait *indexWaiter
}

// newAuthParts builds the token provider of --auth-token (simple, jwt,…)
// with --auth-token-ttl, as etcd's NewServer; a bad --auth-token is an
// error naming it.
func newAuthParts(cfg *Config, lg *slog.Logger) (authParts, error) {
	w := newIndexWaiter(0)
	tp, err := auth.NewTokenProvider(etcdlog.Zap(lg), cfg.AuthToken, w.wait, cfg.AuthTokenTTL)
	if err != nil {
		return authParts{}, errors.New("--auth-token " + cfg.AuthToken + ": " + err.Error())
	}
	return authParts{tokens: tp, applyWait: w}, nil
}

// newAuthStore is etcd's auth store over a backend holding rec, with the
// member's token provider and --bcrypt-cost.
func newAuthStore(cfg *Config, lg *slog.Logger, ap authParts, rec *authRecord) (auth.AuthStore, *authBackend) {
	be := newAuthBackend(rec)
	return auth.NewAuthStore(etcdlog.Zap(lg), be, ap.tokens, cfg.BcryptCost), be
}

// rootAuthKey marks a context of the member's own proposals (the leader's
// revokes of expired leases) as made by root, as etcd's WithRoot does with
// a token. A client's context cannot carry it: it is not metadata.
type rootAuthKey struct{}

func withRootAuth(ctx context.Context) context.Context {
	return context.WithValue(ctx, rootAuthKey{}, true)
}

// authInfoFromCtx is etcd's EtcdServer.AuthInfoFromCtx: the user of the
// request's token; without one, with --client-cert-auth, the CN of its
// verified client certificate. nil when auth is disabled or the request
// names no user.
func (s *Server) authInfoFromCtx(ctx context.Context) (*auth.AuthInfo, error) {
	if ctx.Value(rootAuthKey{}) != nil {
		if !s.auth.IsAuthEnabled() {
			return nil, nil
		}
		return &auth.AuthInfo{Username: "root", Revision: s.auth.Revision()}, nil
	}
	ai, err := s.auth.AuthInfoFromCtx(ctx)
	if ai != nil || err != nil {
		return ai, err
	}
	if !s.cfg.ClientTLS.ClientCertAuth {
		return nil, nil
	}
	return s.auth.AuthInfoFromTLS(ctx), nil
}

// requireAuthInfo is etcd's: with auth enabled the request must name a
// user.
func (s *Server) requireAuthInfo(ctx context.Context) error {
	if !s.auth.IsAuthEnabled() {
		return nil
	}
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return authError(err)
	}
	if ai == nil {
		return rpctypes.ErrGRPCUserEmpty
	}
	return nil
}

// checkRead is etcd's doSerialize for a read this member serves: chk with
// the request's user (empty credentials when it names none), then get,
// then "revision in header is old" if the auth state changed meanwhile.
func (s *Server) checkRead(ctx context.Context, chk func(*auth.AuthInfo) error, get func()) error {
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return authError(err)
	}
	if ai == nil {
		ai = &auth.AuthInfo{}
	}
	if err := chk(ai); err != nil {
		return authError(err)
	}
	get()
	if ai.Revision != 0 && ai.Revision != s.auth.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

// checkLeaseKeys is etcd's checkLeaseRenew / checkLeaseTimeToLive: a user
// who is not admin must be permitted (perm) on every key of the lease.
func (s *Server) checkLeaseKeys(ctx context.Context, ids []int64, perm func(as auth.AuthStore, ai *auth.AuthInfo, key []byte) error) error {
	rev := s.auth.Revision()
	if !s.auth.IsAuthEnabled() {
		return nil
	}
	ai, err := s.authInfoFromCtx(ctx)
	if err != nil {
		return authError(err)
	}
	if ai == nil {
		return rpctypes.ErrGRPCUserEmpty
	}
	if s.auth.IsAdminPermitted(ai) == nil {
		return nil
	}
	for _, id := range ids {
		keys, _ := s.lessor.keys(id)
		for _, k := range keys {
			if err := perm(s.auth, ai, []byte(k)); err != nil {
				return authError(err)
			}
		}
	}
	if rev != s.auth.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

func putPerm(as auth.AuthStore, ai *auth.AuthInfo, key []byte) error {
	return as.IsPutPermitted(ai, key)
}
func readPerm(as auth.AuthStore, ai *auth.AuthInfo, key []byte) error {
	return as.IsRangePermitted(ai, key, []byte{})
}

// watchDenied is etcd's isWatchPermitted for a watch about to be created
// on a stream of ctx: "" when the user may read the watched range,
// otherwise the cancel reason etcd sends.
func (s *Server) watchDenied(ctx context.Context, creq *pb.WatchCreateRequest) string {
	ai, err := s.authInfoFromCtx(ctx)
	if err == nil {
		if ai == nil {
			ai = &auth.AuthInfo{}
		}
		err = s.auth.IsRangePermitted(ai, creq.Key, creq.RangeEnd)
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, auth.ErrInvalidAuthToken):
		return rpctypes.ErrGRPCInvalidAuthToken.Error()
	case errors.Is(err, auth.ErrAuthOldRevision):
		return rpctypes.ErrGRPCAuthOldRevision.Error()
	case errors.Is(err, auth.ErrUserEmpty):
		return rpctypes.ErrGRPCUserEmpty.Error()
	default:
		if !errors.Is(err, auth.ErrPermissionDenied) {
			s.lg.Error("unexpected error code", "error", err)
		}
		return rpctypes.ErrGRPCPermissionDenied.Error()
	}
}

// authErrors maps etcd's auth errors onto its wire errors, as etcd's
// v3rpc togRPCError.
var authErrors = map[error]error{
	auth.ErrRootUserNotExist:     rpctypes.ErrGRPCRootUserNotExist,
	auth.ErrRootRoleNotExist:     rpctypes.ErrGRPCRootRoleNotExist,
	auth.ErrUserAlreadyExist:     rpctypes.ErrGRPCUserAlreadyExist,
	auth.ErrUserEmpty:            rpctypes.ErrGRPCUserEmpty,
	auth.ErrUserNotFound:         rpctypes.ErrGRPCUserNotFound,
	auth.ErrRoleAlreadyExist:     rpctypes.ErrGRPCRoleAlreadyExist,
	auth.ErrRoleNotFound:         rpctypes.ErrGRPCRoleNotFound,
	auth.ErrRoleEmpty:            rpctypes.ErrGRPCRoleEmpty,
	auth.ErrAuthFailed:           rpctypes.ErrGRPCAuthFailed,
	auth.ErrPermissionNotGiven:   rpctypes.ErrGRPCPermissionNotGiven,
	auth.ErrPermissionDenied:     rpctypes.ErrGRPCPermissionDenied,
	auth.ErrRoleNotGranted:       rpctypes.ErrGRPCRoleNotGranted,
	auth.ErrPermissionNotGranted: rpctypes.ErrGRPCPermissionNotGranted,
	auth.ErrAuthNotEnabled:       rpctypes.ErrGRPCAuthNotEnabled,
	auth.ErrInvalidAuthToken:     rpctypes.ErrGRPCInvalidAuthToken,
	auth.ErrInvalidAuthMgmt:      rpctypes.ErrGRPCInvalidAuthMgmt,
	auth.ErrAuthOldRevision:      rpctypes.ErrGRPCAuthOldRevision,
	// ErrNoPasswordUser is not in etcd's map: it reaches the client as
	// an unknown error, as with etcd.
}

// authError is err on the wire: etcd's error for an auth error, err
// itself otherwise.
func authError(err error) error {
	if e, ok := authErrors[err]; ok {
		return e
	}
	return err
}

// The apply-time checks, etcd's authApplierV3 (etcdserver/apply/
// apply_auth.go). leaseKeys returns the keys attached to a lease (none if
// it does not exist).

// needAdminPermission is etcd's: the auth requests only root may make.
func needAdminPermission(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthStatus != nil ||
		r.AuthUserAdd != nil || r.AuthUserDelete != nil || r.AuthUserChangePassword != nil ||
		r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil || r.AuthRoleAdd != nil ||
		r.AuthRoleGrantPermission != nil || r.AuthRoleRevokePermission != nil || r.AuthRoleDelete != nil ||
		r.AuthUserList != nil || r.AuthRoleList != nil
}

func checkPutAuth(as auth.AuthStore, ai *auth.AuthInfo, leaseKeys func(int64) []string, r *pb.PutRequest) error {
	if err := as.IsPutPermitted(ai, r.Key); err != nil {
		return err
	}
	// A lease already attached to a key this user cannot write cannot be
	// revoked by the user, so attaching it to another key is refused.
	if err := checkLeasePuts(as, ai, leaseKeys, r.Lease); err != nil {
		return err
	}
	if r.PrevKv {
		return as.IsRangePermitted(ai, r.Key, nil)
	}
	return nil
}

func checkDeleteAuth(as auth.AuthStore, ai *auth.AuthInfo, r *pb.DeleteRangeRequest) error {
	if err := as.IsDeleteRangePermitted(ai, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return as.IsRangePermitted(ai, r.Key, r.RangeEnd)
	}
	return nil
}

// checkTxnAuth is etcd's CheckTxnAuth: every compare is a read, every op
// checked as on its own.
func checkTxnAuth(as auth.AuthStore, ai *auth.AuthInfo, leaseKeys func(int64) []string, rt *pb.TxnRequest) error {
	for _, c := range rt.Compare {
		if err := as.IsRangePermitted(ai, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{rt.Success, rt.Failure} {
		for _, op := range ops {
			var err error
			switch tv := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				if tv.RequestRange != nil {
					err = as.IsRangePermitted(ai, tv.RequestRange.Key, tv.RequestRange.RangeEnd)
				}
			case *pb.RequestOp_RequestPut:
				if tv.RequestPut != nil {
					err = checkPutAuth(as, ai, leaseKeys, tv.RequestPut)
				}
			case *pb.RequestOp_RequestDeleteRange:
				if d := tv.RequestDeleteRange; d != nil {
					if d.PrevKv {
						err = as.IsRangePermitted(ai, d.Key, d.RangeEnd)
					}
					if err == nil {
						err = as.IsDeleteRangePermitted(ai, d.Key, d.RangeEnd)
					}
				}
			case *pb.RequestOp_RequestTxn:
				if tv.RequestTxn != nil {
					err = checkTxnAuth(as, ai, leaseKeys, tv.RequestTxn)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLeasePuts is etcd's: unless admin, the user must be permitted to
// write every key attached to the lease.
func checkLeasePuts(as auth.AuthStore, ai *auth.AuthInfo, leaseKeys func(int64) []string, id int64) error {
	if id == 0 {
		return nil
	}
	keys := leaseKeys(id)
	if len(keys) == 0 {
		return nil
	}
	if as.IsAdminPermitted(ai) == nil {
		return nil
	}
	for _, k := range keys {
		if err := as.IsPutPermitted(ai, []byte(k)); err != nil {
			return err
		}
	}
	return nil
}
