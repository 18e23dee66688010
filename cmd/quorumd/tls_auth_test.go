package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quorum-kv/quorum/internal/pki"
)

// With --client-cert-auth and auth enabled, a request without a token is
// made by the user its client certificate names in its CN, as in etcd: on
// the seeds' 3-member TLS cluster, CN=root may do anything, CN=alice (read
// on /app/) reads /app/ and is denied writes and other keys, and a CN that
// is no user is refused. The same steps pass against real etcd.
func TestTLSClientCertificateCNIsTheAuthUser(t *testing.T) {
	skipShort(t)
	t.Run("quorumd", func(t *testing.T) { cnIsTheAuthUser(t, quorumdBinary) })
	etcd, _ := filepath.Abs("../../tools/bin/etcd")
	if _, err := os.Stat(etcd); err != nil {
		t.Logf("no real etcd at %s (bash tools/build.sh): compared with quorumd only", etcd)
		return
	}
	t.Run("etcd", func(t *testing.T) { cnIsTheAuthUser(t, etcd) })
}

func cnIsTheAuthUser(t *testing.T, bin string) {
	dir, base := t.TempDir(), freeBase(t)
	p := newTestPKI(t, filepath.Join(dir, "pki"))
	for _, cn := range []string{"alice", "mallory"} {
		pair, err := p.ca.Issue(pki.Request{CommonName: cn})
		if err != nil {
			t.Fatal(err)
		}
		if err := pair.Write(p.path(cn+".crt"), p.path(cn+".key")); err != nil {
			t.Fatal(err)
		}
	}
	var argv [][]string
	for i := 1; i <= 3; i++ {
		argv = append(argv, seedsArgs(p, dir, i, base))
	}
	startMembers(t, bin, dir, argv)
	ep := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", base+i*10) }
	root := tlsClient(t, p.clientTLS(t, "client"), ep(1), ep(2), ep(3)) // CN=root
	waitPut(t, root, "/app/x", "1")
	waitPut(t, root, "/other", "2")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error {
			_, err := root.UserAddWithOptions(ctx, "alice", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.RoleAdd(ctx, "app-reader"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "app-reader", "/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "alice", "app-reader"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}

	// root by its certificate, through every member.
	for i := 1; i <= 3; i++ {
		c := tlsClient(t, p.clientTLS(t, "client"), ep(i))
		if _, err := c.Put(ctx, fmt.Sprintf("/root-%d", i), "ok"); err != nil {
			t.Fatalf("CN=root put through member %d: %v", i, err)
		}
	}
	for i := 1; i <= 3; i++ {
		alice := tlsClient(t, p.clientTLS(t, "alice"), ep(i))
		if r, err := alice.Get(ctx, "/app/x"); err != nil || len(r.Kvs) != 1 {
			t.Fatalf("CN=alice get /app/x through member %d: %v %v", i, r, err)
		}
		if _, err := alice.Put(ctx, "/app/y", "no"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Fatalf("CN=alice put /app/y through member %d: %v, want permission denied", i, err)
		}
		if _, err := alice.Get(ctx, "/other"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Fatalf("CN=alice get /other through member %d: %v, want permission denied", i, err)
		}
	}
	mallory := tlsClient(t, p.clientTLS(t, "mallory"), ep(1))
	if _, err := mallory.Get(ctx, "/app/x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("CN=mallory, who is no user, get /app/x: %v, want permission denied", err)
	}
}
