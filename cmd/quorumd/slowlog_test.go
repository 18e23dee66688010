package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// requestIDs are the IDs in a logged internal request's header and the
// remote port, which differ between two runs.
var requestIDs = regexp.MustCompile(`ID:[0-9]+|127\.0\.0\.1:[0-9]+`)

// With --warning-apply-duration and --warning-unary-request-duration at
// 1ns every request is slow: quorumd logs etcd's "apply request took too
// long" for applied requests and read-only ranges and txns, "failed to
// apply request" for a failed one, and "request stats" for each unary
// RPC, with etcd's fields and contents (put values redacted), as a real
// etcd does for the same requests.
func TestSlowRequestWarningsAsEtcd(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	got := map[string][]string{}
	for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
		t.Run(srv.name, func(t *testing.T) {
			dir := t.TempDir()
			cli := oneMember(t, srv.bin, dir, "slow-warm-up", "", "--warning-apply-duration=1ns", "--warning-unary-request-duration=1ns")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "slow", "secret-value"); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Get(ctx, "slow"); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("slow"), "=", 1)).Then(clientv3.OpGet("slow")).Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := cli.Put(ctx, "slow-leased", "v", clientv3.WithLease(0x5151)); err == nil {
				t.Fatal("put with a missing lease succeeded")
			}
			time.Sleep(200 * time.Millisecond) // the last lines are written after the answers
			b, err := os.ReadFile(filepath.Join(dir, "member1.log"))
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range logLines(t, string(b)) {
				msg, _ := l["msg"].(string)
				var fields []string
				switch msg {
				case "apply request took too long", "failed to apply request":
					fields = []string{"level", "prefix", "request", "response", "error"}
				case "request stats":
					// Not "response size": it holds the header's cluster and
					// member IDs, whose varints differ in length between runs.
					fields = []string{"level", "response type", "request count", "request size", "response count", "request content"}
				default:
					continue
				}
				line := msg
				for _, f := range fields {
					if v, ok := l[f]; ok {
						line += fmt.Sprintf(" %s=%v", f, v)
					}
				}
				if !strings.Contains(line, "slow") || strings.Contains(line, "slow-warm-up") {
					continue // the member's own requests (publish, cluster version) and the warm-up
				}
				lines = append(lines, requestIDs.ReplaceAllString(line, "-"))
			}
			got[srv.name] = slices.Sorted(slices.Values(lines))
			for _, l := range lines {
				if strings.Contains(l, "secret-value") {
					t.Errorf("a put's value is logged: %s", l)
				}
			}
		})
	}
	e, q := got["etcd"], got["quorumd"]
	if strings.Join(e, "\n") != strings.Join(q, "\n") || len(q) == 0 {
		t.Errorf("slow and failed request lines:\nquorumd:\n%s\netcd:\n%s", strings.Join(q, "\n"), strings.Join(e, "\n"))
	}
	t.Logf("etcd's lines:\n%s", strings.Join(e, "\n"))
}

// oneMember starts a one-member cluster of bin in dir with extra flags and
// returns a client of it once a write through it succeeds with key=value
// (the member has elected itself). The member stops at the end of t.
func oneMember(t *testing.T, bin, dir, key, value string, extra ...string) *clientv3.Client {
	t.Helper()
	base := freeBase(t)
	client := fmt.Sprintf("http://127.0.0.1:%d", base+10)
	peer := fmt.Sprintf("http://127.0.0.1:%d", base+11)
	startMembers(t, bin, dir, [][]string{append([]string{"--name=m1", "--data-dir=" + filepath.Join(dir, "m1"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer, "--initial-cluster=m1=" + peer}, extra...)})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err = cli.Put(pctx, key, value)
		pcancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s never took a write: %v", bin, err)
	}
	return cli
}
