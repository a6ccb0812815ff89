package socks_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
)

// A server on a loopback port, used through x/net/proxy's SOCKS5 client to
// reach a local service.
func Example() {
	// A local service to reach through the proxy.
	svc, _ := net.Listen("tcp", "127.0.0.1:0")
	defer svc.Close()
	go func() {
		c, err := svc.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hello from the service\n")
		c.Close()
	}()

	// The proxy: the zero value serves SOCKS4, SOCKS4a and SOCKS5.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(l)
	defer srv.Close()

	d, _ := proxy.SOCKS5("tcp", l.Addr().String(), nil, proxy.Direct)
	c, err := d.Dial("tcp", svc.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Print(string(msg))
	// Output: hello from the service
}
