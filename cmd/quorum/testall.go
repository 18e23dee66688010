package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/internal/atomicfile"
	"github.com/quorum-kv/quorum/reports"
)

// matrixRun is one run of quorum test-all.
type matrixRun struct {
	Workload string
	Nemesis  string
	Nodes    int
	Seed     int64
	Verdict  string // valid, invalid, unknown, or error
	Reasons  []string
	Dir      string
	Command  string
	Elapsed  time.Duration
}

func newTestAllCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		workloads    string
		nemeses      []string
		nodes        []int
		timeLimit    time.Duration
		testCount    int
		seed         int64
		junit        string
		store        = harness.DefaultConfig().Store
		serverBinary string
		backendName  string
		logLevel     string
		ms           cluster.MemberSettings
		members      *memberFlags
	)
	cmd := &cobra.Command{
		Use:   "test-all",
		Short: "Run quorum test over a matrix of workloads, nemeses and cluster sizes, with one summary and one exit code (for nightly CI)",
		Long: `Run quorum test for every combination of --workload (comma-separated),
--nemesis (repeatable; each value is one comma-separated fault list, as
quorum test takes it) and --nodes (comma-separated sizes), --test-count
times each with seeds --seed, --seed+1, ..., then print one summary table.
--junit FILE writes JUnit XML with one testcase per run (invalid runs are
failures, unknown runs and harness errors are errors), for CI systems.

Exit code: 0 if every run was valid, 1 if any was invalid, else 2 if any was
unknown or failed to run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if testCount < 1 {
				return &exitError{2, fmt.Errorf("--test-count %d: want at least 1", testCount)}
			}
			if !cmd.Flags().Changed("seed") {
				seed = time.Now().UnixNano() % 1_000_000_000
			}
			if len(nemeses) == 0 {
				nemeses = []string{harness.DefaultConfig().Nemeses}
			}
			if err := members.apply(); err != nil {
				return &exitError{2, err}
			}
			lg, err := newLogger(stderr, logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			backend, err := newBackend(backendName)
			if err != nil {
				return &exitError{2, err}
			}
			srv, err := resolveServer(cmd.Context(), backendName, cluster.Server{Binary: serverBinary}, store, stderr)
			if err != nil {
				return &exitError{2, err}
			}
			var runs []matrixRun
			start := time.Now()
		matrix:
			for _, w := range strings.Split(workloads, ",") {
				for _, nem := range nemeses {
					for _, n := range nodes {
						for i := 0; i < testCount; i++ {
							if cmd.Context().Err() != nil {
								break matrix
							}
							cfg := harness.DefaultConfig()
							cfg.Store, cfg.Logger, cfg.Progress, cfg.Server = store, lg, stderr, srv
							cfg.Workload.Workload, cfg.Nemeses, cfg.Nodes, cfg.TimeLimit = w, nem, n, timeLimit
							cfg.Seed = seed + int64(i)
							cfg.Members = ms
							r := matrixRun{Workload: w, Nemesis: nem, Nodes: n, Seed: cfg.Seed}
							r.Command = fmt.Sprintf("quorum test --workload %s --nemesis %s --nodes %d --time-limit %s --backend %s --seed=%d", w, nem, n, timeLimit, backendName, cfg.Seed)
							if serverBinary != "" {
								r.Command += " --server-binary " + serverBinary
							}
							r.Command += members.commandLine()
							cfg.Command = r.Command
							fmt.Fprintf(stderr, "test-all: %s\n", r.Command)
							t0 := time.Now()
							out, err := harness.Run(cmd.Context(), cfg, backend)
							r.Elapsed = time.Since(t0)
							if err != nil {
								r.Verdict, r.Reasons = "error", []string{err.Error()}
							} else {
								r.Verdict, r.Dir = out.Results.Check.Verdict.String(), out.Dir
								if out.Results.Check.Verdict != checker.Valid {
									r.Reasons = reports.VerdictReasons(out.Results.Check)
								}
							}
							runs = append(runs, r)
						}
					}
				}
			}
			fmt.Fprint(stdout, formatMatrix(runs))
			if junit != "" {
				if err := writeJUnit(junit, runs, time.Since(start)); err != nil {
					return &exitError{2, err}
				}
				fmt.Fprintf(stdout, "JUnit XML written to %s\n", junit)
			}
			if cmd.Context().Err() != nil {
				return &exitError{2, cmd.Context().Err()}
			}
			if code := matrixExitCode(runs); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&workloads, "workload", "register", "comma-separated workloads")
	f.StringArrayVar(&nemeses, "nemesis", nil, "one fault list (comma-separated, as quorum test's --nemesis); repeat for more (default: quorum test's)")
	f.IntSliceVar(&nodes, "nodes", []int{3}, "comma-separated cluster sizes")
	f.DurationVar(&timeLimit, "time-limit", 60*time.Second, "how long each run's workload runs")
	f.IntVar(&testCount, "test-count", 1, "runs per combination, with seeds --seed, --seed+1, ...")
	f.Int64Var(&seed, "seed", 0, "first seed (default: from the clock)")
	f.StringVar(&junit, "junit", "", "write JUnit XML (one testcase per run) to this file")
	f.StringVar(&store, "store", store, "directory holding the runs")
	f.StringVar(&serverBinary, "server-binary", "", "server to test (default: quorumd built from this checkout)")
	f.StringVar(&backendName, "backend", "local", "where members run: local or docker")
	f.StringVar(&logLevel, "log-level", "warn", "harness log level: debug, info, warn, error")
	members = bindMemberFlags(f, &ms)
	return cmd
}

// matrixExitCode is 1 if any run is invalid, else 2 if any is unknown or
// an error, else 0.
func matrixExitCode(runs []matrixRun) int {
	code := 0
	for _, r := range runs {
		switch r.Verdict {
		case "invalid":
			return 1
		case "valid":
		default:
			code = 2
		}
	}
	return code
}

func formatMatrix(runs []matrixRun) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tNEMESIS\tNODES\tSEED\tVERDICT\tTIME\tRUN")
	counts := map[string]int{}
	for _, r := range runs {
		counts[r.Verdict]++
		where := r.Dir
		if r.Verdict == "error" && len(r.Reasons) > 0 {
			where = r.Reasons[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Workload, r.Nemesis, r.Nodes, r.Seed, strings.ToUpper(r.Verdict), r.Elapsed.Round(time.Second), where)
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d runs: %d valid, %d invalid, %d unknown, %d errors\n", len(runs), counts["valid"], counts["invalid"], counts["unknown"], counts["error"])
	return b.String()
}

// JUnit XML, the subset CI systems read (Jenkins, GitLab, GitHub actions'
// test reporters): one suite, one testcase per run.
type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func writeJUnit(path string, runs []matrixRun, total time.Duration) error {
	set := junitSet{Name: "quorum test-all", Tests: len(runs), Time: seconds(total)}
	for _, r := range runs {
		c := junitCase{
			Name:      fmt.Sprintf("%s %s n=%d seed=%d", r.Workload, r.Nemesis, r.Nodes, r.Seed),
			Classname: "quorum." + r.Workload,
			Time:      seconds(r.Elapsed),
			SystemOut: fmt.Sprintf("run directory: %s\nreproduce: %s\n", r.Dir, r.Command),
		}
		msg := strings.Join(r.Reasons, "; ")
		switch r.Verdict {
		case "valid":
		case "invalid":
			set.Failures++
			c.Failure = &junitProblem{Message: msg, Type: "invalid", Body: strings.Join(r.Reasons, "\n")}
		default:
			set.Errors++
			c.Error = &junitProblem{Message: msg, Type: r.Verdict, Body: strings.Join(r.Reasons, "\n")}
		}
		set.Cases = append(set.Cases, c)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSet{set}}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append([]byte(xml.Header), append(b, '\n')...)); err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	return nil
}
