//go:build !race

package elle

const raceEnabled = false
