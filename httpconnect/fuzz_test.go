package httpconnect

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// outcome is what a decoder run produced, in a comparable form.
type outcome struct {
	req    *Request
	resp   *Response
	status int    // StatusError status, if any
	err    string // other error text
	left   int    // bytes left unread (compared on success only)
}

func runRequest(br *bufio.Reader, max int) outcome {
	req, err := ReadRequest(br, max)
	o := outcome{req: req}
	var se *StatusError
	switch {
	case errors.As(err, &se):
		o.status = se.Status
	case err != nil:
		o.err = err.Error()
	}
	rest, _ := io.ReadAll(br)
	o.left = len(rest)
	return o
}

func sameOutcome(a, b outcome) bool {
	if a.status != b.status || a.err != b.err || !cmp.Equal(a.req, b.req) || !cmp.Equal(a.resp, b.resp) {
		return false
	}
	return (a.req == nil && a.resp == nil) || a.left == b.left
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(curlRequest + "HELLO"))
	f.Add([]byte("CONNECT [::1]:443 HTTP/1.0\nProxy-Authorization: Basic YWxpY2U6cDpzcw==\n\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("CONNECT a:1 HTTP/1.1\r\nX: a\r\n b\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, max := range []int{0, 64} {
			o := runRequest(bufio.NewReaderSize(bytes.NewReader(data), 4096), max)
			for name, br := range map[string]*bufio.Reader{
				"tiny":    bufio.NewReaderSize(bytes.NewReader(data), 16),
				"onebyte": bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16),
			} {
				if other := runRequest(br, max); !sameOutcome(o, other) {
					t.Fatalf("max %d: %s reader gave %+v, default %+v", max, name, other, o)
				}
			}
			if o.status != 0 && o.status != 400 && o.status != 405 && o.status != 431 && o.status != 505 {
				t.Fatalf("unexpected status %d", o.status)
			}
			req := o.req
			if req == nil {
				continue
			}
			limit := max
			if limit <= 0 {
				limit = DefaultMaxHeaderBytes
			}
			if consumed := len(data) - o.left; consumed > limit {
				t.Fatalf("max %d: consumed %d bytes", max, consumed)
			}
			if req.Method != "CONNECT" || (req.Proto != "HTTP/1.1" && req.Proto != "HTTP/1.0") {
				t.Fatalf("accepted method %q proto %q", req.Method, req.Proto)
			}
			host, port, err := ParseTarget(req.Target)
			if err != nil || host != req.Host || port != req.Port || port == 0 || host == "" {
				t.Fatalf("target %q: host %q port %d, ParseTarget gives %q %d %v", req.Target, req.Host, req.Port, host, port, err)
			}
			if !req.HasCredentials && (req.Username != "" || req.Password != "") {
				t.Fatalf("credentials without HasCredentials: %+v", req)
			}
			// decode(encode(x)) == x.
			var hs []Header
			if req.UserAgent != "" {
				hs = append(hs, Header{"User-Agent", req.UserAgent})
			}
			enc := AppendRequest(nil, req.Target, req.Username, req.Password, req.HasCredentials, hs...)
			again, err := ReadRequest(bufio.NewReader(bytes.NewReader(enc)), 0)
			if err != nil {
				t.Fatalf("re-reading %q: %v", enc, err)
			}
			again.Proto = req.Proto // AppendRequest always writes HTTP/1.1
			if diff := cmp.Diff(req, again); diff != "" {
				t.Fatalf("round trip mismatch (-first +again):\n%s", diff)
			}
		}
	})
}

func runResponse(br *bufio.Reader, max int) outcome {
	resp, err := ReadResponse(br, max)
	o := outcome{resp: resp}
	if err != nil {
		o.err = err.Error()
	}
	rest, _ := io.ReadAll(br)
	o.left = len(rest)
	return o
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\ntunnel"))
	f.Add([]byte("HTTP/1.0 407 Proxy Authentication Required\nProxy-Authenticate: Basic realm=\"x\"\n\n"))
	f.Add([]byte("HTTP/1.1 502 Bad Gateway\r\nX: a\r\n b\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := runResponse(bufio.NewReaderSize(bytes.NewReader(data), 4096), 0)
		for name, br := range map[string]*bufio.Reader{
			"tiny":    bufio.NewReaderSize(bytes.NewReader(data), 16),
			"onebyte": bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16),
		} {
			if other := runResponse(br, 0); !sameOutcome(o, other) {
				t.Fatalf("%s reader gave %+v, default %+v", name, other, o)
			}
		}
		resp := o.resp
		if resp == nil {
			return
		}
		if consumed := len(data) - o.left; consumed > DefaultMaxHeaderBytes {
			t.Fatalf("consumed %d bytes", consumed)
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("status %d", resp.Status)
		}
		// decode(encode(x)) == x, with folded headers written on one line.
		enc := []byte(resp.Proto + " " + strconv.Itoa(resp.Status) + " " + resp.Reason + "\r\n")
		enc = appendHeaders(enc, resp.Header)
		enc = append(enc, "\r\n"...)
		again, err := ReadResponse(bufio.NewReader(bytes.NewReader(enc)), 0)
		if err != nil {
			t.Fatalf("re-reading %q: %v", enc, err)
		}
		if diff := cmp.Diff(resp, again); diff != "" {
			t.Fatalf("round trip mismatch (-first +again):\n%s", diff)
		}
	})
}
