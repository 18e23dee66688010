package reports

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/history"
	"github.com/quorum-kv/quorum/internal/atomicfile"
)

// Write writes a run's results.json, plots (plots/*.png) and report.html
// into dir, which must exist; events is the run's history (the runner saves
// it as history.jsonl). If res.Summary is the zero Summary, Write fills it
// with Analyze(events, Options{}); otherwise it is written as given and
// should be Analyze of events. The report links to linearizability.html
// only when dir holds it. Every file is replaced atomically.
func Write(dir string, res Results, events []history.Event) error {
	if res.Summary.Bucket == 0 {
		res.Summary = Analyze(events, Options{})
	}
	if err := WriteResults(dir, res); err != nil {
		return err
	}
	// A malformed history still gets plots and a report: the summary
	// says why they are empty.
	ops, _, _ := history.Operations(events)
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	plots, err := writePlots(dir, res.Summary, ops)
	if err != nil {
		return fmt.Errorf("write report in %s: %w", dir, err)
	}
	linLink := ""
	if _, err := os.Stat(filepath.Join(dir, checker.VisualizationFile)); err == nil {
		linLink = checker.VisualizationFile
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write report: %w", err)
	}
	page, err := renderReport(buildView(res, plots, linLink))
	if err != nil {
		return fmt.Errorf("write report in %s: %w", dir, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ReportFile), page); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// Rebuild reloads dir/history.jsonl and dir/results.json, recomputes the
// Summary with the saved bucket width, and rewrites results.json, the plots
// and report.html: what `quorum report DIR` does. The run description, the
// verdict and the check duration are kept as saved; for an unchanged
// history results.json is rewritten byte for byte.
func Rebuild(dir string) error {
	res, err := LoadResults(dir)
	if err != nil {
		return fmt.Errorf("rebuild report: %w", err)
	}
	events, err := history.Load(filepath.Join(dir, HistoryFile))
	if err != nil {
		return fmt.Errorf("rebuild report: %w", err)
	}
	res.Summary = Analyze(events, Options{Bucket: res.Summary.Bucket})
	if err := Write(dir, res, events); err != nil {
		return fmt.Errorf("rebuild report: %w", err)
	}
	return nil
}
