package socks5

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// cmpOpts compares netip.Addr by value (it has unexported fields) and treats
// nil and empty slices alike.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
	cmpopts.EquateEmpty(),
}

// readerKind builds a *bufio.Reader over some input in one of the ways a
// handshake can arrive.
type readerKind struct {
	name string
	make func(b []byte) *bufio.Reader
}

var readerKinds = []readerKind{
	{"default", func(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }},
	{"size16", func(b []byte) *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(b), 16) }},
	{"onebyte", func(b []byte) *bufio.Reader { return bufio.NewReader(iotest.OneByteReader(bytes.NewReader(b))) }},
	{"onebyte-size16", func(b []byte) *bufio.Reader {
		return bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), 16)
	}},
	{"half", func(b []byte) *bufio.Reader { return bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(b)), 512) }},
	{"dataerr", func(b []byte) *bufio.Reader { return bufio.NewReader(iotest.DataErrReader(bytes.NewReader(b))) }},
}

// trailer is appended to every valid message in decode tables: a reader
// must leave it unread.
const trailer = "NEXT"

// checkErrs reports whether err wraps every error of want (and is nil when
// want is empty).
func checkErrs(t *testing.T, err error, want []error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %q does not wrap %q", err, w)
		}
	}
}

// checkRest checks that br holds exactly want, unread.
func checkRest(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the rest: %v", err)
	}
	if string(rest) != want {
		t.Fatalf("left unread %q, want %q", rest, want)
	}
}

func mustAddr(s string) Addr {
	a, err := ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

func cat(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var name255 = string(bytes.Repeat([]byte("a"), 255))

// checkAppend checks the result of an Append function called with the
// prefix "pre": on an expected error, the prefix comes back unchanged; on
// success, the prefix is followed by want. It reports whether the caller's
// test may go on (no error).
func checkAppend(t *testing.T, got []byte, err error, want string, wantErr []error) bool {
	t.Helper()
	checkErrs(t, err, wantErr)
	if err != nil {
		if string(got) != "pre" {
			t.Errorf("on error got %q, want the input unchanged", got)
		}
		return false
	}
	if diff := cmp.Diff("pre"+want, string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	return true
}
