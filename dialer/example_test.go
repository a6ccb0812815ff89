package dialer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/dialer"
)

// exampleProxy starts a socks.Server on loopback that prints each request;
// stop ends it.
func exampleProxy(name string, httpConnect bool) (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &socks.Server{
		Logger:      slog.New(slog.DiscardHandler),
		HTTPConnect: httpConnect,
		Middleware: []socks.Middleware{func(next socks.Handler) socks.Handler {
			return socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
				fmt.Printf("%s: %s request\n", name, r.Protocol)
				return next.ServeSOCKS(ctx, w, r)
			})
		}},
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	return l.Addr().String(), func() { srv.Close(); <-done }
}

// exampleService starts a loopback service that greets each connection.
func exampleService() (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello\n")
			c.Close()
		}
	}()
	return l.Addr().String(), func() { l.Close(); <-done }
}

func ExampleFromURL() {
	svc, stopSvc := exampleService()
	defer stopSvc()
	p, stop := exampleProxy("proxy", false)
	defer stop()

	// Importing the dialer package registers socks4, socks4a, http and
	// https with x/net/proxy; dialer.FromURL also takes socks5 and socks5h.
	u, _ := url.Parse("socks4a://" + p)
	d, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := d.Dial("tcp", svc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Print(string(msg))
	// Output:
	// proxy: socks_v4 request
	// hello
}

func ExampleChain() {
	svc, stopSvc := exampleService()
	defer stopSvc()
	p1, stop1 := exampleProxy("first", false)
	defer stop1()
	p2, stop2 := exampleProxy("second", true)
	defer stop2()

	d, err := dialer.Chain(
		&socks.Dialer{Protocol: socks.ProtocolSOCKS5, ProxyAddr: p1},
		&socks.Dialer{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: p2},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := d.Dial("tcp", svc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Print(string(msg))
	// Output:
	// first: socks_v5 request
	// second: http request
	// hello
}

func ExampleTable() {
	svc, stopSvc := exampleService()
	defer stopSvc()
	gw, stop := exampleProxy("gateway", false)
	defer stop()

	// Routes in sockd.conf syntax: example.com directly, loopback through
	// the gateway.
	conf := `
route { from: 0/0 to: .example.com via: direct }
route {
	from: 0/0 to: 127.0.0.0/8
	via: 127.0.0.1 port = ` + gw[strings.LastIndex(gw, ":")+1:] + `
	proxyprotocol: socks_v5
	method: none
}
`
	tab, _, err := dialer.ParseRoutes(strings.NewReader(conf), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := tab.Dial("tcp", svc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Print(string(msg))

	_, err = tab.Dial("tcp", "192.0.2.1:80")
	fmt.Println(err)
	// Output:
	// gateway: socks_v5 request
	// hello
	// dialer: no route to 192.0.2.1:80
}
