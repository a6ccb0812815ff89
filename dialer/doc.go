// Package dialer builds outbound paths out of socks.Dialer values: proxy
// URLs ([FromURL], registered with golang.org/x/net/proxy), chains of
// proxies ([Chain]), and Dante-style route tables ([Table], read from a
// socks.conf or sockd.conf by [ParseRoutes]).
//
// # URLs and x/net/proxy
//
// FromURL understands socks4://, socks4a://, socks5:// (this side
// resolves names), socks5h:// (names go to the proxy), http:// and
// https:// (HTTP CONNECT, over TLS to the proxy for https). Importing the
// package registers socks4, socks4a, http and https with
// proxy.RegisterDialerType, so proxy.FromURL and proxy.FromEnvironment
// (ALL_PROXY=socks4a://host:1080) use them. socks5 and socks5h are not
// registered: golang.org/x/net/proxy's FromURL (v0.62.0, proxy/proxy.go)
// handles those two schemes itself, with its own SOCKS5 client, before it
// consults registered types, so a registration would never be used. Call
// this package's FromURL directly for a *socks.Dialer behind a socks5 URL.
// Note also that proxy.FromEnvironment reads ALL_PROXY and NO_PROXY only
// once per process.
//
// # Route tables
//
// A [Table] is an ordered list of [Route]s in Dante's model: the first
// route that matches the request (destination address and port, and
// optionally the client's address and user name) and whose proxy answers
// carries the connection. A route whose proxy cannot be reached
// Table.MaxFail times in a row is marked bad for Table.BadExpire and
// skipped while better routes exist. Unlike Dante, a route can match on the
// user the client authenticated as (through socks.RequestFromContext), so
// that a socks.Server whose Dialer is a Table sends each user's traffic to
// that user's upstream.
package dialer
