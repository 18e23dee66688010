//go:build !bugzoo

package bugzoo

// Built is true in a binary built with -tags bugzoo.
const Built = false

// Enabled is false: a normal build plants nothing, and the compiler drops
// every code path behind it.
func Enabled(Bug) bool { return false }
