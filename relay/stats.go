package relay

// MaxIdlePipes bounds the process-wide pool of idle splice pipes. Pipes given
// back beyond it are closed, so the pool never holds more than
// 2*MaxIdlePipes descriptors; a pipe idle in the pool for 10 seconds is
// closed too.
const MaxIdlePipes = 32

// PoolStats is a snapshot of the process-wide splice pipe pool. It is always
// zero where splice is not used (non-Linux systems).
type PoolStats struct {
	Idle  int // pipes waiting in the pool (at most MaxIdlePipes)
	InUse int // pipes lent to directions that are moving bytes right now
}

// ReadPoolStats returns the current state of the splice pipe pool. Each pipe
// is two descriptors.
func ReadPoolStats() PoolStats { return readPoolStats() }
