package httpconnect

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errTooLarge is lineReader's signal that the cap was passed.
var errTooLarge = errors.New("header block too large")

// lineReader reads the lines of one header block from a bufio.Reader,
// counting every byte against the cap.
type lineReader struct {
	br        *bufio.Reader
	remaining int    // bytes still allowed by the cap
	long      []byte // lines that do not fit in br's buffer; never longer than the cap
}

// next returns the next line without its line ending (LF or CRLF). The
// slice is valid until the next call. It returns errTooLarge as soon as the
// cap is passed, io.EOF when the stream ends at a line boundary, and
// io.ErrUnexpectedEOF when it ends inside a line.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if err == nil {
		if len(line) > lr.remaining {
			return nil, errTooLarge
		}
		lr.remaining -= len(line)
		return trimEOL(line), nil
	}
	if err != bufio.ErrBufferFull {
		if len(line) > lr.remaining {
			return nil, errTooLarge
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// The line is longer than br's buffer: collect it, within the cap.
	lr.long = lr.long[:0]
	for {
		need := len(lr.long) + len(line)
		if need > lr.remaining {
			return nil, errTooLarge
		}
		if need > cap(lr.long) {
			// Grow geometrically, but never past what the cap allows.
			n := max(2*cap(lr.long), need, 256)
			n = min(n, lr.remaining)
			grown := make([]byte, len(lr.long), n)
			copy(grown, lr.long)
			lr.long = grown
		}
		lr.long = append(lr.long, line...)
		switch err {
		case nil:
			lr.remaining -= len(lr.long)
			return trimEOL(lr.long), nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
		line, err = lr.br.ReadSlice('\n')
	}
}

// trimEOL removes a trailing LF and the CR before it, if any.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

// trimOWS removes optional whitespace (SP, HTAB) at both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Byte classes.
const (
	classToken   = 1 << iota // tchar (RFC 9110 section 5.6.2)
	classRegName             // may appear raw in a reg-name (RFC 3986 unreserved, sub-delims, '%', and bytes >= 0x80 as Go's net/url allows)
	classCTL                 // 0x00-0x1F and 0x7F
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20 || c == 0x7f:
			t[c] |= classCTL
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] |= classToken | classRegName
		case c >= 0x80:
			t[c] |= classRegName
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] |= classToken
	}
	for _, c := range []byte("-._~!$&'()*+,;=%") {
		t[c] |= classRegName
	}
	return t
}()

// isToken reports whether b is a non-empty token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if byteClass[c]&classToken == 0 {
			return false
		}
	}
	return true
}

// badFieldByte returns the index of the first byte of a field value (or a
// reason phrase) that is a control character other than HTAB, or -1.
func badFieldByte(b []byte) int {
	for i, c := range b {
		if byteClass[c]&classCTL != 0 && c != '\t' {
			return i
		}
	}
	return -1
}

// isHTTPVersion reports whether b has the form HTTP/DIGIT.DIGIT.
func isHTTPVersion(b []byte) bool {
	return len(b) == 8 && string(b[:5]) == "HTTP/" && isDigit(b[5]) && b[6] == '.' && isDigit(b[7])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
