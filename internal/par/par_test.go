package par

import (
	"cmp"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// withProcs runs f with GOMAXPROCS set to procs.
func withProcs(procs int, f func()) {
	old := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(old)
	f()
}

// TestRuns checks that Runs covers every index once, whatever the number
// of CPUs.
func TestRuns(t *testing.T) {
	for _, procs := range []int{1, 2, 3, 8, 16} {
		for _, n := range []int{0, 1, 255, 256, 511, 512, 1000, 4097, 100000} {
			withProcs(procs, func() {
				seen := make([]int32, n)
				Runs(n, 256, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						seen[i]++
					}
				})
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("procs=%d n=%d: index %d covered %d times", procs, n, i, c)
					}
				}
			})
		}
	}
}

// item is a sort key with a payload that tells equal keys apart.
type item struct{ key, seq int }

// TestSortFunc checks that SortFunc sorts like slices.SortFunc for every
// number of parts, including an odd one and parts of one element
// (through a small minimum run), with and without repeated keys.
func TestSortFunc(t *testing.T) {
	byKeySeq := func(a, b item) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq)) }
	byKey := func(a, b item) int { return cmp.Compare(a.key, b.key) }
	rng := rand.New(rand.NewPCG(1, 2))
	for _, procs := range []int{1, 2, 3, 5, 8} {
		for _, n := range []int{0, 1, 2, MinSortRun - 1, 2 * MinSortRun, 3*MinSortRun + 7, 200000} {
			for _, keys := range []int{3, 1 << 30} {
				in := make([]item, n)
				for i := range in {
					in[i] = item{rng.IntN(keys), i}
				}
				want := slices.Clone(in)
				slices.SortFunc(want, byKeySeq)
				got := slices.Clone(in)
				withProcs(procs, func() { SortFunc(got, byKeySeq) })
				if !slices.Equal(got, want) {
					t.Fatalf("procs=%d n=%d keys=%d: total order: result differs from slices.SortFunc", procs, n, keys)
				}
				// With ties, only the keys' order is defined, and
				// every element is still there once.
				got = slices.Clone(in)
				withProcs(procs, func() { SortFunc(got, byKey) })
				if !slices.IsSortedFunc(got, byKey) {
					t.Fatalf("procs=%d n=%d keys=%d: ties: not sorted", procs, n, keys)
				}
				slices.SortFunc(got, byKeySeq)
				if !slices.Equal(got, want) {
					t.Fatalf("procs=%d n=%d keys=%d: ties: elements lost or repeated", procs, n, keys)
				}
			}
		}
	}
}

// TestMerge checks the merge of two sorted runs, ties taken from the
// first.
func TestMerge(t *testing.T) {
	byKey := func(a, b item) int { return cmp.Compare(a.key, b.key) }
	tests := []struct{ a, b, want []item }{
		{nil, nil, []item{}},
		{[]item{{1, 0}}, nil, []item{{1, 0}}},
		{nil, []item{{1, 0}}, []item{{1, 0}}},
		{[]item{{1, 0}, {3, 0}}, []item{{1, 1}, {2, 1}, {4, 1}}, []item{{1, 0}, {1, 1}, {2, 1}, {3, 0}, {4, 1}}},
	}
	for _, tc := range tests {
		out := make([]item, len(tc.a)+len(tc.b))
		merge(out, tc.a, tc.b, byKey)
		if !slices.Equal(out, tc.want) {
			t.Errorf("merge(%v, %v) = %v, want %v", tc.a, tc.b, out, tc.want)
		}
	}
}

// BenchmarkSortFunc compares SortFunc with slices.SortFunc on 1M keys.
func BenchmarkSortFunc(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]item, 1<<20)
	for i := range in {
		in[i] = item{rng.Int(), i}
	}
	byKey := func(a, b item) int { return cmp.Compare(a.key, b.key) }
	s := make([]item, len(in))
	for _, tc := range []struct {
		name string
		sort func([]item, func(a, b item) int)
	}{{"slices", slices.SortFunc[[]item]}, {"par", SortFunc[[]item]}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				copy(s, in)
				tc.sort(s, byKey)
			}
		})
	}
}
