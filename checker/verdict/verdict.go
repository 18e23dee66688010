// Package verdict holds the three-way Verdict shared by package checker and
// its sub-checkers (checker/elle): a leaf, so that checker can import the
// sub-checkers that report in its vocabulary.
package verdict

import (
	"encoding"
	"fmt"
)

// Verdict is the three-way outcome of a check. The zero Verdict is Unknown,
// so a result nobody filled in never reads as a pass.
type Verdict int

// The verdicts.
const (
	// Unknown: the checker could not decide (timeout, nothing to check,
	// malformed history). Never a pass.
	Unknown Verdict = iota
	// Valid: the history satisfies every property checked.
	Valid
	// Invalid: the history violates a property; a bug was found.
	Invalid
)

var (
	_ fmt.Stringer             = Verdict(0)
	_ encoding.TextMarshaler   = Verdict(0)
	_ encoding.TextUnmarshaler = (*Verdict)(nil)
)

// String returns "valid", "invalid" or "unknown".
func (v Verdict) String() string {
	switch v {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	default:
		return "unknown"
	}
}

// MarshalText encodes v as its String, so JSON holds "valid", "invalid" or
// "unknown".
func (v Verdict) MarshalText() ([]byte, error) {
	switch v {
	case Valid, Invalid, Unknown:
		return []byte(v.String()), nil
	}
	return nil, fmt.Errorf("marshal verdict: invalid value %d", int(v))
}

// UnmarshalText parses "valid", "invalid" or "unknown".
func (v *Verdict) UnmarshalText(b []byte) error {
	switch string(b) {
	case "valid":
		*v = Valid
	case "invalid":
		*v = Invalid
	case "unknown":
		*v = Unknown
	default:
		return fmt.Errorf("parse verdict %q: want valid, invalid or unknown", b)
	}
	return nil
}

// ExitCode is the process exit status for v: 0 valid, 1 invalid, 2 unknown.
func (v Verdict) ExitCode() int {
	switch v {
	case Valid:
		return 0
	case Invalid:
		return 1
	default:
		return 2
	}
}

// Combine merges sub-check verdicts: any Invalid gives Invalid, else any
// Unknown gives Unknown, else Valid. Combining nothing gives Unknown:
// nothing was checked.
func Combine(vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Unknown
	}
	out := Valid
	for _, v := range vs {
		switch v {
		case Invalid:
			return Invalid
		case Valid:
		default:
			out = Unknown
		}
	}
	return out
}
