// Command sockd is Virgil's reference SOCKS daemon: SOCKS4, SOCKS4a, SOCKS5
// and, with -http, HTTP CONNECT on every listener, with optional
// username/password authentication from an htpasswd file of bcrypt hashes.
//
// Usage:
//
//	sockd [-listen ADDR]... [-users FILE] [-http] [-log-format text|json]
//
// With no -listen it listens on 127.0.0.1:1080. It runs in the foreground,
// logs to standard error, reloads the users file on SIGHUP, and shuts down
// gracefully on SIGINT or SIGTERM: it stops accepting, lets running sessions
// finish for up to -grace, then ends the rest.
//
// Unless -low-latency=false, it re-executes itself once at start, keeping
// its process ID, with GODEBUG=schedtrace=2147483647 added to its
// environment, which keeps the Go runtime's monitor thread from costing a
// fifth to a quarter of the CPU per connection under light load; see
// monitor.go. With -busy-poll (off unless set), the runtime polls the
// network instead of sleeping for that long after each accepted
// connection and each small relayed message (socks.Server.BusyPoll).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := runDaemon(os.Args[1:], os.Stderr, true); err != nil {
		fmt.Fprintln(os.Stderr, "sockd:", err)
		os.Exit(1)
	}
}

// run runs the daemon in this process, as the tests do: it never
// re-executes itself, whatever -low-latency says.
func run(args []string, stderr io.Writer) error {
	return runDaemon(args, stderr, false)
}

// runDaemon parses the flags and serves until a signal or a listener
// failure. With mayReexec it may replace the process first (see
// keepMonitorAwake); main passes true.
func runDaemon(args []string, stderr io.Writer, mayReexec bool) error {
	fs := flag.NewFlagSet("sockd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listen listFlag
	fs.Var(&listen, "listen", "address to listen on (repeatable; default "+socks.DefaultAddr+")")
	users := fs.String("users", "", "htpasswd `file` of bcrypt hashes; turns username/password authentication on")
	httpConnect := fs.Bool("http", false, "also serve HTTP CONNECT on the same listeners")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	idle := fs.Duration("idle-timeout", 0, "end a session after this long with no traffic either way (0: never)")
	parkDelay := fs.Duration("park-delay", 0, "silence after which a session direction gives up its goroutine (0: 100ms; negative, e.g. -1ms: at once, least memory)")
	udpBusyPoll := fs.Duration("udp-busy-poll", 0, "keep polling a UDP association's sockets for this long after each datagram instead of sleeping: lower latency, a busy core (0: off)")
	busyPoll := fs.Duration("busy-poll", 0, "keep the Go runtime polling the network instead of sleeping for this long (e.g. 200us) after each accepted connection and each small relayed message (Linux only; 0, the default: off): a quarter lower median latency at low concurrency on a core of its own, for a thread that spins while such traffic lasts; on cores shared with busy processes it takes their CPU and raises tail latency")
	grace := fs.Duration("grace", 10*time.Second, "how long a shutdown waits for running sessions")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof profiles on this loopback `address` (e.g. 127.0.0.1:6060)")
	lowLatency := fs.Bool("low-latency", true, "keep the Go runtime's monitor thread from sleeping between bursts of work (re-executes the daemon once, with GODEBUG=schedtrace set): a fifth to a quarter less CPU per connection and lower latency at low concurrency, for about 100 wake-ups a second while idle")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if len(listen) == 0 {
		listen = listFlag{socks.DefaultAddr}
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch *logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	default:
		return fmt.Errorf("-log-format must be text or json, not %q", *logFormat)
	}

	if *lowLatency && mayReexec {
		keepMonitorAwake(logger) // returns only if it did not re-execute
	}
	if *lowLatency && monitorAwake() {
		logger.Debug("runtime monitor kept awake", "GODEBUG", os.Getenv("GODEBUG"))
	}

	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr, logger); err != nil {
			return err
		}
	}

	srv := &socks.Server{HTTPConnect: *httpConnect, Logger: logger, IdleTimeout: *idle, ParkDelay: *parkDelay, UDPBusyPoll: *udpBusyPoll, BusyPoll: *busyPoll}
	var htpasswd *auth.Htpasswd
	if *users != "" {
		var err error
		if htpasswd, err = auth.LoadHtpasswd(*users); err != nil {
			return err
		}
		srv.Authenticator = htpasswd
		logger.Info("username authentication on", "users", htpasswd.Len(), "file", *users)
	}

	var listeners []net.Listener
	for _, addr := range listen {
		l, err := socks.Listen(context.Background(), "tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		logger.Info("listening", "addr", l.Addr().String(), "http", *httpConnect)
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-errc:
			srv.Close()
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if htpasswd != nil {
					if err := htpasswd.Reload(); err != nil {
						logger.Error("reloading users failed; keeping the old ones", "err", err)
					} else {
						logger.Info("users reloaded", "users", htpasswd.Len())
					}
				}
				continue
			}
			logger.Info("shutting down", "signal", sig.String(), "sessions", srv.Sessions())
			ctx, cancel := context.WithTimeout(context.Background(), *grace)
			err := srv.Shutdown(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				logger.Warn("grace period over; ending remaining sessions", "sessions", srv.Sessions())
				srv.Close()
			}
			return nil
		}
	}
}

// servePprof serves the runtime's profiles on a loopback address, for
// measuring the daemon under load (go tool pprof http://ADDR/debug/pprof/profile).
func servePprof(addr string, logger *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-pprof: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-pprof: %s is not a loopback address; profiles reveal internals", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("profiles", "addr", l.Addr().String())
	go http.Serve(l, mux)
	return nil
}
