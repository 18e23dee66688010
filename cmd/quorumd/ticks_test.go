package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A starting member fast-forwards its election ticks as etcd's do: a
// single member always, by election-1 ticks; a member of three once its
// streams to both peers are up, by election-2 ticks; none with
// --initial-election-tick-advance=false. Both servers log the same lines.
func TestInitialElectionTickAdvanceAsEtcd(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	fields := []string{"forward-ticks", "forward-duration", "election-ticks", "election-timeout", "active-remote-members"}
	msgs := map[string]bool{"started as single-node; fast-forwarding election ticks": true, "skipping initial election tick advance": true,
		"starting initial election tick advance": true, "initialized peer connections; fast-forwarding election ticks": true}
	for _, tt := range []struct {
		name  string
		size  int
		extra []string
	}{{"one member", 1, nil}, {"three members", 3, nil}, {"three members, no advance", 3, []string{"--initial-election-tick-advance=false"}}} {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
				t.Run(srv.name, func(t *testing.T) {
					dir, base := t.TempDir(), freeBase(t)
					var initial []string
					for i := 1; i <= tt.size; i++ {
						initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, base+i*10+1))
					}
					var argv [][]string
					var eps []string
					for i := 1; i <= tt.size; i++ {
						u := func(off int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+i*10+off) }
						argv = append(argv, append([]string{fmt.Sprintf("--name=m%d", i), "--data-dir=" + filepath.Join(dir, fmt.Sprintf("m%d", i)),
							"--listen-client-urls=" + u(0), "--advertise-client-urls=" + u(0),
							"--listen-peer-urls=" + u(1), "--initial-advertise-peer-urls=" + u(1),
							"--initial-cluster=" + strings.Join(initial, ",")}, tt.extra...))
						eps = append(eps, u(0)[len("http://"):])
					}
					startMembers(t, srv.bin, dir, argv)
					putGet(t, eps, nil)
					if tt.size > 1 && tt.extra == nil {
						time.Sleep(time.Second) // the advance follows the peer streams, not the first write
					}
					for i := 1; i <= tt.size; i++ {
						b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("member%d.log", i)))
						if err != nil {
							t.Fatal(err)
						}
						for _, l := range logLines(t, string(b)) {
							msg, _ := l["msg"].(string)
							if !msgs[msg] {
								continue
							}
							line := fmt.Sprintf("member %d: %s", i, msg)
							for _, f := range fields {
								if v, ok := l[f]; ok {
									line += fmt.Sprintf(" %s=%v", f, v)
								}
							}
							got[srv.name] = append(got[srv.name], line)
						}
					}
				})
			}
			if e, q := strings.Join(got["etcd"], "\n"), strings.Join(got["quorumd"], "\n"); e != q || q == "" {
				t.Errorf("tick advance lines:\nquorumd:\n%s\netcd:\n%s", q, e)
			}
			t.Logf("etcd's lines:\n%s", strings.Join(got["etcd"], "\n"))
		})
	}
}
