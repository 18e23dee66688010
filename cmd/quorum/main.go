// Command quorum is Quorum's test harness and benchmark.
//
//	quorum test    run a Jepsen-style correctness test (default: 3 local quorumd members, register, kill+partition, 60s)
//	quorum check   re-check a saved run's history offline
//	quorum report  rebuild a saved run's report
//	quorum bench   benchmark throughput, latency and availability per cluster size (bench compare, bench report)
//
// Flags map onto harness.Config and bench.Config here only; --backend
// picks the cluster.Backend both start their clusters through.
//
// Exit codes: 0 valid, 1 invalid, 2 unknown or harness error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/checker/logscan"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/reports"
	"github.com/quorum-kv/quorum/rundir"
	"github.com/quorum-kv/quorum/workloads"
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintf(stderr, "quorum: %v\n", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(stderr, "quorum: %v\n", err)
		return 2
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "quorum",
		Short:         "Jepsen-style correctness tests and benchmarks for etcd-compatible clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newTestCmd(stdout, stderr), newCheckCmd(stdout), newReportCmd(stdout), newBenchCmd(stdout, stderr), newCertsCmd(stdout), newServeCmd(stdout), newZooCmd(stdout, stderr), newTestAllCmd(stdout, stderr))
	return root
}

func newTestCmd(stdout, stderr io.Writer) *cobra.Command {
	cfg := harness.DefaultConfig()
	var (
		serverBinary string
		tlsOn        bool
		image        string
		backendName  string
		logLevel     string
		seed         int64
		seedSet      bool
		mix          string
		testCount    int
		members      *memberFlags
	)
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run a correctness test: workload + faults, then check it (linearizability, set, list-append serializability, watch guarantees) and write a report",
		Long: `Run a Jepsen-style test against a fresh cluster.

With no flags: 3 local quorumd members (built from this checkout), the
register workload with 10 clients, faults kill-leader, partition-leader,
kill-one and partition-halves alternating with quiet periods of 5s, for 60s.

The run is stored in STORE/<test>/<timestamp>/ (STORE/latest points at it):
history.jsonl, results.json, report.html, plots/, logs/. The seed is printed
first; the same seed regenerates the same operations and fault choices.

Exit code: 0 valid, 1 invalid, 2 unknown or harness error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			seedSet = cmd.Flags().Changed("seed")
			if !seedSet {
				seed = time.Now().UnixNano() % 1_000_000_000
			}
			cfg.Seed = seed
			if err := parseMix(mix, &cfg.Workload.Mix); err != nil {
				return &exitError{2, err}
			}
			if err := members.apply(); err != nil {
				return &exitError{2, err}
			}
			lg, err := newLogger(stderr, logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Logger = lg
			cfg.Progress = stderr
			cfg.Command = reproduce(os.Args, seed)
			backend, err := newBackend(backendName)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Server, err = resolveServer(cmd.Context(), backendName, cluster.Server{Binary: serverBinary, Image: image}, cfg.Store, stderr)
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Server.TLS = tlsOn
			if testCount < 1 {
				return &exitError{2, fmt.Errorf("--test-count %d: want at least 1", testCount)}
			}
			// --test-count N: N runs with seeds seed, seed+1, ...; the
			// first run that is not valid ends the series, its seed and
			// directory printed for a rerun.
			counts := map[checker.Verdict]int{}
			for i := 0; i < testCount; i++ {
				cfg.Seed = seed + int64(i)
				cfg.Command = reproduce(os.Args, cfg.Seed)
				if testCount > 1 {
					fmt.Fprintf(stdout, "run %d of %d, seed %d\n", i+1, testCount, cfg.Seed)
				}
				out, err := harness.Run(cmd.Context(), cfg, backend)
				if err != nil {
					return &exitError{2, err}
				}
				fmt.Fprint(stdout, reports.FormatSummary(out.Results))
				v := out.Results.Check.Verdict
				counts[v]++
				if v != checker.Valid {
					if testCount > 1 {
						fmt.Fprintf(stdout, "run %d of %d is %s: seed %d, %s\nrerun: %s\n", i+1, testCount, v, cfg.Seed, out.Dir, cfg.Command)
					}
					return &exitError{code: v.ExitCode()}
				}
				if cmd.Context().Err() != nil {
					return &exitError{2, cmd.Context().Err()}
				}
			}
			if testCount > 1 {
				fmt.Fprintf(stdout, "%d of %d runs valid (seeds %d..%d)\n", counts[checker.Valid], testCount, seed, seed+int64(testCount)-1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "cluster size")
	f.StringVar(&cfg.Workload.Workload, "workload", cfg.Workload.Workload, "workload: register, set, append (list-append transactions checked with Elle), watch (puts and deletes while watchers on every member record their watches) or lock (concurrency.Mutex holders increment a register; checked for two holders at once and lost updates) or lease (keys on short leases kept alive, abandoned or revoked, read on every member)")
	f.StringVar(&cfg.Nemeses, "nemesis", cfg.Nemeses, "comma-separated faults, or none: "+strings.Join(nemesisNames(), ", "))
	f.DurationVar(&cfg.NemesisInterval, "nemesis-interval", cfg.NemesisInterval, "how long each fault lasts, and each quiet period between faults")
	f.DurationVar(&cfg.TimeLimit, "time-limit", cfg.TimeLimit, "how long the workload runs")
	f.IntVar(&cfg.Workload.Concurrency, "concurrency", cfg.Workload.Concurrency, "logical clients, one operation in flight each")
	f.Float64Var(&cfg.Workload.Rate, "rate", cfg.Workload.Rate, "total operations per second (0: unlimited)")
	f.IntVar(&cfg.Workload.Keys, "keys", cfg.Workload.Keys, "register keys (append: keys active at a time; watch: keys written; lock: locks, each with its register)")
	f.BoolVar(&cfg.Workload.Fenced, "fenced", cfg.Workload.Fenced, "lock workload: fence every write with the lock key's create revision (a Txn comparing it, etcd's Mutex.IsOwner)")
	f.Int64Var(&cfg.Workload.LockTTL, "lock-ttl", cfg.Workload.LockTTL, "lock and lease workloads: TTL in seconds of each session lease (lock) and each lease granted (lease)")
	f.DurationVar(&cfg.Workload.LockHoldTime, "lock-hold", cfg.Workload.LockHoldTime, "lock workload: how long a holder waits between being granted the lock and reading the register")
	f.IntVar(&cfg.Workload.Watchers, "watchers", cfg.Workload.Watchers, "watch workload: watchers per member")
	f.StringVar(&mix, "mix", fmt.Sprintf("read=%g,write=%g,cas=%g", cfg.Workload.Mix.Read, cfg.Workload.Mix.Write, cfg.Workload.Mix.CAS), "register op mix as relative weights; an operation left out weighs 0")
	f.StringVar(&cfg.Workload.ReadConsistency, "read-consistency", cfg.Workload.ReadConsistency, "reads during the workload: linearizable or serializable")
	f.DurationVar(&cfg.Workload.Timeout, "timeout", cfg.Workload.Timeout, "per-operation timeout (an operation that times out has an unknown outcome)")
	f.Int64Var(&seed, "seed", 0, "seed for every random choice (default: from the clock, printed at the start)")
	f.DurationVar(&cfg.CheckTimeout, "check-timeout", cfg.CheckTimeout, "time limit of the linearizability check; when it expires the verdict is unknown")
	f.DurationVar(&cfg.RecoveryTimeout, "recovery-timeout", cfg.RecoveryTimeout, "how long to wait for the healed cluster before final reads")
	f.StringVar(&cfg.Store, "store", cfg.Store, "directory holding the runs")
	members = bindMemberFlags(f, &cfg.Members)
	f.StringVar(&cfg.Name, "test-name", "", "test name (default quorumd-<workload>, or <binary>-<workload>)")
	f.BoolVar(&tlsOn, "tls", false, "TLS on every client and peer link, with client certificates: a fresh CA and certificates in the run directory's certs/ (etcd's --cert-file ... --peer-client-cert-auth)")
	f.StringVar(&serverBinary, "server-binary", "", "server to test, any binary taking etcd's flags (default: quorumd built from this checkout)")
	f.StringVar(&backendName, "backend", "local", "where members run: local (processes on loopback) or docker (containers on a Docker network of the run's own; nothing is pulled)")
	f.StringVar(&image, "image", "", "with --backend docker: a server image already in the engine (its entrypoint takes etcd's flags); default: quorumd, or --server-binary, in a locally built FROM scratch image")
	f.StringVar(&logLevel, "log-level", "warn", "harness log level: debug, info, warn, error")
	f.IntVar(&testCount, "test-count", 1, "run the test N times, with seeds --seed, --seed+1, ...; the first run that is not valid stops the series and its seed is printed")
	return cmd
}

func newCheckCmd(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	var workload string
	cmd := &cobra.Command{
		Use:   "check RUN_DIR",
		Short: "Re-check a saved run's history.jsonl offline and print the verdict",
		Long: `Re-check RUN_DIR/history.jsonl with the same checker as 'quorum test'
and print the verdict, its reason and each sub-check's figures
(linearizability of the register workload, the set's lost elements, the
append workload's anomalies with their cycles, the watch workload's
anomalies with the watcher and the revisions it got wrong, the lock
workload's holders at once and lost updates), and the end-of-run HashKV
check saved in RUN_DIR/results.json (members' hashes that differ make the
run invalid; a cluster that did not recover after the faults were healed,
as results.json records, makes an otherwise valid run unknown). When the history is not
linearizable the visualization is written to RUN_DIR/linearizability.html.
Exit code: 0 valid, 1 invalid, 2 unknown or error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			events, err := history.Load(filepath.Join(dir, rundir.HistoryFile))
			if err != nil {
				return &exitError{2, err}
			}
			res := checker.Check(cmd.Context(), events, checker.Options{Workload: workload, Timeout: timeout, VisualizeDir: dir})
			// The end-of-run HashKV answers are data in results.json
			// (absent in runs from before the check, or without it).
			var hashKV *reports.HashKV
			recoveryFailure := ""
			if saved, err := reports.LoadResults(dir); err == nil {
				hashKV = saved.HashKV
				recoveryFailure, _ = saved.Run.Nemesis["recovery_failure"].(string)
			}
			res = reports.ApplyHashKV(res, hashKV)
			res.AddRecovery(recoveryFailure)
			if _, err := os.Stat(filepath.Join(dir, rundir.LogsDir)); err == nil {
				scan := logscan.ScanDir(filepath.Join(dir, rundir.LogsDir))
				scan.Excuse(checker.CorruptionExcuse(events))
				res.AddLogScan(scan)
			}
			fmt.Fprintf(stdout, "%s: %s (%d events)\n", dir, res.Verdict, len(events))
			if hashKV != nil {
				fmt.Fprintln(stdout, hashKV.Line())
			}
			if res.Reason != "" {
				fmt.Fprintf(stdout, "reason: %s\n", res.Reason)
			}
			if l := res.Linearizability; l != nil {
				fmt.Fprintf(stdout, "linearizability: %s, %d keys, %d operations checked in %v\n", l.Verdict, l.Keys, l.Operations, l.Duration)
				if len(l.FailingKeys) > 0 {
					fmt.Fprintf(stdout, "not linearizable: %s\n", strings.Join(l.FailingKeys, ", "))
				}
				if len(l.UnknownKeys) > 0 {
					fmt.Fprintf(stdout, "not decided within --check-timeout %v: %s\n", timeout, strings.Join(l.UnknownKeys, ", "))
				}
			}
			for _, line := range reports.AppendLines(res.Append) {
				fmt.Fprintln(stdout, line)
			}
			for _, line := range reports.WatchLines(res.Watch) {
				fmt.Fprintln(stdout, line)
			}
			for _, line := range reports.LockLines(res.Lock) {
				fmt.Fprintln(stdout, line)
			}
			for _, line := range reports.LeaseLines(res.Lease) {
				fmt.Fprintln(stdout, line)
			}
			if s := res.Set; s != nil && s.Verdict == checker.Invalid {
				fmt.Fprintf(stdout, "set: lost %v, unexpected %v, failed but present %v\n", s.Lost, s.Unexpected, s.FailedPresent)
			}
			if code := res.Verdict.ExitCode(); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "check-timeout", 2*time.Minute, "time limit; when it expires the verdict is unknown")
	cmd.Flags().StringVar(&workload, "workload", "", "register, set, append, watch, lock or lease (default: inferred from the history)")
	return cmd
}

func newReportCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Rebuild a saved run's plots and report.html from its history.jsonl and results.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := reports.Rebuild(args[0]); err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintln(stdout, filepath.Join(args[0], rundir.ReportFile))
			return nil
		},
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// parseMix reads "read=0.5,write=0.25,cas=0.25" into m; an operation not
// named has weight 0.
func parseMix(s string, m *workloads.Mix) error {
	*m = workloads.Mix{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil {
			return fmt.Errorf("--mix %q: want read=W,write=W,cas=W", s)
		}
		switch k {
		case "read":
			m.Read = x
		case "write":
			m.Write = x
		case "cas":
			m.CAS = x
		default:
			return fmt.Errorf("--mix: unknown operation %q (read, write, cas)", k)
		}
	}
	return nil
}

// reproduce is the command line of one run: the seed made explicit,
// --test-count dropped.
func reproduce(args []string, seed int64) string {
	var out []string
	out = append(out, "quorum")
	skip := false
	for _, a := range args[1:] {
		if skip {
			skip = false
			continue
		}
		if a == "--seed" || a == "--test-count" {
			skip = true
			continue
		}
		if strings.HasPrefix(a, "--seed=") || strings.HasPrefix(a, "--test-count=") {
			continue
		}
		out = append(out, a)
	}
	return strings.Join(append(out, fmt.Sprintf("--seed=%d", seed)), " ")
}
