// Command gofloor is the smallest SOCKS5 proxy a Go programmer would write
// on package net, kept as a yardstick for bench/compare.sh (TARGETS=gofloor),
// not as a proxy to deploy.
//
// It answers SOCKS5 CONNECT without authentication and relays with one
// io.Copy per direction (which splices on Linux), a half-close after each,
// and nothing else: no policy, no logging, no accounting, no timeouts, no
// idle parking (an idle session holds two goroutines and, once it has moved
// data, Go's splice pipes). What Virgil's daemon costs per connection above
// this program is the price of its features; what this program costs above
// a C proxy such as microsocks is the price of the Go runtime and package
// net, which no Go proxy on net.Conn avoids.
//
// Usage:
//
//	gofloor -listen 127.0.0.1:1080
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/netip"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:1080", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(serve(ln))
}

// serve accepts connections on ln until it is closed, one goroutine each.
// Other accept errors, such as running out of descriptors while idle
// sessions hold their splice pipes, are logged and retried after a pause.
func serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go handle(c.(*net.TCPConn))
	}
}

// SOCKS5 reply codes used here (RFC 1928, section 6).
const (
	replySucceeded      = 0
	replyGeneralFailure = 1
	replyCommandNotSupp = 7
	replyAddrNotSupp    = 8
)

// handle runs one session: greeting, CONNECT request, reply, relay.
func handle(c *net.TCPConn) {
	defer c.Close()
	var b [4 + 1 + 255 + 2]byte
	// Greeting: version, method count, methods; only "no authentication".
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 {
		refuse(c, "not a SOCKS5 greeting", err)
		return
	}
	if _, err := io.ReadFull(c, b[:b[1]]); err != nil {
		refuse(c, "short greeting", err)
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	// Request: version, command, reserved, address type, address, port.
	if _, err := io.ReadFull(c, b[:4]); err != nil || b[0] != 5 {
		refuse(c, "not a SOCKS5 request", err)
		return
	}
	if b[1] != 1 {
		reply(c, replyCommandNotSupp)
		refuse(c, "command "+strconv.Itoa(int(b[1]))+" not supported", nil)
		return
	}
	var host string
	switch b[3] {
	case 1, 4:
		n := 4
		if b[3] == 4 {
			n = 16
		}
		if _, err := io.ReadFull(c, b[:n]); err != nil {
			return
		}
		ip, _ := netip.AddrFromSlice(b[:n])
		host = ip.String()
	case 3:
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return
		}
		n := int(b[0])
		if _, err := io.ReadFull(c, b[:n]); err != nil {
			return
		}
		host = string(b[:n])
	default:
		reply(c, replyAddrNotSupp)
		refuse(c, "address type "+strconv.Itoa(int(b[3]))+" not supported", nil)
		return
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return
	}
	port := binary.BigEndian.Uint16(b[:2])
	t, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		reply(c, replyGeneralFailure)
		refuse(c, "connect failed", err)
		return
	}
	defer t.Close()
	if reply(c, replySucceeded) != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(t, c)
		t.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, t)
	c.CloseWrite()
	<-done
}

// refuse logs why a session ends before its relay; the caller closes it.
func refuse(c net.Conn, why string, err error) {
	if err != nil {
		why += ": " + err.Error()
	}
	log.Printf("%s: %s", c.RemoteAddr(), why)
}

// reply sends a reply with an all-zero IPv4 bound address.
func reply(c net.Conn, code byte) error {
	_, err := c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
	return err
}
