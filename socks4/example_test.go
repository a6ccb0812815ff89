package socks4_test

import (
	"bufio"
	"fmt"
	"net/netip"
	"strings"

	"github.com/virgilproxy/socks/socks4"
)

// A server reads a SOCKS4a request and answers it.
func ExampleReadRequest() {
	// What a client sends: CONNECT to example.com:443 as user "alice",
	// then the first bytes of the tunnelled stream.
	conn := strings.NewReader("\x04\x01\x01\xbb\x00\x00\x00\x01alice\x00example.com\x00\x16\x03\x01")
	br := bufio.NewReader(conn)

	req, err := socks4.ReadRequest(br)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(req.Command, req.Host, req.Port, req.UserID, req.IsSOCKS4a())
	fmt.Println("still buffered for the tunnel:", br.Buffered())

	// After dialing, the server grants the request with the bound address.
	reply := socks4.AppendReply(nil, socks4.ReplyGranted, netip.MustParseAddrPort("192.0.2.1:40000"))
	fmt.Printf("% x\n", reply)
	// Output:
	// CONNECT example.com 443 alice true
	// still buffered for the tunnel: 3
	// 00 5a 9c 40 c0 00 02 01
}

// A client writes a request and reads the reply.
func ExampleAppendRequest() {
	req := socks4.Request{Command: socks4.CommandConnect, Port: 80, IP: netip.MustParseAddr("198.51.100.7"), UserID: "bob"}
	b, err := socks4.AppendRequest(nil, req)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("% x\n", b)

	rep, err := socks4.ReadReply(bufio.NewReader(strings.NewReader("\x00\x5b\x00\x00\x00\x00\x00\x00")))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(rep.Code == socks4.ReplyGranted, rep.Code)
	// Output:
	// 04 01 00 50 c6 33 64 07 62 6f 62 00
	// false request rejected or failed
}
