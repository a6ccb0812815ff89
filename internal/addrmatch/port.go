package addrmatch

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// PortOp is the comparison of a Port.
type PortOp uint8

// The port comparisons, in Dante's vocabulary.
const (
	PortAny   PortOp = iota // every port (the zero Port)
	PortEq                  // "=" or "eq"
	PortNe                  // "!=" or "ne"
	PortLt                  // "<" or "lt"
	PortGt                  // ">" or "gt"
	PortLe                  // "<=" or "le"
	PortGe                  // ">=" or "ge"
	PortRange               // "A-B", inclusive
)

var opNames = [...]string{PortEq: "eq", PortNe: "ne", PortLt: "lt", PortGt: "gt", PortLe: "le", PortGe: "ge"}

// Port is a port pattern. The zero value matches every port.
type Port struct {
	Op   PortOp
	Port uint16 // the operand; the range's start for PortRange
	End  uint16 // the range's end for PortRange
}

// ParsePortOp returns the PortOp for an operator token: "=", "eq", "!=",
// "ne", "<", "lt", ">", "gt", "<=", "le", ">=", "ge" (case-insensitive).
func ParsePortOp(op string) (PortOp, bool) {
	switch strings.ToLower(op) {
	case "=", "eq":
		return PortEq, true
	case "!=", "ne":
		return PortNe, true
	case "<", "lt":
		return PortLt, true
	case ">", "gt":
		return PortGt, true
	case "<=", "le":
		return PortLe, true
	case ">=", "ge":
		return PortGe, true
	}
	return PortAny, false
}

// ParsePort parses a port pattern from an operator and a value, as they
// follow the keyword port in Dante: ("=", "80"), ("gt", "1023"),
// ("", "http"), ("", "1-1024"). An empty op means "=" for a single port;
// a range takes no operator ("port = 1-2" is an error, as in Dante).
// Values are decimal numbers 0 to 65535 or service names.
func ParsePort(op, value string) (Port, error) {
	bad := func(format string, args ...any) (Port, error) {
		return Port{}, fmt.Errorf("%w %q: %s", ErrInvalidPort, clip(strings.TrimSpace(op+" "+value)), fmt.Sprintf(format, args...))
	}
	o := PortEq
	if op != "" {
		var ok bool
		if o, ok = ParsePortOp(op); !ok {
			return bad("unknown operator %q", clip(op))
		}
	}
	if lo, hi, ok := strings.Cut(value, "-"); ok && lo != "" && lo[0] >= '0' && lo[0] <= '9' {
		if op != "" {
			return bad("a range takes no operator")
		}
		a, err := portNumber(lo, true)
		if err != nil {
			return bad("%v", err)
		}
		b, err := portNumber(hi, true)
		if err != nil {
			return bad("%v", err)
		}
		if a > b {
			return bad("the range's start is above its end")
		}
		return Port{Op: PortRange, Port: a, End: b}, nil
	}
	n, err := portNumber(value, true)
	if err != nil {
		return bad("%v", err)
	}
	return Port{Op: o, Port: n}, nil
}

// PortNumber parses a decimal port number, or when services is true also
// a service name ("http", "socks", ...).
func PortNumber(s string, services bool) (uint16, error) {
	n, err := portNumber(s, services)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidPort, err)
	}
	return n, nil
}

func portNumber(s string, services bool) (uint16, error) {
	if s == "" {
		return 0, errors.New("missing port")
	}
	if s[0] >= '0' && s[0] <= '9' {
		if len(s) > 5 {
			return 0, fmt.Errorf("%q is out of range", clip(s))
		}
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number from 0 to 65535", clip(s))
		}
		return uint16(n), nil
	}
	if !services {
		return 0, fmt.Errorf("%q: a service name is not accepted here; write the port number", clip(s))
	}
	if n, ok := LookupService(s); ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown service %q", clip(s))
}

// services is the built-in table of common TCP service names.
var services = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
	"domain": 53, "gopher": 70, "finger": 79, "http": 80, "www": 80,
	"kerberos": 88, "pop3": 110, "sunrpc": 111, "ident": 113, "auth": 113,
	"nntp": 119, "ntp": 123, "imap": 143, "imap2": 143, "snmp": 161,
	"ldap": 389, "https": 443, "microsoft-ds": 445, "submissions": 465,
	"smtps": 465, "submission": 587, "ldaps": 636, "rsync": 873,
	"ftps": 990, "imaps": 993, "pop3s": 995, "socks": 1080,
	"openvpn": 1194, "ms-sql-s": 1433, "mysql": 3306, "rdp": 3389,
	"ms-wbt-server": 3389, "svn": 3690, "sip": 5060, "xmpp-client": 5222,
	"postgresql": 5432, "x11": 6000, "irc": 6667, "http-alt": 8080,
	"webcache": 8080,
}

// LookupService returns the TCP port of a service name: from a built-in
// table of common services (http, https, ftp, ssh, telnet, smtp, domain,
// socks, ...), else from net.LookupPort("tcp", name), which reads
// /etc/services.
func LookupService(name string) (uint16, bool) {
	if name == "" || len(name) > 64 {
		return 0, false
	}
	if n, ok := services[strings.ToLower(name)]; ok {
		return n, true
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return 0, false
		}
	}
	n, err := net.LookupPort("tcp", name)
	if err != nil || n <= 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// Match reports whether port matches the pattern.
func (p Port) Match(port uint16) bool {
	switch p.Op {
	case PortAny:
		return true
	case PortEq:
		return port == p.Port
	case PortNe:
		return port != p.Port
	case PortLt:
		return port < p.Port
	case PortGt:
		return port > p.Port
	case PortLe:
		return port <= p.Port
	case PortGe:
		return port >= p.Port
	case PortRange:
		return port >= p.Port && port <= p.End
	}
	return false
}

// String returns the pattern as Dante writes it after "port": "eq 80",
// "1-1024"; the empty string for any port.
func (p Port) String() string {
	switch {
	case p.Op == PortRange:
		return strconv.Itoa(int(p.Port)) + "-" + strconv.Itoa(int(p.End))
	case int(p.Op) < len(opNames) && opNames[p.Op] != "":
		return opNames[p.Op] + " " + strconv.Itoa(int(p.Port))
	}
	return ""
}
