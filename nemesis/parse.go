package nemesis

import (
	"fmt"
	"strings"
)

// None is the --nemesis value for a run without faults.
const None = "none"

// registry lists every nemesis name, in the order Names returns them.
var registry = []struct {
	name string
	make func(Options) Nemesis
}{
	{"kill-one", process(killOp, targetOne)},
	{"kill-leader", process(killOp, targetLeader)},
	{"kill-minority", process(killOp, targetMinority)},
	{"kill-majority", process(killOp, targetMajority)},
	{"kill-all", process(killOp, targetAll)},
	{"pause-one", process(pauseOp, targetOne)},
	{"pause-leader", process(pauseOp, targetLeader)},
	{"pause-minority", process(pauseOp, targetMinority)},
	{"pause-majority", process(pauseOp, targetMajority)},
	{"pause-all", process(pauseOp, targetAll)},
	{"partition-one", partition(shapeOne)},
	{"partition-leader", partition(shapeLeader)},
	{"partition-halves", partition(shapeHalves)},
	{"partition-majorities-ring", partition(shapeRing)},
	{"partition-bridge", partition(shapeBridge)},
	{"isolate-minority", func(o Options) Nemesis { return &isolateNemesis{opts: o} }},
	{"isolate-majority", func(o Options) Nemesis { return &isolateNemesis{majority: true, opts: o} }},
	{"latency", func(o Options) Nemesis { return &latencyNemesis{opts: o} }},
	{"drop", func(o Options) Nemesis { return &dropNemesis{opts: o} }},
	{"kill-lose-unfsynced", func(o Options) Nemesis { return &loseNemesis{opts: o} }},
	{"kill-all-lose-unfsynced", func(o Options) Nemesis { return &loseNemesis{all: true, opts: o} }},
	{"bitflip-wal", func(o Options) Nemesis { return &corruptNemesis{c: corruptions["bitflip-wal"], opts: o} }},
	{"truncate-wal", func(o Options) Nemesis { return &corruptNemesis{c: corruptions["truncate-wal"], opts: o} }},
	{"bitflip-snap", func(o Options) Nemesis { return &corruptNemesis{c: corruptions["bitflip-snap"], opts: o} }},
	{"member-replace", member(memberReplace)},
	{"member-replace-learner", member(memberReplaceLearner)},
	{"member-shrink", member(memberShrink)},
	{"compact", admin(adminCompact)},
	{"defrag", admin(adminDefrag)},
	{"defrag-one", admin(adminDefragOne)},
	{"snapshot", admin(adminSnapshot)},
}

func member(k memberKind) func(Options) Nemesis {
	return func(o Options) Nemesis { return &memberNemesis{kind: k, opts: o} }
}

func admin(k adminKind) func(Options) Nemesis {
	return func(o Options) Nemesis { return &adminNemesis{kind: k, opts: o} }
}

func process(op processOp, t target) func(Options) Nemesis {
	return func(o Options) Nemesis { return &processNemesis{op: op, target: t, opts: o} }
}

func partition(s shape) func(Options) Nemesis {
	return func(o Options) Nemesis { return &partitionNemesis{shape: s, opts: o} }
}

// Names returns every nemesis name Parse accepts, "none" first; the slice
// is the caller's.
func Names() []string {
	out := []string{None}
	for _, r := range registry {
		out = append(out, r.name)
	}
	return out
}

// New returns the nemesis called name, using o (which must Validate).
func New(name string, o Options) (Nemesis, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	for _, r := range registry {
		if r.name == name {
			return r.make(o), nil
		}
	}
	return nil, fmt.Errorf("unknown nemesis %q; valid: %s", name, strings.Join(Names(), ", "))
}

// Parse turns the --nemesis flag, a comma-separated list of names such as
// "kill-leader,partition-halves", into nemeses sharing o. "none" alone (or
// an empty string) means no faults and returns an empty slice. A name may
// repeat; the Schedule then runs it more often. The error for an unknown
// or empty name lists the valid ones.
func Parse(names string, o Options) ([]Nemesis, error) {
	names = strings.TrimSpace(names)
	if names == "" || names == None {
		return []Nemesis{}, nil
	}
	var out []Nemesis
	for _, name := range strings.Split(names, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "":
			return nil, fmt.Errorf("nemesis list %q has an empty name; valid: %s", names, strings.Join(Names(), ", "))
		case None:
			return nil, fmt.Errorf("nemesis list %q: %q cannot be combined with other nemeses", names, None)
		}
		n, err := New(name, o)
		if err != nil {
			return nil, fmt.Errorf("nemesis list %q: %w", names, err)
		}
		out = append(out, n)
	}
	return out, nil
}
