package checker

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"

	"github.com/anishathalye/porcupine"

	"github.com/quorum-kv/quorum/history"
)

// RegisterOp is what a register operation asks for: the Input of a
// porcupine.Operation under RegisterModel.
type RegisterOp struct {
	Key      string
	F        string  // history.FRead, FWrite or FCAS (final reads are reads)
	Value    *string // value written; cas new value
	Expected *string // cas compare value; nil compares with "absent"
}

// Outcome is how a register operation ended, as far as the checker knows.
type Outcome int

// The outcomes.
const (
	// Done: the operation took effect (a write or cas was applied, a read
	// observed Value).
	Done Outcome = iota
	// CompareFailed: a cas was evaluated and its compare did not hold.
	CompareFailed
	// Indefinite: the outcome is unknown (info); the operation may have
	// taken effect at any point after its invocation, or never.
	Indefinite
)

// RegisterResult is the Output of a porcupine.Operation under
// RegisterModel.
type RegisterResult struct {
	Outcome Outcome
	// Value is the value a read observed (nil: absent).
	Value *string
	// Revision is the write's header revision or the read's mod revision;
	// 0 when unknown.
	Revision int64
}

// RegisterState is the state of one register key: its value and, when
// known, the mod revision that wrote it. The zero state is "absent".
type RegisterState struct {
	Present  bool
	Value    string
	Revision int64 // 0: unknown
}

func stateOf(v *string, rev int64) RegisterState {
	if v == nil {
		return RegisterState{Revision: rev}
	}
	return RegisterState{Present: true, Value: *v, Revision: rev}
}

func (s RegisterState) holds(v *string) bool {
	if v == nil {
		return !s.Present
	}
	return s.Present && s.Value == *v
}

