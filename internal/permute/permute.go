// Package permute reorders slices in place.
package permute

// InPlace reorders s so that s[i] becomes the element that was at
// from(i), for every i: from must be a permutation of the indexes of s.
// Each element moves once, along the permutation's cycles, with no copy of
// s (a sorted order applied to a large slice, say).
func InPlace[T any](s []T, from func(i int) int) {
	placed := make([]bool, len(s))
	for i := range s {
		if placed[i] {
			continue
		}
		held := s[i]
		j := i
		for {
			placed[j] = true
			k := from(j)
			if k == i {
				s[j] = held
				break
			}
			s[j] = s[k]
			j = k
		}
	}
}
