//go:build race

package elle

// raceEnabled: the race detector slows the checker down several times, so
// timing bounds do not apply.
const raceEnabled = true
