//go:build !linux

package relay

// spliceState is empty where splice(2) does not exist; setupSplice never
// creates one.
type spliceState struct{}

func setupSplice(*session) {}

func (*spliceState) run(*dir) bool { return true }

func readPoolStats() PoolStats { return PoolStats{} }

func drainPool() {}
