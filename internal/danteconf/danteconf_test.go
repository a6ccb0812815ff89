package danteconf

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLex(t *testing.T) {
	tests := []struct {
		in   string
		want []Token
	}{
		{"port=1080", []Token{{Word, "port", 1}, {Op, "=", 1}, {Word, "1080", 1}}},
		{"port = 1080", []Token{{Word, "port", 1}, {Op, "=", 1}, {Word, "1080", 1}}},
		{"port 1-65535", []Token{{Word, "port", 1}, {Word, "1-65535", 1}}},
		{"key: value", []Token{{Key, "key", 1}, {Word, "value", 1}}},
		{"key : value", []Token{{Key, "key", 1}, {Word, "value", 1}}},
		{"from:10.0.0.0/8", []Token{{Key, "from", 1}, {Word, "10.0.0.0/8", 1}}},
		{"to: ::1/128", []Token{{Key, "to", 1}, {Word, "::1/128", 1}}},
		{"to: fe80::/10", []Token{{Key, "to", 1}, {Word, "fe80::/10", 1}}},
		{"to: dead:beef::1/128", []Token{{Key, "to", 1}, {Word, "dead:beef::1/128", 1}}},
		{"port != 25 port>=1024 port<1", []Token{{Word, "port", 1}, {Op, "!=", 1}, {Word, "25", 1}, {Word, "port", 1}, {Op, ">=", 1}, {Word, "1024", 1}, {Word, "port", 1}, {Op, "<", 1}, {Word, "1", 1}}},
		{"# comment\nroute { # c\n}\n", []Token{{Word, "route", 2}, {LBrace, "{", 2}, {RBrace, "}", 3}}},
		{"a{b}", []Token{{Word, "a", 1}, {LBrace, "{", 1}, {Word, "b", 1}, {RBrace, "}", 1}}},
		{"route.maxfail: 3", []Token{{Key, "route.maxfail", 1}, {Word, "3", 1}}},
		{"command: connect }", []Token{{Key, "command", 1}, {Word, "connect", 1}, {RBrace, "}", 1}}},
		{"user: a b }\n}", []Token{{Key, "user", 1}, {Word, "a", 1}, {Word, "b", 1}, {Word, "}", 1}, {RBrace, "}", 2}}},
		{"libwrap: spawn finger @%a # x\nx", []Token{{Key, "libwrap", 1}, {Word, "spawn", 1}, {Word, "finger", 1}, {Word, "@%a", 1}, {Word, "x", 2}}},
		{"\r\n\t x", []Token{{Word, "x", 2}}},
	}
	for _, tt := range tests {
		got, err := Lex(strings.NewReader(tt.in))
		if err != nil {
			t.Errorf("Lex(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Lex(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestLexErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a !b", `problem on line 1 near token "!": syntax error: '!' must be followed by '='`},
		{"\n: x", `problem on line 2 near token ":": syntax error: ':' without a keyword before it`},
		{"x\x01", `problem on line 1 near token "'\\x01'": syntax error: unexpected character '\x01'`},
		{strings.Repeat("a", MaxWordLen+1), "longer than"},
		{strings.Repeat("x", MaxInput+1), "larger than"},
	}
	for _, tt := range tests {
		_, err := Lex(strings.NewReader(tt.in))
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Lex(%.20q) error %v, want *Error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	in := `# settings
logoutput: stderr
internal: 0.0.0.0 port=1080 external: eth0
client pass {
	from: 0/0 to: 0/0
	log: connect
}
route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080
  proxyprotocol: socks_v5 }
`
	stmts, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Line, End int
		Head      string
		Body      string
		Block     bool
	}
	var got []summary
	for _, s := range stmts {
		got = append(got, summary{s.Line, s.End, joinText(s.Head), joinText(s.Body), s.Block})
	}
	want := []summary{
		{2, 2, "logoutput", "stderr", false},
		{3, 3, "internal", "0.0.0.0 port = 1080", false},
		{3, 3, "external", "eth0", false},
		{4, 7, "client pass", "from 0/0 to 0/0 log connect", true},
		{8, 9, "route", "from 0/0 to 0/0 via 10.0.0.1 port = 1080 proxyprotocol socks_v5", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"route {\n from: 0/0\n", `problem on line 1 near token "{": syntax error: the block opened here is not closed with '}'`},
		{"route {\n user: alice }\n", `problem on line 2 near token "}": syntax error: user: takes the rest of the line, '}' included: put the closing brace on its own line`},
		{"route { a { } }", `problem on line 1 near token "{": syntax error: blocks do not nest`},
		{"}", `problem on line 1 near token "}": syntax error: unexpected '}'`},
		{"route\n", `problem on line 1 near token "route": syntax error: expected '{' after "route"`},
		{"pass from: x {", `problem on line 1 near token "from": syntax error: expected '{' after "pass"`},
		{"debug: 1 { }", `problem on line 1 near token "{": syntax error: unexpected '{' after the setting debug:`},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in))
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestCursorList(t *testing.T) {
	parse := func(s string) *Cursor {
		toks, err := Lex(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return NewCursor(toks, Token{})
	}
	c := parse("command: bind connect\nfrom: x")
	k, _ := c.Next()
	vals, err := c.List(k)
	if err != nil || joinText(vals) != "bind connect" {
		t.Errorf("List = %v, %v", vals, err)
	}
	if n, _ := c.Peek(); n.Text != "from" {
		t.Errorf("List consumed the next line: next is %v", n)
	}
	c = parse("protocol: tcp log: connect")
	k, _ = c.Next()
	if _, err := c.List(k); err == nil || !strings.Contains(err.Error(), `near token "log"`) {
		t.Errorf("a keyword after a list on the same line: %v", err)
	}
	c = parse("method:\nnone")
	k, _ = c.Next()
	if _, err := c.List(k); err == nil {
		t.Error("an empty list was accepted")
	}
	if !IsListKey("proxyprotocol") || IsListKey("from") {
		t.Error("IsListKey")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\n proxyprotocol: socks_v5 }\n",
		"logoutput: stderr\nclient pass { from: 10/8 to: 0/0 }",
		"user: a }\n}", "to: ::1/128 port=80", "a !b", "x { {",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := Lex(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		lines := strings.Count(s, "\n") + 1
		restLine := 0 // a user:/group:/libwrap: key is on this line: braces are words there
		for i, tk := range toks {
			if tk.Kind == Key && restOfLineKeys[tk.Text] {
				restLine = tk.Line
			}
			if tk.Line < 1 || tk.Line > lines || tk.Text == "" || len(tk.Text) > MaxWordLen {
				t.Fatalf("token %d %+v out of bounds", i, tk)
			}
			if i > 0 && tk.Line < toks[i-1].Line {
				t.Fatalf("lines go backwards at token %d", i)
			}
			if tk.Kind == Word && strings.ContainsAny(tk.Text, "# \t\n") {
				t.Fatalf("word %q holds a separator", tk.Text)
			}
			if tk.Kind == Word && tk.Line != restLine && strings.ContainsAny(tk.Text, "{}") {
				t.Fatalf("word %q holds a brace outside a user:/group:/libwrap: line", tk.Text)
			}
		}
		stmts, err := Group(toks)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		n := 0
		for _, st := range stmts {
			n += len(st.Head) + len(st.Body)
			if st.Block {
				n += 2
			}
		}
		if n != len(toks) {
			t.Fatalf("statements hold %d tokens, the text has %d", n, len(toks))
		}
	})
}

func BenchmarkParse(b *testing.B) {
	conf := strings.Repeat("route {\n from: 10.0.0.0/8 to: .example.com port = https\n via: 192.0.2.1 port = 1080\n proxyprotocol: socks_v5\n}\n", 20)
	b.ReportAllocs()
	b.SetBytes(int64(len(conf)))
	for b.Loop() {
		if _, err := Parse(strings.NewReader(conf)); err != nil {
			b.Fatal(err)
		}
	}
}
