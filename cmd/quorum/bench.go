package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/bench"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	cfg := bench.DefaultConfig()
	var (
		servers     []string
		images      []string
		backendName string
		faults      string
		logLevel    string
		tlsModes    []bool
		members     *memberFlags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark throughput, latency and availability per cluster size; A/B against another server",
		Long: `Benchmark clusters of each size: throughput, latency (p50..max),
errors, members' CPU and peak RSS per (workload, clients) cell, then each
fault repeated under a steady write load (unavailability window, writable
or not, the quorum table measured beside predicted).

With no flags: quorumd built from this checkout; sizes 1,3,5,7; put with
1, 100 and 1000 clients (min(100, clients) connections), 8-byte keys,
256-byte values, 1s warm-up + 10s per cell; every fault 3 times with a 10s
bound. On a 2-core machine this takes about 6 minutes (measured: 5m53s
with quorumd; see docs/benchmarks.md).

etcd's published benchmark shape, A/B against etcd, 3 rounds interleaved:

  quorum bench --server-binary etcd=tools/bin/etcd --server-binary quorumd=/path/to/quorumd \
    --sizes 3 --workload put,range-linearizable --clients 1,1000 --duration 30s --rounds 3

Watch and memory (workloads watch, watch-memory, lease-memory):

  quorum bench --server-binary etcd=tools/bin/etcd --server-binary quorumd=/path/to/quorumd \
    --sizes 3 --workload watch --watchers 1,100,10000 --faults none
  quorum bench ... --workload put --clients 1000 --idle-watchers 0,10000 --faults none
  quorum bench ... --workload watch-memory,lease-memory --faults none

The first --server-binary is the baseline of the ratios (other/first).
With --backend docker every member is a container (nothing is pulled:
quorumd is built static from this checkout, a --server-binary must be
static, or --image LABEL=IMAGE names an image already in the engine),
with the same flags and figures; member CPU and RSS are read from the
host's /proc.
The run is stored in STORE/bench/<timestamp>/ (STORE/latest points at it):
results.json (schema quorum.bench/v1), report.html, plots/, clusters/*/logs.

Exit code: 0 done, 2 harness error (or a cluster failed; results are partial).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lg, err := newLogger(stderr, logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Logger = lg
			cfg.Progress = stderr
			if err := members.apply(); err != nil {
				return &exitError{2, err}
			}
			cfg.Command = strings.Join(append([]string{"quorum"}, os.Args[1:]...), " ")
			cfg.Faults = nil
			if faults != "none" && faults != "" {
				for _, f := range strings.Split(faults, ",") {
					cfg.Faults = append(cfg.Faults, strings.TrimSpace(f))
				}
			}
			backend, err := newBackend(backendName)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Servers, err = benchServers(cmd.Context(), backendName, servers, images, cfg.Store, stderr)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Servers = withTLS(cfg.Servers, tlsModes)
			out, err := bench.Run(cmd.Context(), cfg, backend)
			if out != nil {
				fmt.Fprint(stdout, bench.FormatSummary(out.Results, out.Dir))
			}
			if err != nil {
				return &exitError{2, err}
			}
			if len(out.Results.Errors) > 0 {
				return &exitError{2, fmt.Errorf("%d cluster(s) failed; results are partial", len(out.Results.Errors))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Sizes, "sizes", cfg.Sizes, "cluster sizes")
	f.StringSliceVar(&cfg.Workloads, "workload", cfg.Workloads, "workloads: "+strings.Join(bench.Workloads(), ", "))
	f.IntSliceVar(&cfg.Clients, "clients", cfg.Clients, "client counts (concurrent request loops)")
	f.IntVar(&cfg.Conns, "conns", cfg.Conns, "gRPC connections shared by the clients (0: min(100, clients))")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each cell")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before each cell")
	f.IntVar(&cfg.KeySize, "key-size", cfg.KeySize, "key size in bytes")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "value size in bytes")
	f.IntVar(&cfg.KeySpace, "key-space", cfg.KeySpace, "distinct keys (preloaded for reads)")
	f.DurationVar(&cfg.OpTimeout, "request-timeout", cfg.OpTimeout, "timeout of each load request (counted as an error)")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; servers run interleaved in each")
	f.StringVar(&faults, "faults", strings.Join(cfg.Faults, ","), "availability faults, or none: "+strings.Join(bench.FaultNames(), ", "))
	f.IntVar(&cfg.FaultReps, "fault-reps", cfg.FaultReps, "repetitions of each fault per round (0: no availability part)")
	f.DurationVar(&cfg.FaultWait, "fault-wait", cfg.FaultWait, "bounded wait for a write after a fault; none acknowledged = not writable")
	f.BoolSliceVar(&tlsModes, "tls", []bool{false}, "TLS on client and peer links with client certificates (fresh certificates per cluster); --tls=false,true runs each server both ways, interleaved, the TLS one labelled LABEL-tls")
	f.StringArrayVar(&servers, "server-binary", nil, "LABEL=PATH of a server taking etcd's flags; repeat for A/B (default: quorumd built from this checkout; static for --backend docker)")
	f.StringArrayVar(&images, "image", nil, "with --backend docker: LABEL=IMAGE of a server image already in the engine; repeat for A/B")
	f.StringVar(&backendName, "backend", "local", "where members run: local (processes on loopback) or docker (containers on a Docker network of the run's own; nothing is pulled)")
	f.IntSliceVar(&cfg.Watchers, "watchers", cfg.Watchers, "watch workload: watcher counts (watchers of the whole key space), one cell each")
	f.IntVar(&cfg.WatchConns, "watch-conns", cfg.WatchConns, "gRPC connections (one watch stream each) the watchers are spread over (0: min(watchers, 10))")
	f.IntVar(&cfg.WatchPutRate, "watch-put-rate", cfg.WatchPutRate, "watch workload: puts per second (open loop)")
	f.IntVar(&cfg.WatchEventRate, "watch-event-rate", cfg.WatchEventRate, "watch workload: cap on events offered per second; the put rate is lowered to it/watchers (0: no cap)")
	f.IntSliceVar(&cfg.IdleWatchers, "idle-watchers", cfg.IdleWatchers, "idle watchers held open during each request-loop cell, one cell per count (0: none), in the given order in odd rounds and reversed in even ones; each watches its own key, which no workload writes")
	f.IntVar(&cfg.MemoryWatchers, "memory-watchers", cfg.MemoryWatchers, "watch-memory workload: idle watchers to open")
	f.IntVar(&cfg.MemoryLeases, "memory-leases", cfg.MemoryLeases, "lease-memory workload: leases to grant")
	f.DurationVar(&cfg.MemorySettle, "memory-settle", cfg.MemorySettle, "memory workloads: bound on the wait for the members' RSS to settle")
	f.StringVar(&cfg.Store, "store", cfg.Store, "directory holding the runs")
	members = bindMemberFlags(f, &cfg.Members)
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of keys, values and mixed choices")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	cmd.AddCommand(newBenchCompareCmd(stdout), newBenchReportCmd(stdout))
	return cmd
}

// benchServers parses --server-binary and --image values (in that order),
// building quorumd from this checkout when there are none.
func benchServers(ctx context.Context, backend string, binaries, images []string, store string, progress io.Writer) ([]bench.Server, error) {
	var specs []bench.Server
	for _, s := range binaries {
		srv, err := bench.ParseServer(s)
		if err != nil {
			return nil, fmt.Errorf("--server-binary: %w", err)
		}
		specs = append(specs, srv)
	}
	for _, s := range images {
		srv, err := bench.ParseServer(s)
		if err != nil {
			return nil, fmt.Errorf("--image: %w", err)
		}
		specs = append(specs, bench.Server{Label: srv.Label, Image: srv.Binary})
	}
	if len(specs) == 0 {
		specs = []bench.Server{{}}
	}
	out := make([]bench.Server, 0, len(specs))
	for _, spec := range specs {
		srv, err := resolveServer(ctx, backend, spec, store, progress)
		if err != nil && spec.Label != "" {
			err = fmt.Errorf("server %s: %w", spec.Label, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, srv)
	}
	return out, nil
}

func newBenchCompareCmd(stdout io.Writer) *cobra.Command {
	var threshold string
	cmd := &cobra.Command{
		Use:   "compare BASELINE.json NEW.json",
		Short: "Compare two bench results side by side; exit 1 when a figure got worse beyond the threshold",
		Long: `Put every figure of a baseline results.json beside the new run's: throughput,
p50 and p99 latency per (server, workload, size, clients), median
unavailability and writability per (server, size, fault). A run directory
may be given instead of its results.json.

Exit code: 0 no regression, 1 a figure got worse by more than --threshold
(throughput down, latency or unavailability up, writability lost), 2 error.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			th, err := bench.ParseThreshold(threshold)
			if err != nil {
				return &exitError{2, fmt.Errorf("--threshold: %w", err)}
			}
			base, err := bench.LoadResults(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			next, err := bench.LoadResults(args[1])
			if err != nil {
				return &exitError{2, err}
			}
			c := bench.Compare(base, next, th)
			fmt.Fprint(stdout, c.Format())
			if c.Regressions > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&threshold, "threshold", "10%", "relative change beyond which a figure counts as worse (10% or 0.1)")
	return cmd
}

func newBenchReportCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Rebuild a bench run's summary, plots and report.html from its results.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bench.Rebuild(args[0]); err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintln(stdout, filepath.Join(args[0], bench.ReportFile))
			return nil
		},
	}
}

// withTLS returns each server once per mode of --tls, in that order; a
// server run with TLS is labelled LABEL-tls when it also runs without.
func withTLS(servers []bench.Server, modes []bool) []bench.Server {
	plain := false
	for _, m := range modes {
		plain = plain || !m
	}
	var out []bench.Server
	for _, s := range servers {
		for _, m := range modes {
			v := s
			v.TLS = m
			if m && plain {
				v.Label += "-tls"
			}
			out = append(out, v)
		}
	}
	return out
}
