package socks5_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"

	"github.com/virgilproxy/socks/socks5"
)

// A server reads a client's request and answers it.
func ExampleReadRequest() {
	// CONNECT example.com:443, as a client sends it.
	br := bufio.NewReader(bytes.NewReader([]byte("\x05\x01\x00\x03\x0bexample.com\x01\xbb")))
	req, err := socks5.ReadRequest(br)
	if code, reply := socks5.ReplyFor(err); reply {
		fmt.Printf("% x\n", socks5.AppendReply(nil, code, socks5.Addr{}))
		return
	} else if err != nil {
		fmt.Println("close:", err)
		return
	}
	fmt.Println(req.Command, req.Addr)

	// ... policy, then dial ...
	local := netip.MustParseAddrPort("[::ffff:192.0.2.1]:40000") // as a dual-stack socket reports it
	fmt.Printf("% x\n", socks5.AppendReply(nil, socks5.ReplySucceeded, socks5.AddrFromAddrPort(local)))
	// Output:
	// connect example.com:443
	// 05 00 00 01 c0 00 02 01 9c 40
}

// An unknown command gets reply 7, as RFC 1928 says.
func ExampleReplyFor() {
	br := bufio.NewReader(bytes.NewReader([]byte("\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50")))
	req, err := socks5.ReadRequest(br)
	code, reply := socks5.ReplyFor(err)
	fmt.Println(req.Command, "|", err)
	fmt.Println(code, reply)
	fmt.Printf("% x\n", socks5.AppendReply(nil, code, socks5.Addr{}))
	// Output:
	// command(0x09) | socks5: command not supported: 0x09
	// command not supported true
	// 05 07 00 01 00 00 00 00 00 00
}

// A UDP relay prepends a header to a payload it sends to the client, and
// parses the header of what the client sends.
func ExampleAppendDatagramHeader() {
	src := socks5.AddrFromAddrPort(netip.MustParseAddrPort("192.0.2.53:53"))
	pkt, err := socks5.AppendDatagramHeader(make([]byte, 0, socks5.MaxDatagramHeaderLen+512), 0, src)
	if err != nil {
		panic(err)
	}
	pkt = append(pkt, "answer"...)
	fmt.Printf("% x\n", pkt)

	d, err := socks5.ParseDatagram(pkt)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Frag, d.Addr, string(d.Data))
	// Output:
	// 00 00 00 01 c0 00 02 35 00 35 61 6e 73 77 65 72
	// 0 192.0.2.53:53 answer
}

// A server reads the greeting and chooses a method.
func ExampleReadGreeting() {
	br := bufio.NewReader(bytes.NewReader([]byte{0x05, 0x02, 0x00, 0x02}))
	offered, err := socks5.ReadGreeting(br)
	if err != nil {
		panic(err)
	}
	choice := socks5.MethodNoAcceptable
	if offered.Has(socks5.MethodUsernamePassword) {
		choice = socks5.MethodUsernamePassword
	}
	fmt.Println(offered, "->", choice)
	fmt.Printf("% x\n", socks5.AppendMethodSelection(nil, choice))
	// Output:
	// [none username] -> username
	// 05 02
}

// The client side of a handshake: the bytes a client writes, and how it
// reads the server's reply.
func ExampleAppendRequest() {
	var out []byte
	out, _ = socks5.AppendGreeting(out, socks5.MethodNoAuth)
	dest, err := socks5.ParseAddr("example.com:80")
	if err != nil {
		panic(err)
	}
	out, err = socks5.AppendRequest(out, socks5.Request{Command: socks5.CommandConnect, Addr: dest})
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", out)

	in := bufio.NewReader(bytes.NewReader([]byte("\x05\x00\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")))
	m, _ := socks5.ReadMethodSelection(in)
	rep, err := socks5.ReadReply(in)
	fmt.Println(m, rep.Code, rep.Addr, err)
	// Output:
	// 05 01 00 05 01 00 03 0b 65 78 61 6d 70 6c 65 2e 63 6f 6d 00 50
	// none host unreachable 0.0.0.0:0 <nil>
}