// RegisterModel is the sequential specification of a key-value store of
// registers with read, write and compare-and-set, partitioned by key, for
// porcupine. Inputs are RegisterOp, outputs RegisterResult, states
// RegisterState.
//
//   - write: always legal; the state becomes (value, revision), revision 0
//     if the write's outcome is indefinite.
//   - cas Done: legal if the state holds Expected; the state becomes
//     (value, revision). CompareFailed: legal if the state does not hold
//     Expected; no change. Indefinite: always legal, applied if the compare
//     holds.
//   - read: legal if the state holds the value read and, when both the
//     state's and the read's revisions are known, they are equal. A read
//     of a known revision teaches a state whose revision was unknown. The
//     revision of a read that found the key absent is ignored.
//
// Indefinite operations are expected to be given a Return time of
// math.MaxInt64, so they may be linearized anywhere after their call,
// including after every other operation (never observed).
func RegisterModel() porcupine.Model {
	return porcupine.Model{
		Partition:      partitionByKey,
		PartitionEvent: partitionEventsByKey,
		Init:           func() any { return RegisterState{} },
		Step: func(state, input, output any) (bool, any) {
			return stepRegister(state.(RegisterState), input.(RegisterOp), output.(RegisterResult))
		},
		Equal: func(a, b any) bool { return a.(RegisterState) == b.(RegisterState) },
		Hash: func(state any) uint64 {
			s := state.(RegisterState)
			h := fnv.New64a()
			h.Write([]byte(s.Value))
			return h.Sum64() ^ uint64(s.Revision)*0x9e3779b97f4a7c15 ^ boolBit(s.Present)
		},
		DescribeOperation: describeRegisterOp,
		DescribeState: func(state any) string {
			return describeState(state.(RegisterState))
		},
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func stepRegister(s RegisterState, in RegisterOp, out RegisterResult) (bool, RegisterState) {
	switch in.F {
	case history.FRead, history.FFinalRead:
		if !s.holds(out.Value) {
			return false, s
		}
		if out.Value == nil {
			// An absent key has no mod revision to compare.
			return true, s
		}
		if s.Revision != 0 && out.Revision != 0 && s.Revision != out.Revision {
			return false, s
		}
		if s.Revision == 0 && out.Revision != 0 {
			s.Revision = out.Revision
		}
		return true, s
	case history.FWrite:
		if out.Outcome == Indefinite {
			return true, stateOf(in.Value, 0)
		}
		return true, stateOf(in.Value, out.Revision)
	case history.FCAS:
		match := s.holds(in.Expected)
		switch out.Outcome {
		case Done:
			return match, stateOf(in.Value, out.Revision)
		case CompareFailed:
			return !match, s
		default:
			if match {
				return true, stateOf(in.Value, 0)
			}
			return true, s
		}
	}
	return false, s
}

func quote(v *string) string {
	if v == nil {
		return "nil"
	}
	return strconv.Quote(*v)
}

func describeState(s RegisterState) string {
	if !s.Present {
		if s.Revision != 0 {
			return fmt.Sprintf("absent @%d", s.Revision)
		}
		return "absent"
	}
	if s.Revision == 0 {
		return strconv.Quote(s.Value)
	}
	return fmt.Sprintf("%q @%d", s.Value, s.Revision)
}

func describeRegisterOp(input, output any) string {
	in, out := input.(RegisterOp), output.(RegisterResult)
	rev := ""
	if out.Revision != 0 {
		rev = fmt.Sprintf(" @%d", out.Revision)
	}
	switch in.F {
	case history.FRead, history.FFinalRead:
		return fmt.Sprintf("%s(%s) -> %s%s", in.F, in.Key, quote(out.Value), rev)
	case history.FWrite:
		if out.Outcome == Indefinite {
			return fmt.Sprintf("write(%s, %s) -> unknown", in.Key, quote(in.Value))
		}
		return fmt.Sprintf("write(%s, %s) -> ok%s", in.Key, quote(in.Value), rev)
	case history.FCAS:
		res := "ok" + rev
		switch out.Outcome {
		case CompareFailed:
			res = "compare failed"
		case Indefinite:
			res = "unknown"
		}
		return fmt.Sprintf("cas(%s, %s -> %s) -> %s", in.Key, quote(in.Expected), quote(in.Value), res)
	}
	return fmt.Sprintf("%s(%s) -> ?", in.F, in.Key)
}

func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := make(map[string][]porcupine.Operation)
	for _, op := range ops {
		k := op.Input.(RegisterOp).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := sortedKeys(byKey)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

func partitionEventsByKey(events []porcupine.Event) [][]porcupine.Event {
	// Return events carry no key: find it through the call with the
	// same Id.
	keyOf := make(map[int]string)
	byKey := make(map[string][]porcupine.Event)
	for _, e := range events {
		if e.Kind == porcupine.CallEvent {
			keyOf[e.Id] = e.Value.(RegisterOp).Key
		}
		k := keyOf[e.Id]
		byKey[k] = append(byKey[k], e)
	}
	keys := sortedKeys(byKey)
	out := make([][]porcupine.Event, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// infinity is the Return time of an operation whose outcome is unknown.
const infinity = math.MaxInt64

// registerOperations converts a history's client operations to porcupine
// operations, grouped by key (keys sorted). Reads that failed or whose
// outcome is unknown are dropped; so are writes and cas that failed, except
// a cas that failed its compare (history.ErrCompareFailed), which is
// checked. Operations with an unknown outcome return at infinity.
func registerOperations(ops []history.Op) (keys []string, byKey map[string][]porcupine.Operation) {
	byKey = make(map[string][]porcupine.Operation)
	for _, op := range ops {
		f := op.F()
		if f != history.FRead && f != history.FFinalRead && f != history.FWrite && f != history.FCAS {
			continue
		}
		in := RegisterOp{Key: op.Key(), F: f, Value: op.Invoke.Value, Expected: op.Invoke.Expected}
		pop := porcupine.Operation{
			ClientId: op.Process(),
			Input:    in,
			Call:     op.Invoke.Time,
			Return:   infinity,
		}
		isRead := f == history.FRead || f == history.FFinalRead
		switch op.Type() {
		case history.OK:
			pop.Return = op.Complete.Time
			pop.Output = RegisterResult{Outcome: Done, Value: op.Complete.Value, Revision: op.Complete.Revision}
		case history.Fail:
			if f != history.FCAS || op.Complete.Error != history.ErrCompareFailed {
				continue
			}
			pop.Return = op.Complete.Time
			pop.Output = RegisterResult{Outcome: CompareFailed}
		default:
			if isRead {
				continue
			}
			pop.Output = RegisterResult{Outcome: Indefinite}
		}
		pop.Metadata = describeMetadata(op)
		byKey[in.Key] = append(byKey[in.Key], pop)
	}
	return sortedKeys(byKey), byKey
}

func describeMetadata(op history.Op) string {
	s := fmt.Sprintf("process %d, event #%d", op.Process(), op.Invoke.Index)
	node := op.Invoke.Node
	if c := op.Complete; c != nil {
		s += fmt.Sprintf("-#%d %s", c.Index, c.Type)
		if c.Node != "" {
			node = c.Node
		}
		if c.Error != "" {
			s += fmt.Sprintf(" (%s)", c.Error)
		}
	} else {
		s += ", never completed"
	}
	if node != "" {
		s += ", node " + node
	}
	return s
}
