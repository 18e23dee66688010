package checker

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorum-kv/quorum/history"
)

// jepsenEtcdLegal lists which of porcupine's test_data/jepsen/etcd_NNN.log
// histories are linearizable, copied from porcupine v1.3.1's
// porcupine_test.go (TestEtcdJepsenNNN). etcd_095.log is empty and not
// tested there.
var jepsenEtcdLegal = map[int]bool{
	2: true, 5: true, 7: true, 18: true, 25: true, 31: true, 38: true, 45: true,
	48: true, 49: true, 51: true, 53: true, 56: true, 67: true, 75: true, 76: true,
	80: true, 87: true, 92: true, 98: true, 100: true, 101: true, 102: true,
}

// jepsenLine matches one line of those logs, e.g.
// "INFO  jepsen.util - 3	:ok	:cas	[3 0]".
var jepsenLine = regexp.MustCompile(`^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*)$`)

// parseJepsenEtcd converts a Jepsen etcd register log (one key, small
// integer values, knossos-style :invoke/:ok/:fail/:info lines, processes
// renumbered after :info) into our history: index and time are the line
// number, the key is "jepsen", a cas :fail is a failed compare, a
// ":fail :read :timed-out" is a failed read.
func parseJepsenEtcd(path string) ([]history.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []history.Event
	pending := map[int]history.Event{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		m := jepsenLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			return nil, fmt.Errorf("%s:%d: unrecognised line %q", path, line, sc.Text())
		}
		var p int
		fmt.Sscan(m[1], &p)
		typ, f, arg := history.Type(m[2]), m[3], strings.TrimSpace(m[4])
		e := history.Event{Index: int64(len(events)), Time: int64(line), Type: typ, Process: p, F: f, Key: "jepsen"}
		if typ == history.Invoke {
			switch f {
			case history.FWrite:
				e.Value = str(arg)
			case history.FCAS:
				var from, to string
				if _, err := fmt.Sscanf(arg, "[%s %s", &from, &to); err != nil {
					return nil, fmt.Errorf("%s:%d: cas argument %q: %w", path, line, arg, err)
				}
				e.Expected, e.Value = str(from), str(strings.TrimSuffix(to, "]"))
			}
			pending[p] = e
			events = append(events, e)
			continue
		}
		inv, ok := pending[p]
		if !ok {
			return nil, fmt.Errorf("%s:%d: completion without invocation", path, line)
		}
		delete(pending, p)
		e.Value, e.Expected = inv.Value, inv.Expected
		switch {
		case f == history.FRead && typ == history.OK:
			e.Value = nil
			if arg != "nil" {
				e.Value = str(arg)
			}
		case f == history.FCAS && typ == history.Fail:
			e.Error = history.ErrCompareFailed
		case arg == ":timed-out":
			e.Error = "timed-out"
		}
		events = append(events, e)
	}
	return events, sc.Err()
}

// porcupineDir locates the porcupine module the build uses.
func porcupineDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/anishathalye/porcupine").Output()
	if err != nil {
		t.Fatalf("locate porcupine module: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestAgreesWithPorcupineOnJepsenEtcdHistories checks every non-empty
// Jepsen etcd history shipped with porcupine and expects the verdicts its
// own tests expect.
func TestAgreesWithPorcupineOnJepsenEtcdHistories(t *testing.T) {
	dir := filepath.Join(porcupineDir(t), "test_data", "jepsen")
	start := time.Now()
	checked := 0
	for i := 0; i <= 102; i++ {
		if i == 95 {
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("etcd_%03d.log", i))
		events, err := parseJepsenEtcd(path)
		if err != nil {
			t.Fatal(err)
		}
		want := Invalid
		if jepsenEtcdLegal[i] {
			want = Valid
		}
		res := Check(context.Background(), events, Options{Workload: WorkloadRegister, Timeout: time.Minute})
		if res.Verdict != want {
			t.Errorf("%s: verdict %v, want %v (linearizability %+v)", filepath.Base(path), res.Verdict, want, res.Linearizability)
		}
		checked++
	}
	t.Logf("checked %d Jepsen histories in %v", checked, time.Since(start))
}

func TestJepsenHistoriesSurviveJSONLRoundTrip(t *testing.T) {
	path := filepath.Join(porcupineDir(t), "test_data", "jepsen", "etcd_000.log")
	events, err := parseJepsenEtcd(path)
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "history.jsonl")
	if err := history.Save(saved, events); err != nil {
		t.Fatal(err)
	}
	loaded, err := history.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	before := Check(context.Background(), events, Options{Workload: WorkloadRegister})
	vis := t.TempDir()
	after := Check(context.Background(), loaded, Options{Workload: WorkloadRegister, VisualizeDir: vis})
	if before.Verdict != Invalid || after.Verdict != before.Verdict {
		t.Fatalf("verdict before save %v, after load %v; want invalid both", before.Verdict, after.Verdict)
	}
	// A real history with info writes (returning at infinity) visualizes.
	if fi, err := os.Stat(filepath.Join(vis, VisualizationFile)); err != nil || fi.Size() == 0 || after.Linearizability.VisualizationError != "" {
		t.Fatalf("visualization: %v, %v", err, after.Linearizability.VisualizationError)
	}
}
