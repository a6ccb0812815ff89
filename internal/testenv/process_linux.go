package testenv

import (
	"os"
	"syscall"
)

// processAttr puts a server in a process group of its own, so that
// killTree reaches its children, and kills it if the test process dies.
func processAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killTree kills p's process group.
func killTree(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
