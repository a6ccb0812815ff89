package addrmatch

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func init() {
	// Deterministic: "lo0x" is the only interface the tests know.
	interfaceExists = func(name string) bool { return name == "lo0x" }
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		kind    Kind
		str     string
		wantErr error
	}{
		{in: "0/0", kind: KindAny, str: "0/0"},
		{in: "10.0.0.0/8", kind: KindPrefix, str: "10.0.0.0/8"},
		{in: "10.1.2.3/8", kind: KindPrefix, str: "10.0.0.0/8"},
		{in: "10.0.0.0/255.0.0.0", kind: KindPrefix, str: "10.0.0.0/8"},
		{in: "192.168.1.0/255.255.255.0", kind: KindPrefix, str: "192.168.1.0/24"},
		{in: "0.0.0.0/0", kind: KindPrefix, str: "0.0.0.0/0"},
		{in: "::1/128", kind: KindPrefix, str: "::1/128"},
		{in: "2001:db8::/32", kind: KindPrefix, str: "2001:db8::/32"},
		{in: "WWW.Example.COM", kind: KindName, str: "www.example.com"},
		{in: "localhost", kind: KindName, str: "localhost"},
		{in: ".example.com", kind: KindDomain, str: ".example.com"},
		{in: "example.com.", kind: KindName, str: "example.com"},
		{in: "", wantErr: ErrInvalidAddr},
		{in: "10.0.0.1", wantErr: ErrInvalidAddr},
		{in: "::1", wantErr: ErrInvalidAddr},
		{in: "10.0.0.0/33", wantErr: ErrInvalidAddr},
		{in: "10.0.0.0/-1", wantErr: ErrInvalidAddr},
		{in: "10.0.0.0/255.0.255.0", wantErr: ErrInvalidAddr},
		{in: "::/255.0.0.0", wantErr: ErrInvalidAddr},
		{in: "bad_host!", wantErr: ErrInvalidAddr},
		{in: "a..b", wantErr: ErrInvalidAddr},
		{in: ".", wantErr: ErrInvalidAddr},
		{in: "lo0x", wantErr: ErrInterface},
		{in: strings.Repeat("a", 300), wantErr: ErrInvalidAddr},
	}
	for _, tt := range tests {
		a, err := ParseAddr(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidAddr) {
				t.Errorf("ParseAddr(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddr(%q): %v", tt.in, err)
			continue
		}
		if got := [2]string{a.String(), kindName(a.Kind())}; got != [2]string{tt.str, kindName(tt.kind)} {
			t.Errorf("ParseAddr(%q) = %v, want %v %v", tt.in, got, tt.str, kindName(tt.kind))
		}
	}
}

func kindName(k Kind) string {
	return [...]string{"any", "prefix", "name", "domain"}[k]
}

func mustAddr(t *testing.T, s string) Addr {
	t.Helper()
	a, err := ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMatch(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		pattern string
		name    string
		ip      netip.Addr
		want    bool
	}{
		{"0/0", "anything.example", netip.Addr{}, true},
		{"0/0", "", ip("::1"), true},
		{"10.0.0.0/8", "", ip("10.200.0.1"), true},
		{"10.0.0.0/8", "", ip("11.0.0.1"), false},
		{"10.0.0.0/8", "", ip("::ffff:10.0.0.1"), true},
		{"10.0.0.0/8", "ten.example", netip.Addr{}, false}, // no resolver
		{"::1/128", "", ip("::1"), true},
		{"::1/128", "", ip("127.0.0.1"), false},
		{"www.example.com", "WWW.EXAMPLE.com", netip.Addr{}, true},
		{"www.example.com", "www.example.com.", netip.Addr{}, true},
		{"www.example.com", "example.com", netip.Addr{}, false},
		{"www.example.com", "", ip("192.0.2.1"), false},
		{".example.com", "example.com", netip.Addr{}, true},
		{".example.com", "a.b.Example.Com", netip.Addr{}, true},
		{".example.com", "badexample.com", netip.Addr{}, false},
		{".example.com", "example.com.evil", netip.Addr{}, false},
		{".example.com", "", ip("192.0.2.1"), false},
	}
	for _, tt := range tests {
		if got := mustAddr(t, tt.pattern).Match(tt.name, tt.ip); got != tt.want {
			t.Errorf("%s.Match(%q, %v) = %v, want %v", tt.pattern, tt.name, tt.ip, got, tt.want)
		}
	}
	if !(Addr{}).Match("x", netip.Addr{}) {
		t.Error("the zero Addr does not match everything")
	}
}

