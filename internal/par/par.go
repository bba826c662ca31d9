// Package par spreads work over the CPUs: contiguous runs of an index
// range (Runs) and sorting (SortFunc).
package par

import (
	"runtime"
	"slices"
	"sync"
)

// maxWorkers bounds the goroutines of one call.
const maxWorkers = 8

// workers returns how many workers share n items when each should get at
// least minRun of them.
func workers(n, minRun int) int {
	return max(1, min(runtime.GOMAXPROCS(0), maxWorkers, n/max(1, minRun)))
}

// Runs calls fn on contiguous runs [lo, hi) that together cover [0, n),
// one run per CPU (up to 8) but with at least minRun items in each, and
// returns when all calls have. The runs are disjoint: fn may write to
// the items of its own run without locking.
func Runs(n, minRun int, fn func(lo, hi int)) {
	w := workers(n, minRun)
	var wg sync.WaitGroup
	for k := 1; k < w; k++ {
		wg.Go(func() { fn(k*n/w, (k+1)*n/w) })
	}
	fn(0, n/w)
	wg.Wait()
}

// MinSortRun is the smallest part SortFunc sorts on a CPU of its own:
// below it, the goroutines and the merge cost more than they save.
const MinSortRun = 16384

// SortFunc sorts s in ascending order of cmp, like slices.SortFunc: it
// sorts parts of s on all CPUs, then merges them. It is not stable, so the
// result is the same on every run only when cmp orders every two distinct
// elements (as slices.SortFunc's is). The merge needs a buffer as large
// as s.
func SortFunc[S ~[]E, E any](s S, cmp func(a, b E) int) {
	n := len(s)
	w := workers(n, MinSortRun)
	if w == 1 {
		slices.SortFunc(s, cmp)
		return
	}
	// bounds[k] is where part k starts.
	bounds := make([]int, w+1)
	for k := range bounds {
		bounds[k] = k * n / w
	}
	Runs(w, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			slices.SortFunc(s[bounds[k]:bounds[k+1]], cmp)
		}
	})
	// Merge neighbouring parts in rounds, between s and buf, the merges
	// of a round in parallel.
	src, dst := s, make(S, n)
	for len(bounds) > 2 {
		pairs := (len(bounds) - 1) / 2
		var next []int
		var wg sync.WaitGroup
		for p := range pairs {
			lo, mid, hi := bounds[2*p], bounds[2*p+1], bounds[2*p+2]
			next = append(next, lo)
			wg.Go(func() { merge(dst[lo:hi], src[lo:mid], src[mid:hi], cmp) })
		}
		if (len(bounds)-1)%2 == 1 { // an odd part out is copied as it is
			lo, hi := bounds[len(bounds)-2], bounds[len(bounds)-1]
			next = append(next, lo)
			copy(dst[lo:hi], src[lo:hi])
		}
		wg.Wait()
		bounds = append(next, n)
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// merge writes the sorted a and b, merged, to out (len(a)+len(b) long);
// of equal elements, a's come first.
func merge[E any](out, a, b []E, cmp func(x, y E) int) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			out[k] = b[j]
			j++
		} else {
			out[k] = a[i]
			i++
		}
		k++
	}
	k += copy(out[k:], a[i:])
	copy(out[k:], b[j:])
}
