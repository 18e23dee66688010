package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// etcdBinary is the etcd 3.6 built in the tools module (bash tools/build.sh).
var etcdBinary = filepath.Join("..", "..", "tools", "bin", "etcd")

func needEtcd(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Skipf("no etcd binary at %s (build it with: bash tools/build.sh): %v", etcdBinary, err)
	}
	return etcdBinary
}

// registeredFlags is quorumd's flag set, as run parses it.
func registeredFlags() map[string]bool {
	names := map[string]bool{}
	newConfig(nil, &bytes.Buffer{}, &bytes.Buffer{}).cf.flagSet.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

func TestFlagTableListsEachRegisteredFlagOnce(t *testing.T) {
	reg := registeredFlags()
	seen := map[string]bool{}
	for _, f := range flagTable {
		if seen[f.Name] {
			t.Errorf("flagTable lists --%s twice", f.Name)
		}
		seen[f.Name] = true
		if !reg[f.Name] {
			t.Errorf("flagTable lists --%s, which is not in the flag set", f.Name)
		}
		if (f.Class == noEffect || f.Class == unsupported) && (f.value == nil || f.Reason == "") {
			t.Errorf("--%s (%s) needs a value accessor and a reason", f.Name, f.Class)
		}
	}
	for name := range reg {
		if !seen[name] {
			t.Errorf("--%s is in the flag set but not in flagTable", name)
		}
	}
}

// TestFlagSetIsEtcds compares quorumd's flags with those that etcd's --help
// lists, so that a flag of a newer etcd cannot be missed.
func TestFlagSetIsEtcds(t *testing.T) {
	out, err := exec.Command(needEtcd(t), "--help").Output()
	if err != nil {
		t.Fatalf("etcd --help: %v", err)
	}
	re := regexp.MustCompile(`(?m)^  --([a-z0-9][a-z0-9.-]*)`)
	etcd := map[string]bool{"version": true, "config-file": true} // in its Usage lines ("etcd --version")
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		etcd[m[1]] = true
	}
	ours := registeredFlags()
	for _, name := range ignoredFlags { // registered by etcd too, but not in --help
		delete(ours, name)
	}
	var missing, extra []string
	for n := range etcd {
		if !ours[n] {
			missing = append(missing, n)
		}
	}
	for n := range ours {
		if !etcd[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("flag sets differ: etcd only %v; quorumd only %v", missing, extra)
	}
	if len(etcd) < 100 {
		t.Fatalf("parsed only %d flags from etcd --help; has its format changed?", len(etcd))
	}
}

// renderFlagsDoc is docs/flags.md, generated from flagTable.
func renderFlagsDoc() string {
	var b strings.Builder
	b.WriteString("# quorumd's flags\n\n")
	b.WriteString("<!-- Generated from cmd/quorumd/flags.go (flagTable) by\n" +
		"     QUORUMD_UPDATE_DOCS=1 go test ./cmd/quorumd -run TestDocsFlagsIsGenerated; do not edit. -->\n\n")
	b.WriteString("quorumd takes every flag of etcd 3.6 (`etcd --help`), with etcd's syntax, defaults,\n" +
		"validation and error messages, its `ETCD_*` environment variable (`--initial-cluster-state` is\n" +
		"`ETCD_INITIAL_CLUSTER_STATE`) and its key in the `--config-file` YAML (etcd's schema, including\n" +
		"`client-transport-security` and `peer-transport-security`; with a config file, flags and\n" +
		"environment are ignored, as etcd does). The flag set is etcd's own code\n" +
		"(`embed.Config.AddFlags`, `embed.ConfigFromFile`, `Validate`), and a test compares it with\n" +
		"`tools/bin/etcd --help`.\n\n")
	b.WriteString("What quorumd does with each:\n\n" +
		"- **as etcd**: honoured with etcd's meaning.\n" +
		"- **no effect**: accepted and validated as etcd does; set to anything but the default, it is logged\n" +
		"  once at start-up (`\"msg\":\"flag has no effect in quorumd\"` with the flag, value and reason).\n" +
		"- **not supported**: accepted at its default; any other value stops start-up (exit code 1) with one\n" +
		"  line, `\"msg\":\"failed to verify flags\"`, naming the flag and why.\n" +
		"- **ignored, as etcd**: etcd's pre-v3 flags, which etcd itself accepts and ignores with a warning.\n\n")
	counts := map[flagClass]int{}
	for _, f := range flagTable {
		counts[f.Class]++
	}
	fmt.Fprintf(&b, "%d flags: %d as etcd, %d no effect, %d not supported, %d ignored as etcd.\n\n",
		len(flagTable), counts[asEtcd], counts[noEffect], counts[unsupported], counts[ignoredAsEtcd])
	b.WriteString("| Flag | quorumd | Reason or note |\n|---|---|---|\n")
	for _, f := range flagTable {
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, f.Class, strings.ReplaceAll(f.Reason, "|", "\\|"))
	}
	return b.String()
}

func TestDocsFlagsIsGenerated(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "flags.md")
	want := renderFlagsDoc()
	if os.Getenv("QUORUMD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not flagTable's rendering; run QUORUMD_UPDATE_DOCS=1 go test ./cmd/quorumd -run TestDocsFlagsIsGenerated", path)
	}
}
