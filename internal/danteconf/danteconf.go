// Package danteconf reads the lexical and block structure of Dante's
// configuration language (sockd.conf, danted.conf, socks.conf), so that
// readers of route statements, rules and settings share one tokenizer and
// one error style.
//
// [Lex] turns the text into tokens with line numbers: '#' comments run to
// end of line; '{' and '}' delimit blocks; "key:" (also "key :") is a Key
// token; '=', '!=', '<', '<=', '>', '>=' are Op tokens (so "port=1080",
// "port = 1080" and "port 1-65535" all lex to the same kind of sequence);
// everything else is a Word. A ':' inside a word stays there when the word
// cannot be a keyword, so IPv6 addresses ("::1/128", "fe80::/10") are
// words. [Parse] groups the tokens into [Statement]s: a top-level setting
// ("logoutput: stderr", its values running to the end of its line) or a
// block ("client pass { ... }", "route { ... }").
//
// Within a block, the list keywords ([IsListKey]: command, socksmethod,
// clientmethod, method, protocol, proxyprotocol, log) take the rest of
// their line, where only a closing '}' may follow; [Cursor.List] enforces
// that. user:, group: and libwrap: take the whole rest of the line, a '}'
// included, as in Dante; Parse reports such a swallowed brace clearly.
//
// Errors are *Error values in Dante's style, `problem on line N near token
// "X": reason`, wrapping [ErrSyntax].
package danteconf

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on hostile input.
const (
	MaxInput   = 1 << 20 // bytes of configuration text
	MaxTokens  = 1 << 17 // tokens in one text
	MaxWordLen = 1024    // bytes in one token
)

// ErrSyntax is wrapped by every error of this package.
var ErrSyntax = errors.New("syntax error")

// Error is a problem at a place in the text.
type Error struct {
	Line int    // 1-based line number
	Near string // the token at or near the problem; may be empty
	Err  error  // the reason; wraps ErrSyntax for syntax errors
}

// Error returns `problem on line N near token "X": reason`, as Dante
// writes it.
func (e *Error) Error() string {
	near := e.Near
	if len(near) > 64 {
		near = near[:64] + "..."
	}
	return fmt.Sprintf("problem on line %d near token %q: %v", e.Line, near, e.Err)
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error at tok whose reason wraps ErrSyntax.
func Errorf(tok Token, format string, args ...any) *Error {
	return &Error{Line: tok.Line, Near: tok.Text, Err: fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, args...))}
}

// Kind is a token's kind.
type Kind uint8

// Token kinds.
const (
	Word   Kind = iota + 1 // anything else: a value or a keyword without ':'
	Key                    // a keyword followed by ':'; Text is the keyword without ':'
	Op                     // = != < <= > >=
	LBrace                 // {
	RBrace                 // }
)

func (k Kind) String() string {
	switch k {
	case Word:
		return "word"
	case Key:
		return "key"
	case Op:
		return "operator"
	case LBrace:
		return "'{'"
	case RBrace:
		return "'}'"
	}
	return "kind(" + fmt.Sprint(uint8(k)) + ")"
}

// Token is one token and the line it is on.
type Token struct {
	Kind Kind
	Text string
	Line int
}

// restOfLineKeys take the whole rest of their line, braces included.
var restOfLineKeys = map[string]bool{"user": true, "group": true, "libwrap": true}

// IsListKey reports whether key is a list keyword, whose values run to the
// end of the line: command, socksmethod, clientmethod, method, protocol,
// proxyprotocol, log.
func IsListKey(key string) bool {
	switch key {
	case "command", "socksmethod", "clientmethod", "method", "protocol", "proxyprotocol", "log":
		return true
	}
	return false
}

// Lex splits configuration text into tokens. It reads at most MaxInput
// bytes (more is an error).
func Lex(r io.Reader) ([]Token, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInput {
		return nil, &Error{Line: 1, Err: fmt.Errorf("%w: the configuration is larger than %d bytes", ErrSyntax, MaxInput)}
	}
	return lex(string(data))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

func isWordByte(c byte) bool {
	return c > ' ' && c != 0x7f && !strings.ContainsRune("#{}=<>!", rune(c))
}

// keywordLike reports whether w could be a keyword before ':': a letter,
// then letters, digits, '.', '_' or '-'; and not all hex digits (which
// would be the start of an IPv6 address).
func keywordLike(w string) bool {
	if w == "" || !(w[0] >= 'a' && w[0] <= 'z' || w[0] >= 'A' && w[0] <= 'Z') {
		return false
	}
	hex := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
		if !(c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c >= '0' && c <= '9') {
			hex = false
		}
	}
	return !hex
}

