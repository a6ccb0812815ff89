package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 123456, 1 << 30, histMaxValue} {
		lo, hi := bucketBounds(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d with bounds [%d, %d]", v, bucketOf(v), lo, hi)
		}
		if v >= 128 && float64(hi-lo+1) > float64(lo)/histSub {
			t.Errorf("bucket of %d is [%d, %d]: wider than 1/%d of its lower bound", v, lo, hi, histSub)
		}
	}
	if got := bucketOf(math.MaxUint64); got >= histBuckets {
		t.Errorf("bucketOf(max) = %d, out of range %d", got, histBuckets)
	}
	// Buckets tile the value range with no gap or overlap.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h histogram
	samples := make([]time.Duration, 20000)
	for i := range samples {
		// A long-tailed distribution from 20us to about 100ms.
		d := time.Duration(20e3 * math.Exp(r.ExpFloat64()*1.2))
		samples[i] = d
		h.record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/histSub {
			t.Errorf("q%v = %v, exact %v: relative error %.4f", q, got, exact, rel)
		}
	}
	if h.quantile(1) != samples[len(samples)-1] {
		t.Errorf("q1 = %v, want the maximum %v", h.quantile(1), samples[len(samples)-1])
	}
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("an empty histogram reports a value")
	}
}

func TestMerge(t *testing.T) {
	var a, b, all histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a != all {
		t.Errorf("merged histogram differs: n %d min %d max %d, want n %d min %d max %d", a.n, a.min, a.max, all.n, all.min, all.max)
	}
}

// FuzzHistogram checks that quantiles are ordered, lie between the smallest
// and largest sample, and are within the bucket resolution of the exact value.
func FuzzHistogram(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var h histogram
		var vals []time.Duration
		for len(data) >= 8 && len(vals) < 4096 {
			v := uint64(0)
			for _, c := range data[:8] {
				v = v<<8 | uint64(c)
			}
			data = data[8:]
			d := time.Duration(v >> 1) // non-negative
			h.record(d)
			vals = append(vals, min(d, time.Duration(histMaxValue)))
		}
		if len(vals) == 0 {
			return
		}
		slices.Sort(vals)
		prev := time.Duration(-1)
		for _, q := range []float64{0.001, 0.5, 0.99, 0.999, 1} {
			got := h.quantile(q)
			if got < prev {
				t.Fatalf("q%v = %v below the previous quantile %v", q, got, prev)
			}
			prev = got
			exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
			if got < vals[0] || got > vals[len(vals)-1] {
				t.Fatalf("q%v = %v outside [%v, %v]", q, got, vals[0], vals[len(vals)-1])
			}
			if exact >= 128 && math.Abs(float64(got-exact)) > float64(exact)/histSub {
				t.Fatalf("q%v = %v, exact %v", q, got, exact)
			}
			if exact < 128 && got != exact {
				t.Fatalf("q%v = %v, exact %v", q, got, exact)
			}
		}
	})
}
