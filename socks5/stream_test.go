package socks5

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reader is any of the Read functions, reduced to its error.
type reader struct {
	name   string
	client bool // a client-side read: end of input also wraps ErrShortReply
	read   func(*bufio.Reader) error
}

var (
	readGreeting = reader{"ReadGreeting", false, func(br *bufio.Reader) error { _, err := ReadGreeting(br); return err }}
	readUserPass = reader{"ReadUsernamePasswordRequest", false, func(br *bufio.Reader) error {
		_, _, err := ReadUsernamePasswordRequest(br)
		return err
	}}
	readRequest   = reader{"ReadRequest", false, func(br *bufio.Reader) error { _, err := ReadRequest(br); return err }}
	readSelection = reader{"ReadMethodSelection", true, func(br *bufio.Reader) error { _, err := ReadMethodSelection(br); return err }}
	readUPReply   = reader{"ReadUsernamePasswordReply", true, func(br *bufio.Reader) error {
		_, err := ReadUsernamePasswordReply(br)
		return err
	}}
	readReply = reader{"ReadReply", true, func(br *bufio.Reader) error { _, err := ReadReply(br); return err }}
)

// validMessages are complete, valid messages for each reader.
var validMessages = []struct {
	r   reader
	msg string
}{
	{readGreeting, "\x05\x01\x00"},
	{readGreeting, "\x05\x03\x00\x01\x02"},
	{readUserPass, "\x01\x05alice\x06secret"},
	{readUserPass, "\x01\xff" + name255 + "\xff" + name255},
	{readRequest, "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50"},
	{readRequest, "\x05\x02\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb"},
	{readRequest, "\x05\x01\x00\x03\x0bexample.com\x01\xbb"},
	{readRequest, "\x05\x03\x00\x03\xff" + name255 + "\x00\x00"},
	{readSelection, "\x05\x02"},
	{readUPReply, "\x01\x00"},
	{readReply, "\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40"},
	{readReply, "\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\x38"},
	{readReply, "\x05\x04\x00\x03\x0fnowhere.invalid\x00\x50"},
}

// TestTruncatedAtEveryOffset cuts every valid message at every offset:
// io.EOF before the first byte, io.ErrUnexpectedEOF after it, never a
// panic and never success.
func TestTruncatedAtEveryOffset(t *testing.T) {
	for _, vm := range validMessages {
		for _, rk := range readerKinds {
			if err := vm.r.read(rk.make([]byte(vm.msg))); err != nil {
				t.Fatalf("%s(% x) on %s: the whole message fails: %v", vm.r.name, vm.msg, rk.name, err)
			}
			for k := range len(vm.msg) {
				err := vm.r.read(rk.make([]byte(vm.msg[:k])))
				want := io.ErrUnexpectedEOF
				if k == 0 {
					want = io.EOF
				}
				if !errors.Is(err, want) || (k > 0 && errors.Is(err, io.EOF)) {
					t.Errorf("%s cut at %d/%d on %s: got %v, want %v", vm.r.name, k, len(vm.msg), rk.name, err, want)
				}
				if vm.r.client && !errors.Is(err, ErrShortReply) {
					t.Errorf("%s cut at %d on %s: %v does not wrap ErrShortReply", vm.r.name, k, rk.name, err)
				}
			}
		}
	}
}

// TestDatagramTruncatedAtEveryOffset cuts datagrams: inside the header it
// is an error; after it, a shorter payload.
func TestDatagramTruncatedAtEveryOffset(t *testing.T) {
	for _, d := range []Datagram{
		{Addr: mustAddr("192.0.2.1:53"), Data: []byte("abc")},
		{Addr: mustAddr("[2001:db8::1]:53"), Data: []byte("abc")},
		{Addr: mustAddr("example.com:53"), Data: []byte("abc")},
	} {
		msg, err := AppendDatagram(nil, d)
		checkErrs(t, err, nil)
		hl := len(msg) - len(d.Data)
		for k := range len(msg) + 1 {
			got, err := ParseDatagram(msg[:k])
			if k < hl {
				checkErrs(t, err, []error{ErrBadDatagram, io.ErrUnexpectedEOF})
				continue
			}
			checkErrs(t, err, nil)
			if diff := cmp.Diff(Datagram{Addr: d.Addr, Data: d.Data[:k-hl]}, got, cmpOpts); diff != "" {
				t.Errorf("%v cut at %d (-want +got):\n%s", d.Addr, k, diff)
			}
		}
	}
}

