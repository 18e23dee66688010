package watch

import (
	"encoding/json"
	"fmt"

	"github.com/quorum-kv/quorum/history"
)

// Session is one watch session (history.FWatch or history.FFinalWatch).
type Session struct {
	// Process and Index are its process and the index of its invoke
	// event; Node the member it watched.
	Process int    `json:"process"`
	Index   int64  `json:"index"`
	Node    string `json:"node,omitempty"`
	// Spec is how it was created.
	Spec history.WatchSpec `json:"spec"`
	// Responses are the responses it received, in order.
	Responses []history.WatchResponse `json:"-"`
	// Type is how it ended (ok: ended by the run; fail: cut) and Error
	// why.
	Type  history.Type `json:"type"`
	Error string       `json:"error,omitempty"`
	// Target is, for the final watch, the revision it had to reach.
	Target int64 `json:"target,omitempty"`
}

// Write is one write operation of the watch workload: a put
// (history.FWrite), a delete or a write txn, as its ops.
type Write struct {
	Index   int64  `json:"index"`
	Process int    `json:"process"`
	F       string `json:"f"`
	// Type is how it ended; Revision, for ok, the header revision.
	Type     history.Type      `json:"type"`
	Revision int64             `json:"rev,omitempty"`
	Ops      []history.WriteOp `json:"ops"`
}

// History is what Check reads: the writes, the watchers' sessions in
// invocation order and the final watch (nil: none), its sessions — each
// resuming the one before — as one, with the last one's Type, Error and
// Target.
type History struct {
	Writes   []Write
	Sessions []Session
	Final    *Session
}

// FromHistory reads the watch workload's operations from a history: puts,
// deletes, write txns, watch sessions and the final watch. It returns an error wrapping
// history.ErrMalformed for a history that does not pair, or one naming the
// event whose Value cannot be parsed.
func FromHistory(events []history.Event) (History, error) {
	ops, _, err := history.Operations(events)
	if err != nil {
		return History{}, err
	}
	var h History
	for _, op := range ops {
		inv := op.Invoke
		switch inv.F {
		case history.FWrite, history.FDelete, history.FWriteTxn:
			w := Write{Index: inv.Index, Process: inv.Process, F: inv.F, Type: op.Type()}
			switch inv.F {
			case history.FWrite:
				v := ""
				if inv.Value != nil {
					v = *inv.Value
				}
				w.Ops = []history.WriteOp{{F: history.WatchPut, Key: inv.Key, Value: v}}
			case history.FDelete:
				w.Ops = []history.WriteOp{{F: history.WatchDelete, Key: inv.Key}}
			default:
				if inv.Value == nil {
					return History{}, fmt.Errorf("event #%d: write-txn without ops", inv.Index)
				}
				if err := json.Unmarshal([]byte(*inv.Value), &w.Ops); err != nil {
					return History{}, fmt.Errorf("event #%d: write-txn ops: %w", inv.Index, err)
				}
			}
			if op.Type() == history.OK {
				w.Revision = op.Complete.Revision
			}
			h.Writes = append(h.Writes, w)
		case history.FWatch, history.FFinalWatch:
			s := Session{Process: inv.Process, Index: inv.Index, Node: inv.Node, Type: op.Type()}
			if inv.Value == nil {
				return History{}, fmt.Errorf("event #%d: watch without its spec", inv.Index)
			}
			if err := json.Unmarshal([]byte(*inv.Value), &s.Spec); err != nil {
				return History{}, fmt.Errorf("event #%d: watch spec: %w", inv.Index, err)
			}
			if c := op.Complete; c != nil {
				s.Error, s.Target = c.Error, c.Revision
				if c.Node != "" {
					s.Node = c.Node
				}
				if c.Value != nil && *c.Value != *inv.Value {
					if err := json.Unmarshal([]byte(*c.Value), &s.Responses); err != nil {
						return History{}, fmt.Errorf("event #%d: watch responses: %w", c.Index, err)
					}
				}
			}
			if inv.F == history.FFinalWatch {
				if h.Final == nil {
					f := s
					h.Final = &f
					continue
				}
				// A later session resumes the cut one: one stream.
				h.Final.Responses = append(h.Final.Responses, s.Responses...)
				h.Final.Type, h.Final.Error, h.Final.Target = s.Type, s.Error, s.Target
				continue
			}
			h.Sessions = append(h.Sessions, s)
		}
	}
	return h, nil
}
