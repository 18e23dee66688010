package nemesis

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/cluster"
	"github.com/quorum-kv/quorum/cluster/fake"
)

func TestNeedsDiskFaults(t *testing.T) {
	for names, want := range map[string]bool{
		"kill-leader,partition-halves": false, "kill-lose-unfsynced": true,
		"kill-one, kill-all-lose-unfsynced": true, "none": false, "bitflip-wal": false,
	} {
		if NeedsDiskFaults(names) != want {
			t.Errorf("NeedsDiskFaults(%q) = %v", names, !want)
		}
	}
}

func TestLoseUnfsyncedKillsLosesAndRestarts(t *testing.T) {
	c := fake.New(3)
	n := mustNew(t, "kill-all-lose-unfsynced", opts(1))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Targets) != 3 || len(f.Down) != 3 {
		t.Fatalf("fault %+v", f)
	}
	var ops []string
	for _, call := range c.Calls() {
		ops = append(ops, call.String())
	}
	got := strings.Join(ops, ", ")
	if !strings.Contains(got, "kill n1, kill n2, kill n3, lose-unsynced n1, lose-unsynced n2, lose-unsynced n3") {
		t.Fatalf("calls: %s", got)
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.Nodes() {
		if node.State() != cluster.Running {
			t.Errorf("%s is %v after heal", node.Name(), node.State())
		}
	}
	one, _ := mustNew(t, "kill-lose-unfsynced", opts(2)).Inject(context.Background(), c)
	if len(one.Targets) != 1 {
		t.Fatalf("kill-lose-unfsynced targeted %v", one.Targets)
	}
}

// A member that refuses to start on its damaged WAL gets the original back
// at heal and is started; the fault says what was done to which file.
func TestCorruptionRestoresTheFileOfAMemberThatRefused(t *testing.T) {
	c := fake.New(1)
	root := t.TempDir()
	c.SetDataDirs(root)
	wal := filepath.Join(root, "n1", "member", "wal")
	os.MkdirAll(wal, 0o755)
	orig := []byte("0123456789abcdef")
	os.WriteFile(filepath.Join(wal, "0000000000000001-0000000000000001.wal"), []byte("older"), 0o600)
	newest := filepath.Join(wal, "0000000000000002-0000000000000010.wal")
	os.WriteFile(newest, orig, 0o600)
	c.FailNext(string(cluster.OpStart), "n1", errors.New("wal: corrupt record"))
	n := mustNew(t, "truncate-wal", opts(3))
	f, err := n.Inject(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	damaged, _ := os.ReadFile(newest)
	if f.File != newest || len(damaged) >= len(orig) || !strings.Contains(f.Note, "refused to start") || !strings.Contains(f.Note, "truncated from 16 to") {
		t.Fatalf("fault %+v, file now %q", f, damaged)
	}
	if err := n.Heal(context.Background(), c, f); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(newest); string(b) != string(orig) {
		t.Fatalf("file after heal %q, want the original", b)
	}
	if node, _ := c.Node("n1"); node.State() != cluster.Running {
		t.Fatalf("n1 is %v after heal", node.State())
	}
}

func TestBitflipChangesExactlyOneBit(t *testing.T) {
	b := []byte("some data\x00\x00\x00")
	out, what := bitflip(b, opts(4).Rand)
	diff := 0
	for i := range b {
		x := b[i] ^ out[i]
		for ; x != 0; x &= x - 1 {
			diff++
		}
		if i >= 9 && x != 0 {
			t.Fatalf("flipped in the zero tail: %s", what)
		}
	}
	if diff != 1 {
		t.Fatalf("%d bits differ (%s)", diff, what)
	}
}
