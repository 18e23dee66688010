// Package logscan reads the members' logs of a run for what must never be
// there: a Go panic or fatal runtime error, a data race report, a log
// line at level panic, dpanic or fatal (zap's, as etcd and quorumd write
// them). Any finding makes a run invalid, whatever its history shows: the
// server crashed or misbehaved even if no client noticed. It is a pure
// function of the logs, so a saved run re-scans offline to the same
// findings.
package logscan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quorum-kv/quorum/checker/verdict"
)

// Finding is one bad line: the log file (its base name), the 1-based line
// number, what kind it is, and the line (cut to maxLine bytes).
type Finding struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Kind string `json:"kind"` // panic, fatal, data race, log level panic/dpanic/fatal
	Text string `json:"text"`
}

// Result is a scan's outcome. Verdict is Invalid with any finding, Valid
// with none, Unknown when no log could be read.
type Result struct {
	Verdict  verdict.Verdict `json:"verdict"`
	Files    int             `json:"files"`
	Lines    int             `json:"lines"`
	Findings []Finding       `json:"findings,omitempty"`
	// Excused are findings the run itself explains (Excuse), each with why;
	// they do not count against the verdict.
	Excused []ExcusedFinding `json:"excused,omitempty"`
	// Errors are logs that could not be read.
	Errors []string `json:"errors,omitempty"`
}

const (
	maxLine     = 400
	maxFindings = 20 // per file: a crash loop repeats itself
)

// ExcusedFinding is a finding with the reason it does not count.
type ExcusedFinding struct {
	Finding
	Why string `json:"why"`
}

// Excuse moves every finding for which why returns a non-empty reason to
// Excused, and makes the verdict Valid if no finding is left (and some log
// was read). A nil why excuses nothing.
func (r *Result) Excuse(why func(Finding) string) {
	if why == nil {
		return
	}
	kept := r.Findings[:0]
	for _, f := range r.Findings {
		if w := why(f); w != "" {
			r.Excused = append(r.Excused, ExcusedFinding{Finding: f, Why: w})
		} else {
			kept = append(kept, f)
		}
	}
	r.Findings = kept
	if len(r.Findings) == 0 && r.Verdict == verdict.Invalid {
		r.Verdict = verdict.Valid
	}
}

// String is the result in one line, the first finding quoted.
func (r *Result) String() string {
	switch {
	case len(r.Findings) > 0:
		f := r.Findings[0]
		s := fmt.Sprintf("member logs: %d bad lines; first %s at %s:%d: %s", len(r.Findings), f.Kind, f.File, f.Line, f.Text)
		return s
	case r.Verdict == verdict.Unknown:
		return "member logs: none could be read " + strings.Join(r.Errors, "; ")
	}
	if len(r.Excused) > 0 {
		f := r.Excused[0]
		return fmt.Sprintf("member logs: %d lines in %d files, no unexplained panic, fatal error or data race (%d excused; first %s:%d: %s)",
			r.Lines, r.Files, len(r.Excused), f.File, f.Line, f.Why)
	}
	return fmt.Sprintf("member logs: %d lines in %d files, no panic, fatal error or data race", r.Lines, r.Files)
}

// ScanDir scans every *.log file in dir (a run's logs/).
func ScanDir(dir string) *Result {
	res := &Result{}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	slices.Sort(paths)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		n, fs, err := Scan(f, filepath.Base(p))
		f.Close()
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", p, err))
		}
		res.Files++
		res.Lines += n
		res.Findings = append(res.Findings, fs...)
	}
	switch {
	case len(res.Findings) > 0:
		res.Verdict = verdict.Invalid
	case res.Files == 0:
		res.Verdict = verdict.Unknown
		if len(res.Errors) == 0 {
			res.Errors = append(res.Errors, "no *.log files in "+dir)
		}
	default:
		res.Verdict = verdict.Valid
	}
	return res
}

// Scan reads one log and returns its line count and findings.
func Scan(r io.Reader, name string) (int, []Finding, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []Finding
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if kind := classify(line); kind != "" && len(out) < maxFindings {
			if len(line) > maxLine {
				line = line[:maxLine] + "…"
			}
			out = append(out, Finding{File: name, Line: n, Kind: kind, Text: line})
		}
	}
	return n, out, sc.Err()
}

// classify names what is wrong with line, or "".
func classify(line string) string {
	t := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(t, "panic: "):
		return "panic"
	case strings.HasPrefix(t, "fatal error: "):
		return "fatal error"
	case strings.HasPrefix(t, "WARNING: DATA RACE"):
		return "data race"
	case strings.HasPrefix(t, "{") && strings.Contains(t, `"level"`):
		var l struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(t), &l) == nil {
			switch l.Level {
			case "panic", "dpanic", "fatal":
				return "log level " + l.Level
			}
		}
	}
	return ""
}
