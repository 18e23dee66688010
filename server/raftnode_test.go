package server

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// TestReadyOrdering runs the scripts testdata/ready_*.txt: each `ready`
// hands one Ready, built from its arguments, to the Raft loop's
// handleReady of member 1 over the twins, and prints what the twins were
// asked to do, in order: send (the transport), save-snapshot (the snapshot
// storage), mark-snapshot and persist (the log), to-applier (the hand-off
// to the applier) and advance (raft.Node.Advance).
//
//	ready [lead=ID] [term=T vote=V commit=C] [entries=T/I,...]
//	      [committed=T/I,...] [msgs=TYPE:FROM->TO,...] [snapshot=T/I]
//	      [must-sync]
//	fail-log       the next log write fails
//	raft-log       Raft's in-memory storage (first and last index, snapshot)
//	               and the published status (leader, term, commit)
func TestReadyOrdering(t *testing.T) {
	files, err := filepath.Glob("testdata/ready_*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h := newReadyHarness()
			defer close(h.stopc)
			runScript(t, f, h.run)
		})
	}
}

// readyHarness is member 1's raftNode over the twins, with a raft.Node
// that records Advance.
type readyHarness struct {
	tr    *trace
	disk  *memDisk
	node  *scriptNode
	r     *raftNode
	stopc chan struct{}
}

func newReadyHarness() *readyHarness {
	h := &readyHarness{tr: &trace{}, stopc: make(chan struct{})}
	h.disk = &memDisk{trace: h.tr}
	h.node = &scriptNode{tr: h.tr}
	h.r = newRaftNode(raftNodeConfig{
		ID: 1, Node: h.node, Storage: raft.NewMemoryStorage(),
		Log: memLog{h.disk}, Snapshots: memSnapshots{h.disk}, Transport: traceTransport{h.tr},
		Heartbeat: time.Second, Started: time.Now(), Stop: h.stopc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: newServerMetrics(),
	})
	h.node.r = h.r
	return h
}

func (h *readyHarness) run(t *testing.T, c scriptCmd) string {
	switch c.name {
	case "ready":
		rd, err := parseReady(c)
		if err != nil {
			t.Fatalf("%s: %v", c.pos, err)
		}
		err = h.r.handleReady(rd)
		h.node.drain() // a hand-off after Advance (or without one) shows after it
		out := h.tr.take()
		if err != nil {
			out += "\nerror: " + err.Error()
		}
		return out
	case "fail-log":
		h.disk.mu.Lock()
		h.disk.failNext = true
		h.disk.mu.Unlock()
		return "ok"
	case "raft-log":
		s := h.r.storage
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		sn, _ := s.Snapshot()
		return fmt.Sprintf("first=%d last=%d snapshot=%d/%d snapshot-data=%dB leader=%d term=%d commit=%d",
			first, last, sn.Metadata.Term, sn.Metadata.Index, len(sn.Data),
			h.r.status.leader(), h.r.status.term.Load(), h.r.status.committed.Load())
	}
	t.Fatalf("%s: unknown command %q", c.pos, c.name)
	return ""
}

// scriptNode is the raft.Node of the ordering scripts: handleReady calls
// only Advance on it. Advance records, first, every job handed to the
// applier so far, then itself.
type scriptNode struct {
	raft.Node // nil: any other method panics
	tr        *trace
	r         *raftNode
}

func (n *scriptNode) Advance() {
	n.drain()
	n.tr.add("advance")
}

func (n *scriptNode) drain() {
	for {
		select {
		case j := <-n.r.applyc:
			sn := "-"
			if !raft.IsEmptySnap(j.snapshot) {
				sn = fmt.Sprintf("%d/%d", j.snapshot.Metadata.Term, j.snapshot.Metadata.Index)
			}
			n.tr.add("to-applier snapshot=%s entries=%s", sn, fmtEntries(j.entries))
		default:
			return
		}
	}
}

// traceTransport records what the Raft loop sends.
type traceTransport struct{ tr *trace }

