package server

import (
	"sort"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/server/v3/auth"
)

// authBackend is etcd's auth.AuthBackend kept in memory: the users, the
// roles, the enabled flag and the auth revision that etcd keeps in its
// bolt file's auth buckets. etcd's auth.AuthStore, over it, does all of
// auth's logic; this type only stores.
//
// The applier goroutine is its only writer (through the AuthStore, while
// applying committed entries); the client front reads it concurrently
// through the AuthStore's permission checks. A RWMutex is the two kinds of
// transaction etcd's interface asks for (BatchTx Lock, ReadTx RLock).
// Every user and role is cloned on the way in and out, so no caller ever
// holds one that the store holds: a stored value is never changed in
// place, which makes a shallow copy of the maps (record) an immutable
// snapshot of the whole state.
type authBackend struct {
	mu       sync.RWMutex
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
}

var (
	_ auth.AuthBackend = (*authBackend)(nil)
	_ auth.AuthReadTx  = (*authReadTx)(nil)
	_ auth.AuthBatchTx = (*authBatchTx)(nil)
)

// authRecord is the auth state as the snapshot carries it. Users and roles
// are sorted by name.
type authRecord struct {
	Enabled  bool           `json:"enabled"`
	Revision uint64         `json:"revision"`
	Users    []*authpb.User `json:"users"`
	Roles    []*authpb.Role `json:"roles"`
}

// newAuthBackend holds what r holds (nil: auth disabled, no users, no
// roles, revision 0, as a new etcd member).
func newAuthBackend(r *authRecord) *authBackend {
	be := &authBackend{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	if r == nil {
		return be
	}
	be.enabled, be.revision = r.Enabled, r.Revision
	for _, u := range r.Users {
		be.users[string(u.Name)] = cloneUser(u)
	}
	for _, ro := range r.Roles {
		be.roles[string(ro.Name)] = cloneRole(ro)
	}
	return be
}

// record returns the whole state, sorted. The users and roles are the
// stored ones, which are never changed in place: the caller must not
// change them either. Any goroutine.
func (be *authBackend) record() *authRecord {
	be.mu.RLock()
	defer be.mu.RUnlock()
	r := &authRecord{Enabled: be.enabled, Revision: be.revision,
		Users: make([]*authpb.User, 0, len(be.users)), Roles: make([]*authpb.Role, 0, len(be.roles))}
	for _, u := range be.users {
		r.Users = append(r.Users, u)
	}
	for _, ro := range be.roles {
		r.Roles = append(r.Roles, ro)
	}
	sort.Slice(r.Users, func(i, j int) bool { return string(r.Users[i].Name) < string(r.Users[j].Name) })
	sort.Slice(r.Roles, func(i, j int) bool { return string(r.Roles[i].Name) < string(r.Roles[j].Name) })
	return r
}

// cloneUser and cloneRole copy through the wire encoding, as etcd's bolt
// backend decodes a fresh value on every read.
func cloneUser(u *authpb.User) *authpb.User {
	b, err := u.Marshal()
	if err != nil {
		panic(err)
	}
	var c authpb.User
	if err := c.Unmarshal(b); err != nil {
		panic(err)
	}
	return &c
}

func cloneRole(r *authpb.Role) *authpb.Role {
	b, err := r.Marshal()
	if err != nil {
		panic(err)
	}
	var c authpb.Role
	if err := c.Unmarshal(b); err != nil {
		panic(err)
	}
	return &c
}

// The buckets exist from the start, and nothing needs committing.
func (be *authBackend) CreateAuthBuckets() {}
func (be *authBackend) ForceCommit()       {}

func (be *authBackend) ReadTx() auth.AuthReadTx   { return &authReadTx{be} }
func (be *authBackend) BatchTx() auth.AuthBatchTx { return &authBatchTx{authReadTx{be}} }

func (be *authBackend) GetUser(name string) *authpb.User {
	be.mu.RLock()
	defer be.mu.RUnlock()
	return be.getUser(name)
}

func (be *authBackend) GetAllUsers() []*authpb.User {
	be.mu.RLock()
	defer be.mu.RUnlock()
	return be.allUsers()
}

func (be *authBackend) GetRole(name string) *authpb.Role {
	be.mu.RLock()
	defer be.mu.RUnlock()
	return be.getRole(name)
}

func (be *authBackend) GetAllRoles() []*authpb.Role {
	be.mu.RLock()
	defer be.mu.RUnlock()
	return be.allRoles()
}

// The unlocked readers; the caller holds be.mu.
func (be *authBackend) getUser(name string) *authpb.User {
	u, ok := be.users[name]
	if !ok {
		return nil
	}
	return cloneUser(u)
}

func (be *authBackend) getRole(name string) *authpb.Role {
	r, ok := be.roles[name]
	if !ok {
		return nil
	}
	return cloneRole(r)
}

// allUsers and allRoles are sorted by name, as bolt's buckets are.
func (be *authBackend) allUsers() []*authpb.User {
	names := make([]string, 0, len(be.users))
	for n := range be.users {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*authpb.User, len(names))
	for i, n := range names {
		out[i] = cloneUser(be.users[n])
	}
	return out
}

func (be *authBackend) allRoles() []*authpb.Role {
	names := make([]string, 0, len(be.roles))
	for n := range be.roles {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*authpb.Role, len(names))
	for i, n := range names {
		out[i] = cloneRole(be.roles[n])
	}
	return out
}

// authReadTx is a read transaction: RLock … RUnlock.
type authReadTx struct{ be *authBackend }

func (tx *authReadTx) RLock()                                 { tx.be.mu.RLock() }
func (tx *authReadTx) RUnlock()                               { tx.be.mu.RUnlock() }
func (tx *authReadTx) UnsafeReadAuthEnabled() bool            { return tx.be.enabled }
func (tx *authReadTx) UnsafeReadAuthRevision() uint64         { return tx.be.revision }
func (tx *authReadTx) UnsafeGetUser(name string) *authpb.User { return tx.be.getUser(name) }
func (tx *authReadTx) UnsafeGetRole(name string) *authpb.Role { return tx.be.getRole(name) }
func (tx *authReadTx) UnsafeGetAllUsers() []*authpb.User      { return tx.be.allUsers() }
func (tx *authReadTx) UnsafeGetAllRoles() []*authpb.Role      { return tx.be.allRoles() }

// authBatchTx is a write transaction: Lock … Unlock.
type authBatchTx struct{ authReadTx }

func (tx *authBatchTx) Lock()                           { tx.be.mu.Lock() }
func (tx *authBatchTx) Unlock()                         { tx.be.mu.Unlock() }
func (tx *authBatchTx) UnsafeSaveAuthEnabled(on bool)   { tx.be.enabled = on }
func (tx *authBatchTx) UnsafeSaveAuthRevision(r uint64) { tx.be.revision = r }
func (tx *authBatchTx) UnsafePutUser(u *authpb.User)    { tx.be.users[string(u.Name)] = cloneUser(u) }
func (tx *authBatchTx) UnsafeDeleteUser(name string)    { delete(tx.be.users, name) }
func (tx *authBatchTx) UnsafePutRole(r *authpb.Role)    { tx.be.roles[string(r.Name)] = cloneRole(r) }
func (tx *authBatchTx) UnsafeDeleteRole(name string)    { delete(tx.be.roles, name) }
