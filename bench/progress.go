package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/mattn/go-isatty"
)

// progress shows what runs and what remains: on a terminal a progress bar
// (cheggaaa/pb, as the test command's) with steps done/total, elapsed and
// estimated remaining time and the current step; elsewhere one line per
// finished step. Only Run's goroutine calls it.
type progress struct {
	w     io.Writer
	bar   *pb.ProgressBar
	total int
	done  int
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		p.bar = pb.ProgressBarTemplate(`{{counters .}} {{bar . "[" "=" ">" " " "]"}} {{etime .}} elapsed, {{rtime . "%s left"}}  {{string . "status"}}`).New(total)
		p.bar.SetWriter(w)
		p.bar.Set(pb.Static, false)
		p.bar.SetRefreshRate(500 * time.Millisecond)
		p.bar.Start()
	}
	return p
}

// status names the step now running.
func (p *progress) status(s string) {
	if p.bar != nil {
		p.bar.Set("status", s)
	}
}

// step counts a finished step.
func (p *progress) step() {
	p.done++
	if p.bar != nil {
		p.bar.Increment()
	}
}

// note prints a finished step's result (only without a bar: with one, the
// results are in the summary at the end).
func (p *progress) note(s string) {
	if p.w != nil && p.bar == nil {
		fmt.Fprintf(p.w, "[%d/%d %5.0fs] %s\n", p.done, p.total, time.Since(p.start).Seconds(), s)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
