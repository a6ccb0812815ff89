package msproxy

import (
	"github.com/virgilproxy/socks/internal/testenv"

	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder remembers the requests a Server saw.
type recorder struct {
	mu   sync.Mutex
	cmds []uint16
}

func (r *recorder) observe(h Header) {
	r.mu.Lock()
	r.cmds = append(r.cmds, h.Command)
	r.mu.Unlock()
}

func (r *recorder) count(cmd uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.cmds {
		if c == cmd {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// startServer serves s on a loopback UDP port and returns the address.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return pc.LocalAddr().String()
}

// countingDialer counts outbound dials.
type countingDialer struct {
	n atomic.Int32
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

func testDialer(server string) *Dialer {
	return &Dialer{Server: server, User: "tester", RetryInterval: 50 * time.Millisecond, Retries: 5}
}

func httpGet(t *testing.T, d *Dialer, url string) string {
	t.Helper()
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newHTTPServer(t *testing.T) *httptest.Server {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from %s", r.Host, r.RemoteAddr)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func TestConnectHTTP(t *testing.T) {
	hs := newHTTPServer(t)
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	for _, tc := range []struct {
		host    string
		resolve int
	}{{"127.0.0.1", 0}, {"localhost", 1}} {
		t.Run(tc.host, func(t *testing.T) {
			rec := &recorder{}
			cd := &countingDialer{}
			s := &Server{Dialer: cd, observe: rec.observe}
			d := testDialer(startServer(t, s))
			hostport := net.JoinHostPort(tc.host, port)
			body := httpGet(t, d, "http://"+hostport+"/x")
			if want := "hello " + hostport + " from 127.0.0.1:"; !strings.HasPrefix(body, want) {
				t.Errorf("body %q, want prefix %q", body, want)
			}
			if got := rec.count(CmdResolve); got != tc.resolve {
				t.Errorf("%d RESOLVE, want %d", got, tc.resolve)
			}
			if got := cd.n.Load(); got != 1 {
				t.Errorf("%d outbound dials, want 1", got)
			}
			waitFor(t, "SESSIONEND", func() bool { return rec.count(CmdSessionEnd) == 1 })
			if got := rec.count(CmdConnected); got != 1 {
				t.Errorf("%d CONNECTED, want 1", got)
			}
		})
	}
}

func TestConnRemoteAddrAndHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		c.Write([]byte(strings.ToUpper(string(b))))
	}()
	d := testDialer(startServer(t, &Server{}))
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := c.RemoteAddr().String(), ln.Addr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	io.WriteString(c, "ping")
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "PING" {
		t.Errorf("read %q, %v", b, err)
	}
}

func testBind(t *testing.T, d *Dialer) {
	t.Helper()
	l, err := d.Listen(context.Background(), "tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bound := l.Addr().(*net.TCPAddr)
	if !bound.IP.Equal(net.IPv4(127, 0, 0, 1)) || bound.Port == 0 {
		t.Fatalf("bound address %v", bound)
	}
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		accepted <- result{c, err}
	}()
	peer, err := net.Dial("tcp4", bound.String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var r result
	select {
	case r = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if got, want := r.c.RemoteAddr().String(), peer.LocalAddr().String(); got != want {
		t.Errorf("accepted RemoteAddr %s, want the peer %s", got, want)
	}
	r.c.SetDeadline(time.Now().Add(5 * time.Second))
	peer.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(peer, "from peer")
	buf := make([]byte, 9)
	if _, err := io.ReadFull(r.c, buf); err != nil || string(buf) != "from peer" {
		t.Errorf("client read %q, %v", buf, err)
	}
	io.WriteString(r.c, "from client")
	buf = make([]byte, 11)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "from client" {
		t.Errorf("peer read %q, %v", buf, err)
	}
}

func TestBind(t *testing.T) {
	rec := &recorder{}
	d := testDialer(startServer(t, &Server{observe: rec.observe}))
	testBind(t, d)
	for _, cmd := range []uint16{CmdBind, CmdBind2, CmdListen, CmdBindInfoAck} {
		if rec.count(cmd) != 1 {
			t.Errorf("command %#04x seen %d times, want 1", cmd, rec.count(cmd))
		}
	}
	waitFor(t, "SESSIONEND", func() bool { return rec.count(CmdSessionEnd) == 1 })
}

func TestListenCloseBeforeAccept(t *testing.T) {
	rec := &recorder{}
	d := testDialer(startServer(t, &Server{observe: rec.observe}))
	l, err := d.Listen(context.Background(), "tcp4", "")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	waitFor(t, "SESSIONEND", func() bool { return rec.count(CmdSessionEnd) == 1 })
}

// udpRelay sits between client and server; policy says how many copies of each datagram
// to forward (0 drops it).
type udpRelay struct {
	pc     net.PacketConn
	server *net.UDPAddr
	policy func(toServer bool, h Header) int
	mu     sync.Mutex
	ups    map[string]*net.UDPConn
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, server string, policy func(toServer bool, h Header) int) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := net.ResolveUDPAddr("udp4", server)
	r := &udpRelay{pc: pc, server: sa, policy: policy, ups: map[string]*net.UDPConn{}}
	r.wg.Add(1)
	go r.run()
	t.Cleanup(func() {
		pc.Close()
		r.mu.Lock()
		for _, u := range r.ups {
			u.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return pc.LocalAddr().String()
}

func (r *udpRelay) copies(toServer bool, b []byte) int {
	h, err := DecodeHeader(b)
	if err != nil {
		return 1
	}
	return r.policy(toServer, h)
}

func (r *udpRelay) run() {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		up := r.ups[from.String()]
		if up == nil {
			up, err = net.DialUDP("udp4", nil, r.server)
			if err != nil {
				r.mu.Unlock()
				continue
			}
			r.ups[from.String()] = up
			r.wg.Add(1)
			go r.back(up, from)
		}
		r.mu.Unlock()
		for range r.copies(true, buf[:n]) {
			up.Write(buf[:n])
		}
	}
}

func (r *udpRelay) back(up *net.UDPConn, client net.Addr) {
	defer r.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		for range r.copies(false, buf[:n]) {
			r.pc.WriteTo(buf[:n], client)
		}
	}
}

// dropFirst drops the first copy of each listed command in each direction; dropped
// reports how many were dropped.
func dropFirst(toServer []uint16, toClient []uint16) (policy func(bool, Header) int, dropped func() int) {
	var mu sync.Mutex
	seen := map[[2]uint16]bool{}
	dropped = func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	return func(ts bool, h Header) int {
		list, dir := toClient, uint16(0)
		if ts {
			list, dir = toServer, 1
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range list {
			if c == h.Command && !seen[[2]uint16{dir, c}] {
				seen[[2]uint16{dir, c}] = true
				return 0
			}
		}
		return 1
	}, dropped
}

func TestLostDatagrams(t *testing.T) {
	hs := newHTTPServer(t)
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	for _, tc := range []struct {
		name               string
		toServer, toClient []uint16
	}{
		{"requests", []uint16{CmdHello, CmdResolve, CmdConnect, CmdBind, CmdBind2, CmdBindInfoAck}, nil},
		{"answers", nil, []uint16{CmdHelloAck, CmdUserInfoAck, CmdResolveAck, CmdConnectAck, CmdBindAck, CmdBind2Ack, CmdBindInfo}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := &countingDialer{}
			rec := &recorder{}
			server := startServer(t, &Server{Dialer: cd, observe: rec.observe, RetryInterval: 50 * time.Millisecond})
			policy, dropped := dropFirst(tc.toServer, tc.toClient)
			d := testDialer(startRelay(t, server, policy))
			if body := httpGet(t, d, "http://localhost:"+port+"/"); !strings.HasPrefix(body, "hello localhost:") {
				t.Errorf("body %q", body)
			}
			if got := cd.n.Load(); got != 1 {
				t.Errorf("server dialed %d times, want 1", got)
			}
			testBind(t, d)
			if got, want := dropped(), len(tc.toServer)+len(tc.toClient); got != want {
				t.Errorf("relay dropped %d datagrams, want %d", got, want)
			}
			if tc.toClient != nil && rec.count(CmdHello) < 5 {
				t.Errorf("%d HELLO seen, want the retransmission of packet 1 too", rec.count(CmdHello))
			}
		})
	}
}

func TestDuplicatedDatagrams(t *testing.T) {
	hs := newHTTPServer(t)
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	cd := &countingDialer{}
	rec := &recorder{}
	server := startServer(t, &Server{Dialer: cd, observe: rec.observe})
	d := testDialer(startRelay(t, server, func(bool, Header) int { return 2 }))
	for range 2 {
		if body := httpGet(t, d, "http://localhost:"+port+"/"); !strings.HasPrefix(body, "hello localhost:") {
			t.Errorf("body %q", body)
		}
	}
	// The duplicate of the last CONNECT may still be on its way to the
	// server when the client has its answer from the first copy. Once the
	// server has seen every copy, it must still have dialed once per
	// request.
	waitFor(t, "the server to see both CONNECTs twice", func() bool { return rec.count(CmdConnect) >= 4 })
	if got := cd.n.Load(); got != 2 {
		t.Errorf("server dialed %d times for 2 requests", got)
	}
	testBind(t, d)
}

func TestFailureCommands(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    uint16
		cmd   uint16
		bind  bool
		wants []error
	}{
		{"connect 0x081E", CmdConnect, CmdConnectAuthFailed, false, []error{ErrConnectAuthFailed, ErrAuthFailed}},
		{"connect 0x0804", CmdConnect, CmdBindAuthFailed, false, []error{ErrBindAuthFailed, ErrAuthFailed}},
		{"connect 0x0411", CmdConnect, 0x0411, false, []error{ErrRefused}},
		{"resolve 0x4001", CmdResolve, 0x4001, false, []error{ErrRefused}},
		{"hello 0x0999", CmdHello, 0x0999, false, []error{ErrProtocol}},
		{"bind 0x0804", CmdBind, CmdBindAuthFailed, true, []error{ErrBindAuthFailed}},
		{"bind 0x0701", CmdBind, CmdAddrInUse, true, []error{ErrAddrInUse}},
		{"bind2 0x081E", CmdBind2, CmdConnectAuthFailed, true, []error{ErrConnectAuthFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{answer: func(h Header) (uint16, bool) { return tc.cmd, h.Command == tc.on }}
			d := testDialer(startServer(t, s))
			var err error
			if tc.bind {
				var l net.Listener
				l, err = d.Listen(context.Background(), "tcp", "0.0.0.0:0")
				if l != nil {
					l.Close()
				}
			} else {
				var c net.Conn
				c, err = d.Dial("tcp", "localhost:80")
				if c != nil {
					c.Close()
				}
			}
			for _, want := range tc.wants {
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v", err, want)
				}
			}
			var ce *CommandError
			if !errors.As(err, &ce) || ce.Command != tc.cmd {
				t.Errorf("error %v: CommandError %+v, want command %#04x", err, ce, tc.cmd)
			}
			var oe *net.OpError
			wantOp := "dial"
			if tc.bind {
				wantOp = "listen"
			}
			if !errors.As(err, &oe) || oe.Op != wantOp {
				t.Errorf("error %v is not a *net.OpError with Op %q", err, wantOp)
			}
		})
	}
}

func TestConnectRefusedByDestination(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	d := testDialer(startServer(t, &Server{}))
	_, err := d.Dial("tcp", addr)
	if !errors.Is(err, ErrRefused) {
		t.Errorf("got %v, want ErrRefused", err)
	}
}

func TestResolveNotFound(t *testing.T) {
	d := testDialer(startServer(t, &Server{Resolver: testenv.NXDomainResolver(t)}))
	_, err := d.Dial("tcp", "no-such-host.invalid:80")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("got %v, want a not-found *net.DNSError", err)
	}
}

// silentServer returns the address of a UDP socket that never answers.
func silentServer(t *testing.T) string {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func TestTimeout(t *testing.T) {
	d := &Dialer{Server: silentServer(t), Retries: 2, RetryInterval: 10 * time.Millisecond}
	_, err := d.Dial("tcp", "127.0.0.1:80")
	var ne net.Error
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("got %v, want ErrTimeout with Timeout() true", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "proxyconnect" {
		t.Errorf("got %v, want Op proxyconnect", err)
	}
}

func TestContextCancel(t *testing.T) {
	d := &Dialer{Server: silentServer(t), Retries: 100, RetryInterval: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := d.DialContext(ctx, "tcp", "127.0.0.1:80")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	// Without cancellation the dial would wait for 100 retransmissions of up to 8s.
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("DialContext returned after %v", el)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.Listen(ctx, "tcp", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Listen: got %v, want context.DeadlineExceeded", err)
	}
}

func TestKeepAlive(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	rec := &recorder{}
	d := testDialer(startServer(t, &Server{observe: rec.observe}))
	d.KeepAlive = 30 * time.Millisecond
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 keepalives", func() bool { return rec.count(CmdHello) >= 2+3 })
	c.Close()
	waitFor(t, "SESSIONEND", func() bool { return rec.count(CmdSessionEnd) == 1 })
	n := rec.count(CmdHello)
	time.Sleep(100 * time.Millisecond)
	if rec.count(CmdHello) != n {
		t.Error("keepalives continue after Close")
	}
}

func TestServerIDChange(t *testing.T) {
	// A fake server that answers packet 1 properly and packet 2 with another server id.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, MaxPacketLen)
		for i := 0; ; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			h, _ := DecodeHeader(buf[:n])
			var m Message = &HelloAck{Header: Header{ServerID: [4]byte{1, 2, 3, 4}, Ack: h.Seq, Command: CmdHelloAck}}
			if h.ServerID != ([4]byte{}) {
				m = &Plain{Header{ServerID: [4]byte{4, 3, 2, 1}, Seq: 1, Command: CmdUserInfoAck}}
			}
			b, _ := m.Append(nil)
			pc.WriteTo(b, from)
		}
	}()
	d := testDialer(pc.LocalAddr().String())
	if _, err := d.Dial("tcp", "127.0.0.1:80"); !errors.Is(err, ErrProtocol) {
		t.Errorf("got %v, want ErrProtocol", err)
	}
}

func TestUnsupported(t *testing.T) {
	d := testDialer("127.0.0.1:1")
	for _, tc := range []struct{ network, addr string }{{"udp", "127.0.0.1:53"}, {"tcp6", "[::1]:80"}} {
		if _, err := d.Dial(tc.network, tc.addr); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s %s: got %v", tc.network, tc.addr, err)
		}
	}
	if _, err := d.Listen(context.Background(), "tcp", "[::1]:0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Listen on IPv6: got %v", err)
	}
	s := &Server{}
	startServer(t, s)
	// IPv6 destination over a working session.
	d = testDialer(startServer(t, &Server{}))
	if _, err := d.Dial("tcp", "[::1]:80"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("IPv6 destination: got %v", err)
	}
	_ = netip.Addr{}
}

func TestServerCloseEndsRelays(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer ln.Close()
	arrived := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
				close(arrived)
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	s := &Server{}
	d := testDialer(startServer(t, s))
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Close only once the relay runs: Dial returns when the kernel has
	// completed the data connection, and a Close before the server has
	// accepted it would reset it from the listener's queue instead.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the byte never reached the target")
	}
	s.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after Server.Close: %v, want EOF", err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(pc); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}
