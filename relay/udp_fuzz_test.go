package relay

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virgilproxy/socks/socks5"
)

// fuzzSinkPort in a fuzzed datagram's destination stands for the sink's
// real (random) port, so that seeds can reach it.
const fuzzSinkPort = 9

// FuzzAssociateDatagram feeds arbitrary bytes, as three client datagrams
// from the client's own address, to a running association, followed by a
// well-formed marker datagram. Datagrams may only go to a local sink (Allow
// refuses everything else; the names "sink" and "localhost" resolve to it,
// others fail). It checks that nothing panics, that every datagram is
// accounted for exactly once, that the sink got exactly the datagrams and
// bytes the result reports, and that a datagram reassembled from fragments
// carries their concatenated payloads.
func FuzzAssociateDatagram(f *testing.F) {
	seed := func(frag byte, a socks5.Addr, data string) []byte {
		b, err := socks5.AppendDatagram(nil, socks5.Datagram{Frag: frag, Addr: a, Data: []byte(data)})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	sink := socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: fuzzSinkPort}
	name := socks5.Addr{Name: "sink", Port: fuzzSinkPort}
	f.Add(seed(0, sink, "hello"), []byte{}, []byte{})
	f.Add(seed(1, sink, "ab"), seed(2, name, "cd"), seed(0x83, sink, "ef"))
	f.Add(seed(1, name, "ab"), seed(3, sink, "cd"), seed(0x82, sink, "ef"))
	f.Add(seed(0, socks5.Addr{Name: "nx.invalid", Port: fuzzSinkPort}, "x"), seed(0, sink, ""), []byte{0, 0, 0, 4})
	f.Add([]byte{0, 0, 0, 1, 127, 0}, []byte{0, 0, 0x80, 1, 127, 0, 0, 1, 0, 9}, []byte{0, 0, 0x81, 3, 4, 's', 'i', 'n', 'k', 0, 9, 'z'})

	sinkConn := udpListen(f, "udp4", "127.0.0.1:0")
	sinkAddr := udpAddrOf(sinkConn)
	var sinkPackets, sinkBytes atomic.Int64
	var lastPayload atomic.Value // string
	marker := []byte("\xffmarker\xff")
	markerSeen := make(chan struct{}, 1)
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		buf := make([]byte, 65536)
		for {
			n, _, err := sinkConn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == string(marker) {
				markerSeen <- struct{}{}
				continue
			}
			sinkPackets.Add(1)
			sinkBytes.Add(int64(n))
			lastPayload.Store(string(buf[:n]))
		}
	}()
	f.Cleanup(func() { sinkConn.Close(); <-sinkDone })

	opt := UDPOptions{
		Allow: func(outbound bool, peer netip.AddrPort, _ string) bool {
			return peer == sinkAddr
		},
		Resolve: func(ctx context.Context, host string) (netip.Addr, error) {
			if host == "sink" || host == "localhost" {
				return sinkAddr.Addr(), nil
			}
			return netip.Addr{}, errors.New("unknown host")
		},
	}
	markerDG, err := socks5.AppendDatagram(nil, socks5.Datagram{Addr: addrOf(sinkAddr), Data: marker})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, d1, d2, d3 []byte) {
		sinkPackets.Store(0)
		sinkBytes.Store(0)
		lastPayload.Store("")
		ta := startAssoc(t, v4Config, opt)
		var frags []byte // payloads of a well-formed in-order sequence, if the inputs are one
		wantSequence := true
		for i, b := range [][]byte{d1, d2, d3} {
			b = append([]byte(nil), b...)
			if dg, err := socks5.ParseDatagram(b); err == nil {
				if dg.Addr.Port == fuzzSinkPort {
					hl := len(b) - len(dg.Data)
					b[hl-2], b[hl-1] = byte(sinkAddr.Port()>>8), byte(sinkAddr.Port())
				}
				if dg.Frag&0x7f != byte(i+1) || (i == 2) != (dg.Frag&0x80 != 0) || dg.Addr.Port == 0 ||
					len(b) > udpMaxPayload-28 {
					wantSequence = false
				}
				frags = append(frags, dg.Data...)
			} else {
				wantSequence = false
			}
			if len(b) > udpMaxPayload-28 {
				b = b[:udpMaxPayload-28]
			}
			ta.sendRaw(t, nil, b)
		}
		ta.sendRaw(t, nil, markerDG)
		select {
		case <-markerSeen:
		case <-time.After(udpWait):
			t.Fatal("the marker datagram did not arrive")
		}
		out := ta.stop(t)
		if out.err != nil {
			t.Fatalf("Associate: %v", out.err)
		}
		r := out.res
		checkUDPInvariant(t, r)
		if r.ClientDatagrams != 4 || r.PeerDatagrams != 0 {
			t.Errorf("ClientDatagrams %d PeerDatagrams %d, want 4 and 0", r.ClientDatagrams, r.PeerDatagrams)
		}
		// The marker is counted too.
		if got := sinkPackets.Load() + 1; got != r.FromClientPackets {
			t.Errorf("sink got %d datagrams, result says %d", got, r.FromClientPackets)
		}
		if got := sinkBytes.Load() + int64(len(marker)); got != r.FromClientBytes {
			t.Errorf("sink got %d bytes, result says %d", got, r.FromClientBytes)
		}
		if r.ToClientPackets != 0 || r.ToClientBytes != 0 || r.DroppedForeign != 0 || r.DroppedUnknownClient != 0 {
			t.Errorf("unexpected counts %+v", r)
		}
		if r.Reassembled > r.FragmentsJoined || r.FragmentsJoined > 3 {
			t.Errorf("Reassembled %d FragmentsJoined %d from 3 datagrams", r.Reassembled, r.FragmentsJoined)
		}
		if wantSequence && r.FragmentsJoined != 3 {
			t.Errorf("an in-order sequence 1, 2, 0x83 was not reassembled: %+v", r)
		}
		if r.FragmentsJoined == 3 && r.FromClientPackets == 2 {
			if got := lastPayload.Load().(string); got != string(frags) {
				t.Errorf("reassembled %q, want %q", got, frags)
			}
		}
	})
}
