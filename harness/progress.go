package harness

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/mattn/go-isatty"

	"github.com/quorum-kv/quorum/workloads"
)

// startProgress shows the run's progress on w until the returned function is
// called: elapsed time against the time limit, ops/s and the outcome counts,
// and the fault in force. On a terminal it is a progress bar (cheggaaa/pb);
// elsewhere (CI logs) one line every 5 seconds. Times are read from now.
func startProgress(w io.Writer, limit time.Duration, p *workloads.Progress, fault func() string, now func() time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := now()
	line := func(prev workloads.Stats, dt time.Duration) (string, workloads.Stats) {
		s := p.Snapshot()
		rate := 0.0
		if dt > 0 {
			rate = float64(s.OK+s.Fail+s.Info-prev.OK-prev.Fail-prev.Info) / dt.Seconds()
		}
		f := fault()
		if f == "" {
			f = "none"
		}
		return fmt.Sprintf("%6.0f ops/s  ok %d  fail %d  info %d  fault: %s", rate, s.OK, s.Fail, s.Info, f), s
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		bar := pb.ProgressBarTemplate(`{{etime .}} {{bar . "[" "=" ">" " " "]"}} {{string . "status"}}`).New(int(limit / time.Millisecond))
		bar.SetWriter(w)
		bar.Set(pb.Static, false)
		bar.SetRefreshRate(500 * time.Millisecond)
		bar.Start()
		go func() {
			defer wg.Done()
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			var prev workloads.Stats
			last := now()
			for {
				select {
				case <-done:
					bar.SetCurrent(int64(limit / time.Millisecond))
					bar.Finish()
					return
				case <-tk.C:
					t := now()
					var s string
					s, prev = line(prev, t.Sub(last))
					last = t
					bar.SetCurrent(int64(t.Sub(start) / time.Millisecond))
					bar.Set("status", s)
				}
			}
		}()
	} else {
		go func() {
			defer wg.Done()
			tk := time.NewTicker(5 * time.Second)
			defer tk.Stop()
			var prev workloads.Stats
			last := now()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					t := now()
					var s string
					s, prev = line(prev, t.Sub(last))
					last = t
					fmt.Fprintf(w, "[%5.1fs / %v] %s\n", t.Sub(start).Seconds(), limit, s)
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
