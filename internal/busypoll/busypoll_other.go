//go:build !linux

package busypoll

import (
	"errors"
	"time"
)

func enable(time.Duration) error {
	return errors.New("busypoll: not supported on this system")
}

func disable() {}

func kick() {}

func enabled() bool { return false }

func kicks() uint64 { return 0 }
