//go:build bugzoo

package bugzoo

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Built is true in a binary built with -tags bugzoo.
const Built = true

var active atomic.Pointer[Bug]

// Set plants bug name ("" plants none) for the whole process; call it once
// at start-up, before the server runs.
func Set(name string) error {
	if name == "" {
		active.Store(nil)
		return nil
	}
	if !Known(name) {
		var names []string
		for _, b := range All {
			names = append(names, string(b))
		}
		return fmt.Errorf("--bugzoo: unknown bug %q; the zoo has %s", name, strings.Join(names, ", "))
	}
	b := Bug(name)
	active.Store(&b)
	return nil
}

// Enabled reports whether b is the planted bug.
func Enabled(b Bug) bool {
	p := active.Load()
	return p != nil && *p == b
}
