package main

import (
	"context"
	"io"
	"os"
)

// Comparing two saved reports: each result as a ratio to the one named
// direct and to the reference (here the proxy itself, so its ratios are 1).
func Example_compare() {
	err := run(context.Background(), []string{"-compare", "-ref-name", "proxy",
		"direct=testdata/example/direct.json", "proxy=testdata/example/proxy.json"}, os.Stdout, io.Discard)
	if err != nil {
		panic(err)
	}
	// Output:
	// ### Bulk throughput
	//
	// MiB/s through the proxy, checksum verified; ratios: higher is better.
	//
	// | direction | streams | target | MiB/s | x direct | x proxy | proxy CPU s/GiB |
	// |---|---:|---|---:|---:|---:|---:|
	// | up | 1 | direct | 2048 | 1.00 | 1.25 | - |
	// | up | 1 | proxy | 1638 | 0.80 | 1.00 | 0.150 |
	//
	// ### Connection rate
	//
	// Connect + 64-byte request + 64-byte echo + close; latency from dial to close. Ratios of conns/s: higher is better.
	//
	// | workers | target | conns/s | x direct | x proxy | p50 us | p99 us | p99.9 us | errors | proxy CPU us/conn |
	// |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
	// | 64 | direct | 20000 | 1.00 | 2.00 | 3000 | 6000 | 8000 | 0 | - |
	// | 64 | proxy | 10000 | 0.50 | 1.00 | 6000 | 9000 | 12000 | 0 | 48.5 |
}
