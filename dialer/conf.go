package dialer

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/addrmatch"
	"github.com/virgilproxy/socks/internal/danteconf"
)

// ErrConfig is wrapped by every error of ParseRoutes about the
// configuration's content (the *danteconf error in the chain says where,
// in Dante's words: `problem on line N near token "X": reason`).
var ErrConfig = danteconf.ErrSyntax

// Warning is a statement ParseRoutes skipped.
type Warning struct {
	Line int    // the statement's first line
	Msg  string // what was skipped and why
}

// String returns "line N: message".
func (w Warning) String() string { return "line " + strconv.Itoa(w.Line) + ": " + w.Msg }

// ParseOptions adjusts ParseRoutes. The zero value is ready to use.
type ParseOptions struct {
	// LookupEnv reads the environment for credentials; os.LookupEnv if
	// nil.
	LookupEnv func(key string) (string, bool)
}

// LoadSocksConf reads the routes of a Dante socks.conf or sockd.conf
// file; see ParseRoutes.
func LoadSocksConf(path string, opt *ParseOptions) (*Table, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	t, w, err := ParseRoutes(f, opt)
	if err != nil {
		return nil, w, fmt.Errorf("%s: %w", path, err)
	}
	return t, w, nil
}

// ParseRoutes reads the route statements of a Dante socks.conf or
// sockd.conf, and the globals route.maxfail and route.badexpire, into a
// Table. Every other statement (rules, other settings) is skipped and
// named in the returned warnings, so that a caller can tell a file with no
// routes from a file it did not understand. A malformed route is an error
// with its line number.
//
// The route syntax is Dante's:
//
//	route {
//	    from: 10.0.0.0/8 to: .example.com port = https
//	    via: 192.0.2.1 port = 1080
//	    proxyprotocol: socks_v5 socks_v4 http
//	    method: none username
//	    command: connect
//	}
//	route { from: 0/0 to: 0/0 via: direct }
//
// from: and to: are required, in that order, with an optional port spec
// each ("port = N", "port eq N", "port 1-1024", a service name). via: takes
// an IP address or host name and "port = N" with a number: as in Dante, a
// service name is an error there (the shipped example "via:
// socks.example.net port = socks" does not parse). proxyprotocol: lists
// the protocols to try at the gateway, in order (default socks_v5 then
// socks_v4; Dante's order among several is fixed, v4 before v5, and v5
// comes first here because it carries names and passwords); socks_v4 is
// SOCKS4 without the 4a extension, as in Dante. msproxy_v2 and upnp are
// rejected. command: accepts connect only, as sockd does. As an extension,
// "user: alice bob" restricts the route to those authenticated users.
//
// Credentials: when method: (or socksmethod:) allows username (the
// default allows none and username), the user name comes from the
// environment variables SOCKS_USERNAME, SOCKS_USER or SOCKS5_USER (the
// first set) and the password from SOCKS_PASSWORD, as Dante's client and
// sockd do; a client's own credentials are never forwarded. A route whose
// only method is username fails to parse when no user name is set. The
// SOCKS5 client always offers "none" too.
func ParseRoutes(r io.Reader, opt *ParseOptions) (*Table, []Warning, error) {
	if opt == nil {
		opt = &ParseOptions{}
	}
	stmts, err := danteconf.Parse(r)
	if err != nil {
		return nil, nil, err
	}
	t := &Table{}
	var warns []Warning
	for i := range stmts {
		st := &stmts[i]
		switch {
		case !st.Block && (st.Keyword() == "route.maxfail" || st.Keyword() == "route.badexpire"):
			if err := parseRouteGlobal(t, st); err != nil {
				return nil, warns, err
			}
		case st.Block && st.Keyword() == "route":
			if len(st.Head) != 1 {
				return nil, warns, danteconf.Errorf(st.Head[1], "expected '{' after route")
			}
			rt, err := parseRoute(st, opt)
			if err != nil {
				return nil, warns, err
			}
			t.Routes = append(t.Routes, rt)
		case st.Block:
			warns = append(warns, Warning{Line: st.Line, Msg: fmt.Sprintf("%q block skipped: not a route", headText(st))})
		default:
			warns = append(warns, Warning{Line: st.Line, Msg: fmt.Sprintf("setting %s: skipped: not a route", st.Keyword())})
		}
	}
	return t, warns, nil
}

func headText(st *danteconf.Statement) string {
	var parts []string
	for _, t := range st.Head {
		parts = append(parts, t.Text)
	}
	return strings.Join(parts, " ")
}

