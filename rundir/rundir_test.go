package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Create names the run by its UTC timestamp and moves both latest links.
func TestCreatePointsBothLatestLinksAtTheNewRun(t *testing.T) {
	store := t.TempDir()
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 123e6, time.FixedZone("x", 3600))
	first, err := Create(store, "quorumd-register", t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(store, "quorumd-register", "20261201T200000.123Z"); first != want {
		t.Fatalf("dir %s, want %s", first, want)
	}
	second, err := Create(store, "bench", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{
		filepath.Join(store, Latest):                     second,
		filepath.Join(store, "bench", Latest):            second,
		filepath.Join(store, "quorumd-register", Latest): first,
	} {
		got, err := filepath.EvalSymlinks(link)
		if err != nil {
			t.Fatal(err)
		}
		if w, _ := filepath.EvalSymlinks(want); got != w {
			t.Errorf("%s -> %s, want %s", link, got, w)
		}
		if target, _ := os.Readlink(link); filepath.IsAbs(target) {
			t.Errorf("%s is an absolute link (%s): the store could not be moved", link, target)
		}
	}
}

func TestCreateRefusesNamesThatAreNotOneElement(t *testing.T) {
	for _, name := range []string{"", "a/b", "..", Latest} {
		if _, err := Create(t.TempDir(), name, time.Now()); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
	}
}

type results struct {
	Schema string         `json:"schema"`
	N      int            `json:"n"`
	Conf   map[string]any `json:"conf"`
}

// Results round-trip through a directory or the file path, numbers in
// untyped fields stay exact, and another schema is refused by name.
func TestResultsRoundTripAndSchemaCheck(t *testing.T) {
	dir := t.TempDir()
	in := results{Schema: "quorum.x/v1", N: 3, Conf: map[string]any{"rate": 0.1}}
	if err := WriteResults(dir, in); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, ResultsFile)} {
		var out results
		if err := LoadResults(path, "quorum.x/v1", &out); err != nil {
			t.Fatal(err)
		}
		if out.N != 3 || out.Conf["rate"].(interface{ String() string }).String() != "0.1" {
			t.Errorf("loaded %+v", out)
		}
		if s, err := Schema(path); err != nil || s != "quorum.x/v1" {
			t.Errorf("Schema(%s) = %q, %v", path, s, err)
		}
	}
	var out results
	err := LoadResults(dir, "quorum.y/v1", &out)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "quorum.x/v1") {
		t.Fatalf("err = %v, want ErrSchema naming the schema found", err)
	}
	if err := LoadResults(filepath.Join(dir, "missing"), "quorum.x/v1", &out); err == nil {
		t.Fatal("loading a missing file succeeded")
	}
}
