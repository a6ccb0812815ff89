package socks5

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// decodeAll runs read over data through a 512-byte reader (what servers
// use), a 16-byte reader and a one-byte-at-a-time 16-byte reader. The three
// must agree on the value and the error. It returns the value, the error
// and the bytes the 512-byte reader left unread.
func decodeAll[T comparable](t *testing.T, data []byte, read func(*bufio.Reader) (T, error)) (T, error, []byte) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(data), 512)
	v, err := read(br)
	rest, rerr := io.ReadAll(br)
	if rerr != nil {
		t.Fatalf("reading the rest: %v", rerr)
	}
	for _, other := range []*bufio.Reader{
		bufio.NewReaderSize(bytes.NewReader(data), 16),
		bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16),
	} {
		v2, err2 := read(other)
		if v != v2 {
			t.Fatalf("readers disagree on the value: %+v / %+v", v, v2)
		}
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("readers disagree on the error: %v / %v", err, err2)
		}
	}
	return v, err, rest
}

// checkStreamErr checks that err is one of the errors a Read function may
// return over a bytes.Reader, and that io.EOF means empty input.
func checkStreamErr(t *testing.T, data []byte, err error, allowed ...error) {
	t.Helper()
	if errors.Is(err, io.EOF) {
		if len(data) != 0 {
			t.Fatalf("io.EOF after %d bytes", len(data))
		}
		return
	}
	for _, a := range append(allowed, io.ErrUnexpectedEOF) {
		if errors.Is(err, a) {
			return
		}
	}
	t.Fatalf("unexpected error %v", err)
}

func checkAddr(t *testing.T, a Addr) {
	t.Helper()
	if !a.IsValid() || (!a.IP.IsValid() && (len(a.Name) < 1 || len(a.Name) > MaxDomainLen)) {
		t.Fatalf("decoded an invalid address %#v", a)
	}
	if a.IP.Zone() != "" {
		t.Fatalf("decoded a zone: %v", a.IP)
	}
}

func FuzzReadGreeting(f *testing.F) {
	for _, s := range []string{"\x05\x01\x00", "\x05\x02\x00\x02", "\x05\x02\x02\x00", "\x05\x00", "\x04\x01\x00", "\x05\x03\x01\x01\x01", "\x05\xff", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err, rest := decodeAll(t, data, ReadGreeting)
		if err != nil {
			checkStreamErr(t, data, err, ErrVersion, ErrNoMethods)
			return
		}
		consumed := len(data) - len(rest)
		if data[0] != Version || consumed != 2+int(data[1]) || !bytes.Equal(rest, data[consumed:]) {
			t.Fatalf("consumed %d bytes of % x", consumed, data)
		}
		offered := data[2:consumed]
		if set.Len() < 1 || set.Len() > len(offered) {
			t.Fatalf("set %v from %d methods", set, len(offered))
		}
		for _, m := range offered {
			if !set.Has(Method(m)) {
				t.Fatalf("set %v misses offered method %v", set, Method(m))
			}
		}
		// The set re-encodes canonically (sorted, no duplicates); that is
		// the input when the input was canonical.
		methods := slices.Collect(set.All())
		enc, err := AppendGreeting(nil, methods...)
		if err != nil {
			t.Fatal(err)
		}
		canonical := slices.IsSorted(offered) && len(slices.Compact(slices.Clone(offered))) == len(offered)
		if canonical && !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded % x, read % x", enc, data[:consumed])
		}
		again, err := ReadGreeting(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil || again != set {
			t.Fatalf("re-encoded greeting reads back as %v, %v", again, err)
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50",
		"\x05\x02\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb",
		"\x05\x03\x00\x03\x0bexample.com\x01\xbb",
		"\x05\x09\x00\x01",
		"\x05\x01\x00\x02",
		"\x05\x01\x00\x03\x00\x00\x00",
		"\x05\x01\xff\x01\x7f\x00\x00\x01\x00\x16tail",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err, rest := decodeAll(t, data, ReadRequest)
		if err != nil {
			checkStreamErr(t, data, err, ErrVersion, ErrCommandNotSupported, ErrAddressType, ErrEmptyDomain)
			if errors.Is(err, ErrCommandNotSupported) && req.Command != Command(data[1]) {
				t.Fatalf("unknown command %#x reported as %v", data[1], req.Command)
			}
			if _, reply := ReplyFor(err); reply != (errors.Is(err, ErrCommandNotSupported) ||
				errors.Is(err, ErrAddressType) || errors.Is(err, ErrEmptyDomain)) {
				t.Fatalf("ReplyFor(%v) = %v", err, reply)
			}
			return
		}
		checkAddr(t, req.Addr)
		consumed := len(data) - len(rest)
		// Canonical except for RSV, which is accepted whatever its value.
		want := slices.Clone(data[:consumed])
		want[2] = 0
		enc, err := AppendRequest(nil, req)
		if err != nil || !bytes.Equal(enc, want) {
			t.Fatalf("re-encoded % x (%v), read % x", enc, err, data[:consumed])
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40",
		"\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\x38",
		"\x05\x04\x00\x03\x0fnowhere.invalid\x00\x50",
		"\x05\x07",
		"\x05\x01\x00\x09",
		"\x00\x5a\x00\x50\x7f\x00\x00\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err, rest := decodeAll(t, data, ReadReply)
		if err != nil {
			checkStreamErr(t, data, err, ErrVersion, ErrAddressType, ErrEmptyDomain)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if !errors.Is(err, ErrShortReply) {
					t.Fatalf("truncated reply without ErrShortReply: %v", err)
				}
			}
			if len(data) >= 2 && data[0] == Version && rep.Code != ReplyCode(data[1]) {
				t.Fatalf("code %#x lost: %v", data[1], rep.Code)
			}
			return
		}
		checkAddr(t, rep.Addr)
		consumed := len(data) - len(rest)
		want := slices.Clone(data[:consumed])
		want[2] = 0
		if enc := AppendReply(nil, rep.Code, rep.Addr); !bytes.Equal(enc, want) {
			t.Fatalf("re-encoded % x, read % x", enc, data[:consumed])
		}
	})
}

