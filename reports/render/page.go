package render

import (
	"bytes"
	"fmt"
	"html/template"
)

// Page renders an HTML report page: the shared head, stylesheet and body
// around the templates defs defines. defs must define "title" (the page
// title) and "body" (everything between <body> and </body>), and may
// define "style" (CSS rules added after the shared ones). funcs are
// available to defs. name is the page's name in errors ("report", "bench
// report").
func Page(name, defs string, funcs template.FuncMap, data any) ([]byte, error) {
	t, err := template.New("page").Funcs(funcs).Parse(skeleton)
	if err == nil {
		_, err = t.Parse(defs)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s template: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "page", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// skeleton is the page around a report's templates, with the styles both
// reports use.
const skeleton = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{template "title" .}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1150px; padding: 1em 1.5em 3em; color: #222; }
h1 { font-size: 1.4em; margin: 0.3em 0; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fde8e8; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.muted { color: #777; }
.bad { color: #c5221f; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0 1em; }
{{block "style" .}}{{end}}</style>
</head>
<body>
{{template "body" .}}</body>
</html>
`
