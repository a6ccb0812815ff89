package socks5

import (
	"bufio"
	"bytes"
	"testing"
	"testing/iotest"
)

// TestAllocs checks the allocation budget of the hot paths: nothing for
// greetings, IP requests and replies and datagrams, one string for a
// domain name, and nothing for Append functions when the buffer has room.
func TestAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation counts")
	}
	ipv6Req := "\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb"
	reads := []struct {
		name string
		msg  string
		max  float64
		read func(*bufio.Reader) error
	}{
		{"greeting", "\x05\x03\x00\x01\x02", 0, readGreeting.read},
		{"request-ipv4", "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50", 0, readRequest.read},
		{"request-ipv6", ipv6Req, 0, readRequest.read},
		{"request-domain", "\x05\x01\x00\x03\x0bexample.com\x01\xbb", 1, readRequest.read},
		{"method-selection", "\x05\x00", 0, readSelection.read},
		{"userpass-reply", "\x01\x00", 0, readUPReply.read},
		{"reply-ipv4", "\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40", 0, readReply.read},
		{"reply-ipv6", "\x05\x00\x00\x04" + ipv6Req[4:], 0, readReply.read},
		{"reply-domain", "\x05\x04\x00\x03\x0fnowhere.invalid\x00\x50", 1, readReply.read},
		{"userpass", "\x01\x05alice\x06secret", 2, readUserPass.read},
	}
	for _, rd := range reads {
		for _, size := range []int{16, 512} {
			for _, oneByte := range []bool{false, true} {
				msg := []byte(rd.msg)
				r := bytes.NewReader(msg)
				var src interface{ Read([]byte) (int, error) } = r
				if oneByte {
					src = iotest.OneByteReader(r)
				}
				br := bufio.NewReaderSize(src, size)
				got := testing.AllocsPerRun(100, func() {
					r.Reset(msg)
					br.Reset(src)
					if err := rd.read(br); err != nil {
						t.Fatal(err)
					}
				})
				if got > rd.max {
					t.Errorf("%s (buffer %d, one byte %v): %v allocations, want at most %v", rd.name, size, oneByte, got, rd.max)
				}
			}
		}
	}

	datagrams := []struct {
		name string
		msg  string
		max  float64
	}{
		{"ipv4", "\x00\x00\x00\x01\xc0\x00\x02\x35\x00\x35query", 0},
		{"ipv6", "\x00\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x7bdata", 0},
		{"domain", "\x00\x00\x00\x03\x0ftracker.example\x1a\xe1\x00\x00", 1},
		{"bad-rsv", "\x01\x00\x00\x01\xc0\x00\x02\x35\x00\x35", 0},
		{"bad-atyp", "\x00\x00\x00\x09", 0},
		{"truncated", "\x00\x00\x00\x04\x20\x01", 0},
	}
	for _, d := range datagrams {
		msg := []byte(d.msg)
		got := testing.AllocsPerRun(100, func() { _, _ = ParseDatagram(msg) })
		if got > d.max {
			t.Errorf("ParseDatagram %s: %v allocations, want at most %v", d.name, got, d.max)
		}
	}

	buf := make([]byte, 0, 1024)
	v4, v6, name := mustAddr("192.0.2.1:80"), mustAddr("[2001:db8::1]:443"), mustAddr("example.com:443")
	appends := []struct {
		name string
		f    func()
	}{
		{"AppendReply-ipv4", func() { buf = AppendReply(buf[:0], ReplySucceeded, v4) }},
		{"AppendReply-ipv6", func() { buf = AppendReply(buf[:0], ReplySucceeded, v6) }},
		{"AppendReply-zero", func() { buf = AppendReply(buf[:0], ReplyGeneralFailure, Addr{}) }},
		{"AppendRequest-domain", func() { buf, _ = AppendRequest(buf[:0], Request{CommandConnect, name}) }},
		{"AppendGreeting", func() { buf, _ = AppendGreeting(buf[:0], MethodNoAuth, MethodUsernamePassword) }},
		{"AppendUsernamePasswordRequest", func() { buf, _ = AppendUsernamePasswordRequest(buf[:0], "alice", "secret") }},
		{"AppendDatagramHeader", func() { buf, _ = AppendDatagramHeader(buf[:0], 0, v6) }},
		{"AppendDatagram", func() { buf, _ = AppendDatagram(buf[:0], Datagram{Addr: name, Data: []byte("x")}) }},
		{"MethodSet", func() {
			var s MethodSet
			s.Add(MethodUsernamePassword)
			if !s.Has(MethodUsernamePassword) || s.Len() != 1 {
				t.Fatal("MethodSet broken")
			}
		}},
	}
	for _, a := range appends {
		if got := testing.AllocsPerRun(100, a.f); got != 0 {
			t.Errorf("%s: %v allocations, want 0", a.name, got)
		}
	}
}
