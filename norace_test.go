//go:build !race

package socks_test

const raceEnabled = false
