package harness_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/docker"
	"github.com/quorum-kv/quorum/harness"
)

// noPull is the engine's client with every pull refused and counted.
type noPull struct {
	client.APIClient
	pulls atomic.Int32
}

func (c *noPull) ImagePull(ctx context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	c.pulls.Add(1)
	return nil, errors.New("test: pulling " + ref + " is forbidden")
}

// A latency nemesis is refused before the run on the docker backend (no
// LinkShaper), with a message naming the missing capability.
func TestDockerRefusesLatencyUpFront(t *testing.T) {
	cfg := shortConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	eng, bin := dockerQuorumd(ctx, t, cfg)
	cfg.Nemeses = "latency"
	cfg.TimeLimit = 5 * time.Second
	cfg.Server = cluster.Server{Label: "quorumd", Binary: bin}
	_, err := harness.Run(ctx, cfg, &docker.Backend{Engine: eng})
	if err == nil || !strings.Contains(err.Error(), "LinkShaper") {
		t.Fatalf("err = %v, want the latency nemesis refused", err)
	}
}

// dockerQuorumd connects to the Docker engine (skipping the test when there
// is none) and builds quorumd static for a FROM scratch image; the engine
// is closed when the test ends.
func dockerQuorumd(ctx context.Context, t *testing.T, cfg harness.Config) (*docker.Engine, string) {
	t.Helper()
	eng, err := docker.NewEngine(ctx, cfg.Logger, nil)
	if err != nil {
		t.Skipf("no Docker engine reachable: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	bin, err := docker.BuildStatic(ctx, "github.com/quorum-kv/quorum/cmd/quorumd", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return eng, bin
}

// quorum test --tls --backend docker: members in containers with the run's
// certificates copied in, every client over TLS with the client
// certificate, a leader partition (nftables in the members' namespaces,
// below TLS) and a leader kill; the run is valid and re-checks offline to
// the same verdict. Against quorumd and, when built, real etcd. Nothing is
// pulled, the engine holds no image but the ones we build, and nothing of
// either run is left in the engine.
func TestDockerTLSRunWithPartitionAndKillIsValidAndRechecksOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	eng, bin := dockerQuorumd(ctx, t, shortConfig(t))
	if os.Geteuid() != 0 {
		t.Skip("partitions in containers need root")
	}
	wrapped := &noPull{APIClient: eng.Client()}
	eng, err := docker.NewEngine(ctx, shortConfig(t).Logger, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	before, err := eng.Client().ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	had := map[string]bool{}
	for _, im := range before.Items {
		had[im.ID] = true
	}
	etcd, _ := filepath.Abs("../tools/bin/etcd")
	for _, srv := range []cluster.Server{{Label: "quorumd", Binary: bin}, {Label: "etcd", Binary: etcd}} {
		t.Run(srv.Label, func(t *testing.T) {
			if _, err := os.Stat(srv.Binary); err != nil {
				t.Skipf("no %s at %s (run: bash tools/build.sh)", srv.Label, srv.Binary)
			}
			cfg := shortConfig(t)
			srv.TLS = true
			cfg.Server = srv
			cfg.Members = cluster.MemberSettings{HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond, StopGrace: 2 * time.Second}
			cfg.Nemeses = "partition-leader,kill-leader"
			cfg.NemesisInterval = 2 * time.Second
			cfg.TimeLimit = 8 * time.Second
			backend := &docker.Backend{Engine: eng}
			out, err := harness.Run(ctx, cfg, backend)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if out.Results.Run.Backend != "docker" {
				t.Errorf("results say backend %q", out.Results.Run.Backend)
			}
			checkTLSRun(t, out)
			for _, name := range []string{"n1", "n2", "n3"} {
				b, err := os.ReadFile(filepath.Join(out.Dir, "logs", name+".log"))
				if err != nil || len(b) == 0 {
					t.Errorf("member log %s: %d bytes, %v", name, len(b), err)
				}
			}
			ids := backend.RunIDs()
			if len(ids) != 1 {
				t.Fatalf("backend started %d clusters (%v), want 1", len(ids), ids)
			}
			f := client.Filters{}.Add("label", docker.LabelRun+"="+ids[0])
			cs, _ := eng.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
			vs, _ := eng.Client().VolumeList(ctx, client.VolumeListOptions{Filters: f})
			ns, _ := eng.Client().NetworkList(ctx, client.NetworkListOptions{Filters: f})
			if len(cs.Items)+len(vs.Items)+len(ns.Items) != 0 {
				t.Errorf("run %q left %d containers, %d volumes, %d networks", ids[0], len(cs.Items), len(vs.Items), len(ns.Items))
			}
		})
	}
	if n := wrapped.pulls.Load(); n != 0 {
		t.Errorf("%d image pulls attempted", n)
	}
	after, err := eng.Client().ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range after.Items {
		if !had[im.ID] && im.Labels[docker.LabelImage] == "" {
			t.Errorf("image %s %v appeared and is not one we built", im.ID, im.RepoTags)
		}
	}
}
