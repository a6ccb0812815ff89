//go:build !race

package relay

// raceEnabled reports whether the race detector is on; it allocates, so
// allocation counts are checked only without it.
const raceEnabled = false
