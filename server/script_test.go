package server

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A small reader of etcd-io/raft style script tests (cockroachdb/datadriven's
// format): a file in testdata/ is a sequence of cases, each a command line,
// a line "----", and the expected output up to the next blank line. Lines
// starting with # between cases are comments. Run with -rewrite to write
// the actual output back into the files.
//
// datadriven itself is only in the module graph as a test dependency of
// go.etcd.io/raft; importing it would mean a new requirement in go.mod for
// a few dozen lines of parsing.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the script tests in testdata/")

// scriptCmd is one parsed command line: a name, then key=value arguments
// and bare flags.
type scriptCmd struct {
	name string
	args map[string]string
	line string
	pos  string // file:line, for failures
}

func (c scriptCmd) has(key string) bool { _, ok := c.args[key]; return ok }

// runScript runs every case of the file through run and compares outputs.
func runScript(t *testing.T, path string, run func(t *testing.T, c scriptCmd) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			continue
		}
		c := parseScriptCmd(l, fmt.Sprintf("%s:%d", path, i+1))
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s: command without ---- after it", c.pos)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got := strings.TrimRight(run(t, c), "\n")
		out.WriteString(l + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
		if i < len(lines) {
			out.WriteString("\n")
		}
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", c.pos, l, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		s := strings.TrimRight(out.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parseScriptCmd(line, pos string) scriptCmd {
	f := strings.Fields(line)
	c := scriptCmd{name: f[0], args: map[string]string{}, line: line, pos: pos}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		c.args[k] = v
	}
	return c
}
