package httpconnect_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/virgilproxy/socks/httpconnect"
)

// A server reads a CONNECT request, checks the credentials it carries (the
// check itself belongs to an authenticator, not to this package), answers,
// and keeps the bytes the client sent early for the tunnel.
func ExampleReadRequest() {
	conn := strings.NewReader("CONNECT example.com:443 HTTP/1.1\r\n" +
		"Host: example.com:443\r\n" +
		"Proxy-Authorization: Basic YWxpY2U6cDpzcw==\r\n" +
		"User-Agent: curl/8.0\r\n" +
		"\r\n" +
		"HELLO")
	br := bufio.NewReader(conn)

	req, err := httpconnect.ReadRequest(br, httpconnect.DefaultMaxHeaderBytes)
	var se *httpconnect.StatusError
	switch {
	case errors.As(err, &se):
		fmt.Printf("%q\n", httpconnect.AppendResponse(nil, se.Status))
		return
	case err != nil:
		fmt.Println("I/O error:", err)
		return
	}
	fmt.Println(req.Host, req.Port, req.UserAgent)
	fmt.Println(req.HasCredentials, req.Username, req.Password)

	var answer []byte
	if !req.HasCredentials || req.Username != "alice" || req.Password != "p:ss" {
		answer = httpconnect.AppendResponse(nil, 407, httpconnect.ProxyAuthenticate("virgil"))
	} else {
		answer = httpconnect.AppendResponse(nil, 200)
	}
	fmt.Printf("%q\n", answer)

	early, _ := io.ReadAll(br) // the start of the tunnel, still buffered
	fmt.Printf("%s\n", early)
	// Output:
	// example.com 443 curl/8.0
	// true alice p:ss
	// "HTTP/1.1 200 OK\r\n\r\n"
	// HELLO
}

// A client asks an HTTP proxy for a tunnel and reads its answer.
func ExampleReadResponse() {
	req := httpconnect.AppendRequest(nil, "[2001:db8::1]:22", "alice", "p:ss", true,
		httpconnect.Header{Name: "User-Agent", Value: "virgil"})
	fmt.Printf("%q\n", req)

	proxy := bufio.NewReader(strings.NewReader("HTTP/1.1 407 Proxy Authentication Required\r\n" +
		"Proxy-Authenticate: Basic realm=\"corp\"\r\n" +
		"Content-Length: 0\r\n\r\n"))
	resp, err := httpconnect.ReadResponse(proxy, 0)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(resp.Status, resp.Reason, resp.Get("proxy-authenticate"))
	// Output:
	// "CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\nProxy-Authorization: Basic YWxpY2U6cDpzcw==\r\nUser-Agent: virgil\r\n\r\n"
	// 407 Proxy Authentication Required Basic realm="corp"
}