func lex(s string) ([]Token, error) {
	var toks []Token
	line := 1
	restLine := 0 // a user:/group:/libwrap: key is on this line: the rest is words
	emit := func(k Kind, text string) error {
		if len(toks) >= MaxTokens {
			return &Error{Line: line, Near: text, Err: fmt.Errorf("%w: more than %d tokens", ErrSyntax, MaxTokens)}
		}
		toks = append(toks, Token{Kind: k, Text: text, Line: line})
		return nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
			continue
		case isSpace(c):
			i++
			continue
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		}
		if restLine == line {
			// Words up to the end of the line (or a comment), braces too.
			j := i
			for j < len(s) && s[j] != '\n' && s[j] != '#' && !isSpace(s[j]) {
				j++
			}
			if j-i > MaxWordLen {
				return nil, &Error{Line: line, Near: s[i : i+32], Err: fmt.Errorf("%w: a token is longer than %d bytes", ErrSyntax, MaxWordLen)}
			}
			if err := emit(Word, s[i:j]); err != nil {
				return nil, err
			}
			i = j
			continue
		}
		var err error
		switch {
		case c == '{':
			err = emit(LBrace, "{")
			i++
		case c == '}':
			err = emit(RBrace, "}")
			i++
		case c == '=':
			err = emit(Op, "=")
			i++
		case c == '<' || c == '>' || c == '!':
			op := s[i : i+1]
			if i+1 < len(s) && s[i+1] == '=' {
				op = s[i : i+2]
			}
			if op == "!" {
				return nil, &Error{Line: line, Near: op, Err: fmt.Errorf("%w: '!' must be followed by '='", ErrSyntax)}
			}
			err = emit(Op, op)
			i += len(op)
		case c == ':':
			// A lone ':' after whitespace: the previous word is a key
			// ("key : value"); "::..." starts an IPv6 word.
			if i+1 < len(s) && s[i+1] == ':' {
				j, key, werr := word(s, i, line)
				if werr != nil {
					return nil, werr
				}
				if key {
					return nil, &Error{Line: line, Near: s[i:j], Err: fmt.Errorf("%w: unexpected ':'", ErrSyntax)}
				}
				err = emit(Word, s[i:j])
				i = j
				break
			}
			n := len(toks)
			if n == 0 || toks[n-1].Kind != Word || toks[n-1].Line != line || !keywordLike(toks[n-1].Text) {
				return nil, &Error{Line: line, Near: ":", Err: fmt.Errorf("%w: ':' without a keyword before it", ErrSyntax)}
			}
			toks[n-1].Kind = Key
			if restOfLineKeys[toks[n-1].Text] {
				restLine = line
			}
			i++
		case isWordByte(c):
			j, key, werr := word(s, i, line)
			if werr != nil {
				return nil, werr
			}
			if key {
				err = emit(Key, s[i:j-1])
				if restOfLineKeys[s[i:j-1]] {
					restLine = line
				}
			} else {
				err = emit(Word, s[i:j])
			}
			i = j
		default:
			return nil, &Error{Line: line, Near: fmt.Sprintf("%q", c), Err: fmt.Errorf("%w: unexpected character %q", ErrSyntax, c)}
		}
		if err != nil {
			return nil, err
		}
	}
	return toks, nil
}

// word scans a word starting at i and returns its end. key is true when
// the word is a keyword ended by ':' (the ':' is included in s[i:end]).
func word(s string, i, line int) (end int, key bool, err error) {
	j := i
	for j < len(s) && isWordByte(s[j]) {
		if s[j] == ':' && (j+1 >= len(s) || s[j+1] != ':') && keywordLike(s[i:j]) {
			j++
			key = true
			break
		}
		j++
	}
	if j-i > MaxWordLen {
		return 0, false, &Error{Line: line, Near: s[i : i+32], Err: fmt.Errorf("%w: a token is longer than %d bytes", ErrSyntax, MaxWordLen)}
	}
	return j, key, nil
}

// Statement is one top-level statement: a setting (Block false: Head is
// the Key token, Body its values) or a block (Block true: Head is the
// words before '{', Body the tokens inside).
type Statement struct {
	Line  int
	Head  []Token
	Body  []Token
	Block bool
	// End is the line of the closing '}' (of the setting's last token).
	End int
}

// Keyword returns the statement's first word ("route", "client",
// "logoutput").
func (s *Statement) Keyword() string {
	if len(s.Head) == 0 {
		return ""
	}
	return s.Head[0].Text
}