// fakeResolver answers from maps.
type fakeResolver struct {
	ips   map[string][]netip.Addr
	names map[string][]string
	calls int
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.calls++
	if ips, ok := f.ips[strings.ToLower(host)]; ok {
		return ips, nil
	}
	return nil, errors.New("no such host " + host)
}

func (f *fakeResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	f.calls++
	return f.names[addr], nil
}

func TestMatchResolve(t *testing.T) {
	ip := netip.MustParseAddr
	r := &fakeResolver{
		ips: map[string][]netip.Addr{
			"ten.example":     {ip("10.1.1.1")},
			"www.example.com": {ip("192.0.2.10"), ip("2001:db8::10")},
			"alias.example":   {ip("192.0.2.10")},
		},
		names: map[string][]string{"192.0.2.10": {"host.example.com."}},
	}
	tests := []struct {
		pattern string
		name    string
		ip      netip.Addr
		want    bool
		wantErr bool
	}{
		{"10.0.0.0/8", "ten.example", netip.Addr{}, true, false},
		{"10.0.0.0/8", "alias.example", netip.Addr{}, false, false},
		{"10.0.0.0/8", "nxdomain.example", netip.Addr{}, false, true},
		{"www.example.com", "", ip("2001:db8::10"), true, false},
		{"www.example.com", "", ip("192.0.2.99"), false, false},
		{"www.example.com", "alias.example", netip.Addr{}, true, false},
		{".example.com", "", ip("192.0.2.10"), true, false},
		{".example.org", "", ip("192.0.2.10"), false, false},
	}
	for _, tt := range tests {
		got, err := mustAddr(t, tt.pattern).MatchResolve(context.Background(), r, tt.name, tt.ip)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s.MatchResolve(%q, %v) = %v, %v; want %v, error %v", tt.pattern, tt.name, tt.ip, got, err, tt.want, tt.wantErr)
		}
	}
	// A nil resolver never looks anything up.
	got, err := mustAddr(t, "10.0.0.0/8").MatchResolve(context.Background(), nil, "ten.example", netip.Addr{})
	if got || err != nil {
		t.Errorf("nil resolver: %v, %v", got, err)
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		op, value string
		want      Port
		wantErr   bool
	}{
		{"=", "80", Port{Op: PortEq, Port: 80}, false},
		{"", "80", Port{Op: PortEq, Port: 80}, false},
		{"eq", "http", Port{Op: PortEq, Port: 80}, false},
		{"", "socks", Port{Op: PortEq, Port: 1080}, false},
		{"!=", "25", Port{Op: PortNe, Port: 25}, false},
		{"ne", "25", Port{Op: PortNe, Port: 25}, false},
		{"<", "1024", Port{Op: PortLt, Port: 1024}, false},
		{"GT", "1023", Port{Op: PortGt, Port: 1023}, false},
		{"<=", "10", Port{Op: PortLe, Port: 10}, false},
		{"ge", "10", Port{Op: PortGe, Port: 10}, false},
		{"", "1-65535", Port{Op: PortRange, Port: 1, End: 65535}, false},
		{"", "ftp-data", Port{Op: PortEq, Port: 20}, false}, // a service name with a dash, not a range
		{"=", "1-2", Port{}, true},
		{"", "2-1", Port{}, true},
		{"", "65536", Port{}, true},
		{"", "123456", Port{}, true},
		{"~", "80", Port{}, true},
		{"", "no-such-service-xyz", Port{}, true},
		{"", "", Port{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.op, tt.value)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidPort) {
				t.Errorf("ParsePort(%q, %q) error = %v, want ErrInvalidPort", tt.op, tt.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePort(%q, %q): %v", tt.op, tt.value, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParsePort(%q, %q) (-want +got):\n%s", tt.op, tt.value, diff)
		}
	}
}

