//go:build race

package socks_test

// raceEnabled: the race detector's instrumentation makes frames larger, so
// stack measurements are not those of a production build.
const raceEnabled = true