// Parse lexes r and groups the tokens into statements.
func Parse(r io.Reader) ([]Statement, error) {
	toks, err := Lex(r)
	if err != nil {
		return nil, err
	}
	return Group(toks)
}

// Group groups tokens into statements.
func Group(toks []Token) ([]Statement, error) {
	var out []Statement
	for i := 0; i < len(toks); {
		t := toks[i]
		switch t.Kind {
		case Key:
			st := Statement{Line: t.Line, Head: toks[i : i+1], End: t.Line}
			j := i + 1
			for j < len(toks) && toks[j].Line == t.Line && (toks[j].Kind == Word || toks[j].Kind == Op) {
				j++
			}
			if j < len(toks) && toks[j].Line == t.Line && toks[j].Kind != Key {
				return nil, Errorf(toks[j], "unexpected %v after the setting %s:", toks[j].Kind, t.Text)
			}
			st.Body = toks[i+1 : j]
			out = append(out, st)
			i = j
		case Word:
			j := i
			for j < len(toks) && toks[j].Kind == Word {
				j++
			}
			if j >= len(toks) || toks[j].Kind != LBrace {
				near := toks[len(toks)-1]
				if j < len(toks) {
					near = toks[j]
				}
				return nil, Errorf(near, "expected '{' after %q", joinText(toks[i:j]))
			}
			open := toks[j]
			k := j + 1
			for k < len(toks) && toks[k].Kind != RBrace {
				if toks[k].Kind == LBrace {
					return nil, Errorf(toks[k], "blocks do not nest")
				}
				k++
			}
			if k >= len(toks) {
				err := Errorf(open, "the block opened here is not closed with '}'")
				for _, b := range toks[j+1:] {
					if b.Kind == Word && strings.HasSuffix(b.Text, "}") {
						if p := keyBefore(toks[j+1:], b); p != "" {
							err = Errorf(b, "%s: takes the rest of the line, '}' included: put the closing brace on its own line", p)
						}
					}
				}
				return nil, err
			}
			out = append(out, Statement{Line: t.Line, Head: toks[i:j], Body: toks[j+1 : k], Block: true, End: toks[k].Line})
			i = k + 1
		default:
			return nil, Errorf(t, "unexpected %v", t.Kind)
		}
	}
	return out, nil
}

// keyBefore returns the rest-of-line key on b's line before b, if any.
func keyBefore(toks []Token, b Token) string {
	for _, t := range toks {
		if t.Line == b.Line && t.Kind == Key && restOfLineKeys[t.Text] {
			return t.Text
		}
	}
	return ""
}

func joinText(toks []Token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.Text)
	}
	return b.String()
}

// Cursor walks a statement's tokens.
type Cursor struct {
	toks []Token
	i    int
	last Token // the last token returned, for errors at the end
}

// NewCursor returns a Cursor over toks. last is the token errors at the
// end refer to (for example the block's closing brace).
func NewCursor(toks []Token, last Token) *Cursor { return &Cursor{toks: toks, last: last} }

// Peek returns the next token without consuming it.
func (c *Cursor) Peek() (Token, bool) {
	if c.i >= len(c.toks) {
		return Token{}, false
	}
	return c.toks[c.i], true
}

// Next returns and consumes the next token.
func (c *Cursor) Next() (Token, bool) {
	t, ok := c.Peek()
	if ok {
		c.i++
		c.last = t
	}
	return t, ok
}

// Last returns the last token consumed (or the end token).
func (c *Cursor) Last() Token { return c.last }

// Word consumes the next token, which must be a Word; what describes it
// in the error.
func (c *Cursor) Word(what string) (Token, error) {
	t, ok := c.Next()
	if !ok {
		return Token{}, Errorf(c.last, "missing %s", what)
	}
	if t.Kind != Word {
		return Token{}, Errorf(t, "expected %s, found %v", what, t.Kind)
	}
	return t, nil
}

// List returns the values of the list keyword key (just consumed): the
// words that follow it on its line. Another keyword on the same line is
// an error, as in Dante; a closing '}' is not part of the cursor's
// tokens, so it may follow.
func (c *Cursor) List(key Token) ([]Token, error) {
	var vals []Token
	for {
		t, ok := c.Peek()
		if !ok || t.Line != key.Line {
			break
		}
		if t.Kind != Word {
			return nil, Errorf(t, "%s: runs to the end of the line; put %q on a line of its own", key.Text, t.Text)
		}
		vals = append(vals, t)
		c.Next()
	}
	if len(vals) == 0 {
		return nil, Errorf(key, "%s: needs at least one value", key.Text)
	}
	return vals, nil
}
