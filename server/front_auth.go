package server

import (
	"context"
	"encoding/base64"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/auth"
	"golang.org/x/crypto/bcrypt"
)

// authServer implements etcd's Auth service (etcd's v3rpc AuthServer over
// EtcdServer's Authenticator): every request goes through Raft and is
// applied to etcd's auth store by the applier (auth.go). Passwords are
// hashed here, before proposing, so the log holds only hashes; the
// password of Authenticate is checked here and never proposed.
type authServer struct {
	pb.UnimplementedAuthServer
	s *Server
}

var _ pb.AuthServer = (*authServer)(nil)

// proposeAuth proposes r and returns its response with the header set, or
// etcd's error.
func proposeAuth[T interface{ *R }, R any](ctx context.Context, s *Server, r *pb.InternalRaftRequest, setHeader func(T, *pb.ResponseHeader)) (T, error) {
	res, err := s.propose(ctx, r)
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, togRPCError(res.err)
	}
	resp := res.resp.(T)
	setHeader(resp, s.header(res.rev))
	return resp, nil
}

func (a *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthEnable: r}, func(x *pb.AuthEnableResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthDisable: r}, func(x *pb.AuthDisableResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthStatus: r}, func(x *pb.AuthStatusResponse, h *pb.ResponseHeader) { x.Header = h })
}

// Authenticate is etcd's: a linearizable read, the password checked here
// against the auth revision of that moment, then an
// InternalAuthenticateRequest (no password, a fresh simple-token prefix)
// through Raft; if the auth state changed between the check and the apply,
// again.
func (a *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	s := a.s
	if err := s.linearizableReadNotify(ctx); err != nil {
		return nil, err
	}
	for {
		checked, err := s.auth.CheckPassword(r.Name, r.Password)
		if err != nil {
			if !errors.Is(err, auth.ErrAuthNotEnabled) {
				s.lg.Warn("invalid authentication was requested", "user", r.Name, "error", err.Error())
			}
			return nil, authError(err)
		}
		prefix, err := s.auth.GenTokenPrefix()
		if err != nil {
			return nil, err
		}
		resp, err := proposeAuth(ctx, s, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: prefix}},
			func(x *pb.AuthenticateResponse, h *pb.ResponseHeader) { x.Header = h })
		if err != nil {
			return nil, err
		}
		if checked == s.auth.Revision() {
			return resp, nil
		}
		s.lg.Info("revision when password checked became stale; retrying")
	}
}

func (a *authServer) hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), a.s.auth.BcryptCost())
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

func (a *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	req := *r
	if req.Options == nil || !req.Options.NoPassword {
		h, err := a.hash(req.Password)
		if err != nil {
			return nil, err
		}
		req.HashedPassword, req.Password = h, ""
	}
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserAdd: &req}, func(x *pb.AuthUserAddResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserDelete: r}, func(x *pb.AuthUserDeleteResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	req := *r
	if req.Password != "" {
		h, err := a.hash(req.Password)
		if err != nil {
			return nil, err
		}
		req.HashedPassword, req.Password = h, ""
	}
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserChangePassword: &req}, func(x *pb.AuthUserChangePasswordResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserGrantRole: r}, func(x *pb.AuthUserGrantRoleResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserGet: r}, func(x *pb.AuthUserGetResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserList: r}, func(x *pb.AuthUserListResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthUserRevokeRole: r}, func(x *pb.AuthUserRevokeRoleResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleAdd: r}, func(x *pb.AuthRoleAddResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleGrantPermission: r}, func(x *pb.AuthRoleGrantPermissionResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleGet: r}, func(x *pb.AuthRoleGetResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleList: r}, func(x *pb.AuthRoleListResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleRevokePermission: r}, func(x *pb.AuthRoleRevokePermissionResponse, h *pb.ResponseHeader) { x.Header = h })
}

func (a *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return proposeAuth(ctx, a.s, &pb.InternalRaftRequest{AuthRoleDelete: r}, func(x *pb.AuthRoleDeleteResponse, h *pb.ResponseHeader) { x.Header = h })
}
