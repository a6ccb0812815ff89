package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/virgilproxy/socks/socks5"
)

// udpWait bounds every wait of these tests for something that should happen.
const udpWait = 5 * time.Second

// udpQuiet is how long a test waits to conclude that nothing arrives.
const udpQuiet = 150 * time.Millisecond

// udpListen opens a UDP socket on loopback, skipping when the address
// family is unavailable.
func udpListen(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, la)
	if err != nil {
		if strings.Contains(addr, "::") || strings.HasPrefix(addr, "127.0.0.2") {
			t.Skipf("cannot listen on %s %s: %v", network, addr, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func udpAddrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// udpEchoServer is a UDP echo server that records what it received.
type udpEchoServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	from []netip.AddrPort
	done chan struct{}
}

// startEcho starts an echo server on addr; echo=false makes it a sink.
func startEcho(t testing.TB, network, addr string, echo bool) *udpEchoServer {
	t.Helper()
	s := &udpEchoServer{conn: udpListen(t, network, addr), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, from, err := s.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, bytes.Clone(buf[:n]))
			s.from = append(s.from, from)
			s.mu.Unlock()
			if echo {
				_, _ = s.conn.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() {
		s.conn.Close()
		<-s.done
	})
	return s
}

func (s *udpEchoServer) addr() netip.AddrPort { return udpAddrOf(s.conn) }

func (s *udpEchoServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

// tcpControl returns the two ends of a loopback TCP connection: the
// client's and the server's (the control connection Associate watches).
func tcpControl(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

type assocOut struct {
	res UDPResult
	err error
}

// testAssoc is a running association with its client.
type testAssoc struct {
	ctrl     net.Conn     // the client's end of the control connection
	relay    *net.UDPConn // the client-facing socket
	remote   *net.UDPConn // the remote socket
	client   *net.UDPConn // the client's UDP socket
	cancel   context.CancelFunc
	done     chan assocOut
	finished *assocOut
}

type assocConfig struct {
	clientNet, clientAddr string // the client's UDP socket
	relayNet, relayAddr   string // the client-facing socket
	remoteNet, remoteAddr string // the remote socket
	declarePort           bool   // declare the client's port in Client
}

// inBothModes runs f as two subtests: "blocking" (the default loops) and
// "busy-poll" (UDPOptions.BusyPoll set by startAssoc and withTestMode).
func inBothModes(t *testing.T, f func(*testing.T)) {
	t.Run("blocking", func(t *testing.T) {
		before := pollLoops.Load()
		f(t)
		if n := pollLoops.Load() - before; n != 0 {
			t.Errorf("%d associations took the busy-poll path without BusyPoll", n)
		}
	})
	t.Run("busy-poll", func(t *testing.T) {
		before := pollLoops.Load()
		f(t)
		if pollLoops.Load() == before && !t.Skipped() && runtime.GOOS == "linux" {
			t.Error("no association took the busy-poll path")
		}
	})
}

// withTestMode sets BusyPoll in the busy-poll subtests of inBothModes.
func withTestMode(t testing.TB, opt UDPOptions) UDPOptions {
	if opt.BusyPoll == 0 && strings.Contains(t.Name(), "/busy-poll") {
		opt.BusyPoll = 200 * time.Microsecond
	}
	return opt
}

var v4Config = assocConfig{
	clientNet: "udp4", clientAddr: "127.0.0.1:0",
	relayNet: "udp4", relayAddr: "127.0.0.1:0",
	remoteNet: "udp4", remoteAddr: "127.0.0.1:0",
}

// startAssoc runs Associate in a goroutine. opt.Client's IP is the
// client's; its port is set only with declarePort.
func startAssoc(t testing.TB, cfg assocConfig, opt UDPOptions) *testAssoc {
	t.Helper()
	ctrl, srv := tcpControl(t)
	ta := &testAssoc{
		ctrl:   ctrl,
		relay:  udpListen(t, cfg.relayNet, cfg.relayAddr),
		remote: udpListen(t, cfg.remoteNet, cfg.remoteAddr),
		client: udpListen(t, cfg.clientNet, cfg.clientAddr),
		done:   make(chan assocOut, 1),
	}
	ca := udpAddrOf(ta.client)
	port := uint16(0)
	if cfg.declarePort {
		port = ca.Port()
	}
	if !opt.Client.Addr().IsValid() {
		opt.Client = netip.AddrPortFrom(ca.Addr(), port)
	}
	opt = withTestMode(t, opt)
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	go func() {
		res, err := Associate(ctx, srv, ta.relay, ta.remote, opt)
		ta.done <- assocOut{res, err}
	}()
	t.Cleanup(func() { ta.stop(t) })
	return ta
}

// stop closes the control connection and returns Associate's outcome.
func (ta *testAssoc) stop(t testing.TB) assocOut {
	t.Helper()
	if ta.finished != nil {
		return *ta.finished
	}
	ta.ctrl.Close()
	return ta.wait(t)
}

func (ta *testAssoc) wait(t testing.TB) assocOut {
	t.Helper()
	if ta.finished != nil {
		return *ta.finished
	}
	select {
	case out := <-ta.done:
		ta.finished = &out
		ta.cancel()
		return out
	case <-time.After(udpWait):
		ta.cancel()
		t.Fatal("Associate did not return")
		return assocOut{}
	}
}

// relayAddr is where the client sends its datagrams.
func (ta *testAssoc) relayAddr() netip.AddrPort {
	a := udpAddrOf(ta.relay)
	if a.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.Port())
	}
	return a
}

// send sends a SOCKS5-framed datagram from c (the client's socket when nil).
func (ta *testAssoc) send(t testing.TB, c *net.UDPConn, frag byte, dst socks5.Addr, payload []byte) {
	t.Helper()
	if c == nil {
		c = ta.client
	}
	b, err := socks5.AppendDatagram(nil, socks5.Datagram{Frag: frag, Addr: dst, Data: payload})
	if err != nil {
		t.Fatal(err)
	}
	ta.sendRaw(t, c, b)
}

func (ta *testAssoc) sendRaw(t testing.TB, c *net.UDPConn, b []byte) {
	t.Helper()
	if c == nil {
		c = ta.client
	}
	if _, err := c.WriteToUDPAddrPort(b, ta.relayAddr()); err != nil {
		t.Fatal(err)
	}
}

// recv reads one reply datagram on c within d; ok is false on timeout.
func recvDatagram(t testing.TB, c *net.UDPConn, d time.Duration) (dg socks5.Datagram, from netip.AddrPort, ok bool) {
	t.Helper()
	buf := make([]byte, 65536)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return socks5.Datagram{}, from, false
		}
		t.Fatal(err)
	}
	dg, err = socks5.ParseDatagram(buf[:n])
	if err != nil {
		t.Fatalf("reply is not a SOCKS5 datagram: %v (% x)", err, buf[:n])
	}
	return dg, from, true
}

