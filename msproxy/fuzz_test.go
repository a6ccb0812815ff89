package msproxy

import (
	"reflect"
	"testing"
)

// seedPackets returns the encoded sample messages as fuzz seeds.
func seedPackets(f *testing.F) {
	f.Helper()
	for _, tc := range sampleMessages() {
		b, err := tc.m.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, MinPacketLen))
	f.Add([]byte{})
}

// fuzzDecoder checks that dec never panics, accepts only sizes the protocol allows, and that
// whatever it decodes re-encodes and decodes to the same value.
func fuzzDecoder[T comparable, P interface {
	*T
	Message
}](f *testing.F, dec func([]byte) (T, error)) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dec(b)
		if err != nil {
			return
		}
		if len(b) < MinPacketLen || len(b) > MaxPacketLen {
			t.Fatalf("decoded a %d-byte packet", len(b))
		}
		enc, err := P(&m).Append(nil)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		if len(enc) < MinPacketLen || len(enc) > MaxPacketLen {
			t.Fatalf("re-encoded to %d bytes", len(enc))
		}
		m2, err := dec(enc)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if m != m2 {
			t.Fatalf("round trip:\n%+v\n%+v", m, m2)
		}
	})
}

func FuzzDecodePlain(f *testing.F)       { fuzzDecoder(f, DecodePlain) }
func FuzzDecodeHello(f *testing.F)       { fuzzDecoder(f, DecodeHello) }
func FuzzDecodeHelloAck(f *testing.F)    { fuzzDecoder(f, DecodeHelloAck) }
func FuzzDecodeResolve(f *testing.F)     { fuzzDecoder(f, DecodeResolve) }
func FuzzDecodeResolveAck(f *testing.F)  { fuzzDecoder(f, DecodeResolveAck) }
func FuzzDecodeConnect(f *testing.F)     { fuzzDecoder(f, DecodeConnect) }
func FuzzDecodeConnectAck(f *testing.F)  { fuzzDecoder(f, DecodeConnectAck) }
func FuzzDecodeBind(f *testing.F)        { fuzzDecoder(f, DecodeBind) }
func FuzzDecodeBindAck(f *testing.F)     { fuzzDecoder(f, DecodeBindAck) }
func FuzzDecodeBind2(f *testing.F)       { fuzzDecoder(f, DecodeBind2) }
func FuzzDecodeBindInfoAck(f *testing.F) { fuzzDecoder(f, DecodeBindInfoAck) }

func FuzzDecodeHeader(f *testing.F) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			if len(b) >= HeaderLen {
				t.Fatalf("%d bytes rejected: %v", len(b), err)
			}
			return
		}
		p := Plain{h}
		enc, _ := p.Append(nil)
		h2, err := DecodeHeader(enc)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v %+v %v", h, h2, err)
		}
	})
}

func fuzzDispatch(f *testing.F, dec func([]byte) (Message, error)) {
	seedPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dec(b)
		if err != nil {
			if m != nil {
				t.Fatal("message and error")
			}
			return
		}
		h, _ := DecodeHeader(b)
		if *m.Hdr() != h {
			t.Fatalf("header %+v, DecodeHeader %+v", *m.Hdr(), h)
		}
		enc, err := m.Append(nil)
		if err != nil {
			t.Fatalf("%T does not re-encode: %v", m, err)
		}
		m2, err := dec(enc)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n%#v\n%#v", m, m2)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) { fuzzDispatch(f, DecodeRequest) }
func FuzzDecodeReply(f *testing.F)   { fuzzDispatch(f, DecodeReply) }
