// Command httpclient fetches a URL with an http.Client whose Transport
// dials through a socks.Dialer: SOCKS4, SOCKS4a, SOCKS5, HTTP CONNECT or
// MS Proxy v2, named by a proxy URL.
//
// Usage:
//
//	httpclient -proxy socks5h://127.0.0.1:1080 https://example.com/
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/virgilproxy/socks/dialer"
)

func main() {
	proxyURL := flag.String("proxy", "socks5h://127.0.0.1:1080", "proxy URL: socks4, socks4a, socks5, socks5h, http, https or msproxy")
	timeout := flag.Duration("timeout", 30*time.Second, "time limit for the whole request")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: httpclient [-proxy URL] URL")
		os.Exit(2)
	}
	if err := fetch(*proxyURL, flag.Arg(0), *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

func fetch(proxyURL, target string, timeout time.Duration, out io.Writer) error {
	u, err := url.Parse(proxyURL)
	if err != nil {
		return err
	}
	d, err := dialer.DialerFromURL(u, nil)
	if err != nil {
		return err
	}
	client := &http.Client{
		// Every connection, plain or TLS, goes through the proxy; TLS runs
		// end to end inside the tunnel.
		Transport: &http.Transport{DialContext: d.DialContext},
		Timeout:   timeout,
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", target, resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
