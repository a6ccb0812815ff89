package httpconnect

import (
	"bufio"
	"strings"
	"testing"
)

func benchmarkRead(b *testing.B, in string, read func(*bufio.Reader) error) {
	r := strings.NewReader(in)
	br := bufio.NewReaderSize(r, 4096)
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

func BenchmarkReadRequest(b *testing.B) {
	read := func(br *bufio.Reader) error { _, err := ReadRequest(br, 0); return err }
	b.Run("curl", func(b *testing.B) { benchmarkRead(b, curlRequest, read) })
	b.Run("auth", func(b *testing.B) {
		benchmarkRead(b, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: "+basic("alice:p:ss")+"\r\nUser-Agent: curl/8.0\r\n\r\n", read)
	})
	b.Run("ipv6", func(b *testing.B) {
		benchmarkRead(b, "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", read)
	})
}

func BenchmarkReadResponse(b *testing.B) {
	benchmarkRead(b, "HTTP/1.1 200 Connection established\r\n\r\n", func(br *bufio.Reader) error {
		_, err := ReadResponse(br, 0)
		return err
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.Run("200", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendResponse(buf[:0], 200)
		}
	})
	b.Run("407", func(b *testing.B) {
		h := ProxyAuthenticate("virgil")
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendResponse(buf[:0], 407, h)
		}
	})
}

func BenchmarkAppendRequest(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequest(buf[:0], "example.com:443", "alice", "p:ss", true)
	}
}