func FuzzReadUsernamePasswordRequest(f *testing.F) {
	for _, s := range []string{"\x01\x05alice\x06secret", "\x01\x01u\x01p", "\x01\x00\x01p", "\x01\x01u\x00", "\x05\x01u\x01p", "\x01\xff"} {
		f.Add([]byte(s))
	}
	type creds struct{ User, Password string }
	read := func(br *bufio.Reader) (creds, error) {
		u, p, err := ReadUsernamePasswordRequest(br)
		return creds{u, p}, err
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err, rest := decodeAll(t, data, read)
		if err != nil {
			checkStreamErr(t, data, err, ErrBadUsernamePassword)
			if c != (creds{}) {
				t.Fatalf("credentials %q returned with error %v", c, err)
			}
			return
		}
		if len(c.User) < 1 || len(c.User) > 255 || len(c.Password) < 1 || len(c.Password) > 255 {
			t.Fatalf("lengths %d, %d out of bounds", len(c.User), len(c.Password))
		}
		consumed := len(data) - len(rest)
		enc, err := AppendUsernamePasswordRequest(nil, c.User, c.Password)
		if err != nil || !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded % x (%v), read % x", enc, err, data[:consumed])
		}
	})
}

func FuzzParseDatagram(f *testing.F) {
	for _, s := range []string{
		"\x00\x00\x00\x01\xc0\x00\x02\x35\x00\x35query",
		"\x00\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x7b",
		"\x00\x00\x00\x03\x0ftracker.example\x1a\xe1\x00\x00",
		"\x00\x00\x01\x01\x0a\x00\x00\x01\x00\x01x",
		"\x01\x00\x00\x01",
		"\x00\x00\x00\x03\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDatagram(data)
		if err != nil {
			if !errors.Is(err, ErrBadDatagram) {
				t.Fatalf("error %v does not wrap ErrBadDatagram", err)
			}
			return
		}
		checkAddr(t, d.Addr)
		if len(d.Data) > 0 && &d.Data[len(d.Data)-1] != &data[len(data)-1] {
			t.Fatal("Data does not alias the input's tail")
		}
		enc, err := AppendDatagram(nil, d)
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("re-encoded % x (%v), parsed % x", enc, err, data)
		}
	})
}

// FuzzAddrRoundTrip encodes arbitrary addresses in requests, replies and
// datagrams and decodes them back.
func FuzzAddrRoundTrip(f *testing.F) {
	f.Add(byte(1), []byte{192, 0, 2, 1}, "", uint16(80))
	f.Add(byte(2), []byte{0x20, 1, 0xd, 0xb8, 15: 1}, "", uint16(443))
	f.Add(byte(3), []byte(nil), "example.com", uint16(53))
	f.Add(byte(9), []byte{1, 2, 3}, "", uint16(0))
	f.Fuzz(func(t *testing.T, cmd byte, ip []byte, name string, port uint16) {
		a := Addr{Name: name, Port: port}
		if x, ok := netip.AddrFromSlice(ip); ok {
			a.IP = x
		}
		reqBytes, err := AppendRequest(nil, Request{Command(cmd), a})
		if !a.IsValid() {
			if !errors.Is(err, ErrBadAddress) || len(reqBytes) != 0 {
				t.Fatalf("invalid %#v encoded: % x, %v", a, reqBytes, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := a
		if a.IP.IsValid() {
			want.Name = "" // the IP wins
		}
		req, err := ReadRequest(bufio.NewReader(bytes.NewReader(reqBytes)))
		switch Command(cmd) {
		case CommandConnect, CommandBind, CommandUDPAssociate:
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Request{Command(cmd), want}, req, cmpOpts); diff != "" {
				t.Fatalf("request (-want +got):\n%s", diff)
			}
		default:
			if !errors.Is(err, ErrCommandNotSupported) || req.Command != Command(cmd) {
				t.Fatalf("command %#x: %v, %v", cmd, req.Command, err)
			}
		}
		rep, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(AppendReply(nil, ReplyCode(cmd), a)), 16))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Reply{ReplyCode(cmd), want}, rep, cmpOpts); diff != "" {
			t.Fatalf("reply (-want +got):\n%s", diff)
		}
		pkt, err := AppendDatagram(nil, Datagram{Frag: cmd, Addr: a, Data: ip})
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDatagram(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Datagram{cmd, want, ip}, d, cmpOpts); diff != "" {
			t.Fatalf("datagram (-want +got):\n%s", diff)
		}
	})
}