func parseRouteGlobal(t *Table, st *danteconf.Statement) error {
	key := st.Head[0]
	if len(st.Body) != 1 || st.Body[0].Kind != danteconf.Word {
		return danteconf.Errorf(key, "%s: takes one number", key.Text)
	}
	v := st.Body[0]
	n, err := strconv.Atoi(v.Text)
	if err != nil || n < 0 || n > 1<<30 {
		return danteconf.Errorf(v, "%s: %q is not a number from 0 to %d", key.Text, v.Text, 1<<30)
	}
	if key.Text == "route.maxfail" {
		t.MaxFail = n
		if n == 0 {
			// Dante: 0 means a route is never marked bad.
			t.MaxFail = 1 << 30
		}
	} else {
		t.BadExpire = time.Duration(n) * time.Second
		if n == 0 {
			t.BadExpire = time.Nanosecond
		}
	}
	return nil
}

func parseRoute(st *danteconf.Statement, opt *ParseOptions) (Route, error) {
	var (
		rt                   Route
		haveFrom, haveTo     bool
		viaHost, viaPort     string
		viaTok               danteconf.Token
		direct               bool
		protocols, methods   []danteconf.Token
		haveProto, haveMeths bool
	)
	end := danteconf.Token{Kind: danteconf.RBrace, Text: "}", Line: st.End}
	c := danteconf.NewCursor(st.Body, end)
	for {
		t, ok := c.Next()
		if !ok {
			break
		}
		if t.Kind != danteconf.Key {
			return rt, danteconf.Errorf(t, "expected a keyword, found %v", t.Kind)
		}
		switch t.Text {
		case "from", "to":
			if t.Text == "from" && haveFrom || t.Text == "to" && haveTo {
				return rt, danteconf.Errorf(t, "%s: given twice", t.Text)
			}
			if t.Text == "to" && !haveFrom {
				return rt, danteconf.Errorf(t, "to: must follow from:")
			}
			w, err := c.Word("an address after " + t.Text + ":")
			if err != nil {
				return rt, err
			}
			a, err := addrmatch.ParseAddr(w.Text)
			if err != nil {
				return rt, &danteconf.Error{Line: w.Line, Near: w.Text, Err: fmt.Errorf("%w: %w", danteconf.ErrSyntax, err)}
			}
			p, _, err := portSpec(c, true)
			if err != nil {
				return rt, err
			}
			if t.Text == "from" {
				rt.From, rt.FromPort, haveFrom = a, p, true
			} else {
				rt.To, rt.ToPort, haveTo = a, p, true
			}
		case "via":
			if viaTok.Text != "" {
				return rt, danteconf.Errorf(t, "via: given twice")
			}
			viaTok = t
			w, err := c.Word("a gateway after via:")
			if err != nil {
				return rt, err
			}
			if w.Text == "direct" {
				direct = true
				break
			}
			viaHost = w.Text
			_, port, err := portSpec(c, false)
			if err != nil {
				return rt, err
			}
			if port == "" {
				return rt, danteconf.Errorf(w, "via: needs a port (via: %s port = 1080)", w.Text)
			}
			viaPort = port
		case "proxyprotocol", "method", "socksmethod", "command", "protocol":
			vals, err := c.List(t)
			if err != nil {
				return rt, err
			}
			switch t.Text {
			case "proxyprotocol":
				if haveProto {
					return rt, danteconf.Errorf(t, "proxyprotocol: given twice")
				}
				haveProto, protocols = true, vals
			case "method", "socksmethod":
				if haveMeths {
					return rt, danteconf.Errorf(t, "%s: given twice", t.Text)
				}
				haveMeths, methods = true, vals
			case "command":
				for _, v := range vals {
					if v.Text != "connect" {
						return rt, danteconf.Errorf(v, "serverchaining only supported for the connect command")
					}
				}
			case "protocol":
				for _, v := range vals {
					if v.Text != "tcp" {
						return rt, danteconf.Errorf(v, "routes carry only tcp (the connect command)")
					}
				}
			}
		case "user":
			for {
				v, ok := c.Peek()
				if !ok || v.Line != t.Line {
					break
				}
				c.Next()
				if strings.Contains(v.Text, "}") {
					return rt, danteconf.Errorf(v, "user: takes the rest of the line, '}' included: put the closing brace on its own line")
				}
				rt.Users = append(rt.Users, v.Text)
			}
			if len(rt.Users) == 0 {
				return rt, danteconf.Errorf(t, "user: needs at least one user name")
			}
		default:
			return rt, danteconf.Errorf(t, "%s: is not supported in a route", t.Text)
		}
	}
	if !haveFrom || !haveTo {
		return rt, danteconf.Errorf(st.Head[0], "a route needs from: and to:")
	}
	if viaTok.Text == "" {
		return rt, danteconf.Errorf(st.Head[0], "a route needs via:")
	}
	if direct {
		if haveProto || haveMeths {
			return rt, danteconf.Errorf(viaTok, "via: direct takes no proxyprotocol: or method:")
		}
		rt.Direct = true
		return rt, nil
	}
	user, pass, err := routeCredentials(st, methods, opt)
	if err != nil {
		return rt, err
	}
	if !haveProto {
		protocols = []danteconf.Token{{Text: "socks_v5"}, {Text: "socks_v4"}}
	}
	addr := net.JoinHostPort(viaHost, viaPort)
	var seen []socks.Protocol
	for _, p := range protocols {
		d := &socks.Dialer{ProxyAddr: addr, Username: user, Password: pass}
		switch p.Text {
		case "socks_v4":
			d.Protocol, d.Password = socks.ProtocolSOCKS4, ""
		case "socks_v5":
			d.Protocol = socks.ProtocolSOCKS5
		case "http":
			d.Protocol = socks.ProtocolHTTPConnect
		case "msproxy_v2":
			d.Protocol, d.Password = socks.ProtocolMSProxy, ""
		case "upnp":
			return rt, &danteconf.Error{Line: p.Line, Near: p.Text, Err: fmt.Errorf("%w: %w: upnp routes are not supported", danteconf.ErrSyntax, ErrUnsupported)}
		default:
			return rt, danteconf.Errorf(p, "unknown proxy protocol (socks_v4, socks_v5 or http)")
		}
		if slices.Contains(seen, d.Protocol) {
			continue
		}
		seen = append(seen, d.Protocol)
		rt.Via = append(rt.Via, d)
	}
	return rt, nil
}

