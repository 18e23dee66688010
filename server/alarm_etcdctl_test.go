package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// startRealEtcdWith is startRealEtcd with extra flags; "" without
// tools/bin/etcd.
func startRealEtcdWith(t *testing.T, extra ...string) string {
	t.Helper()
	bin, _ := filepath.Abs("../tools/bin/etcd")
	if _, err := os.Stat(bin); err != nil {
		return ""
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", port())
	peer := fmt.Sprintf("http://127.0.0.1:%d", port())
	cmd := exec.Command(bin, append([]string{"--name", "n1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "n1=" + peer, "--log-level", "error"}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	cli := clientFor(t, client)
	eventually(t, 15*time.Second, "etcd ready", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "ready")
		return err
	})
	return client
}

func clientFor(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// fillUntilNoSpace puts 1000-byte values under distinct keys until one is
// refused with "database space exceeded"; it returns how many were
// acknowledged.
func fillUntilNoSpace(t *testing.T, cli *clientv3.Client) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := strings.Repeat("v", 1000)
	for i := 0; i < 5000; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("fill/%04d", i), value)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return i
		}
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	t.Fatal("5000 puts and no database space exceeded")
	return 0
}

var (
	memberIDRE = regexp.MustCompile(`memberID:\d+`)
	tookRE     = regexp.MustCompile(`took [0-9.]+[a-zµ]+`)
)

// The etcdctl maintenance commands print what they print against a real
// etcd with the same quota story (member IDs, endpoints and durations
// aside): a full database's `alarm list`, the refused put and txn, the
// alarm in `endpoint status`'s errors, `alarm disarm`, the alarm raised
// again by the next write while the file is still full, `defrag`,
// `compact`, and writes once defragmented and disarmed.
func TestEtcdctlAlarmAndDefragMatchEtcd(t *testing.T) {
	etcd := startRealEtcdWith(t, "--quota-backend-bytes=400000")
	if etcd == "" {
		t.Skip("no tools/bin/etcd to compare with (run bash tools/build.sh)")
	}
	tc := startCluster(t, 1, "--quota-backend-bytes=400000")
	tc.waitHealthy()
	q := tc.Endpoints()[0]

	filled := map[string]int{}
	script := func(ep string) string {
		cli := clientFor(t, ep)
		filled[ep] = fillUntilNoSpace(t, cli)
		var b strings.Builder
		run := func(stdin string, args ...string) {
			out, err := ctlStdin(t, []string{ep}, stdin, args...)
			var kept []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, `{"level"`) {
					continue // the client's retry log lines
				}
				l = strings.ReplaceAll(l, strings.TrimPrefix(ep, "http://"), "EP")
				l = strings.ReplaceAll(l, ep, "EP")
				kept = append(kept, tookRE.ReplaceAllString(memberIDRE.ReplaceAllString(l, "memberID:ID"), "took T"))
			}
			fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), strings.Join(kept, "\n"))
			if err != nil {
				fmt.Fprintf(&b, "exit: %v\n", err)
			}
		}
		run("", "alarm", "list")
		// Status's errors, as `endpoint status -w json` carries them.
		errs := endpointStatus(t, []string{ep})[0].Errors
		fmt.Fprintf(&b, "status errors: %q\n", memberIDRE.ReplaceAllString(strings.Join(errs, "|"), "memberID:ID"))
		run("", "put", "x", "y")
		run("\nput x y\n\n\n", "txn")
		run("", "get", "fill/0000", "--print-value-only=false", "--keys-only")
		// Every fill key: etcd acknowledges from 278 to 415 puts before the
		// alarm (its bolt file grows by batch commits, which load on the
		// machine changes), and with some of them left its defragmented
		// file was sometimes still over the quota. The count deleted is
		// each server's own, so it is printed as ALL when it is that.
		delFrom := b.Len()
		run("", "del", "fill/", "--prefix")
		deleted := regexp.MustCompile(`(?m)^`+fmt.Sprint(filled[ep])+`$`).ReplaceAllString(b.String()[delFrom:], "ALL")
		kept := b.String()[:delFrom]
		b.Reset()
		b.WriteString(kept + deleted)
		run("", "alarm", "disarm")
		run("", "alarm", "list")
		run("", "put", "x", "y")
		run("", "alarm", "list")
		r, err := cli.Get(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		// The revision differs: etcd's bolt file and quorumd's model of it
		// fill up after different numbers of puts.
		compactRE := regexp.MustCompile(`\b` + fmt.Sprint(r.Header.Revision) + `\b`)
		before := b.Len()
		// --physical: etcd answers a plain compact before its backend has
		// dropped the revisions, and a defrag must not overtake it.
		run("", "compact", fmt.Sprint(r.Header.Revision), "--physical")
		tail := compactRE.ReplaceAllString(b.String()[before:], "REV")
		rest := b.String()[:before]
		b.Reset()
		b.WriteString(rest + tail)
		run("", "defrag")
		run("", "alarm", "disarm")
		run("", "alarm", "disarm")
		run("", "put", "x", "y")
		run("", "alarm", "list")
		return b.String()
	}
	want, got := script(etcd), script(q)
	t.Logf("puts of 1000 bytes acknowledged under a quota of 400000 bytes: etcd %d, quorumd %d", filled[etcd], filled[q])
	t.Logf("transcript:\n%s", got)
	if got != want {
		t.Errorf("etcdctl against quorumd printed:\n%s\netcd prints:\n%s\ndiff (- etcd, + quorumd):\n%s", got, want, lineDiff(want, got))
	}
}

// With auth enabled the maintenance commands are refused and allowed as
// etcd's: a user without the root role lists alarms but cannot disarm
// them, defragment or hash; no user at all cannot even list; root does
// everything. Outputs compared with a real etcd's (endpoints, durations
// aside).
func TestEtcdctlMaintenanceAuthMatchesEtcd(t *testing.T) {
	etcd := startRealEtcdWith(t)
	if etcd == "" {
		t.Skip("no tools/bin/etcd to compare with (run bash tools/build.sh)")
	}
	tc := startCluster(t, 1)
	tc.waitHealthy()
	script := func(ep string) string {
		var b strings.Builder
		run := func(args ...string) {
			out, err := ctl(t, []string{ep}, args...)
			var kept []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, `{"level"`) {
					continue
				}
				l = strings.ReplaceAll(l, strings.TrimPrefix(ep, "http://"), "EP")
				l = strings.ReplaceAll(l, ep, "EP")
				kept = append(kept, tookRE.ReplaceAllString(l, "took T"))
			}
			fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), strings.Join(kept, "\n"))
			if err != nil {
				fmt.Fprintf(&b, "exit: %v\n", err)
			}
		}
		run("put", "k", "v")
		run("user", "add", "root:rootpw")
		run("user", "add", "alice:alicepw")
		run("user", "grant-role", "root", "root")
		run("auth", "enable")
		run("alarm", "list")
		for _, who := range []string{"--user=alice:alicepw", "--user=root:rootpw"} {
			run(who, "alarm", "list")
			run(who, "alarm", "disarm")
			run(who, "defrag")
			run(who, "endpoint", "hashkv")
		}
		run("--user=root:rootpw", "auth", "disable")
		return b.String()
	}
	want, got := script(etcd), script(tc.Endpoints()[0])
	t.Logf("transcript:\n%s", got)
	if got != want {
		t.Errorf("etcdctl against quorumd printed:\n%s\netcd prints:\n%s\ndiff (- etcd, + quorumd):\n%s", got, want, lineDiff(want, got))
	}
}
