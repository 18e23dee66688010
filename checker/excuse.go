package checker

import (
	"strings"

	"github.com/quorum-kv/quorum/checker/logscan"
	"github.com/quorum-kv/quorum/history"
)

// raftLostLog is the message of raft's panic when a leader's commit index
// is past the end of a follower's log: the follower lost entries it had
// acknowledged.
const raftLostLog = "Was the raft log corrupted, truncated, or lost?"

// CorruptionExcuse returns the log scan's excuse (logscan.Result.Excuse)
// for what a file-corruption nemesis (bitflip-wal, truncate-wal,
// bitflip-snap) makes a correct member do: raft's panic on a log that lost
// acknowledged entries, in the log of a member the history shows damaged
// and recorded as having refused to go on ("refused to start"). A
// truncated WAL tail looks like a torn write, so the member repairs it and
// starts, and raft stops it at the first heartbeat: that is the refusal
// the nemesis expects, not a bug. Any other finding, and that panic in any
// other member, still counts. Nil when the history has no such fault.
func CorruptionExcuse(events []history.Event) func(logscan.Finding) string {
	damaged := map[string]string{} // log file -> the fault
	for _, e := range events {
		if e.Process != history.NemesisProcess || e.Type != history.Invoke || e.Value == nil {
			continue
		}
		switch e.F {
		case "bitflip-wal", "truncate-wal", "bitflip-snap":
		default:
			continue
		}
		v := *e.Value
		targets, _, _ := strings.Cut(strings.TrimPrefix(v, "targets="), " ")
		for _, n := range strings.Split(targets, ",") {
			if n != "" && strings.Contains(v, n+" refused to start") {
				damaged[n+".log"] = e.F
			}
		}
	}
	if len(damaged) == 0 {
		return nil
	}
	return func(f logscan.Finding) string {
		if fault, ok := damaged[f.File]; ok && strings.Contains(f.Text, raftLostLog) {
			return "raft stopped a member whose files " + fault + " damaged (the refusal the fault expects)"
		}
		return ""
	}
}