func addrOf(ap netip.AddrPort) socks5.Addr { return socks5.Addr{IP: ap.Addr(), Port: ap.Port()} }

// roundTrip sends payload to dst through the association and checks that
// the echo comes back with echo's address as its source.
func (ta *testAssoc) roundTrip(t testing.TB, dst socks5.Addr, echo netip.AddrPort, payload []byte) {
	t.Helper()
	ta.send(t, nil, 0, dst, payload)
	dg, from, ok := recvDatagram(t, ta.client, udpWait)
	if !ok {
		t.Fatal("no reply")
	}
	if from != ta.relayAddr() && from.Addr().Unmap() != ta.relayAddr().Addr() {
		t.Errorf("reply from %v, want the relay %v", from, ta.relayAddr())
	}
	want := socks5.Datagram{Frag: 0, Addr: addrOf(echo), Data: payload}
	if diff := cmp.Diff(want, dg, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
}

// expectNothing checks that no datagram arrives on c for udpQuiet.
func expectNothing(t testing.TB, c *net.UDPConn, what string) {
	t.Helper()
	buf := make([]byte, 65536)
	_ = c.SetReadDeadline(time.Now().Add(udpQuiet))
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Errorf("%s: got %d bytes from %v, want nothing", what, n, from)
	}
}

func TestUDPRoundTrip(t *testing.T) { inBothModes(t, testUDPRoundTrip) }

func testUDPRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		cfg      assocConfig
		echoNet  string
		echoAddr string
		byName   string // send to this domain name instead of the echo's IP
		wantATYP byte
	}{
		{name: "ipv4-learned", cfg: v4Config, echoNet: "udp4", echoAddr: "127.0.0.1:0", wantATYP: socks5.AddrTypeIPv4},
		{name: "ipv4-declared", cfg: func() assocConfig { c := v4Config; c.declarePort = true; return c }(),
			echoNet: "udp4", echoAddr: "127.0.0.1:0", wantATYP: socks5.AddrTypeIPv4},
		{name: "ipv6", cfg: assocConfig{clientNet: "udp6", clientAddr: "[::1]:0", relayNet: "udp6", relayAddr: "[::1]:0",
			remoteNet: "udp6", remoteAddr: "[::1]:0"}, echoNet: "udp6", echoAddr: "[::1]:0", wantATYP: socks5.AddrTypeIPv6},
		{name: "domain-localhost", cfg: v4Config, echoNet: "udp4", echoAddr: "127.0.0.1:0", byName: "localhost",
			wantATYP: socks5.AddrTypeIPv4},
		{name: "dual-stack-remote-to-ipv4", cfg: assocConfig{clientNet: "udp4", clientAddr: "127.0.0.1:0",
			relayNet: "udp", relayAddr: "[::]:0", remoteNet: "udp", remoteAddr: "[::]:0"},
			echoNet: "udp4", echoAddr: "127.0.0.1:0", wantATYP: socks5.AddrTypeIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := startEcho(t, tt.echoNet, tt.echoAddr, true)
			ta := startAssoc(t, tt.cfg, UDPOptions{})
			dst := addrOf(echo.addr())
			if tt.byName != "" {
				dst = socks5.Addr{Name: tt.byName, Port: echo.addr().Port()}
			}
			payloads := [][]byte{[]byte("hello"), bytes.Repeat([]byte{0xab}, 1200), {}}
			var total int64
			for _, p := range payloads {
				ta.roundTrip(t, dst, echo.addr(), p)
				total += int64(len(p))
			}
			// The raw reply header has the expected ATYP.
			b, _ := socks5.AppendDatagram(nil, socks5.Datagram{Addr: dst, Data: []byte("x")})
			ta.sendRaw(t, nil, b)
			buf := make([]byte, 512)
			_ = ta.client.SetReadDeadline(time.Now().Add(udpWait))
			n, _, err := ta.client.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n < 4 || buf[3] != tt.wantATYP || buf[2] != 0 {
				t.Errorf("reply header % x: want FRAG 0 and ATYP %d", buf[:min(n, 24)], tt.wantATYP)
			}
			out := ta.stop(t)
			if out.err != nil {
				t.Errorf("Associate: %v, want nil after the control connection closed", out.err)
			}
			n4 := int64(len(payloads) + 1)
			want := UDPResult{
				FromClientBytes: total + 1, FromClientPackets: n4, ToClientBytes: total + 1, ToClientPackets: n4,
				ClientDatagrams: n4, PeerDatagrams: n4,
			}
			if diff := cmp.Diff(want, out.res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUDPForeignSources(t *testing.T) { inBothModes(t, testUDPForeignSources) }

func testUDPForeignSources(t *testing.T) {
	tests := []struct {
		name        string
		declarePort bool
		learnFirst  bool   // make one round trip before the foreign datagram
		foreignAddr string // where the foreign datagram comes from
	}{
		{name: "other-port-after-learning", learnFirst: true, foreignAddr: "127.0.0.1:0"},
		{name: "other-port-declared", declarePort: true, foreignAddr: "127.0.0.1:0"},
		{name: "other-ip-before-learning", foreignAddr: "127.0.0.2:0"},
		{name: "other-ip-after-learning", learnFirst: true, foreignAddr: "127.0.0.2:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := startEcho(t, "udp4", "127.0.0.1:0", true)
			cfg := v4Config
			cfg.declarePort = tt.declarePort
			ta := startAssoc(t, cfg, UDPOptions{})
			foreign := udpListen(t, "udp4", tt.foreignAddr)
			dst := addrOf(echo.addr())
			if tt.learnFirst {
				ta.roundTrip(t, dst, echo.addr(), []byte("legit"))
			}
			ta.send(t, foreign, 0, dst, []byte("attack"))
			expectNothing(t, foreign, "foreign source")
			// The legitimate client still works, and the foreign datagram
			// never reached the echo server.
			ta.roundTrip(t, dst, echo.addr(), []byte("legit2"))
			for _, got := range echo.received() {
				if string(got) == "attack" {
					t.Error("the foreign datagram was forwarded")
				}
			}
			out := ta.stop(t)
			sent := int64(1)
			if tt.learnFirst {
				sent = 2
			}
			want := UDPResult{
				FromClientBytes: int64(len("legit2")), FromClientPackets: sent, ToClientPackets: sent,
				ToClientBytes: int64(len("legit2")), ClientDatagrams: sent + 1, PeerDatagrams: sent,
				DroppedForeign: 1,
			}
			if tt.learnFirst {
				want.FromClientBytes += int64(len("legit"))
				want.ToClientBytes += int64(len("legit"))
			}
			if diff := cmp.Diff(want, out.res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUDPMalformedAndEarly(t *testing.T) { inBothModes(t, testUDPMalformedAndEarly) }

func testUDPMalformedAndEarly(t *testing.T) {
	echo := startEcho(t, "udp4", "127.0.0.1:0", true)
	ta := startAssoc(t, v4Config, UDPOptions{})
	// A peer datagram before the client's port is known is dropped.
	peer := udpListen(t, "udp4", "127.0.0.1:0")
	if _, err := peer.WriteToUDPAddrPort([]byte("early"), udpAddrOf(ta.remote)); err != nil {
		t.Fatal(err)
	}
	// Truncated headers, bad RSV, unknown ATYP, port 0: all dropped, and none
	// claims the association's port.
	bad := udpListen(t, "udp4", "127.0.0.1:0")
	for _, b := range [][]byte{
		{0, 0, 0, 1, 127, 0},             // truncated IPv4 address
		{0, 0},                           // shorter than RSV FRAG
		{0, 0, 0, 3, 9, 'l', 'o'},        // truncated name
		{1, 0, 0, 1, 127, 0, 0, 1, 0, 7}, // RSV not 0
		{0, 0, 0, 5, 1, 2, 3, 4, 0, 7},   // unknown ATYP
		{0, 0, 0, 1, 127, 0, 0, 1, 0, 0}, // port 0
	} {
		ta.sendRaw(t, bad, b)
	}
	time.Sleep(udpQuiet) // let the relay drop them before the real client speaks
	ta.roundTrip(t, addrOf(echo.addr()), echo.addr(), []byte("ok"))
	expectNothing(t, bad, "malformed sender")
	out := ta.stop(t)
	want := UDPResult{
		FromClientBytes: 2, FromClientPackets: 1, ToClientBytes: 2, ToClientPackets: 1,
		ClientDatagrams: 7, PeerDatagrams: 2, DroppedMalformed: 6, DroppedUnknownClient: 1,
	}
	if diff := cmp.Diff(want, out.res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// fragStep is one datagram of a fragmentation scenario.
type fragStep struct {
	frag    byte
	payload string
	sleep   time.Duration // before sending
}

func TestUDPFragments(t *testing.T) { inBothModes(t, testUDPFragments) }

func testUDPFragments(t *testing.T) {
	tests := []struct {
		name      string
		opt       UDPOptions
		steps     []fragStep
		wantEcho  []string // datagrams the echo server gets
		wantDrops int64    // DroppedFragment
		wantJoin  int64    // FragmentsJoined
	}{
		{name: "in-order", steps: []fragStep{{1, "abc", 0}, {2, "def", 0}, {0x83, "ghi", 0}},
			wantEcho: []string{"abcdefghi"}, wantJoin: 3},
		{name: "single-last-fragment", steps: []fragStep{{0x81, "solo", 0}}, wantEcho: []string{"solo"}, wantJoin: 1},
		{name: "gap", steps: []fragStep{{1, "a", 0}, {3, "c", 0}, {0x82, "b", 0}}, wantDrops: 3},
		{name: "step-back", steps: []fragStep{{2, "b", 0}, {1, "a", 0}, {0x83, "c", 0}}, wantDrops: 3},
		{name: "repeat-restarts", steps: []fragStep{{1, "a", 0}, {1, "x", 0}, {0x82, "y", 0}},
			wantEcho: []string{"xy"}, wantDrops: 1, wantJoin: 2},
		{name: "standalone-abandons-queue", steps: []fragStep{{1, "a", 0}, {0, "whole", 0}, {0x82, "b", 0}},
			wantEcho: []string{"whole"}, wantDrops: 2},
		{name: "position-zero-with-last-bit", steps: []fragStep{{1, "a", 0}, {0x80, "b", 0}}, wantDrops: 2},
		{name: "expired", opt: UDPOptions{ReassemblyTimeout: 100 * time.Millisecond},
			steps:     []fragStep{{1, "a", 0}, {2, "b", 0}, {0x83, "c", 300 * time.Millisecond}},
			wantDrops: 3},
		{name: "expired-then-new-sequence", opt: UDPOptions{ReassemblyTimeout: 100 * time.Millisecond},
			steps:    []fragStep{{1, "a", 0}, {1, "n", 300 * time.Millisecond}, {0x82, "ew", 0}},
			wantEcho: []string{"new"}, wantDrops: 1, wantJoin: 2},
		{name: "overflow", opt: UDPOptions{MaxReassembly: 100},
			steps:     []fragStep{{1, strings.Repeat("a", 60), 0}, {2, strings.Repeat("b", 60), 0}, {0x83, "c", 0}},
			wantDrops: 3},
		{name: "exactly-max", opt: UDPOptions{MaxReassembly: 6},
			steps: []fragStep{{1, "abc", 0}, {0x82, "def", 0}}, wantEcho: []string{"abcdef"}, wantJoin: 2},
		{name: "too-many-fragments", opt: UDPOptions{MaxFragments: 2},
			steps: []fragStep{{1, "a", 0}, {2, "b", 0}, {0x83, "c", 0}}, wantDrops: 3},
		{name: "pending-at-end", steps: []fragStep{{1, "a", 0}, {2, "b", 0}}, wantDrops: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := startEcho(t, "udp4", "127.0.0.1:0", true)
			ta := startAssoc(t, v4Config, tt.opt)
			dst := addrOf(echo.addr())
			for _, s := range tt.steps {
				time.Sleep(s.sleep)
				ta.send(t, nil, s.frag, dst, []byte(s.payload))
			}
			var replies []string
			for range tt.wantEcho {
				dg, _, ok := recvDatagram(t, ta.client, udpWait)
				if !ok {
					break
				}
				if dg.Frag != 0 {
					t.Errorf("reply FRAG %#x, want 0", dg.Frag)
				}
				replies = append(replies, string(dg.Data))
			}
			expectNothing(t, ta.client, "after the expected replies")
			out := ta.stop(t)
			var got []string
			for _, b := range echo.received() {
				got = append(got, string(b))
			}
			if diff := cmp.Diff(tt.wantEcho, got); diff != "" {
				t.Errorf("echo server got (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEcho, replies); diff != "" {
				t.Errorf("client got back (-want +got):\n%s", diff)
			}
			r := out.res
			if r.DroppedFragment != tt.wantDrops || r.FragmentsJoined != tt.wantJoin {
				t.Errorf("DroppedFragment %d FragmentsJoined %d, want %d and %d", r.DroppedFragment,
					r.FragmentsJoined, tt.wantDrops, tt.wantJoin)
			}
			checkUDPInvariant(t, r)
			if r.ClientDatagrams != int64(len(tt.steps)) {
				t.Errorf("ClientDatagrams %d, want %d", r.ClientDatagrams, len(tt.steps))
			}
		})
	}
}

// checkUDPInvariant checks that every datagram was accounted for once.
func checkUDPInvariant(t testing.TB, r UDPResult) {
	t.Helper()
	in := r.ClientDatagrams + r.PeerDatagrams + r.Reassembled
	out := r.FromClientPackets + r.ToClientPackets + r.FragmentsJoined + r.Dropped()
	if in != out {
		t.Errorf("accounting: in %d != out %d: %+v", in, out, r)
	}
}

func TestUDPAllow(t *testing.T) { inBothModes(t, testUDPAllow) }

func testUDPAllow(t *testing.T) {
	echo := startEcho(t, "udp4", "127.0.0.1:0", true)
	other := startEcho(t, "udp4", "127.0.0.1:0", true)
	type call struct {
		Outbound bool
		Peer     netip.AddrPort
		Name     string
	}
	var mu sync.Mutex
	var calls []call
	opt := UDPOptions{
		Allow: func(outbound bool, peer netip.AddrPort, name string) bool {
			mu.Lock()
			calls = append(calls, call{outbound, peer, name})
			mu.Unlock()
			// Out to echo (by IP or name) and other; back only from echo.
			return peer == echo.addr() || (outbound && peer == other.addr())
		},
		Resolve: func(ctx context.Context, host string) (netip.Addr, error) {
			if host == "echo.test" {
				return echo.addr().Addr(), nil
			}
			return netip.Addr{}, errors.New("no such host")
		},
	}
	ta := startAssoc(t, v4Config, opt)
	ta.roundTrip(t, addrOf(echo.addr()), echo.addr(), []byte("1"))
	ta.roundTrip(t, socks5.Addr{Name: "echo.test", Port: echo.addr().Port()}, echo.addr(), []byte("2"))
	// Outbound allowed, but other's echo is refused on the way back.
	ta.send(t, nil, 0, addrOf(other.addr()), []byte("3"))
	// Outbound refused.
	blocked := netip.MustParseAddrPort("127.0.0.1:9")
	ta.send(t, nil, 0, addrOf(blocked), []byte("4"))
	// Name that does not resolve (asked once, then cached).
	ta.send(t, nil, 0, socks5.Addr{Name: "nx.test", Port: 9}, []byte("5"))
	ta.send(t, nil, 0, socks5.Addr{Name: "nx.test", Port: 9}, []byte("6"))
	expectNothing(t, ta.client, "refused traffic")
	out := ta.stop(t)
	want := UDPResult{
		FromClientBytes: 3, FromClientPackets: 3, ToClientBytes: 2, ToClientPackets: 2,
		ClientDatagrams: 6, PeerDatagrams: 3, DroppedPolicy: 2, DroppedResolve: 2,
	}
	if diff := cmp.Diff(want, out.res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantCalls := []call{
		{true, echo.addr(), ""}, {false, echo.addr(), ""},
		{true, echo.addr(), "echo.test"}, {false, echo.addr(), ""},
		{true, other.addr(), ""}, {false, other.addr(), ""},
		{true, blocked, ""},
	}
	mu.Lock()
	defer mu.Unlock()
	// The two directions run concurrently: compare the calls as sets.
	sortCalls := cmpopts.SortSlices(func(a, b call) bool {
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	if diff := cmp.Diff(wantCalls, calls, sortCalls, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("Allow calls (-want +got):\n%s", diff)
	}
}

func TestUDPResolveCache(t *testing.T) {
	echo := startEcho(t, "udp4", "127.0.0.1:0", true)
	var mu sync.Mutex
	asked := map[string]int{}
	opt := UDPOptions{Resolve: func(ctx context.Context, host string) (netip.Addr, error) {
		mu.Lock()
		asked[host]++
		mu.Unlock()
		return echo.addr().Addr(), nil
	}}
	ta := startAssoc(t, v4Config, opt)
	// More names than the cache holds: every name is asked once while
	// fresh, and the association keeps working.
	for i := range udpCacheSize + 10 {
		name := strings.Repeat("n", 1+i%200) + ".test"
		ta.roundTrip(t, socks5.Addr{Name: name, Port: echo.addr().Port()}, echo.addr(), []byte{byte(i)})
	}
	for range 3 {
		ta.roundTrip(t, socks5.Addr{Name: "again.test", Port: echo.addr().Port()}, echo.addr(), []byte("a"))
	}
	ta.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if asked["again.test"] != 1 {
		t.Errorf("again.test resolved %d times, want 1 (cached)", asked["again.test"])
	}
	if len(asked) != udpCacheSize+11 {
		t.Errorf("%d names resolved, want %d", len(asked), udpCacheSize+11)
	}
}

func TestUDPEnding(t *testing.T) { inBothModes(t, testUDPEnding) }

func testUDPEnding(t *testing.T) {
	t.Run("control-closed", func(t *testing.T) {
		ta := startAssoc(t, v4Config, UDPOptions{})
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		ta.ctrl.Close()
		out := ta.wait(t)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Associate took %v after the control connection closed", el)
		}
		if out.err != nil {
			t.Errorf("err = %v, want nil", out.err)
		}
	})
	t.Run("control-data-ignored", func(t *testing.T) {
		echo := startEcho(t, "udp4", "127.0.0.1:0", true)
		ta := startAssoc(t, v4Config, UDPOptions{})
		if _, err := ta.ctrl.Write([]byte("unexpected")); err != nil {
			t.Fatal(err)
		}
		ta.roundTrip(t, addrOf(echo.addr()), echo.addr(), []byte("still here"))
		if out := ta.stop(t); out.err != nil || out.res.ToClientPackets != 1 {
			t.Errorf("got %+v, %v; want one reply and nil", out.res, out.err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ta := startAssoc(t, v4Config, UDPOptions{})
		time.Sleep(20 * time.Millisecond)
		ta.cancel()
		if out := ta.wait(t); !errors.Is(out.err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", out.err)
		}
	})
	t.Run("context-already-done", func(t *testing.T) {
		ctrl, srv := tcpControl(t)
		_ = ctrl
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a, b := udpListen(t, "udp4", "127.0.0.1:0"), udpListen(t, "udp4", "127.0.0.1:0")
		_, err := Associate(ctx, srv, a, b, UDPOptions{Client: netip.MustParseAddrPort("127.0.0.1:0")})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("bad-arguments", func(t *testing.T) {
		_, srv := tcpControl(t)
		a := udpListen(t, "udp4", "127.0.0.1:0")
		if _, err := Associate(context.Background(), srv, a, nil, UDPOptions{}); !errors.Is(err, ErrBadAssociation) {
			t.Errorf("nil socket: err = %v", err)
		}
		if _, err := Associate(context.Background(), srv, a, a, UDPOptions{}); !errors.Is(err, ErrBadAssociation) {
			t.Errorf("no client: err = %v", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		ta := startAssoc(t, v4Config, UDPOptions{IdleTimeout: 100 * time.Millisecond})
		if out := ta.wait(t); !errors.Is(out.err, ErrIdleTimeout) {
			t.Errorf("err = %v, want ErrIdleTimeout", out.err)
		}
	})
	t.Run("idle-refreshed-by-traffic", func(t *testing.T) {
		const idle = 150 * time.Millisecond
		echo := startEcho(t, "udp4", "127.0.0.1:0", true)
		ta := startAssoc(t, v4Config, UDPOptions{IdleTimeout: idle})
		start := time.Now()
		for range 10 { // 10 x 50ms: over three idle periods
			ta.roundTrip(t, addrOf(echo.addr()), echo.addr(), []byte("keepalive"))
			time.Sleep(idle / 3)
		}
		select {
		case out := <-ta.done:
			t.Fatalf("association ended during traffic after %v: %v", time.Since(start), out.err)
		default:
		}
		if out := ta.wait(t); !errors.Is(out.err, ErrIdleTimeout) || out.res.ToClientPackets != 10 {
			t.Errorf("got %+v, %v; want 10 replies then ErrIdleTimeout", out.res, out.err)
		}
	})
	t.Run("dropped-traffic-is-not-activity", func(t *testing.T) {
		const idle = 150 * time.Millisecond
		foreign := udpListen(t, "udp4", "127.0.0.2:0")
		// Before Associate starts its idle clock, so that an end at exactly
		// the idle timeout is not measured as early.
		start := time.Now()
		ta := startAssoc(t, v4Config, UDPOptions{IdleTimeout: idle})
		stop := make(chan struct{})
		sent := make(chan int)
		go func() { // a flood of dropped datagrams until the association ends
			n := 0
			defer func() { sent <- n }()
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					b := []byte{0, 0, 0, 1, 127, 0, 0, 1, 0, 9}
					if _, err := foreign.WriteToUDPAddrPort(b, ta.relayAddr()); err == nil {
						n++
					}
				}
			}
		}()
		out := ta.wait(t) // fails if the flood keeps it alive for udpWait
		el := time.Since(start)
		close(stop)
		n := <-sent
		if !errors.Is(out.err, ErrIdleTimeout) {
			t.Errorf("err = %v, want ErrIdleTimeout", out.err)
		}
		if el < idle {
			t.Errorf("ended after %v, before the idle timeout %v", el, idle)
		}
		if n == 0 || out.res.DroppedForeign == 0 || out.res.DroppedForeign > int64(n) {
			t.Errorf("sent %d foreign datagrams, DroppedForeign %d", n, out.res.DroppedForeign)
		}
	})
}

// TestUDPManyAssociations opens and closes associations one after another
// and checks that neither goroutines nor descriptors pile up.
func TestUDPManyAssociations(t *testing.T) { inBothModes(t, testUDPManyAssociations) }

func testUDPManyAssociations(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	echo := startEcho(t, "udp4", "127.0.0.1:0", true)
	opts := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	one := func(i int) {
		ctrl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer ctrl.Close()
		srv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		relay, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		remote, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		client, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if relay == nil || remote == nil || client == nil {
			t.Fatal("cannot open UDP sockets")
		}
		defer relay.Close()
		defer remote.Close()
		defer client.Close()
		done := make(chan error, 1)
		go func() {
			_, err := Associate(context.Background(), srv, relay, remote,
				withTestMode(t, UDPOptions{Client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}))
			done <- err
		}()
		if i%10 == 0 { // some of them carry a round trip
			b, _ := socks5.AppendDatagram(nil, socks5.Datagram{Addr: addrOf(echo.addr()), Data: []byte("x")})
			_, _ = client.WriteToUDPAddrPort(b, udpAddrOf(relay))
			_ = client.SetReadDeadline(time.Now().Add(udpWait))
			if _, _, err := client.ReadFromUDPAddrPort(make([]byte, 64)); err != nil {
				t.Fatalf("association %d: %v", i, err)
			}
		}
		ctrl.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("association %d: %v", i, err)
			}
		case <-time.After(udpWait):
			t.Fatalf("association %d did not end", i)
		}
	}
	one(0) // warm up (pools, runtime)
	before := fds()
	for i := 1; i < n; i++ {
		one(i)
	}
	if after := fds(); after > before+2 {
		t.Errorf("open descriptors grew from %d to %d over %d associations", before, after, n)
	}
	goleak.VerifyNone(t, opts)
}

// TestUDPNoAllocs checks that the steady-state round trip of IP-addressed
// datagrams allocates nothing, in the engine and in this test's loop.
func TestUDPNoAllocs(t *testing.T) { inBothModes(t, testUDPNoAllocs) }

func testUDPNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	echo := startEcho(t, "udp4", "127.0.0.1:0", true)
	ta := startAssoc(t, v4Config, UDPOptions{Allow: func(bool, netip.AddrPort, string) bool { return true }})
	ta.roundTrip(t, addrOf(echo.addr()), echo.addr(), []byte("warm"))
	// The echo server appends what it gets; use an allocation-free echo.
	fast := startFastEcho(t)
	rt := newUDPRoundTripper(t, ta.client, ta.relayAddr(), addrOf(fast), 64)
	for range 100 {
		rt.do(t)
	}
	allocs := testing.AllocsPerRun(2000, func() { rt.do(t) })
	if allocs != 0 {
		t.Errorf("%v allocations per round trip, want 0", allocs)
	}
}

// startFastEcho starts an allocation-free echo server and returns its address.
func startFastEcho(t testing.TB) netip.AddrPort {
	c := udpListen(t, "udp4", "127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return udpAddrOf(c)
}

// udpRoundTripper sends one framed datagram and reads its echo, without
// allocating.
type udpRoundTripper struct {
	c     *net.UDPConn
	relay netip.AddrPort
	out   []byte
	in    []byte
}

func newUDPRoundTripper(t testing.TB, c *net.UDPConn, relay netip.AddrPort, dst socks5.Addr, size int) *udpRoundTripper {
	out, err := socks5.AppendDatagram(nil, socks5.Datagram{Addr: dst, Data: make([]byte, size)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // once: a lost datagram fails, never hangs
	return &udpRoundTripper{c: c, relay: relay, out: out, in: make([]byte, 65536)}
}

func (r *udpRoundTripper) do(t testing.TB) {
	if _, err := r.c.WriteToUDPAddrPort(r.out, r.relay); err != nil {
		t.Fatal(err)
	}
	n, _, err := r.c.ReadFromUDPAddrPort(r.in)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(r.out) {
		t.Fatalf("echo of %d bytes, want %d", n, len(r.out))
	}
}
