//go:build !unix

package main

import "io"

// raiseNoFile does nothing where there is no open-files limit to raise.
func raiseNoFile(io.Writer) {}
