package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports"
)

// quorum test --tls on the local backend: every client, probe and final
// read over TLS with the run's client certificate, peer links through the
// fault proxies over TLS; a partition and a kill later the run is valid,
// and the saved history re-checks offline to the same verdict. Against
// quorumd and real etcd.
func TestShortTLSRunWithPartitionAndKillIsValidAndRechecksOffline(t *testing.T) {
	etcd, _ := filepath.Abs("../tools/bin/etcd")
	for _, srv := range []cluster.Server{{Label: "quorumd", Binary: quorumd}, {Label: "etcd", Binary: etcd}} {
		t.Run(srv.Label, func(t *testing.T) {
			if _, err := os.Stat(srv.Binary); err != nil {
				t.Skipf("no %s at %s (run: bash tools/build.sh)", srv.Label, srv.Binary)
			}
			cfg := shortConfig(t)
			srv.TLS = true
			cfg.Server = srv
			cfg.Nemeses = "partition-leader,kill-leader"
			cfg.NemesisInterval = 2 * time.Second
			cfg.TimeLimit = 8 * time.Second
			checkTLSRun(t, run(t, cfg))
		})
	}
}

// checkTLSRun checks a short TLS run with a leader partition and a leader
// kill: valid, both faults injected, enough operations over TLS, the same
// verdict offline, tls in results.json, the certificates in the run
// directory, and n1 started with etcd's TLS flags and https URLs.
func checkTLSRun(t *testing.T, out *harness.Outcome) {
	t.Helper()
	res := out.Results
	if res.Check.Verdict != checker.Valid {
		t.Fatalf("verdict %v (%s), want valid; run dir %s", res.Check.Verdict, res.Check.Reason, out.Dir)
	}
	if res.Check.Faults["kill-leader"] != 1 || res.Check.Faults["partition-leader"] != 1 {
		t.Errorf("faults injected: %v", res.Check.Faults)
	}
	events, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	oks := 0
	for _, e := range events {
		if e.Type == history.OK {
			oks++
		}
	}
	if oks < 20 {
		t.Errorf("only %d operations succeeded over TLS", oks)
	}
	again := checker.Check(context.Background(), events, checker.Options{Timeout: 30 * time.Second})
	if again.Verdict != res.Check.Verdict {
		t.Errorf("offline re-check: %v, run said %v", again.Verdict, res.Check.Verdict)
	}
	saved, err := reports.LoadResults(out.Dir)
	if err != nil || !saved.Run.TLS {
		t.Errorf("results.json: tls %v, %v", saved.Run.TLS, err)
	}
	for _, f := range []string{"certs/ca.crt", "certs/client.key", "certs/n1.key"} {
		if _, err := os.Stat(filepath.Join(out.Dir, f)); err != nil {
			t.Errorf("run dir lacks %s: %v", f, err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(out.Dir, "logs", "n1.log"))
	if !strings.Contains(string(log), "--peer-client-cert-auth") || !strings.Contains(string(log), "--advertise-client-urls https://") {
		t.Errorf("n1 was not started with TLS flags; log head: %.400s", log)
	}
}
