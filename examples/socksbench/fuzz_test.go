package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseProxy checks that parseProxy never panics, that every error
// wraps one of its sentinels, and that an accepted proxy is on loopback.
func FuzzParseProxy(f *testing.F) {
	for _, s := range []string{"direct", "socks5://127.0.0.1:1080", "socks4a://[::1]:1", "http://u:p@localhost:8080", "socks5://10.1.1.1:1080", "socks5h://[::ffff:127.0.0.2]:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseProxy(s)
		if err != nil {
			if !errors.Is(err, errBadProxy) && !errors.Is(err, errNotLoopback) {
				t.Fatalf("parseProxy(%q) error %v wraps no sentinel", s, err)
			}
			return
		}
		if p.Direct {
			if s != "direct" {
				t.Fatalf("parseProxy(%q) is direct", s)
			}
			return
		}
		host, _, err := net.SplitHostPort(p.Dialer.ProxyAddr)
		if err != nil {
			t.Fatalf("parseProxy(%q) gave ProxyAddr %q: %v", s, p.Dialer.ProxyAddr, err)
		}
		if !strings.EqualFold(host, "localhost") {
			a, err := netip.ParseAddr(host)
			if err != nil || !a.Unmap().IsLoopback() {
				t.Fatalf("parseProxy(%q) accepted non-loopback host %q", s, host)
			}
		}
	})
}

// FuzzParseStat checks that parseStat never panics and that it reads back
// the values of a stat line it is given, whatever the command name holds.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (sockd) S 1 1 1 0 -1 0 0 0 0 0 7 3 2 1 20 0"), "x) (y", 5, uint32(7))
	f.Add([]byte("garbage"), "", 0, uint32(0))
	f.Fuzz(func(t *testing.T, raw []byte, comm string, ppid int, ticks uint32) {
		if st, err := parseStat(raw); err == nil && st.CPUTicks < 0 {
			t.Fatalf("parseStat(%q) = negative CPU time %d", raw, st.CPUTicks)
		} else if err != nil && !errors.Is(err, errBadStat) {
			t.Fatalf("parseStat(%q) error %v does not wrap errBadStat", raw, err)
		}
		if ppid < 0 || strings.ContainsAny(comm, "\n") {
			return
		}
		line := fmt.Sprintf("42 (%s) S %d 1 1 0 -1 0 0 0 0 0 %d %d %d %d 20 0 1 0\n", comm, ppid, ticks, ticks, ticks, ticks)
		st, err := parseStat([]byte(line))
		if err != nil {
			t.Fatalf("parseStat(%q): %v", line, err)
		}
		if st.PPID != ppid || st.CPUTicks != 4*int64(ticks) {
			t.Fatalf("parseStat(%q) = %+v, want ppid %d ticks %d", line, st, ppid, 4*int64(ticks))
		}
	})
}
