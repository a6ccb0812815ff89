package socks

import (
	"context"
	"net"
	"net/netip"

	"github.com/virgilproxy/socks/relay"
)

// serveAssociate serves SOCKS5 UDP ASSOCIATE: one UDP socket faces the
// client (on the address the client reached us on, so it works on
// multi-homed hosts), one faces the peers; datagrams move between them
// until the control connection closes or the association idles out.
//
// Datagrams are accepted only from the control connection's IP. The port
// is the one the client declared, when it declared its own IP (or none);
// a client behind NAT declares an address that is not the one we see, so
// then the port is learned from its first datagram.
func (s *Server) serveAssociate(ctx context.Context, w ReplyWriter, r *Request) error {
	lc := s.listenConfig()
	clientSide, err := lc.ListenPacket(ctx, "udp", netip.AddrPortFrom(localIP(r.Local), 0).String())
	if err != nil {
		return &ReplyError{Code: ReplyCodeFor(err), Err: err}
	}
	defer clientSide.Close()
	remoteSide, err := lc.ListenPacket(ctx, "udp", ":0")
	if err != nil {
		return &ReplyError{Code: ReplyCodeFor(err), Err: err}
	}
	defer remoteSide.Close()

	clientAP, _ := addrPortOf(r.Client)
	clientIP := clientAP.Addr().Unmap()
	var port uint16
	if declared := r.Dest.IP; r.Dest.Name == "" && (!declared.IsValid() || declared.IsUnspecified() || declared == clientIP) {
		port = r.Dest.Port
	}
	if err := w.Reply(ReplySucceeded, clientSide.LocalAddr()); err != nil {
		return err
	}
	opt := relay.UDPOptions{
		Client:      netip.AddrPortFrom(clientIP, port),
		IdleTimeout: s.UDPIdleTimeout,
		Resolve:     s.resolveUDP,
		BusyPoll:    s.UDPBusyPoll,
	}
	if f := r.PeerFilter; f != nil {
		opt.Allow = func(outbound bool, peer netip.AddrPort, name string) bool {
			dir, a := Inbound, AddrFromAddrPort(peer)
			if outbound {
				dir = Outbound
				if name != "" {
					a = Addr{Name: name, Port: peer.Port()}
				}
			}
			return f(dir, a)
		}
	}
	res, err := relay.Associate(ctx, w.Conn(), clientSide.(*net.UDPConn), remoteSide.(*net.UDPConn), opt)
	r.Traffic.FromClient.Add(res.FromClientBytes)
	r.Traffic.ToClient.Add(res.ToClientBytes)
	if d := res.Dropped(); d > 0 {
		s.logger().Info("udp association dropped datagrams", "client", addrString(r.Client), "dropped", d,
			"foreign", res.DroppedForeign, "malformed", res.DroppedMalformed, "fragment", res.DroppedFragment,
			"policy", res.DroppedPolicy, "resolve", res.DroppedResolve)
	}
	return err
}

// resolveUDP resolves a datagram's destination name with the resolver of
// Server.Dialer when it is a *net.Dialer, else the default resolver.
func (s *Server) resolveUDP(ctx context.Context, host string) (netip.Addr, error) {
	r := net.DefaultResolver
	if nd, ok := s.Dialer.(*net.Dialer); ok && nd.Resolver != nil {
		r = nd.Resolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return ips[0], nil
}
