package checker

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/quorum-kv/quorum/history"
)

// LinearizabilityResult is the outcome of checking the register workload's
// operations against RegisterModel, key by key.
type LinearizabilityResult struct {
	// Verdict is Invalid if any key is not linearizable, else Unknown if
	// any key was not decided (timeout, cancellation) or no operation with
	// a known outcome was checked, else Valid.
	Verdict Verdict `json:"verdict"`
	// Keys is the number of keys checked.
	Keys int `json:"keys"`
	// Operations is the number of operations checked (failed operations
	// and reads with an unknown outcome are not checked).
	Operations int `json:"operations"`
	// FailingKeys are the keys whose history is not linearizable, sorted.
	FailingKeys []string `json:"failing_keys,omitempty"`
	// UnknownKeys are the keys not decided in time, sorted.
	UnknownKeys []string `json:"unknown_keys,omitempty"`
	// Visualization is the path of the HTML visualization of the failing
	// keys, when one was written.
	Visualization string `json:"visualization,omitempty"`
	// VisualizationError says why a requested visualization was not
	// written.
	VisualizationError string `json:"visualization_error,omitempty"`
	// Duration is how long the search took (JSON: nanoseconds).
	Duration time.Duration `json:"duration_ns"`
}

// checkLinearizability runs porcupine on each key in turn, sharing one
// deadline (opts.Timeout and ctx's), then visualizes the failing keys.
func checkLinearizability(ctx context.Context, ops []history.Op, faults []history.Fault, opts Options) *LinearizabilityResult {
	start := time.Now()
	res := &LinearizabilityResult{}
	keys, byKey := registerOperations(ops)
	res.Keys = len(keys)

	deadline, hasDeadline := ctx.Deadline()
	if opts.Timeout > 0 {
		if d := start.Add(opts.Timeout); !hasDeadline || d.Before(deadline) {
			deadline, hasDeadline = d, true
		}
	}
	model := RegisterModel()
	checkModel := cancellable(ctx, model)
	var failing []porcupine.Operation
	definite := 0 // operations with a known outcome: without one, nothing constrains the search
	for _, k := range keys {
		kops := byKey[k]
		res.Operations += len(kops)
		for _, op := range kops {
			if op.Output.(RegisterResult).Outcome != Indefinite {
				definite++
			}
		}
		var timeout time.Duration
		if hasDeadline {
			timeout = time.Until(deadline)
		}
		if ctx.Err() != nil || (hasDeadline && timeout <= 0) {
			res.UnknownKeys = append(res.UnknownKeys, k)
			continue
		}
		switch r := porcupine.CheckOperationsTimeout(checkModel, kops, timeout); {
		case ctx.Err() != nil && r != porcupine.Ok:
			// The cancelled model refuses every step: only Ok is
			// trustworthy after cancellation.
			res.UnknownKeys = append(res.UnknownKeys, k)
		case r == porcupine.Ok:
		case r == porcupine.Illegal:
			res.FailingKeys = append(res.FailingKeys, k)
			failing = append(failing, kops...)
		default:
			res.UnknownKeys = append(res.UnknownKeys, k)
		}
	}
	switch {
	case len(res.FailingKeys) > 0:
		res.Verdict = Invalid
	case len(res.UnknownKeys) > 0 || definite == 0:
		res.Verdict = Unknown
	default:
		res.Verdict = Valid
	}
	if len(failing) > 0 && opts.VisualizeDir != "" {
		path := filepath.Join(opts.VisualizeDir, VisualizationFile)
		if err := visualize(ctx, model, failing, faults, opts.Timeout, path); err != nil {
			res.VisualizationError = err.Error()
		} else {
			res.Visualization = path
		}
	}
	res.Duration = time.Since(start)
	return res
}

// cancellable returns m whose StepContext refuses every step once ctx is
// done, so that porcupine stops promptly. Refusing steps can only turn Ok
// into Illegal, so the caller must treat Illegal after cancellation as
// Unknown. m.Step is left as is for visualization replay.
func cancellable(ctx context.Context, m porcupine.Model) porcupine.Model {
	step := m.Step
	m.StepContext = func(pctx context.Context, state, input, output any) (bool, any) {
		if ctx.Err() != nil {
			return false, state
		}
		return step(state, input, output)
	}
	return m
}

// visualize re-checks the failing keys' operations, recording partial
// linearizations, and writes porcupine's HTML visualization to path, with
// each fault as an annotation spanning its active interval.
func visualize(ctx context.Context, model porcupine.Model, ops []porcupine.Operation, faults []history.Fault, timeout time.Duration, path string) error {
	_, info := porcupine.CheckOperationsVerbose(cancellable(ctx, model), ops, timeout)
	var last int64
	for _, op := range ops {
		if op.Return != infinity && op.Return > last {
			last = op.Return
		}
		if op.Call > last {
			last = op.Call
		}
	}
	var notes []porcupine.Annotation
	for _, f := range faults {
		end := last
		details := "not healed before the history ended"
		if f.End != nil {
			end = f.End.Time
			details = fmt.Sprintf("events #%d-#%d, %s", f.Start.Index, f.End.Index, f.End.Type)
			if f.End.Error != "" {
				details += ": " + f.End.Error
			}
		}
		desc := f.Start.F
		if f.Start.Value != nil && *f.Start.Value != "" {
			desc += " " + *f.Start.Value
		}
		notes = append(notes, porcupine.Annotation{
			Tag:             "nemesis",
			Start:           f.Start.Time,
			End:             end,
			Description:     desc,
			Details:         details,
			BackgroundColor: "#fde2e2",
		})
	}
	info.AddAnnotations(notes)
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("write linearizability visualization %s: %w", path, err)
	}
	return nil
}
