package msproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/virgilproxy/socks/msproxy"
)

// ExampleDialer connects through an MS Proxy v2 server (here a Server on loopback) to a TCP
// service that greets its clients.
func ExampleDialer() {
	// A destination that says hello.
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello through the proxy")
			c.Close()
		}
	}()

	// The proxy's control port.
	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	srv := &msproxy.Server{}
	go srv.Serve(pc)
	defer srv.Close()

	d := &msproxy.Dialer{Server: pc.LocalAddr().String(), User: "alice"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close() // sends SESSIONEND
	b, _ := io.ReadAll(c)
	fmt.Println(string(b))
	// Output: hello through the proxy
}

// ExampleServer runs an MS Proxy v2 server whose outbound connections go through another
// dialer, such as a SOCKS client, so that old MS Proxy clients keep working.
func ExampleServer() {
	srv := &msproxy.Server{
		Dialer:         &net.Dialer{Timeout: 10 * time.Second}, // any proxy.ContextDialer
		ConnectTimeout: 15 * time.Second,
	}
	go srv.ListenAndServe("127.0.0.1:0") // ":1745" in production
	srv.Close()
	fmt.Println("closed")
	// Output: closed
}