// TestIOErrorsPassThrough checks that a read error other than end of input
// comes back as it is, and that ReplyFor says not to reply to it.
func TestIOErrorsPassThrough(t *testing.T) {
	for _, vm := range validMessages {
		for k := range len(vm.msg) {
			for _, ioErr := range []error{iotest.ErrTimeout, errors.New("connection reset")} {
				r := io.MultiReader(bytes.NewReader([]byte(vm.msg[:k])), iotest.ErrReader(ioErr))
				err := vm.r.read(bufio.NewReaderSize(r, 16))
				if !errors.Is(err, ioErr) {
					t.Fatalf("%s cut at %d by %v: got %v", vm.r.name, k, ioErr, err)
				}
				if _, reply := ReplyFor(err); reply {
					t.Errorf("ReplyFor(%v) wants a reply to an I/O error", err)
				}
			}
		}
	}
}

// TestRoundTrips encodes values with the Append functions and decodes them
// with the Read functions, for every address type and every reader kind.
func TestRoundTrips(t *testing.T) {
	addrs := []Addr{
		mustAddr("192.0.2.1:80"),
		mustAddr("0.0.0.0:0"),
		mustAddr("255.255.255.255:65535"),
		mustAddr("[2001:db8::1]:443"),
		mustAddr("[::]:1"),
		mustAddr("[::ffff:10.0.0.1]:2"),
		mustAddr("example.com:8080"),
		{Name: "x", Port: 1},
		{Name: name255, Port: 65535},
		{Name: "\x00\xff binary", Port: 7},
	}
	for _, a := range addrs {
		for _, rk := range readerKinds {
			t.Run(a.String()[:min(len(a.String()), 30)]+"/"+rk.name, func(t *testing.T) {
				for _, cmd := range []Command{CommandConnect, CommandBind, CommandUDPAssociate} {
					b, err := AppendRequest(nil, Request{cmd, a})
					checkErrs(t, err, nil)
					br := rk.make(append(b, trailer...))
					gotReq, err := ReadRequest(br)
					checkErrs(t, err, nil)
					if diff := cmp.Diff(Request{cmd, a}, gotReq, cmpOpts); diff != "" {
						t.Errorf("request (-want +got):\n%s", diff)
					}
					checkRest(t, br, trailer)
				}
				for _, code := range []ReplyCode{ReplySucceeded, ReplyHostUnreachable, 0xff} {
					br := rk.make(append(AppendReply(nil, code, a), trailer...))
					gotRep, err := ReadReply(br)
					checkErrs(t, err, nil)
					if diff := cmp.Diff(Reply{code, a}, gotRep, cmpOpts); diff != "" {
						t.Errorf("reply (-want +got):\n%s", diff)
					}
					checkRest(t, br, trailer)
				}
				d := Datagram{Frag: 0, Addr: a, Data: []byte("payload")}
				b, err := AppendDatagram(nil, d)
				checkErrs(t, err, nil)
				gotD, err := ParseDatagram(b)
				checkErrs(t, err, nil)
				if diff := cmp.Diff(d, gotD, cmpOpts); diff != "" {
					t.Errorf("datagram (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestRoundTripGreetingAndAuth(t *testing.T) {
	methodLists := [][]Method{{MethodNoAuth}, {MethodNoAuth, MethodUsernamePassword}, {0x80, 0xfe, 0x03}}
	creds := [][2]string{{"u", "p"}, {"alice", "correct horse"}, {name255, name255}}
	for _, rk := range readerKinds {
		for _, ms := range methodLists {
			b, err := AppendGreeting(nil, ms...)
			checkErrs(t, err, nil)
			got, err := ReadGreeting(rk.make(b))
			checkErrs(t, err, nil)
			if got != MethodSetOf(ms...) {
				t.Errorf("%s: greeting %v read back as %v", rk.name, ms, got)
			}
			sel, err := ReadMethodSelection(rk.make(AppendMethodSelection(nil, ms[0])))
			checkErrs(t, err, nil)
			if sel != ms[0] {
				t.Errorf("%s: selection %v read back as %v", rk.name, ms[0], sel)
			}
		}
		for _, c := range creds {
			b, err := AppendUsernamePasswordRequest(nil, c[0], c[1])
			checkErrs(t, err, nil)
			u, p, err := ReadUsernamePasswordRequest(rk.make(b))
			checkErrs(t, err, nil)
			if u != c[0] || p != c[1] {
				t.Errorf("%s: credentials read back as %q/%q", rk.name, u, p)
			}
		}
		for _, ok := range []bool{true, false} {
			got, err := ReadUsernamePasswordReply(rk.make(AppendUsernamePasswordReply(nil, ok)))
			checkErrs(t, err, nil)
			if got != ok {
				t.Errorf("%s: auth reply %v read back as %v", rk.name, ok, got)
			}
		}
	}
}

// TestHandshakeStream reads a whole client handshake that arrives as one
// stream, in every way it can arrive, and checks that each read takes
// exactly its message and leaves the relayed bytes in the buffer.
func TestHandshakeStream(t *testing.T) {
	clientStream := cat(
		"\x05\x02\x00\x02",                        // greeting: none, username
		"\x01\x05alice\x06secret",                 // RFC 1929
		"\x05\x01\x00\x03\x0bexample.com\x00\x50", // CONNECT example.com:80
		"GET / HTTP/1.0\r\n\r\n",                  // first bytes of the tunnel
	)
	serverStream := cat(
		"\x05\x02", // username chosen
		"\x01\x00", // authenticated
		"\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40", // succeeded, bound 192.0.2.1:40000
		"HTTP/1.0 200 OK\r\n",
	)
	for _, rk := range readerKinds {
		t.Run(rk.name, func(t *testing.T) {
			br := rk.make(clientStream)
			methods, err := ReadGreeting(br)
			checkErrs(t, err, nil)
			if methods != MethodSetOf(MethodNoAuth, MethodUsernamePassword) {
				t.Errorf("methods = %v", methods)
			}
			user, password, err := ReadUsernamePasswordRequest(br)
			checkErrs(t, err, nil)
			if user != "alice" || password != "secret" {
				t.Errorf("credentials = %q/%q", user, password)
			}
			req, err := ReadRequest(br)
			checkErrs(t, err, nil)
			if diff := cmp.Diff(Request{CommandConnect, Addr{Name: "example.com", Port: 80}}, req, cmpOpts); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			checkRest(t, br, "GET / HTTP/1.0\r\n\r\n")

			br = rk.make(serverStream)
			m, err := ReadMethodSelection(br)
			checkErrs(t, err, nil)
			if m != MethodUsernamePassword {
				t.Errorf("method = %v", m)
			}
			ok, err := ReadUsernamePasswordReply(br)
			checkErrs(t, err, nil)
			if !ok {
				t.Errorf("authentication reply read as failure")
			}
			rep, err := ReadReply(br)
			checkErrs(t, err, nil)
			want := Reply{ReplySucceeded, Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 40000}}
			if diff := cmp.Diff(want, rep, cmpOpts); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			checkRest(t, br, "HTTP/1.0 200 OK\r\n")
		})
	}
}

// TestConversation runs the client side and the server side of the codec
// against each other over a synchronous in-memory pipe.
func TestConversation(t *testing.T) {
	cc, sc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	cc.SetDeadline(deadline)
	sc.SetDeadline(deadline)
	bound := mustAddr("[2001:db8::9]:5555")

	type result struct {
		methods MethodSet
		user    string
		req     Request
		err     error
	}
	done := make(chan result, 1)
	go func() { // the server
		defer sc.Close()
		var res result
		defer func() { done <- res }()
		br := bufio.NewReaderSize(sc, 512)
		if res.methods, res.err = ReadGreeting(br); res.err != nil {
			return
		}
		if _, res.err = sc.Write(AppendMethodSelection(nil, MethodUsernamePassword)); res.err != nil {
			return
		}
		if res.user, _, res.err = ReadUsernamePasswordRequest(br); res.err != nil {
			return
		}
		if _, res.err = sc.Write(AppendUsernamePasswordReply(nil, true)); res.err != nil {
			return
		}
		if res.req, res.err = ReadRequest(br); res.err != nil {
			return
		}
		_, res.err = sc.Write(AppendReply(nil, ReplySucceeded, bound))
	}()

	br := bufio.NewReaderSize(cc, 512)
	step := func(b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	step(AppendGreeting(nil, MethodNoAuth, MethodUsernamePassword))
	m, err := ReadMethodSelection(br)
	checkErrs(t, err, nil)
	if m != MethodUsernamePassword {
		t.Fatalf("server chose %v", m)
	}
	step(AppendUsernamePasswordRequest(nil, "bob", "pw"))
	ok, err := ReadUsernamePasswordReply(br)
	checkErrs(t, err, nil)
	if !ok {
		t.Fatal("authentication failed")
	}
	step(AppendRequest(nil, Request{CommandBind, mustAddr("example.org:21")}))
	rep, err := ReadReply(br)
	checkErrs(t, err, nil)
	if diff := cmp.Diff(Reply{ReplySucceeded, bound}, rep, cmpOpts); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	cc.Close()

	res := <-done
	checkErrs(t, res.err, nil)
	if res.methods != MethodSetOf(MethodNoAuth, MethodUsernamePassword) || res.user != "bob" {
		t.Errorf("server saw methods %v, user %q", res.methods, res.user)
	}
	if diff := cmp.Diff(Request{CommandBind, mustAddr("example.org:21")}, res.req, cmpOpts); diff != "" {
		t.Errorf("server's request (-want +got):\n%s", diff)
	}
}
