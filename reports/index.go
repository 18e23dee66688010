package reports

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/reports/render"
	"github.com/quorum-kv/quorum/rundir"
)

// StoreRun is one run directory of a run store, as `quorum serve` lists
// it: a test run (results.json of Schema) or a benchmark run (another
// schema, shown with its kind and start only), or a directory whose
// results cannot be read (Err says why; it is listed, not hidden).
type StoreRun struct {
	// Path is the run directory relative to the store, with slashes:
	// <test>/<timestamp>.
	Path     string
	Test     string
	Kind     string // "test", "bench", "unreadable", or the schema for anything else
	Start    time.Time
	Verdict  string // test runs: valid, invalid, unknown
	Workload string
	Nemesis  string // the faults, comma separated
	Nodes    int
	Duration time.Duration
	Backend  string
	Server   string
	Seed     int64
	// Files are the run directory's entries (directories end in /),
	// sorted, for links.
	Files []string
	Err   string
}

// ScanStore lists the runs under store (<store>/<test>/<timestamp>/ with
// a results.json), newest first. A run whose results do not load is
// listed with Err set; a store that does not exist is an error.
func ScanStore(store string) ([]StoreRun, error) {
	tests, err := os.ReadDir(store)
	if err != nil {
		return nil, fmt.Errorf("read run store %s: %w", store, err)
	}
	var runs []StoreRun
	for _, t := range tests {
		if !t.IsDir() || t.Name() == rundir.Latest {
			continue
		}
		stamps, err := os.ReadDir(filepath.Join(store, t.Name()))
		if err != nil {
			continue
		}
		for _, s := range stamps {
			if !s.IsDir() || s.Name() == rundir.Latest {
				continue
			}
			dir := filepath.Join(store, t.Name(), s.Name())
			if _, err := os.Stat(filepath.Join(dir, ResultsFile)); err != nil {
				continue // a run still going, or not a run
			}
			runs = append(runs, loadStoreRun(dir, t.Name()+"/"+s.Name(), t.Name(), s.Name()))
		}
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if !runs[i].Start.Equal(runs[j].Start) {
			return runs[i].Start.After(runs[j].Start)
		}
		return runs[i].Path > runs[j].Path
	})
	return runs, nil
}

func loadStoreRun(dir, rel, test, stamp string) StoreRun {
	r := StoreRun{Path: rel, Test: test}
	if ts, err := time.Parse(rundir.StampLayout, stamp); err == nil {
		r.Start = ts
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() {
				name += "/"
			}
			r.Files = append(r.Files, name)
		}
		slices.Sort(r.Files)
	}
	b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		r.Kind, r.Err = "unreadable", err.Error()
		return r
	}
	var head struct {
		Schema string `json:"schema"`
		Run    struct {
			Start   time.Time `json:"start"`
			Backend string    `json:"backend"`
		} `json:"run"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		r.Kind, r.Err = "unreadable", fmt.Sprintf("%s is not valid JSON: %v", ResultsFile, err)
		return r
	}
	if !head.Run.Start.IsZero() {
		r.Start = head.Run.Start
	}
	r.Backend = head.Run.Backend
	switch {
	case head.Schema == Schema:
		r.Kind = "test"
	case strings.HasPrefix(head.Schema, "quorum.bench/"):
		r.Kind = "bench"
		return r
	default:
		r.Kind = head.Schema
		return r
	}
	res, err := LoadResults(dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Verdict = res.Check.Verdict.String()
	r.Workload = res.Check.Workload
	if r.Workload == "" {
		if w, ok := res.Run.Workload["workload"].(string); ok {
			r.Workload = w
		}
	}
	switch fs := res.Run.Nemesis["faults"].(type) {
	case string: // the harness records the --nemesis list as given
		r.Nemesis = fs
	case []any:
		var names []string
		for _, f := range fs {
			names = append(names, fmt.Sprint(f))
		}
		r.Nemesis = strings.Join(names, ",")
	}
	r.Nodes, r.Duration, r.Server, r.Seed = res.Run.ClusterSize, res.Run.Duration, res.Run.ServerBinary, res.Run.Seed
	return r
}

// WriteStoreIndex renders the store's index page: one row per run, newest
// first, coloured by verdict, with links to the report and every file of
// the run (paths relative to the store's root, where `quorum serve` serves
// the files).
func WriteStoreIndex(w io.Writer, store string, runs []StoreRun) error {
	counts := map[string]int{}
	for _, r := range runs {
		if r.Kind == "test" {
			counts[r.Verdict]++
		}
	}
	b, err := render.Page("store index", indexTemplate, template.FuncMap{
		"stamp": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"has": func(files []string, name string) bool { return slices.Contains(files, name) },
	}, map[string]any{"Store": store, "Runs": runs, "Counts": counts})
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

const indexTemplate = `{{define "title"}}Quorum runs: {{.Store}}{{end}}
{{define "style"}}tr.valid td.verdict { background: #1e8e3e; color: #fff; font-weight: bold; }
tr.invalid td.verdict { background: #c5221f; color: #fff; font-weight: bold; }
tr.unknown td.verdict { background: #f9ab00; color: #000; font-weight: bold; }
td.files a { margin-right: 0.6em; }
{{end}}
{{define "body"}}<h1>Quorum runs</h1>
<p class="muted">Store {{.Store}}: {{len .Runs}} runs, newest first{{with .Counts}} — {{index . "valid"}} valid, {{index . "invalid"}} invalid, {{index . "unknown"}} unknown{{end}}.</p>
<table id="runs">
<tr><th>Started</th><th>Verdict</th><th>Test</th><th>Workload</th><th>Nemesis</th><th>Nodes</th><th>Duration</th><th>Backend</th><th>Seed</th><th>Files</th></tr>
{{range .Runs}}<tr class="{{if eq .Kind "test"}}{{.Verdict}}{{else}}{{.Kind}}{{end}}" data-path="{{.Path}}">
<td>{{stamp .Start}}</td>
<td class="verdict">{{if eq .Kind "test"}}{{.Verdict}}{{else}}{{.Kind}}{{end}}{{with .Err}} <span class="bad" title="{{.}}">(unreadable: {{.}})</span>{{end}}</td>
<td>{{.Test}}</td><td>{{.Workload}}</td><td>{{.Nemesis}}</td>
<td class="num">{{if .Nodes}}{{.Nodes}}{{end}}</td><td class="num">{{if .Duration}}{{.Duration}}{{end}}</td>
<td>{{.Backend}}</td><td class="num">{{if eq .Kind "test"}}{{.Seed}}{{end}}</td>
<td class="files">{{$p := .Path}}{{if has .Files "report.html"}}<a href="/{{$p}}/report.html"><b>report</b></a>{{end}}{{range .Files}}<a href="/{{$p}}/{{.}}">{{.}}</a>{{end}}</td>
</tr>
{{else}}<tr><td colspan="10" class="muted">No runs yet: run quorum test.</td></tr>
{{end}}</table>
{{end}}`
