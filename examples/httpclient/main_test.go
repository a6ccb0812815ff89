package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/virgilproxy/socks"
)

func TestFetchThroughEachProtocol(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fetched")
	}))
	defer hs.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &socks.Server{HTTPConnect: true, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(l)
	defer srv.Close()
	for _, scheme := range []string{"socks4", "socks4a", "socks5", "socks5h", "http"} {
		var out bytes.Buffer
		if err := fetch(scheme+"://"+l.Addr().String(), hs.URL, 10e9, &out); err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if out.String() != "fetched" {
			t.Fatalf("%s: got %q", scheme, out.String())
		}
	}
}
