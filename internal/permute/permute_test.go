package permute

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name string
		perm []int
	}{
		{"empty", nil},
		{"one", []int{0}},
		{"identity", []int{0, 1, 2, 3}},
		{"swap", []int{1, 0}},
		{"one cycle", []int{1, 2, 3, 0}},
		{"two cycles and a fixed point", []int{2, 3, 0, 4, 1, 5}},
		{"random", rng.Perm(1000)},
	}
	for _, tt := range tests {
		s := make([]string, len(tt.perm))
		for i := range s {
			s[i] = string(rune('a'+i%26)) + string(rune('0'+i/26%10))
		}
		want := make([]string, len(s))
		for i, k := range tt.perm {
			want[i] = s[k]
		}
		InPlace(s, func(i int) int { return tt.perm[i] })
		if !slices.Equal(s, want) {
			t.Errorf("%s: got %v, want %v", tt.name, s, want)
		}
	}
}
