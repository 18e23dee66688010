package reports

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/quorum-kv/quorum/checker"
)

// FormatSummary renders res as a short block of text for the terminal:
// verdict (and why, unless valid), operation counts, check time,
// throughput, worst unavailability after a fault and, when res.Dir is set,
// the report's path. Lines end with "\n".
func FormatSummary(res Results) string {
	var b strings.Builder
	s := res.Summary
	fmt.Fprintf(&b, "verdict         %s", strings.ToUpper(res.Check.Verdict.String()))
	if res.Check.Workload != "" {
		fmt.Fprintf(&b, " (%s workload)", res.Check.Workload)
	}
	b.WriteString("\n")
	if res.Check.Verdict != checker.Valid {
		for _, r := range verdictReasons(res.Check) {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	if res.HashKV != nil {
		fmt.Fprintf(&b, "consistency     %s\n", res.HashKV.Line())
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "analysis        %s\n", s.Error)
	}
	fmt.Fprintf(&b, "operations      %d in %s: %d ok, %d fail, %d info\n", s.Total, fmtDur(s.Duration), s.OK, s.Fail, s.Info)
	fmt.Fprintf(&b, "throughput      %.1f ok ops/s\n", s.Throughput)
	fmt.Fprintf(&b, "check time      %s\n", fmtDur(res.CheckDuration))
	if w, ok := s.Worst(); ok {
		fmt.Fprintf(&b, "unavailability  worst %s after %s at %s (%d faults)\n", worstText(w), w.Fault, fmtAt(w.Start), len(s.Faults))
	} else {
		b.WriteString("unavailability  no faults injected\n")
	}
	if res.Dir != "" {
		fmt.Fprintf(&b, "report          %s\n", filepath.Join(res.Dir, ReportFile))
	}
	return b.String()
}

// VerdictReasons are the lines that explain a check's verdict, as the
// summary and the report give them.
func VerdictReasons(r checker.Result) []string { return verdictReasons(r) }