func (t traceTransport) Send(msgs []raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	s := make([]string, len(msgs))
	for i, m := range msgs {
		s[i] = fmt.Sprintf("%s:%d->%d", strings.TrimPrefix(m.Type.String(), "Msg"), m.From, m.To)
	}
	t.tr.add("send %s", strings.Join(s, " "))
}
func (traceTransport) Start()                      {}
func (traceTransport) Stop()                       {}
func (traceTransport) AddPeer(uint64, []string)    {}
func (traceTransport) RemovePeer(uint64)           {}
func (traceTransport) UpdatePeer(uint64, []string) {}
func (traceTransport) Removed() <-chan struct{}    { return nil }

var scriptMsgTypes = map[string]raftpb.MessageType{
	"app": raftpb.MsgApp, "appresp": raftpb.MsgAppResp, "vote": raftpb.MsgVote, "voteresp": raftpb.MsgVoteResp,
	"prevote": raftpb.MsgPreVote, "prevoteresp": raftpb.MsgPreVoteResp, "heartbeat": raftpb.MsgHeartbeat,
	"heartbeatresp": raftpb.MsgHeartbeatResp, "snap": raftpb.MsgSnap,
}

func parseReady(c scriptCmd) (raft.Ready, error) {
	var rd raft.Ready
	u := func(k string) (uint64, error) {
		if !c.has(k) {
			return 0, nil
		}
		return strconv.ParseUint(c.args[k], 10, 64)
	}
	var err error
	if c.has("lead") {
		lead, err := u("lead")
		if err != nil {
			return rd, err
		}
		st := raft.StateFollower
		if lead == 1 {
			st = raft.StateLeader
		}
		rd.SoftState = &raft.SoftState{Lead: lead, RaftState: st}
	}
	if rd.HardState.Term, err = u("term"); err != nil {
		return rd, err
	}
	if rd.HardState.Vote, err = u("vote"); err != nil {
		return rd, err
	}
	if rd.HardState.Commit, err = u("commit"); err != nil {
		return rd, err
	}
	if rd.Entries, err = parseEntries(c.args["entries"]); err != nil {
		return rd, err
	}
	if rd.CommittedEntries, err = parseEntries(c.args["committed"]); err != nil {
		return rd, err
	}
	if s := c.args["msgs"]; s != "" {
		for _, m := range strings.Split(s, ",") {
			typ, route, ok := strings.Cut(m, ":")
			from, to, ok2 := strings.Cut(route, "->")
			mt, ok3 := scriptMsgTypes[typ]
			if !ok || !ok2 || !ok3 {
				return rd, fmt.Errorf("bad message %q (want TYPE:FROM->TO)", m)
			}
			f, err1 := strconv.ParseUint(from, 10, 64)
			tt, err2 := strconv.ParseUint(to, 10, 64)
			if err1 != nil || err2 != nil {
				return rd, fmt.Errorf("bad message %q", m)
			}
			rd.Messages = append(rd.Messages, raftpb.Message{Type: mt, From: f, To: tt})
		}
	}
	if s := c.args["snapshot"]; s != "" {
		es, err := parseEntries(s)
		if err != nil || len(es) != 1 {
			return rd, fmt.Errorf("bad snapshot %q (want T/I)", s)
		}
		rd.Snapshot = raftpb.Snapshot{Data: []byte("snapshot data"), Metadata: raftpb.SnapshotMetadata{
			Term: es[0].Term, Index: es[0].Index, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	}
	rd.MustSync = c.has("must-sync")
	return rd, nil
}

// parseEntries parses T/I,T/I,... into normal entries.
func parseEntries(s string) ([]raftpb.Entry, error) {
	if s == "" {
		return nil, nil
	}
	var out []raftpb.Entry
	for _, e := range strings.Split(s, ",") {
		ts, is, ok := strings.Cut(e, "/")
		term, err1 := strconv.ParseUint(ts, 10, 64)
		idx, err2 := strconv.ParseUint(is, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad entry %q (want T/I)", e)
		}
		out = append(out, raftpb.Entry{Term: term, Index: idx})
	}
	return out, nil
}
