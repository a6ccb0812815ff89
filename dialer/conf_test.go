package dialer_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/virgilproxy/socks/dialer"
)

// routeSummary is a comparable view of a Route.
type routeSummary struct {
	From, To string
	Users    []string
	Direct   bool
	Via      []string // "protocol addr user:password"
}

func summarize(t *dialer.Table) []routeSummary {
	var out []routeSummary
	for _, r := range t.Routes {
		s := routeSummary{
			From:   strings.TrimSpace(r.From.String() + " " + r.FromPort.String()),
			To:     strings.TrimSpace(r.To.String() + " " + r.ToPort.String()),
			Users:  r.Users,
			Direct: r.Direct,
		}
		for _, d := range r.Via {
			s.Via = append(s.Via, d.Protocol.String()+" "+d.ProxyAddr+" "+d.Username+":"+d.Password)
		}
		out = append(out, s)
	}
	return out
}

func env(m map[string]string) *dialer.ParseOptions {
	return &dialer.ParseOptions{LookupEnv: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name string
		conf string
		env  map[string]string
		want []routeSummary
	}{
		{
			name: "dante example",
			conf: `route {
	from: 10.0.0.0/8 to: 0/0 port = http via: 192.0.2.1 port = 1080
	proxyprotocol: socks_v5
	method: none
}`,
			want: []routeSummary{{From: "10.0.0.0/8", To: "0/0 eq 80", Via: []string{"socks_v5 192.0.2.1:1080 :"}}},
		},
		{
			name: "spacing and operators",
			conf: "route{from:0/0 port>=1024 to : .example.com port 1-1024 via:gw.example port=1081}\n",
			want: []routeSummary{{From: "0/0 ge 1024", To: ".example.com 1-1024", Via: []string{"socks_v5 gw.example:1081 :", "socks_v4 gw.example:1081 :"}}},
		},
		{
			name: "direct and order",
			conf: `route { from: 0/0 to: .lan via: direct }
route { from: 0/0 to: ::/0 via: 2001:db8::1 port = 3128
  proxyprotocol: http socks_v4 }
`,
			want: []routeSummary{
				{From: "0/0", To: ".lan", Direct: true},
				{From: "0/0", To: "::/0", Via: []string{"http [2001:db8::1]:3128 :", "socks_v4 [2001:db8::1]:3128 :"}},
			},
		},
		{
			name: "username from the environment",
			conf: "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nmethod: username\nproxyprotocol: socks_v5 socks_v4\n}",
			env:  map[string]string{"SOCKS_USER": "u2", "SOCKS5_USER": "u3", "SOCKS_PASSWORD": "pw"},
			want: []routeSummary{{From: "0/0", To: "0/0", Via: []string{"socks_v5 10.0.0.1:1080 u2:pw", "socks_v4 10.0.0.1:1080 u2:"}}},
		},
		{
			name: "SOCKS_USERNAME first",
			conf: "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nsocksmethod: none username\nproxyprotocol: socks_v5\n}",
			env:  map[string]string{"SOCKS_USERNAME": "u1", "SOCKS_USER": "u2", "SOCKS_PASSWORD": "pw"},
			want: []routeSummary{{From: "0/0", To: "0/0", Via: []string{"socks_v5 10.0.0.1:1080 u1:pw"}}},
		},
		{
			name: "method none ignores the environment",
			conf: "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nmethod: none\nproxyprotocol: socks_v5\n}",
			env:  map[string]string{"SOCKS_USERNAME": "u1", "SOCKS_PASSWORD": "pw"},
			want: []routeSummary{{From: "0/0", To: "0/0", Via: []string{"socks_v5 10.0.0.1:1080 :"}}},
		},
		{
			name: "msproxy_v2 (Dante 1.1.x client configs)",
			conf: "route { from: 0/0 to: 0/0 via: 10.1.1.1 port = 1745\nproxyprotocol: msproxy_v2\n}",
			want: []routeSummary{{From: "0/0", To: "0/0", Via: []string{"msproxy_v2 10.1.1.1:1745 :"}}},
		},
		{
			name: "users extension and command",
			conf: "route {\n from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\n command: connect\n protocol: tcp\n user: alice bob\n proxyprotocol: socks_v5\n}",
			want: []routeSummary{{From: "0/0", To: "0/0", Users: []string{"alice", "bob"}, Via: []string{"socks_v5 10.0.0.1:1080 :"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, warns, err := dialer.ParseRoutes(strings.NewReader(tt.conf), env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != 0 {
				t.Errorf("warnings: %v", warns)
			}
			if diff := cmp.Diff(tt.want, summarize(tab)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRoutesGlobalsAndWarnings(t *testing.T) {
	conf := `logoutput: stderr
route.maxfail: 3
route.badexpire: 60
client pass { from: 0/0 to: 0/0 }
route { from: 0/0 to: 0/0 via: direct }
`
	tab, warns, err := dialer.ParseRoutes(strings.NewReader(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tab.MaxFail != 3 || tab.BadExpire != time.Minute || len(tab.Routes) != 1 {
		t.Errorf("MaxFail %d BadExpire %v routes %d", tab.MaxFail, tab.BadExpire, len(tab.Routes))
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	want := []string{"line 1: setting logoutput: skipped: not a route", `line 4: "client pass" block skipped: not a route`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestParseRoutesErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		want       string
		unsupp     bool
	}{
		{"service name in via port (Dante's shipped example)",
			"route {\n from: 0/0 to: 0/0\n via: socks.example.net port = socks\n}",
			`problem on line 3 near token "socks": syntax error: via: addrmatch: invalid port: "socks": a service name is not accepted here; write the port number (Dante rejects service names here too)`, false},
		{"bind command", "route {\nfrom: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\ncommand: bind\n}",
			`problem on line 3 near token "bind": syntax error: serverchaining only supported for the connect command`, false},
		{"mask required", "route { from: 10.0.0.1 to: 0/0 via: direct }",
			`problem on line 1 near token "10.0.0.1": syntax error: addrmatch: invalid address "10.0.0.1": a netmask is required (for one address write 10.0.0.1/32)`, false},
		{"to before from", "route { to: 0/0 from: 0/0 via: direct }",
			`problem on line 1 near token "to": syntax error: to: must follow from:`, false},
		{"no via", "\nroute { from: 0/0 to: 0/0 }",
			`problem on line 2 near token "route": syntax error: a route needs via:`, false},
		{"no to", "route { from: 0/0 via: direct }",
			`problem on line 1 near token "route": syntax error: a route needs from: and to:`, false},
		{"via without port", "route { from: 0/0 to: 0/0 via: 10.0.0.1 }",
			`problem on line 1 near token "10.0.0.1": syntax error: via: needs a port (via: 10.0.0.1 port = 1080)`, false},
		{"upnp", "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nproxyprotocol: upnp\n}",
			`problem on line 2 near token "upnp": syntax error: dialer: unsupported: upnp routes are not supported`, true},
		{"list then keyword", "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nproxyprotocol: socks_v5 method: none\n}",
			`problem on line 2 near token "method": syntax error: proxyprotocol: runs to the end of the line; put "method" on a line of its own`, false},
		{"username without env", "route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\nmethod: username\n}",
			`problem on line 1 near token "username": syntax error: method username: could not determine the user name: set SOCKS_USERNAME (or SOCKS_USER, SOCKS5_USER) and SOCKS_PASSWORD`, false},
		{"unknown option", "route { from: 0/0 to: 0/0 via: direct\nbandwidth: 10\n}",
			`problem on line 2 near token "bandwidth": syntax error: bandwidth: is not supported in a route`, false},
		{"bad maxfail", "route.maxfail: x",
			`problem on line 1 near token "x": syntax error: route.maxfail: "x" is not a number from 0 to 1073741824`, false},
		{"interface", "route { from: 0/0 to: lo via: direct }", `interface names are not supported`, false},
		{"brace in user:", "route { from: 0/0 to: 0/0 via: direct\nuser: alice }\n}", `problem on line 2 near token "}": syntax error: user: takes the rest of the line, '}' included: put the closing brace on its own line`, false},
		{"range with =", "route { from: 0/0 to: 0/0 port = 1-2 via: direct }", `a range takes no operator`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "interface" {
				if _, err := net.InterfaceByName("lo"); err != nil {
					t.Skip("no interface named lo here")
				}
			}
			_, _, err := dialer.ParseRoutes(strings.NewReader(tt.conf), env(nil))
			if err == nil || !errors.Is(err, dialer.ErrConfig) {
				t.Fatalf("error %v, want one wrapping ErrConfig", err)
			}
			if strings.HasPrefix(tt.want, "problem") && err.Error() != tt.want || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
			if errors.Is(err, dialer.ErrUnsupported) != tt.unsupp {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v", !tt.unsupp)
			}
		})
	}
}

func TestLoadSocksConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socks.conf")
	if err := os.WriteFile(path, []byte("route { from: 0/0 to: 0/0 via: direct }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, _, err := dialer.LoadSocksConf(path, nil)
	if err != nil || len(tab.Routes) != 1 || !tab.Routes[0].Direct {
		t.Fatalf("LoadSocksConf: %v, %+v", err, tab)
	}
	if _, _, err := dialer.LoadSocksConf(filepath.Join(t.TempDir(), "missing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{
		"route { from: 0/0 to: 0/0 via: 10.0.0.1 port = 1080\n proxyprotocol: socks_v5 }\n",
		"route.maxfail: 2\nroute { from: 10.0.0.0/8 port gt 1023 to: .example.com via: direct }",
		"route {\n from: 0/0 to: 0/0\n via: socks.example.net port = socks\n}",
	} {
		f.Add(s)
	}
	opt := env(map[string]string{"SOCKS_USERNAME": "u", "SOCKS_PASSWORD": "p"})
	f.Fuzz(func(t *testing.T, s string) {
		tab, _, err := dialer.ParseRoutes(strings.NewReader(s), opt)
		if err != nil {
			if !errors.Is(err, dialer.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		for i, r := range tab.Routes {
			if r.Direct == (len(r.Via) > 0) {
				t.Fatalf("route %d: Direct %v with %d Via", i, r.Direct, len(r.Via))
			}
			if len(r.Via) > 3 {
				t.Fatalf("route %d has %d Via dialers for 3 protocols", i, len(r.Via))
			}
		}
	})
}
