package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/internal/atomicfile"
	"github.com/quorum-kv/quorum/rundir"
	"github.com/quorum-kv/quorum/server/bugzoo"
)

// zooCase is how quorum zoo hunts one planted bug: the workload and the
// faults most likely to expose it.
type zooCase struct {
	Bug      bugzoo.Bug `json:"bug"`
	Workload string     `json:"workload"`
	Nemesis  string     `json:"nemesis"`
	// ReadConsistency of the register workload's reads ("" default).
	ReadConsistency string `json:"read_consistency,omitempty"`
	// Rate, if set, bounds the workload's operations per second (the
	// register hunts: a history porcupine checks in seconds).
	Rate float64 `json:"rate,omitempty"`
	// SnapshotCount, if set, is the members' --snapshot-count.
	SnapshotCount int `json:"snapshot_count,omitempty"`
	// Why says what the fault does to the bug.
	Why string `json:"why"`
}

// zooCases are the hunts, one per bug of bugzoo.All.
var zooCases = []zooCase{
	{Bug: bugzoo.StaleRead, Workload: "register", Rate: 300, Nemesis: "partition-leader,partition-one",
		Why: "a member cut off from the majority still answers linearizable reads from its own state"},
	{Bug: bugzoo.AckBeforeCommit, Workload: "register", Rate: 300, Nemesis: "partition-leader,kill-leader",
		Why: "a write acknowledged before it is applied is missing from the next read, and lost when its leader is deposed"},
	{Bug: bugzoo.SkipFsync, Workload: "register", Rate: 300, Nemesis: "kill-all-lose-unfsynced", SnapshotCount: 100,
		Why: "a power cut of every member loses what the WAL had not fsynced; frequent snapshots (always fsynced) let the cluster restart from one, without the acknowledged writes after it"},
	{Bug: bugzoo.ReadBeforeApply, Workload: "register", Rate: 300, Nemesis: "pause-one,partition-one",
		Why: "a lagging member answers a linearizable read before it has applied up to the read index"},
	{Bug: bugzoo.DropWatchEvent, Workload: "watch", Nemesis: "kill-one",
		Why: "every watcher must see every event exactly once"},
	{Bug: bugzoo.SplitWatchRevision, Workload: "watch", Nemesis: "none",
		Why: "all events of one revision must arrive in one response"},
	{Bug: bugzoo.EarlyLeaseExpiry, Workload: "lease", Nemesis: "kill-leader",
		Why: "after a leader change a kept-alive lease expires at once"},
	{Bug: bugzoo.LoseLastWrite, Workload: "register", Rate: 300, Nemesis: "kill-all",
		Why: "every member restarts without its newest WAL entries"},
}

// zooRow is one line of the detection table.
type zooRow struct {
	zooCase
	Runs   int `json:"runs"`
	Caught int `json:"caught"`
	// Unknown counts runs whose verdict was unknown.
	Unknown int `json:"unknown"`
	// FirstAnomaly is, over the runs that caught the bug, the earliest
	// time into a run whose history prefix is already invalid.
	FirstAnomaly time.Duration `json:"first_anomaly_ns,omitempty"`
	Seeds        []int64       `json:"seeds"`
	// Dirs are the runs' directories; Errors the harness errors.
	Dirs   []string `json:"dirs"`
	Errors []string `json:"errors,omitempty"`
}

func newZooCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		timeLimit time.Duration
		seeds     int
		seed      int64
		only      string
		store     = harness.DefaultConfig().Store
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "zoo",
		Short: "Prove the harness catches bugs: run quorumd with each planted bug and print the detection table",
		Long: `Build quorumd with -tags bugzoo, then for every planted bug run quorum test
against a local 3-member cluster started with --bugzoo BUG, with the
workload and faults most likely to expose it, --time-limit each, and print
and save (STORE/zoo/<timestamp>/zoo.json and zoo.md) a detection table: bug,
workload, nemesis, runs that caught it, the earliest time into a run at
which its history was already invalid, and the seeds tried. --seeds N runs
each bug with N seeds and reports the detection rate.

Bugs: ` + zooBugNames() + `.

Exit code: 0 if every bug was caught at least once, 1 if any was never
caught, 2 on a harness error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cases, err := selectZooCases(only)
			if err != nil {
				return &exitError{2, err}
			}
			if seeds < 1 {
				return &exitError{2, fmt.Errorf("--seeds %d: want at least 1", seeds)}
			}
			if !cmd.Flags().Changed("seed") {
				seed = time.Now().UnixNano() % 1_000_000_000
			}
			lg, err := newLogger(stderr, logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			bin, err := buildZoo(cmd.Context(), store, stderr)
			if err != nil {
				return &exitError{2, err}
			}
			backend, _ := newBackend("local")
			var rows []zooRow
			for _, c := range cases {
				row := zooRow{zooCase: c}
				for i := 0; i < seeds; i++ {
					s := seed + int64(i)
					cfg := harness.DefaultConfig()
					cfg.Store, cfg.Logger, cfg.Progress = store, lg, stderr
					cfg.Name = "zoo-" + string(c.Bug)
					cfg.Server = cluster.Server{Binary: bin, Label: "quorumd-bugzoo"}
					cfg.Members.ExtraArgs = []string{"--bugzoo", string(c.Bug)}
					cfg.Workload.Workload, cfg.Nemeses, cfg.TimeLimit = c.Workload, c.Nemesis, timeLimit
					if c.Rate > 0 {
						cfg.Workload.Rate = c.Rate
					}
					if c.SnapshotCount > 0 {
						cfg.Members.SnapshotCount = c.SnapshotCount
					}
					if c.ReadConsistency != "" {
						cfg.Workload.ReadConsistency = c.ReadConsistency
					}
					cfg.Seed = s
					cfg.Command = fmt.Sprintf("quorum test --server-binary %s --workload %s --nemesis %s --time-limit %s --seed %d (members with --bugzoo %s)",
						bin, c.Workload, c.Nemesis, timeLimit, s, c.Bug)
					fmt.Fprintf(stderr, "zoo: %s (workload %s, nemesis %s, seed %d)\n", c.Bug, c.Workload, c.Nemesis, s)
					row.Runs++
					row.Seeds = append(row.Seeds, s)
					out, err := harness.Run(cmd.Context(), cfg, backend)
					if err != nil {
						row.Errors = append(row.Errors, fmt.Sprintf("seed %d: %v", s, err))
						continue
					}
					row.Dirs = append(row.Dirs, out.Dir)
					switch out.Results.Check.Verdict {
					case checker.Invalid:
						row.Caught++
						if at, ok := firstAnomaly(cmd.Context(), out.Dir, c.Workload, timeLimit); ok && (row.FirstAnomaly == 0 || at < row.FirstAnomaly) {
							row.FirstAnomaly = at
						}
					case checker.Unknown:
						row.Unknown++
					}
				}
				rows = append(rows, row)
				if cmd.Context().Err() != nil {
					break
				}
			}
			table := formatZooTable(rows)
			fmt.Fprint(stdout, table)
			dir, err := saveZoo(store, rows, table)
			if err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintf(stdout, "saved in %s\n", dir)
			code := 0
			for _, r := range rows {
				switch {
				case len(r.Errors) > 0 && r.Caught == 0:
					code = max(code, 2)
				case r.Caught == 0:
					code = max(code, 1)
				}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&timeLimit, "time-limit", 60*time.Second, "how long each run's workload runs")
	f.IntVar(&seeds, "seeds", 1, "runs per bug, with seeds --seed, --seed+1, ...")
	f.Int64Var(&seed, "seed", 0, "first seed (default: from the clock)")
	f.StringVar(&only, "bugs", "", "comma-separated bugs to run (default: all)")
	f.StringVar(&store, "store", store, "directory holding the runs")
	f.StringVar(&logLevel, "log-level", "warn", "harness log level: debug, info, warn, error")
	return cmd
}

func zooBugNames() string {
	var names []string
	for _, b := range bugzoo.All {
		names = append(names, string(b))
	}
	return strings.Join(names, ", ")
}

// selectZooCases returns the cases --bugs names (all if empty), in the
// zoo's order.
func selectZooCases(only string) ([]zooCase, error) {
	if only == "" {
		return zooCases, nil
	}
	want := strings.Split(only, ",")
	var out []zooCase
	for _, w := range want {
		if !bugzoo.Known(w) {
			return nil, fmt.Errorf("--bugs: unknown bug %q; the zoo has %s", w, zooBugNames())
		}
	}
	for _, c := range zooCases {
		if slices.Contains(want, string(c.Bug)) {
			out = append(out, c)
		}
	}
	return out, nil
}

// buildZoo builds quorumd with -tags bugzoo into STORE/.bin/bugzoo.
func buildZoo(ctx context.Context, store string, progress io.Writer) (string, error) {
	out, err := filepath.Abs(filepath.Join(store, ".bin", "bugzoo", "quorumd"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "building quorumd with -tags bugzoo into %s ...\n", filepath.Dir(out))
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(bctx, "go", "build", "-tags", "bugzoo", "-o", out, "github.com/quorum-kv/quorum/cmd/quorumd")
	if b, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the bug zoo's quorumd (run from the repository): %w\n%s", err, b)
	}
	return out, nil
}

// firstAnomaly finds, to the second, the earliest time t into the run in
// dir such that the history of the operations invoked before t (later
// completions unknown) is already invalid.
func firstAnomaly(ctx context.Context, dir, workload string, limit time.Duration) (time.Duration, bool) {
	events, err := history.Load(filepath.Join(dir, rundir.HistoryFile))
	if err != nil || len(events) == 0 {
		return 0, false
	}
	invalidAt := func(t int64) bool {
		var prefix []history.Event
		for _, e := range events {
			if e.Time > t {
				break
			}
			prefix = append(prefix, e)
		}
		res := checker.Check(ctx, prefix, checker.Options{Workload: workload, Timeout: 15 * time.Second})
		return res.Verdict == checker.Invalid
	}
	end := events[len(events)-1].Time
	if !invalidAt(end) {
		return 0, false
	}
	lo, hi := int64(0), end // invalid at hi, not known at lo
	for hi-lo > int64(time.Second) {
		mid := lo + (hi-lo)/2
		if invalidAt(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Duration(hi).Round(time.Second), true
}

func formatZooTable(rows []zooRow) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUG\tWORKLOAD\tNEMESIS\tCAUGHT\tFIRST ANOMALY\tSEEDS")
	for _, r := range rows {
		first := "-"
		if r.Caught > 0 && r.FirstAnomaly > 0 {
			first = r.FirstAnomaly.String()
		} else if r.Caught > 0 {
			first = "at the end"
		}
		caught := fmt.Sprintf("%d/%d", r.Caught, r.Runs)
		if r.Unknown > 0 {
			caught += fmt.Sprintf(" (%d unknown)", r.Unknown)
		}
		if len(r.Errors) > 0 {
			caught += fmt.Sprintf(" (%d harness errors)", len(r.Errors))
		}
		var seeds []string
		for _, s := range r.Seeds {
			seeds = append(seeds, fmt.Sprint(s))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Bug, r.Workload, r.Nemesis, caught, first, strings.Join(seeds, ","))
	}
	tw.Flush()
	return b.String()
}

// saveZoo writes the table as STORE/zoo/<timestamp>/zoo.json and zoo.md.
func saveZoo(store string, rows []zooRow, table string) (string, error) {
	dir := filepath.Join(store, "zoo", time.Now().UTC().Format(rundir.StampLayout))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save zoo table: %w", err)
	}
	j, err := json.MarshalIndent(map[string]any{"schema": "quorum.zoo/v1", "rows": rows}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(dir, "zoo.json"), j); err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(dir, "zoo.md"), []byte("```\n"+table+"```\n")); err != nil {
		return "", err
	}
	return dir, nil
}
