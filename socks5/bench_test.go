package socks5

import (
	"bufio"
	"bytes"
	"testing"
)

// benchRead measures one Read function over msg, resetting the reader each
// time as a server does per connection.
func benchRead(b *testing.B, msg string, read func(*bufio.Reader) error) {
	in := []byte(msg)
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if err := read(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadGreeting(b *testing.B) {
	benchRead(b, "\x05\x02\x00\x02", readGreeting.read)
}

func BenchmarkReadRequestIPv4(b *testing.B) {
	benchRead(b, "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50", readRequest.read)
}

func BenchmarkReadRequestIPv6(b *testing.B) {
	benchRead(b, "\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb", readRequest.read)
}

func BenchmarkReadRequestDomain(b *testing.B) {
	benchRead(b, "\x05\x01\x00\x03\x0bexample.com\x01\xbb", readRequest.read)
}

func BenchmarkReadReply(b *testing.B) {
	benchRead(b, "\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40", readReply.read)
}

func BenchmarkReadUsernamePasswordRequest(b *testing.B) {
	benchRead(b, "\x01\x05alice\x06secret", readUserPass.read)
}

func BenchmarkParseDatagram(b *testing.B) {
	in, err := AppendDatagram(nil, Datagram{Addr: mustAddr("192.0.2.53:53"), Data: make([]byte, 512)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		d, err := ParseDatagram(in)
		if err != nil || len(d.Data) != 512 {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendReply(b *testing.B) {
	bound := mustAddr("192.0.2.1:40000")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReply(buf[:0], ReplySucceeded, bound)
	}
	if len(buf) != 10 {
		b.Fatalf("reply of %d bytes", len(buf))
	}
}

func BenchmarkAppendDatagramHeader(b *testing.B) {
	addr := mustAddr("[2001:db8::1]:53")
	buf := make([]byte, 0, MaxDatagramHeaderLen)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendDatagramHeader(buf[:0], 0, addr)
	}
	if len(buf) != 22 {
		b.Fatalf("header of %d bytes", len(buf))
	}
}
