package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quorum-kv/quorum/nemesis"
	"github.com/quorum-kv/quorum/workloads"
)

// outcome is what one in-process `quorum` invocation produced.
type outcome struct {
	code           int
	stdout, stderr string
}

// quorum runs the CLI in-process with args, as main would.
func quorum(t *testing.T, args ...string) outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return outcome{code, stdout.String(), stderr.String()}
}

// refused asserts that o is a harness error (exit 2) whose only output is
// the one line "quorum: <msg>" on stderr.
func (o outcome) refused(t *testing.T, msg string) {
	t.Helper()
	if o.code != 2 || o.stderr != "quorum: "+msg+"\n" || o.stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 2, stderr %q", o.code, o.stdout, o.stderr, "quorum: "+msg+"\n")
	}
}

// commands walks the command tree under c, c included, parents first.
func commands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, commands(sub)...)
	}
	return out
}

// Every command's --help exits 0, writes only to stdout, and shows its use
// line, every flag it defines with its usage text, and each subcommand
// with its short description. The tree is walked from newRoot, so a new
// command or flag is covered without touching this test.
func TestHelpOfEveryCommandShowsItsUseLineAndFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	all := commands(newRoot(&out, &errOut))
	if len(all) < 7 {
		t.Fatalf("walked %d commands, want at least quorum, test, check, report, bench, bench compare, bench report", len(all))
	}
	for _, cmd := range all {
		path := strings.Fields(cmd.CommandPath())[1:]
		t.Run(cmd.CommandPath(), func(t *testing.T) {
			o := quorum(t, append(path, "--help")...)
			if o.code != 0 || o.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", o.code, o.stderr)
			}
			cmd.InitDefaultHelpFlag() // as executing it does, so UseLine and Flags count --help
			var use []string
			if cmd.Runnable() {
				use = append(use, cmd.UseLine())
			}
			if cmd.HasAvailableSubCommands() {
				use = append(use, cmd.CommandPath()+" [command]")
			}
			if len(use) == 0 || !strings.Contains(o.stdout, "Usage:\n  "+strings.Join(use, "\n  ")+"\n") {
				t.Errorf("no use lines %q in:\n%s", use, o.stdout)
			}
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				if !strings.Contains(o.stdout, "--"+f.Name+" ") || !strings.Contains(o.stdout, f.Usage) {
					t.Errorf("flag --%s (%q) missing from:\n%s", f.Name, f.Usage, o.stdout)
				}
			})
			for _, sub := range cmd.Commands() {
				if !strings.Contains(o.stdout, sub.Name()) || !strings.Contains(o.stdout, sub.Short) {
					t.Errorf("subcommand %s (%q) missing from:\n%s", sub.Name(), sub.Short, o.stdout)
				}
			}
		})
	}
	if out.Len() != 0 || errOut.Len() != 0 {
		t.Errorf("building the tree wrote %q / %q", out.String(), errOut.String())
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    workloads.Mix
		wantErr string
	}{
		{in: "read=0.5,write=0.25,cas=0.25", want: workloads.Mix{Read: 0.5, Write: 0.25, CAS: 0.25}},
		{in: " read=2, cas=1", want: workloads.Mix{Read: 2, CAS: 1}},
		// An operation left out weighs 0, not its default.
		{in: "write=1", want: workloads.Mix{Write: 1}},
		{in: "read=1,delete=2", wantErr: `--mix: unknown operation "delete" (read, write, cas)`},
		{in: "read", wantErr: `--mix "read": want read=W,write=W,cas=W`},
		{in: "read=", wantErr: `--mix "read=": want read=W,write=W,cas=W`},
		{in: "read=1x", wantErr: `--mix "read=1x": want read=W,write=W,cas=W`},
		{in: "read=1,,cas=1", wantErr: `--mix "read=1,,cas=1": want read=W,write=W,cas=W`},
		{in: "", wantErr: `--mix "": want read=W,write=W,cas=W`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m := workloads.DefaultConfig().Mix
			err := parseMix(tt.in, &m)
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case m != tt.want:
				t.Errorf("mix %+v, want %+v", m, tt.want)
			}
		})
	}
}

