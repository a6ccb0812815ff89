package main

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear, in the style of HDR histograms: values
// (nanoseconds) below 128 have a bucket each, and every power-of-two range
// above is split into 64 equal buckets, so a bucket's width is at most 1/64 of
// its lower bound and a reported percentile is within 1/128 of the true value.
// Memory is fixed (histBuckets counters) however many samples are recorded.
const (
	histSubBits  = 6
	histSub      = 1 << histSubBits // buckets per power of two
	histMaxShift = 33               // values are clamped below 2^40 ns (about 18 minutes)
	histBuckets  = (histMaxShift + 2) * histSub
	histMaxValue = uint64(1)<<(histMaxShift+histSubBits+1) - 1
)

// histogram counts durations in log-linear buckets. Its zero value is empty
// and ready to use; it is not safe for concurrent use (each worker keeps its
// own and they are merged at the end).
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max uint64
	sum      float64
}

// bucketOf returns the bucket index of v (nanoseconds).
func bucketOf(v uint64) int {
	if v > histMaxValue {
		v = histMaxValue
	}
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	return shift*histSub + int(v>>uint(shift))
}

// bucketBounds returns the smallest and largest value in bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i)
	}
	shift := uint(i/histSub - 1)
	sub := uint64(i%histSub + histSub)
	return sub << shift, (sub+1)<<shift - 1
}

// record adds one duration.
func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = min(uint64(d), histMaxValue)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at quantile q (0 < q <= 1): the midpoint of the
// bucket holding the ceil(q*n)-th smallest sample, clamped to the observed
// minimum and maximum (values above 2^40 ns count as 2^40-1); the largest
// sample is returned exactly. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	if rank == h.n {
		return time.Duration(h.max)
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketBounds(i)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// mean returns the average duration.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
