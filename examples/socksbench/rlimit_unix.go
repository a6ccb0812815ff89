//go:build unix

package main

import (
	"fmt"
	"io"
	"syscall"
)

// raiseNoFile raises the soft open-files limit to the hard limit.
func raiseNoFile(stderr io.Writer) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintln(stderr, "socksbench: raising the open-files limit:", err)
		}
	}
}
