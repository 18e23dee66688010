package checker

import "github.com/quorum-kv/quorum/checker/verdict"

// Verdict is the three-way outcome of a check; see package
// checker/verdict, where it lives so that sub-checkers such as
// checker/elle can report in it while checker imports them. The zero
// Verdict is Unknown.
type Verdict = verdict.Verdict

// The verdicts.
const (
	// Unknown: the checker could not decide (timeout, nothing to check,
	// malformed history). Never a pass.
	Unknown = verdict.Unknown
	// Valid: the history satisfies every property checked.
	Valid = verdict.Valid
	// Invalid: the history violates a property; a bug was found.
	Invalid = verdict.Invalid
)

// Combine merges sub-check verdicts: any Invalid gives Invalid, else any
// Unknown gives Unknown, else Valid. Combining nothing gives Unknown.
func Combine(vs ...Verdict) Verdict { return verdict.Combine(vs...) }
