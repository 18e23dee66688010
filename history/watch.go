package history

import (
	"encoding/json"
	"fmt"
)

// Operation names (Event.F) of the watch workload.
const (
	// FDelete deletes one key; an ok completion's Revision is the header
	// revision (the delete's own revision if the key existed, else the
	// store's revision, unchanged).
	FDelete = "delete"
	// FWriteTxn is one Txn of puts and deletes on distinct keys, applied
	// at one revision: Value is the JSON of its []WriteOp; an ok
	// completion's Revision is the header revision.
	FWriteTxn = "write-txn"
	// FWatch is one watch session: the invocation's Value is the JSON of
	// its WatchSpec, Key the watched key; the completion's Value the JSON
	// of every []WatchResponse received, in order. It completes ok when
	// the run ended it, fail when it was cut (canceled by the server, the
	// connection lost); a watcher's next session resumes after the last
	// revision it got.
	FWatch = "watch"
	// FFinalWatch is the watch FinalReads makes once faults are healed:
	// from revision 1 over the whole key space, with prev_kv, until the
	// completion's Revision (the store revision read just before) is
	// covered. Value as for FWatch. Package checker/watch builds every
	// revision's events from it.
	FFinalWatch = "final-watch"
)

// Event types of a WatchEvent and WriteOp functions.
const (
	WatchPut    = "put"
	WatchDelete = "delete"
)

// WriteOp is one write of an FWriteTxn: a put of Value at Key, or a delete
// of Key.
type WriteOp struct {
	F     string `json:"f"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// WatchSpec is how a watch session was created.
type WatchSpec struct {
	// Watcher is the logical watcher the session belongs to: its sessions
	// are consecutive, each resuming where the previous one stopped. The
	// final watch is watcher -1.
	Watcher int `json:"watcher"`
	// Kind is "key", "prefix" or "range", for reports.
	Kind string `json:"kind"`
	// Key and RangeEnd are the watched interval [Key, RangeEnd) as etcd
	// takes them; RangeEnd "" watches Key alone.
	Key      string `json:"key"`
	RangeEnd string `json:"range_end,omitempty"`
	// StartRev is the revision the watch starts from (>= 1).
	StartRev int64 `json:"start_rev"`
	// PrevKV, NoPut, NoDelete and ProgressNotify are the watch's options
	// (WithPrevKV, WithFilterPut, WithFilterDelete, WithProgressNotify;
	// the watcher also asks for progress now and then when
	// ProgressNotify is set).
	PrevKV         bool `json:"prev_kv,omitempty"`
	NoPut          bool `json:"no_put,omitempty"`
	NoDelete       bool `json:"no_delete,omitempty"`
	ProgressNotify bool `json:"progress_notify,omitempty"`
}

// Contains reports whether key is in the watched interval.
func (s WatchSpec) Contains(key string) bool {
	if s.RangeEnd == "" {
		return key == s.Key
	}
	if s.RangeEnd == "\x00" {
		return key >= s.Key
	}
	return key >= s.Key && key < s.RangeEnd
}

// KV is a key-value pair as a watch reports it.
type KV struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	ModRev    int64  `json:"mod"`
	CreateRev int64  `json:"create"`
	Version   int64  `json:"ver"`
}

// WatchEvent is one event of a watch response: Type WatchPut or
// WatchDelete; Kv is the key after the event (a delete's has only Key and
// ModRev, the delete's revision), PrevKV the key before it when the watch
// asked for it and the key existed.
type WatchEvent struct {
	Type   string `json:"type"`
	Kv     KV     `json:"kv"`
	PrevKV *KV    `json:"prev_kv,omitempty"`
}

// IsCreate reports whether the event created its key, as clientv3's
// Event.IsCreate: a put whose create revision is its mod revision.
func (e WatchEvent) IsCreate() bool {
	return e.Type == WatchPut && e.Kv.CreateRev == e.Kv.ModRev
}

// WatchResponse is one response of a watch stream.
type WatchResponse struct {
	// Time is when it was received, nanoseconds since the run started
	// (0: unknown).
	Time int64 `json:"time,omitempty"`
	// Revision is the header revision.
	Revision int64 `json:"rev"`
	// Created, Canceled, CompactRevision and Events as etcd sent them;
	// Progress marks a progress notification (no events, not created or
	// canceled, no compaction).
	Created         bool         `json:"created,omitempty"`
	Canceled        bool         `json:"canceled,omitempty"`
	CompactRevision int64        `json:"compact_rev,omitempty"`
	Progress        bool         `json:"progress,omitempty"`
	Events          []WatchEvent `json:"events,omitempty"`
	// Err is why the stream ended, on its last response (a cancel reason,
	// a lost connection).
	Err string `json:"err,omitempty"`
}

// WatchJSON is the Event.Value of a watch invocation or completion: v's
// JSON.
func WatchJSON(v any) *string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // the types above always marshal
	}
	return Str(string(b))
}
