package socks4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{4, 1, 0, 80, 1, 2, 3, 4, 0})
	f.Add([]byte{4, 2, 0, 80, 0, 0, 0, 0, 'b', 'o', 'b', 0, 'x'})
	f.Add(append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'u', 0}, "example.com\x00tail"...))
	f.Add([]byte{4, 3, 0, 80, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{5, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		type result struct {
			req  Request
			err  error
			left int
		}
		run := func(br *bufio.Reader) result {
			req, err := ReadRequest(br)
			left, _ := io.ReadAll(br)
			return result{req, err, len(left)}
		}
		res := run(bufio.NewReader(bytes.NewReader(data)))
		// The same answer whatever the buffering.
		for _, br := range []*bufio.Reader{
			bufio.NewReaderSize(bytes.NewReader(data), 16),
			bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16),
		} {
			other := run(br)
			if other.req != res.req || other.left != res.left || (other.err == nil) != (res.err == nil) {
				t.Fatalf("buffering changed the result: %+v vs %+v", res, other)
			}
		}
		req, err := res.req, res.err
		if len(req.UserID) > MaxUserIDLen || len(req.Host) > MaxHostLen {
			t.Fatalf("unbounded result: %d-byte user ID, %d-byte host", len(req.UserID), len(req.Host))
		}
		consumed := len(data) - res.left
		if consumed > headerLen+MaxUserIDLen+1+MaxHostLen+1 {
			t.Fatalf("consumed %d bytes", consumed)
		}
		if err != nil && !errors.Is(err, ErrCommandNotSupported) {
			return
		}
		if req.IsSOCKS4a() != (req.Host != "") {
			t.Fatalf("IsSOCKS4a() = %v with host %q, IP %v", req.IsSOCKS4a(), req.Host, req.IP)
		}
		// decode(encode(x)) == x, byte for byte with what was consumed.
		enc, err := AppendRequest(nil, req)
		if err != nil {
			t.Fatalf("AppendRequest(%+v): %v", req, err)
		}
		if !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoding %+v gave %x, consumed %x", req, enc, data[:consumed])
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte{0, 90, 0, 80, 1, 2, 3, 4})
	f.Add([]byte{4, 91, 0, 0, 0, 0, 0, 0, 'x'})
	f.Add([]byte{0, 90, 0})
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16)
		rep, err := ReadReply(br)
		left, _ := io.ReadAll(br)
		if err != nil {
			if len(data) >= headerLen && data[0] != ReplyVersion && data[0] != Version && !errors.Is(err, ErrVersion) {
				t.Fatalf("version %d: err = %v, want ErrVersion", data[0], err)
			}
			return
		}
		if len(data)-len(left) != headerLen {
			t.Fatalf("consumed %d bytes, want %d", len(data)-len(left), headerLen)
		}
		if !rep.IP.Is4() {
			t.Fatalf("IP %v is not IPv4", rep.IP)
		}
		enc := AppendReply(nil, rep.Code, rep.AddrPort())
		if !bytes.Equal(enc[1:], data[1:headerLen]) || enc[0] != ReplyVersion {
			t.Fatalf("re-encoding %+v gave %x, input %x", rep, enc, data[:headerLen])
		}
		rep2, err := ReadReply(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil || rep2 != rep {
			t.Fatalf("round trip: %+v, %v; want %+v", rep2, err, rep)
		}
	})
}
