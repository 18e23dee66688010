// Package rundir owns the layout of Quorum's run store, the one place where
// file and directory names of a run are spelled. Every run of `quorum test`
// and `quorum bench` is a directory
//
//	<store>/<test>/<timestamp>/    created by Create
//	    history.jsonl              the operation history (quorum test)
//	    results.json               the run's results, with a "schema" field
//	    report.html, plots/        the report
//	    logs/<member>.log          member output, appended across restarts
//	    data/<member>/             member data directories (local backend)
//
// and <store>/latest and <store>/<test>/latest are symbolic links to the
// newest run. Results files are written atomically and read back with
// their schema checked, so a directory can be re-checked, re-reported or
// compared offline long after the run. The package knows no result type:
// harness, bench and reports bring their own.
package rundir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/quorum-kv/quorum/internal/atomicfile"
)

// File and directory names inside a run directory.
const (
	// HistoryFile is the history a test run saved (history.Save).
	HistoryFile = "history.jsonl"
	// ResultsFile holds the results; its top-level "schema" field names
	// its layout.
	ResultsFile = "results.json"
	// ReportFile is the HTML report.
	ReportFile = "report.html"
	// PlotsDir holds the report's PNG plots.
	PlotsDir = "plots"
	// LogsDir holds one <member>.log per cluster member.
	LogsDir = "logs"
	// DataDir holds the members' data directories on backends that keep
	// them on the host.
	DataDir = "data"
	// CertsDir holds a TLS cluster's CA, member and client certificates
	// and keys (cluster.MakeTLS's layout).
	CertsDir = "certs"
	// Latest is the name of the links to the newest run.
	Latest = "latest"
)

// StampLayout is the time format of run directory names (UTC, millisecond
// resolution, sortable as text).
const StampLayout = "20060102T150405.000Z"

// ErrSchema is wrapped by LoadResults when a results file has another
// schema than the one asked for.
var ErrSchema = errors.New("unsupported results schema")

// Create makes store/<name>/<timestamp of now>/ and points store/latest and
// store/<name>/latest at it (relative links, replaced atomically). name
// must be a single path element.
func Create(store, name string, now time.Time) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." || name == Latest {
		return "", fmt.Errorf("run name %q: want a single path element other than %q", name, Latest)
	}
	stamp := now.UTC().Format(StampLayout)
	dir := filepath.Join(store, name, stamp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create run directory: %w", err)
	}
	for _, link := range []struct{ at, to string }{
		{filepath.Join(store, Latest), filepath.Join(name, stamp)},
		{filepath.Join(store, name, Latest), stamp},
	} {
		tmp := link.at + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(link.to, tmp); err != nil {
			return "", fmt.Errorf("link %s: %w", link.at, err)
		}
		if err := os.Rename(tmp, link.at); err != nil {
			return "", fmt.Errorf("link %s: %w", link.at, err)
		}
	}
	return dir, nil
}

// MemberLog is the log file of member in the run (or cluster) directory dir.
func MemberLog(dir, member string) string { return filepath.Join(dir, LogsDir, member+".log") }

// MemberData is the data directory of member in dir.
func MemberData(dir, member string) string { return filepath.Join(dir, DataDir, member) }

// WriteResults writes v, which must encode as a JSON object with its
// "schema" field set, as dir/results.json atomically. dir must exist.
func WriteResults(dir string, v any) error {
	if err := atomicfile.WriteJSON(filepath.Join(dir, ResultsFile), v); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// ResultsPath is path itself when it names a file, else path/results.json.
func ResultsPath(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, ResultsFile)
	}
	return path
}

// Schema reads the "schema" field of the results file at path (a run
// directory or the file itself).
func Schema(path string) (string, error) {
	_, schema, err := read(ResultsPath(path))
	return schema, err
}

// LoadResults decodes the results file at path (a run directory or the
// file itself) into v, after checking that its "schema" field is want;
// otherwise the error wraps ErrSchema and names the schema found. Numbers
// in fields of type any decode as json.Number, so they survive a round
// trip unchanged; unknown fields are ignored.
func LoadResults(path, want string, v any) error {
	file := ResultsPath(path)
	b, schema, err := read(file)
	if err != nil {
		return err
	}
	if schema != want {
		return fmt.Errorf("load results %s: schema %q, want %q: %w", file, schema, want, ErrSchema)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("load results %s: %w", file, err)
	}
	return nil
}

// read returns the results file's bytes and its schema.
func read(file string) ([]byte, string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("load results: %w", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, "", fmt.Errorf("load results %s: %w", file, err)
	}
	return b, head.Schema, nil
}
