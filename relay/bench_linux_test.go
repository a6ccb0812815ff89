package relay

import (
	"fmt"
	"testing"
)

// BenchmarkPipeSpliceSize compares pipe capacities (F_SETPIPE_SZ).
func BenchmarkPipeSpliceSize(b *testing.B) {
	saved := largePipeSize
	defer func() { largePipeSize = saved; drainPool() }()
	for _, sz := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("pipe=%dK", sz>>10), func(b *testing.B) {
			drainPool()
			largePipeSize = sz
			benchRelay(b, pipeRelay(b, modes[0].wrap, modes[0].spliced))
		})
	}
}