func TestPortMatch(t *testing.T) {
	ports := []uint16{0, 79, 80, 81, 1023, 1024, 65535}
	tests := []struct {
		p    Port
		want []bool
	}{
		{Port{}, []bool{true, true, true, true, true, true, true}},
		{Port{Op: PortEq, Port: 80}, []bool{false, false, true, false, false, false, false}},
		{Port{Op: PortNe, Port: 80}, []bool{true, true, false, true, true, true, true}},
		{Port{Op: PortLt, Port: 80}, []bool{true, true, false, false, false, false, false}},
		{Port{Op: PortGt, Port: 80}, []bool{false, false, false, true, true, true, true}},
		{Port{Op: PortLe, Port: 80}, []bool{true, true, true, false, false, false, false}},
		{Port{Op: PortGe, Port: 1024}, []bool{false, false, false, false, false, true, true}},
		{Port{Op: PortRange, Port: 80, End: 1023}, []bool{false, false, true, true, true, false, false}},
	}
	for _, tt := range tests {
		var got []bool
		for _, p := range ports {
			got = append(got, tt.p.Match(p))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q over %v (-want +got):\n%s", tt.p, ports, diff)
		}
	}
}

func TestPortNumberNoServices(t *testing.T) {
	if _, err := PortNumber("socks", false); !errors.Is(err, ErrInvalidPort) || !strings.Contains(err.Error(), "service name") {
		t.Errorf("PortNumber(socks, false) = %v", err)
	}
	if n, err := PortNumber("1080", false); n != 1080 || err != nil {
		t.Errorf("PortNumber(1080, false) = %d, %v", n, err)
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"0/0", "10.0.0.0/8", "10.0.0.0/255.0.0.0", "::1/128", ".example.com", "host.example", "10.0.0.1", "a..b", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddr) {
				t.Fatalf("error %v does not wrap ErrInvalidAddr", err)
			}
			return
		}
		// The canonical form parses back to the same pattern.
		b, err := ParseAddr(a.String())
		if err != nil {
			t.Fatalf("ParseAddr(%q) -> %q, which does not parse: %v", s, a.String(), err)
		}
		if b != a {
			t.Fatalf("round trip %q -> %q -> %q", s, a, b)
		}
		a.Match(s, netip.IPv4Unspecified())
	})
}

func FuzzParsePort(f *testing.F) {
	for _, s := range [][2]string{{"=", "80"}, {"", "1-1024"}, {"gt", "http"}, {"", "65536"}, {"!=", "socks"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, op, value string) {
		p, err := ParsePort(op, value)
		if err != nil {
			if !errors.Is(err, ErrInvalidPort) {
				t.Fatalf("error %v does not wrap ErrInvalidPort", err)
			}
			return
		}
		if p.Op == PortAny || (p.Op == PortRange && p.Port > p.End) {
			t.Fatalf("ParsePort(%q, %q) = %+v", op, value, p)
		}
		// The written form parses back to the same pattern.
		o, v, _ := strings.Cut(p.String(), " ")
		if p.Op == PortRange {
			o, v = "", p.String()
		}
		q, err := ParsePort(o, v)
		if err != nil || q != p {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", p, p.String(), q, err)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	dom, _ := ParseAddr(".example.com")
	pfx, _ := ParseAddr("10.0.0.0/8")
	ip := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		if !dom.Match("www.Example.com", netip.Addr{}) || !pfx.Match("", ip) {
			b.Fatal("no match")
		}
	}
}
