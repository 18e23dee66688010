package harness

import (
	"errors"
	"testing"
)

// Only final reads that failed on every member count as a cluster that did
// not recover.
func TestEveryMemberFailed(t *testing.T) {
	a, b, c := errors.New("n1"), errors.New("n2"), errors.New("n3")
	for _, tc := range []struct {
		err  error
		n    int
		want bool
	}{
		{nil, 3, false},
		{errors.Join(a, b), 3, false},
		{errors.Join(a, b, c), 3, true},
		{errors.Join(nil, a, nil), 1, true},
		{a, 1, false}, // not FinalReads' joined form
	} {
		if got := everyMemberFailed(tc.err, tc.n); got != tc.want {
			t.Errorf("everyMemberFailed(%v, %d) = %v, want %v", tc.err, tc.n, got, tc.want)
		}
	}
}
