package cluster

import "fmt"

// Op is a Node life-cycle operation.
type Op string

// The Node operations that change State.
const (
	OpStart  Op = "start"
	OpStop   Op = "stop"
	OpKill   Op = "kill"
	OpPause  Op = "pause"
	OpResume Op = "resume"
	OpWipe   Op = "wipe"
)

// NextState is the transition table every backend follows: the state after
// op is applied in state s, whether op has nothing to do (noop: the node is
// already where op would take it), or an error wrapping ErrInvalidState.
//
//	         Stopped        Running        Paused
//	start    Running        noop           invalid
//	stop     noop           Stopped        Stopped
//	kill     noop           Stopped        Stopped
//	pause    invalid        Paused         noop
//	resume   invalid        noop           Running
//	wipe     Stopped        invalid        invalid
//
// It is a pure function so backends and the fake agree on it.
func NextState(s State, op Op) (next State, noop bool, err error) {
	invalid := func() (State, bool, error) {
		return s, false, fmt.Errorf("%s on %s node: %w", op, s, ErrInvalidState)
	}
	switch op {
	case OpStart:
		switch s {
		case Stopped:
			return Running, false, nil
		case Running:
			return Running, true, nil
		}
		return invalid()
	case OpStop, OpKill:
		if s == Stopped {
			return Stopped, true, nil
		}
		return Stopped, false, nil
	case OpPause:
		switch s {
		case Running:
			return Paused, false, nil
		case Paused:
			return Paused, true, nil
		}
		return invalid()
	case OpResume:
		switch s {
		case Paused:
			return Running, false, nil
		case Running:
			return Running, true, nil
		}
		return invalid()
	case OpWipe:
		if s == Stopped {
			return Stopped, false, nil
		}
		return invalid()
	}
	return s, false, fmt.Errorf("unknown node operation %q", op)
}
