// Package bugzoo plants known bugs in quorumd, one at a time, so that the
// harness can prove it catches each class (`quorum zoo`). Only a binary
// built with -tags bugzoo has bugs: in a normal build Enabled is a
// constant false, so every planted code path is compiled out and quorumd
// has no --bugzoo flag.
package bugzoo

// Bug names one planted bug. Each breaks exactly one guarantee.
type Bug string

const (
	// StaleRead serves linearizable reads without a ReadIndex round: a
	// partitioned or deposed member answers from its own state.
	StaleRead Bug = "stale-read"
	// AckBeforeCommit acknowledges a put as soon as it is proposed,
	// before a quorum has it (and before it is applied).
	AckBeforeCommit Bug = "ack-before-commit"
	// SkipFsync never fsyncs the WAL: a power cut loses acknowledged
	// writes (etcd's --unsafe-no-fsync, planted).
	SkipFsync Bug = "skip-fsync"
	// ReadBeforeApply answers a linearizable read once the read index is
	// known, without waiting for this member to apply up to it.
	ReadBeforeApply Bug = "read-before-apply"
	// DropWatchEvent drops one watch event in DropEvery.
	DropWatchEvent Bug = "drop-watch-event"
	// SplitWatchRevision sends the events of one revision in two watch
	// responses.
	SplitWatchRevision Bug = "split-watch-revision"
	// EarlyLeaseExpiry makes a new leader expire every lease at once
	// instead of restarting their TTLs.
	EarlyLeaseExpiry Bug = "early-lease-expiry"
	// LoseLastWrite drops the newest entries of the WAL on restart, as a
	// WAL that trusted an unsynced tail would.
	LoseLastWrite Bug = "lose-last-write"
)

// DropEvery is how often DropWatchEvent drops: one event in DropEvery.
const DropEvery = 200

// All lists every bug, in the order quorum zoo runs them.
var All = []Bug{StaleRead, AckBeforeCommit, SkipFsync, ReadBeforeApply, DropWatchEvent, SplitWatchRevision, EarlyLeaseExpiry, LoseLastWrite}

// Known reports whether name is a bug of All.
func Known(name string) bool {
	for _, b := range All {
		if string(b) == name {
			return true
		}
	}
	return false
}
