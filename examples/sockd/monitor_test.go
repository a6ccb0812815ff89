package main

import (
	"strings"
	"testing"
)

// TestGodebugSettings checks reading and extending GODEBUG.
func TestGodebugSettings(t *testing.T) {
	for _, tc := range []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{"schedtrace=1000", true},
		{"madvdontneed=1, schedtrace=5", true},
		{"schedtrace=0", false},
		{"schedtrace=5,schedtrace=0", false},
		{"schedtracex=5", false},
	} {
		if got := godebugHas(tc.godebug, "schedtrace"); got != tc.want {
			t.Errorf("godebugHas(%q) = %v, want %v", tc.godebug, got, tc.want)
		}
	}
	got := withSchedtrace([]string{"PATH=/bin", "GODEBUG=a=1", "HOME=/"})
	want := []string{"PATH=/bin", "HOME=/", "GODEBUG=a=1," + schedtraceSetting}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("withSchedtrace = %q, want %q", got, want)
	}
	if got := withSchedtrace([]string{"PATH=/bin"}); got[len(got)-1] != "GODEBUG="+schedtraceSetting {
		t.Errorf("withSchedtrace without GODEBUG = %q", got)
	}
}