func TestReproduceMakesTheSeedExplicitAndLast(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"/x/quorum", "test"}, "quorum test --seed=7"},
		{[]string{"quorum", "test", "--seed", "3", "--nodes", "5"}, "quorum test --nodes 5 --seed=7"},
		{[]string{"quorum", "test", "--seed=3", "--time-limit", "10s"}, "quorum test --time-limit 10s --seed=7"},
		{[]string{"quorum", "test", "--seed=1", "--seed", "2", "--nodes=3"}, "quorum test --nodes=3 --seed=7"},
		{[]string{"quorum", "test", "--seedling", "x"}, "quorum test --seedling x --seed=7"},
		{[]string{"quorum", "test", "--test-count", "20", "--nodes=5", "--test-count=3"}, "quorum test --nodes=5 --seed=7"},
	}
	for _, tt := range tests {
		if got := reproduce(tt.args, 7); got != tt.want {
			t.Errorf("reproduce(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// --time-limit takes a Go duration: 1m30s parses into the flag.
func TestDurationFlagParses(t *testing.T) {
	var out, errOut bytes.Buffer
	cmd := newTestCmd(&out, &errOut)
	if err := cmd.ParseFlags([]string{"--time-limit", "1m30s"}); err != nil {
		t.Fatal(err)
	}
	if d, err := cmd.Flags().GetDuration("time-limit"); err != nil || d != 90*time.Second {
		t.Errorf("--time-limit 1m30s = %v, %v", d, err)
	}
}

// Bad flags of `quorum test` and `quorum bench` are refused with exit 2 and
// one line naming the flag, before any build, run directory or cluster:
// the store stays empty. Where a server is needed /bin/true stands in, so
// quorumd is not built.
func TestBadFlagsAreRefusedBeforeAnythingRuns(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tru := "--server-binary=/bin/true"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"mix unknown op", []string{"test", tru, "--mix", "read=1,get=1"}, `--mix: unknown operation "get" (read, write, cas)`},
		{"mix malformed", []string{"test", tru, "--mix", "read:1"}, `--mix "read:1": want read=W,write=W,cas=W`},
		{"mix no weight", []string{"test", tru, "--mix", "read=0"}, `workload config: Mix: {Read:0 Write:0 CAS:0}: want finite weights >= 0 with a positive sum`},
		// Cobra's own parse error: the value is not a duration.
		{"time-limit without unit", []string{"test", tru, "--time-limit", "10"}, `invalid argument "10" for "--time-limit" flag: time: missing unit in duration "10"`},
		// A duration, but harness.Config.Validate refuses it.
		{"nemesis-interval negative", []string{"test", tru, "--nemesis-interval", "-1s"}, `--nemesis-interval must be > 0`},
		{"time-limit ok, nodes bad", []string{"test", tru, "--time-limit", "1m30s", "--nodes", "0"}, `--nodes is 0; want at least 1`},
		{"nemesis unknown", []string{"test", tru, "--nemesis", "kill-leader,flood"},
			`--nemesis: nemesis list "kill-leader,flood": unknown nemesis "flood"; valid: ` + strings.Join(nemesis.Names(), ", ")},
		{"backend unknown", []string{"test", tru, "--backend", "k8s"}, `--backend "k8s": want local or docker`},
		{"image without docker", []string{"test", "--image", "quorumd:dev"}, `--image needs --backend docker`},
		{"image and binary", []string{"test", tru, "--backend", "docker", "--image", "quorumd:dev"}, `--image and --server-binary exclude each other`},
		{"server-binary not executable", []string{"test", "--server-binary", notExec}, `--server-binary ` + notExec + ` is not an executable file`},
		{"server-binary a directory", []string{"test", "--server-binary", "/"}, `--server-binary / is not an executable file`},
		{"server-binary missing", []string{"test", "--server-binary", notExec + ".gone"}, `--server-binary: stat ` + notExec + `.gone: no such file or directory`},
		{"log-level", []string{"test", tru, "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"unknown flag", []string{"test", "--nodez", "3"}, `unknown flag: --nodez`},
		{"positional arg", []string{"test", "extra"}, `unknown command "extra" for "quorum test"`},
		{"server-arg the backend owns", []string{"test", tru, "--server-arg=--data-dir=/tmp/x"},
			`--server-arg: server argument "--data-dir=/tmp/x": --data-dir cannot be passed through: the backend places the data`},
		{"server-arg a timing flag", []string{"test", tru, "--server-arg", "--election-timeout=5000"},
			`--server-arg: server argument "--election-timeout=5000": --election-timeout cannot be passed through: use quorum's --election-timeout, which the harness also reads`},
		{"server-arg not a flag", []string{"test", tru, "--server-arg=--quota-backend-bytes=1", "--server-arg=8"},
			`--server-arg: server argument "8" is not a flag, nor the value of one: want --flag=value, --flag, or --flag then value`},
		{"election-timeout negative", []string{"test", tru, "--election-timeout=-1"}, `--election-timeout -1: want milliseconds >= 0`},
		{"test-all server-arg the backend owns", []string{"test-all", tru, "--server-arg=--name=x"},
			`--server-arg: server argument "--name=x": --name cannot be passed through: the backend names the members`},

		{"bench backend unknown", []string{"bench", "--server-binary=x=/bin/true", "--backend", "k8s"}, `--backend "k8s": want local or docker`},
		{"bench image without docker", []string{"bench", "--image", "q=quorumd:dev"}, `server q: --image needs --backend docker`},
		{"bench server-binary not executable", []string{"bench", "--server-binary", "q=" + notExec}, `server q: --server-binary ` + notExec + ` is not an executable file`},
		{"bench log-level", []string{"bench", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"bench server-arg TLS", []string{"bench", "--server-binary=x=/bin/true", "--server-arg=--cert-file=/c.pem"},
			`--server-arg: server argument "--cert-file=/c.pem": --cert-file cannot be passed through: use quorum's --tls`},
		{"bench snapshot-count negative", []string{"bench", "--server-binary=x=/bin/true", "--snapshot-count=-5"}, `--snapshot-count -5: want >= 0`},
		{"bench duration without unit", []string{"bench", "--duration", "10"}, `invalid argument "10" for "--duration" flag: time: missing unit in duration "10"`},
		{"bench fault unknown", []string{"bench", "--server-binary=x=/bin/true", "--faults", "kill-leader,flood"},
			`bench config: Faults: unknown fault "flood"; valid: kill-leader, isolate-leader, isolate-minority, isolate-majority, split-even, ` +
				`kill-one, kill-minority, kill-majority, kill-all, pause-one, pause-leader, pause-minority, pause-majority, pause-all, ` +
				`partition-one, partition-leader, partition-halves, partition-majorities-ring, partition-bridge, latency, drop, ` +
				`kill-lose-unfsynced, kill-all-lose-unfsynced, bitflip-wal, truncate-wal, bitflip-snap, ` +
				`member-replace, member-replace-learner, member-shrink, compact, defrag, defrag-one, snapshot`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := t.TempDir()
			quorum(t, append(tt.args, "--store", store)...).refused(t, tt.want)
			if ents, err := os.ReadDir(store); err != nil || len(ents) != 0 {
				t.Errorf("store after a refusal: %v %v, want empty", ents, err)
			}
		})
	}
}
