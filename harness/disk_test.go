package harness_test

import (
	"testing"
	"time"

	"github.com/quorum-kv/quorum/checker"
	"github.com/quorum-kv/quorum/cluster/lazyfs"
)

// The disk faults on the local backend against the correct quorumd: a WAL
// tail cut off, a member killed with its unsynced writes thrown away
// (lazyfs), a bit flipped in a WAL segment, the whole cluster killed the
// same way (a power cut), a bit flipped in a snapshot; each corruption on a
// stopped member that is then started on the damaged file. The run is valid: no acknowledged write
// is lost, a damaged member refuses (raft's own refusal of a truncated
// log is excused by the log scan, nothing else is), and the members'
// HashKV agree at the end.
func TestDiskFaultRunIsValidOnQuorumd(t *testing.T) {
	cfg := shortConfig(t)
	if err := lazyfs.Available(); err != nil {
		t.Skipf("disk faults need FUSE: %v", err)
	}
	cfg.Nemeses = "truncate-wal,kill-lose-unfsynced,bitflip-wal,kill-all-lose-unfsynced,bitflip-snap"
	cfg.NemesisInterval = 2 * time.Second
	cfg.TimeLimit = 20 * time.Second
	cfg.Members.SnapshotCount = 300 // a snapshot file for bitflip-snap to damage
	out := run(t, cfg)
	res := out.Results
	if res.Check.Verdict != checker.Valid {
		t.Fatalf("verdict %v (%s), want valid; run dir %s", res.Check.Verdict, res.Check.Reason, out.Dir)
	}
	// Round-robin in the order given; how many fit in 20 s depends on
	// restart times, the first three always do.
	for _, f := range []string{"truncate-wal", "kill-lose-unfsynced", "bitflip-wal"} {
		if res.Check.Faults[f] == 0 {
			t.Errorf("faults injected: %v, want each of the first three", res.Check.Faults)
			break
		}
	}
	if res.HashKV == nil {
		t.Errorf("no HashKV check in results")
	}
}
