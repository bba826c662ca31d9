//go:build linux

package netlink

import (
	"strings"
	"testing"

	"kpc/internal/nstest"
)

// These helpers run tests in network namespaces the tests create and
// delete. The tests need root, ip and nft; without them they skip, except
// when CI is set, where they fail.

// normalize makes two listings comparable: every "elements = { ... }"
// block is put on one line with its elements sorted and without repeats,
// since the kernel lists hash set elements in an order that changes from
// load to load, and lists an element twice when the listing runs while the
// set's hash table is being resized (which right after a large load it
// can be; a set cannot hold one key twice). Nothing else is rewritten:
// the typeof declarations, in particular, list the same from netlink as
// from the text (see typeof.go).
func normalize(listing string) string { return nstest.SortElements(listing) }

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			b.WriteString("-" + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			b.WriteString("+" + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}

// foreign is a ruleset that does not belong to kpc: applying and deleting
// kpc's tables must leave it alone, including a table named kpc in
// another family.
const foreign = `table ip other {
	set s {
		type ipv4_addr
		elements = { 192.0.2.99 }
	}
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @s counter packets 0 bytes 0
	}
}
table ip6 other {
	chain output {
		type filter hook output priority 0; policy accept;
	}
}
table inet kpc {
	chain c {
	}
}
`

// foreignTables lists the tables of foreign.
func foreignTables(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range [][]string{{"ip", "other"}, {"ip6", "other"}, {"inet", "kpc"}} {
		b.WriteString(nstest.Run(t, ns, "", "nft", "list", "table", tbl[0], tbl[1]))
	}
	return b.String()
}
