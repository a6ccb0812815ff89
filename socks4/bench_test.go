package socks4

import (
	"bufio"
	"bytes"
	"net/netip"
	"testing"
)

func benchmarkReadRequest(b *testing.B, in []byte) {
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadRequest(b *testing.B) {
	b.Run("socks4", func(b *testing.B) {
		benchmarkReadRequest(b, []byte{4, 1, 0x01, 0xbb, 192, 0, 2, 1, 0})
	})
	b.Run("socks4a", func(b *testing.B) {
		benchmarkReadRequest(b, append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'b', 'o', 'b', 0}, "example.com\x00"...))
	})
}

func BenchmarkAppendReply(b *testing.B) {
	buf := make([]byte, 0, 8)
	ap := netip.MustParseAddrPort("192.0.2.1:1080")
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReply(buf[:0], ReplyGranted, ap)
	}
}
