// Package reports turns a finished `quorum test` run into files a person can
// read: results.json (the run's description, the checker's verdict and a
// Summary of latencies, throughput, availability and unavailability after
// faults), PNG plots under plots/, and a self-contained report.html that
// opens offline. Everything is rendered from files in the run directory
// (history.jsonl and results.json), so `quorum report DIR` can rebuild a
// report long after the run. Analyze is a pure function of the history;
// Write and Rebuild are the only functions that touch the filesystem. The
// look of the charts and the page is shared with the benchmark's report
// (package reports/render); the run directory's layout is package rundir's.
package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/rundir"
)

// File names inside a run directory (package rundir spells them).
const (
	HistoryFile = rundir.HistoryFile
	ResultsFile = rundir.ResultsFile
	ReportFile  = rundir.ReportFile
	PlotsDir    = rundir.PlotsDir
)

// Schema identifies the layout of results.json. It changes only when a
// field is removed or changes meaning; adding fields keeps it.
const Schema = "quorum.test/v1"

// ErrSchema is wrapped by LoadResults' error when results.json has another
// schema than Schema.
var ErrSchema = rundir.ErrSchema

// Config is a JSON object describing a workload's or nemesis' settings, as
// the runner chooses to record them. Numbers are json.Number, so that
// values survive a round trip through results.json unchanged; build one
// with ConfigOf.
type Config map[string]any

// ConfigOf converts v, any value that encodes as a JSON object (a config
// struct, a map), to a Config.
func ConfigOf(v any) (Config, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("config of %T: %w", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config of %T: not a JSON object: %w", v, err)
	}
	return c, nil
}

// Run describes one run of `quorum test`: what was run, against what, and
// how to reproduce it. The runner fills it; results.json keeps it.
type Run struct {
	// Name is the test's name.
	Name string `json:"name"`
	// Start is when the run started (the history's time 0).
	Start time.Time `json:"start"`
	// Duration is how long the workload was configured to run.
	Duration time.Duration `json:"duration_ns"`
	// Backend is where the cluster ran: the cluster.Backend's name
	// ("local", "docker").
	Backend string `json:"backend"`
	// ServerBinary is the server under test (a path, or a name and version).
	ServerBinary string `json:"server_binary,omitempty"`
	// TLS is set when the cluster's client and peer links were TLS with
	// client certificates (quorum test --tls).
	TLS bool `json:"tls,omitempty"`
	// ClusterSize is the number of members.
	ClusterSize int `json:"cluster_size"`
	// Workload and Nemesis are the workload's and the nemesis' settings.
	Workload Config `json:"workload,omitempty"`
	Nemesis  Config `json:"nemesis,omitempty"`
	// Seed seeded every random choice of the run.
	Seed int64 `json:"seed"`
	// CheckTimeLimit bounded the checker (0: none).
	CheckTimeLimit time.Duration `json:"check_time_limit_ns"`
	// Command is the exact command line that reproduces the run, when
	// known.
	Command string `json:"command,omitempty"`
}

// Results is the content of results.json.
type Results struct {
	// Schema is Schema; WriteResults sets it.
	Schema string `json:"schema"`
	Run    Run    `json:"run"`
	// Check is the checker's result.
	Check checker.Result `json:"check"`
	// CheckDuration is how long the check took.
	CheckDuration time.Duration `json:"check_duration_ns"`
	// Summary is Analyze of the history.
	Summary Summary `json:"summary"`
	// HashKV is the end-of-run HashKV check's answers (nil for runs
	// without it); Check's verdict already includes its verdict
	// (ApplyHashKV).
	HashKV *HashKV `json:"hashkv,omitempty"`

	// Dir is the run directory the results were loaded from (set by
	// LoadResults), or are about to be written to (set by the caller);
	// FormatSummary prints the report's path inside it. Not saved, so a
	// run directory can be moved.
	Dir string `json:"-"`
}

// WriteResults writes res as dir/results.json, with Schema set, atomically
// (a temporary file renamed into place). dir must exist.
func WriteResults(dir string, res Results) error {
	res.Schema = Schema
	return rundir.WriteResults(dir, res)
}

// LoadResults reads dir/results.json and sets Dir to dir. It returns an
// error wrapping ErrSchema if the file's schema is not Schema. Unknown
// fields are ignored. Config numbers are json.Number.
func LoadResults(dir string) (Results, error) {
	var res Results
	if err := rundir.LoadResults(filepath.Join(dir, ResultsFile), Schema, &res); err != nil {
		return Results{}, err
	}
	res.Dir = dir
	return res, nil
}
