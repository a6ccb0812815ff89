// Command chain is a SOCKS server that sends its outbound connections
// through an upstream proxy: server chaining. Host names travel upstream
// unresolved when the upstream protocol can carry them (SOCKS5 with
// socks5h://, SOCKS4a, HTTP CONNECT), unlike Dante, which resolves them
// first.
//
// Usage:
//
//	chain -listen 127.0.0.1:1081 -upstream socks5h://127.0.0.1:1080
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/dialer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1081", "address to serve SOCKS4/4a/5 and HTTP CONNECT on")
	upstream := flag.String("upstream", "socks5h://127.0.0.1:1080", "upstream proxy URL")
	flag.Parse()
	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "chain:", err)
		os.Exit(1)
	}
}

func run(listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	up, err := dialer.DialerFromURL(u, nil)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &socks.Server{Dialer: up, HTTPConnect: true, Logger: logger}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	logger.Info("chaining", "listen", l.Addr().String(), "upstream", u.Redacted())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		return nil
	}
}
