package server_test

import (
	"testing"
)

// The user, role and auth commands of etcdctl, verbatim, print what they
// print against etcd: users and roles added, listed, granted and revoked;
// auth enabled; a user with read on the /app/ prefix reads it and is
// refused writes and other keys with etcd's error; root does everything;
// auth disabled again.
func TestEtcdctlAuthMatchesEtcd(t *testing.T) {
	compareWithEtcd(t, "auth", func(e *ctlEnv) {
		e.do("put", "/app/a", "1")
		e.do("put", "/other", "2")
		e.do("user", "add", "root:rootpw")
		e.do("user", "add", "alice:alicepw")
		e.do("user", "add", "alice:again")
		e.do("role", "add", "reader")
		e.do("role", "add", "reader")
		e.do("role", "grant-permission", "reader", "--prefix=true", "read", "/app/")
		e.do("role", "grant-permission", "reader", "write", "/app/w")
		e.do("role", "get", "reader")
		e.do("role", "revoke-permission", "reader", "/app/w")
		e.do("role", "revoke-permission", "reader", "/nothing")
		e.do("role", "get", "reader")
		e.do("role", "list")
		e.do("user", "grant-role", "alice", "reader")
		e.do("user", "grant-role", "alice", "nosuchrole")
		e.do("user", "get", "alice")
		e.do("user", "get", "--detail", "alice")
		e.do("user", "list")
		e.do("auth", "status")
		e.do("auth", "enable")
		e.do("user", "grant-role", "root", "root")
		e.do("auth", "enable")
		e.do("--user=root:rootpw", "auth", "status")
		e.do("get", "/app/a")
		e.do("--user=alice:alicepw", "get", "/app/", "--prefix")
		e.do("--user=alice:alicepw", "get", "/other")
		e.do("--user=alice:alicepw", "put", "/app/a", "x")
		e.do("--user=alice:alicepw", "del", "/app/a")
		e.do("--user=alice:alicepw", "txn", "--interactive=false")
		e.do("--user=alice:wrong", "get", "/app/a")
		e.do("--user=alice:alicepw", "user", "list")
		e.do("--user=alice:alicepw", "user", "get", "alice")
		e.do("--user=alice:alicepw", "role", "get", "reader")
		e.do("--user=alice:alicepw", "role", "get", "root")
		e.do("--user=root:rootpw", "put", "/other", "3")
		e.do("--user=root:rootpw", "get", "", "--prefix")
		e.do("--user=root:rootpw", "user", "revoke-role", "alice", "reader")
		e.do("--user=root:rootpw", "user", "revoke-role", "alice", "reader")
		e.do("--user=alice:alicepw", "get", "/app/a")
		e.do("--user=root:rootpw", "user", "passwd", "alice", "--interactive=false")
		e.do("--user=root:rootpw", "role", "delete", "reader")
		e.do("--user=root:rootpw", "role", "delete", "root")
		e.do("--user=root:rootpw", "user", "delete", "root")
		e.do("--user=root:rootpw", "user", "delete", "alice")
		e.do("--user=root:rootpw", "user", "list")
		e.do("--user=root:rootpw", "auth", "disable")
		e.do("auth", "status")
		e.do("get", "/other")
		e.do("user", "delete", "root")
		e.do("auth", "enable")
	})
}
