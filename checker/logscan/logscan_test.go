package logscan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/checker/verdict"
)

func TestScanFindsCrashesNotTheirMentions(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","ts":"2026-12-02T10:00:00Z","msg":"recovered from panic in a test? no: just a word"}`,
		`{"level":"warn","msg":"fatal error: is only words here"}`,
		`{"level":"fatal","ts":"2026-12-02T10:00:01Z","msg":"failed to start"}`,
		`panic: runtime error: index out of range [3] with length 3`,
		`goroutine 1 [running]:`,
		`fatal error: concurrent map writes`,
		`==================`,
		`WARNING: DATA RACE`,
		`{"level":"dpanic","msg":"x"}`,
	}, "\n")
	n, fs, err := Scan(strings.NewReader(log), "n1.log")
	if err != nil || n != 9 {
		t.Fatalf("Scan: %d lines, %v", n, err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Kind+"@"+string(rune('0'+f.Line)))
	}
	want := "log level fatal@3 panic@4 fatal error@6 data race@8 log level dpanic@9"
	if strings.Join(got, " ") != want {
		t.Fatalf("findings %v, want %s", got, want)
	}
}

func TestScanDirVerdicts(t *testing.T) {
	dir := t.TempDir()
	if r := ScanDir(dir); r.Verdict != verdict.Unknown {
		t.Fatalf("no logs: %v", r.Verdict)
	}
	os.WriteFile(filepath.Join(dir, "n1.log"), []byte(`{"level":"info","msg":"ok"}`+"\n"), 0o644)
	if r := ScanDir(dir); r.Verdict != verdict.Valid || r.Lines != 1 || r.Files != 1 {
		t.Fatalf("clean logs: %+v", r)
	}
	os.WriteFile(filepath.Join(dir, "n2.log"), []byte("start\npanic: boom\n"), 0o644)
	r := ScanDir(dir)
	if r.Verdict != verdict.Invalid || len(r.Findings) != 1 || r.Findings[0].File != "n2.log" || r.Findings[0].Line != 2 {
		t.Fatalf("a panic: %+v", r)
	}
	if !strings.Contains(r.String(), "panic at n2.log:2: panic: boom") {
		t.Fatalf("String() = %q", r.String())
	}
}
