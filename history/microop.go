package history

import (
	"encoding/json"
	"fmt"
)

// Micro-op functions (MicroOp.F) of an FTxn transaction.
const (
	// MicroAppend appends Value to the list at Key.
	MicroAppend = "append"
	// MicroRead reads the list at Key into Read (nil: absent or empty).
	MicroRead = "r"
)

// MicroOp is one step of an FTxn list-append transaction: an append of
// Value to Key's list, or a read of Key's list into Read. Values appended
// to one key are unique across the history. In JSON a MicroOp is Elle's
// triple: ["append","x",3] or ["r","x",[1,2,3]] (null: nothing read, or
// not known yet). The workloads record it, package checker/elle reads it.
type MicroOp struct {
	F     string
	Key   string
	Value int   // MicroAppend only
	Read  []int // MicroRead only
}

// MarshalJSON encodes m as [f, key, value-or-list].
func (m MicroOp) MarshalJSON() ([]byte, error) {
	switch m.F {
	case MicroAppend:
		return json.Marshal([]any{m.F, m.Key, m.Value})
	case MicroRead:
		return json.Marshal([]any{m.F, m.Key, m.Read})
	}
	return nil, fmt.Errorf("marshal micro-op: unknown f %q", m.F)
}

// UnmarshalJSON decodes [f, key, value-or-list].
func (m *MicroOp) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("parse micro-op %s: %w", b, err)
	}
	if len(raw) != 3 {
		return fmt.Errorf("parse micro-op %s: want [f, key, value]", b)
	}
	var out MicroOp
	if err := json.Unmarshal(raw[0], &out.F); err != nil {
		return fmt.Errorf("parse micro-op %s: f: %w", b, err)
	}
	if err := json.Unmarshal(raw[1], &out.Key); err != nil {
		return fmt.Errorf("parse micro-op %s: key: %w", b, err)
	}
	var err error
	switch out.F {
	case MicroAppend:
		err = json.Unmarshal(raw[2], &out.Value)
	case MicroRead:
		err = json.Unmarshal(raw[2], &out.Read)
	default:
		err = fmt.Errorf("unknown f %q", out.F)
	}
	if err != nil {
		return fmt.Errorf("parse micro-op %s: %w", b, err)
	}
	*m = out
	return nil
}
