package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

func TestZooHasACaseForEveryBug(t *testing.T) {
	seen := map[bugzoo.Bug]bool{}
	for _, c := range zooCases {
		if seen[c.Bug] {
			t.Errorf("%s hunted twice", c.Bug)
		}
		seen[c.Bug] = true
		if c.Workload == "" || c.Nemesis == "" || c.Why == "" {
			t.Errorf("%s: incomplete case %+v", c.Bug, c)
		}
	}
	for _, b := range bugzoo.All {
		if !seen[b] {
			t.Errorf("no zoo case for %s", b)
		}
	}
	if _, err := selectZooCases("stale-read,nope"); err == nil || !strings.Contains(err.Error(), `unknown bug "nope"`) {
		t.Errorf("selectZooCases accepted an unknown bug: %v", err)
	}
}

// A real zoo run: the bug-zoo quorumd splitting a revision's watch events
// across two responses is caught by the watch checker, the table says so
// and is saved, and the exit code is 0.
func TestZooCatchesASplitWatchRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bug zoo and runs a 3-member cluster")
	}
	store := t.TempDir()
	var out, errb strings.Builder
	code := run(t.Context(), []string{"zoo", "--bugs", "split-watch-revision", "--time-limit", "8s", "--seed", "3", "--store", store}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr (tail):\n%s", code, out.String(), tailString(errb.String(), 3000))
	}
	if !strings.Contains(out.String(), "split-watch-revision") || !strings.Contains(out.String(), "1/1") {
		t.Fatalf("table does not show the bug caught:\n%s", out.String())
	}
	matches, _ := filepath.Glob(filepath.Join(store, "zoo", "*", "zoo.json"))
	if len(matches) != 1 {
		t.Fatalf("zoo.json files: %v", matches)
	}
	b, _ := os.ReadFile(matches[0])
	var saved struct {
		Rows []zooRow `json:"rows"`
	}
	if err := json.Unmarshal(b, &saved); err != nil || len(saved.Rows) != 1 || saved.Rows[0].Caught != 1 {
		t.Fatalf("saved table %s: %v %+v", b, err, saved)
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