// portSpec reads an optional port spec: "port = N", "port eq N", "port N",
// "port A-B", "port: N". With services false (via:), only "= N" or "N"
// with a number is accepted, and the number is returned as text.
func portSpec(c *danteconf.Cursor, services bool) (addrmatch.Port, string, error) {
	t, ok := c.Peek()
	if !ok || t.Text != "port" || (t.Kind != danteconf.Word && t.Kind != danteconf.Key) {
		return addrmatch.Port{}, "", nil
	}
	c.Next()
	op := ""
	if t.Kind == danteconf.Word {
		if n, ok := c.Peek(); ok && (n.Kind == danteconf.Op || n.Kind == danteconf.Word) {
			if _, isOp := addrmatch.ParsePortOp(n.Text); isOp {
				op = n.Text
				c.Next()
			}
		}
	}
	v, err := c.Word("a port number")
	if err != nil {
		return addrmatch.Port{}, "", err
	}
	if !services {
		if op != "" && op != "=" && op != "eq" {
			return addrmatch.Port{}, "", danteconf.Errorf(v, "via: takes one port: port = N")
		}
		n, err := addrmatch.PortNumber(v.Text, false)
		if err != nil {
			return addrmatch.Port{}, "", &danteconf.Error{Line: v.Line, Near: v.Text, Err: fmt.Errorf("%w: via: %w (Dante rejects service names here too)", danteconf.ErrSyntax, err)}
		}
		if n == 0 {
			return addrmatch.Port{}, "", danteconf.Errorf(v, "via: port 0")
		}
		return addrmatch.Port{}, strconv.Itoa(int(n)), nil
	}
	p, err := addrmatch.ParsePort(op, v.Text)
	if err != nil {
		return addrmatch.Port{}, "", &danteconf.Error{Line: v.Line, Near: v.Text, Err: fmt.Errorf("%w: %w", danteconf.ErrSyntax, err)}
	}
	return p, "", nil
}

// routeCredentials returns the user name and password for a route's
// methods, from the environment as Dante reads them.
func routeCredentials(st *danteconf.Statement, methods []danteconf.Token, opt *ParseOptions) (string, string, error) {
	none, username := len(methods) == 0, len(methods) == 0
	for _, m := range methods {
		switch m.Text {
		case "none":
			none = true
		case "username":
			username = true
		default:
			return "", "", danteconf.Errorf(m, "method %s is not supported in a route (none or username)", m.Text)
		}
	}
	if !username {
		return "", "", nil
	}
	lookup := opt.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var user string
	for _, k := range []string{"SOCKS_USERNAME", "SOCKS_USER", "SOCKS5_USER"} {
		if v, ok := lookup(k); ok && v != "" {
			user = v
			break
		}
	}
	if user == "" {
		if !none {
			return "", "", &danteconf.Error{Line: st.Line, Near: "username", Err: fmt.Errorf("%w: method username: could not determine the user name: set SOCKS_USERNAME (or SOCKS_USER, SOCKS5_USER) and SOCKS_PASSWORD", danteconf.ErrSyntax)}
		}
		return "", "", nil
	}
	pass, _ := lookup("SOCKS_PASSWORD")
	return user, pass, nil
}
