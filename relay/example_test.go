package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/virgilproxy/socks/relay"
)

// A minimal proxy: accept a client, dial the target, and relay. Pipe closes
// neither connection, so the handler closes both.
func ExamplePipe() {
	// The target uppercases whatever it receives until EOF, then closes.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
	}()

	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer proxy.Close()
	results := make(chan relay.Result, 1)
	go func() {
		client, err := proxy.Accept()
		if err != nil {
			return
		}
		defer client.Close()
		up, err := net.Dial("tcp", target.Addr().String())
		if err != nil {
			return
		}
		defer up.Close()
		res, err := relay.Pipe(context.Background(), client, up, relay.Options{IdleTimeout: time.Minute})
		if err != nil {
			fmt.Println("relay:", err)
		}
		results <- res
	}()

	c, err := net.Dial("tcp", proxy.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Write([]byte("hello, virgil"))
	c.(*net.TCPConn).CloseWrite() // half-close: the target sees EOF, we can still read
	reply, _ := io.ReadAll(c)
	res := <-results
	fmt.Printf("%s\n%d bytes up, %d bytes down\n", reply, res.ClientToTarget, res.TargetToClient)
	// Output:
	// HELLO, VIRGIL
	// 13 bytes up, 13 bytes down
}

// Splice-path pipes are pooled process-wide; an idle relay holds none.
func ExampleReadPoolStats() {
	st := relay.ReadPoolStats()
	fmt.Println(st.InUse, st.Idle <= relay.MaxIdlePipes)
	// Output: 0 true
}
