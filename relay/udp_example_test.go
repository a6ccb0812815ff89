package relay_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/virgilproxy/socks/relay"
	"github.com/virgilproxy/socks/socks5"
)

// ExampleAssociate runs one UDP association on loopback: after the
// (omitted) SOCKS5 handshake on the control connection, the server hands
// the two UDP sockets to Associate, which relays until the client closes
// the control connection.
func ExampleAssociate() {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	echo, _ := net.ListenUDP("udp4", lo) // a peer that echoes
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		n, from, err := echo.ReadFromUDPAddrPort(buf)
		if err == nil {
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	control, _ := net.Dial("tcp", ln.Addr().String()) // the client's end
	serverControl, _ := ln.Accept()
	defer serverControl.Close()

	clientSide, _ := net.ListenUDP("udp4", lo) // its address goes in the reply
	defer clientSide.Close()
	remoteSide, _ := net.ListenUDP("udp4", lo)
	defer remoteSide.Close()
	client, _ := net.ListenUDP("udp4", lo)
	defer client.Close()

	done := make(chan error, 1)
	go func() {
		res, err := relay.Associate(context.Background(), serverControl, clientSide, remoteSide, relay.UDPOptions{
			// The control connection's IP; port 0: learned from the first datagram.
			Client: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0),
		})
		fmt.Printf("relayed %d datagram(s) each way, err %v\n", res.FromClientPackets, err)
		done <- err
	}()

	peer := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	msg, _ := socks5.AppendDatagram(nil, socks5.Datagram{Addr: socks5.AddrFromAddrPort(peer), Data: []byte("ping")})
	client.WriteToUDPAddrPort(msg, clientSide.LocalAddr().(*net.UDPAddr).AddrPort())

	buf := make([]byte, 2048)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, _ := socks5.ParseDatagram(buf[:n])
	fmt.Printf("%q from the echo peer: %v\n", reply.Data, reply.Addr.AddrPort() == peer)

	control.Close() // the association ends with its control connection
	<-done
	// Output:
	// "ping" from the echo peer: true
	// relayed 1 datagram(s) each way, err <nil>
}
