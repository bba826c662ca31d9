//go:build linux

package netlink

import "testing"

// TestStatsString checks the one-line summary of a batch's counts, nouns
// in the singular for one.
func TestStatsString(t *testing.T) {
	for _, tt := range []struct {
		s    Stats
		want string
	}{
		{Stats{Tables: 1, Chains: 1, Sets: 1, Rules: 1, Elements: 1, Messages: 1},
			"1 table, 1 chain, 1 set or map, 1 rule, 1 element in 1 netlink message"},
		{Stats{Tables: 2, Chains: 5706, Sets: 4492, Rules: 19701, Elements: 887738, Messages: 32438},
			"2 tables, 5706 chains, 4492 sets and maps, 19701 rules, 887738 elements in 32438 netlink messages"},
		{Stats{}, "0 tables, 0 chains, 0 sets and maps, 0 rules, 0 elements in 0 netlink messages"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}
