//go:build linux

package netlink

import (
	"fmt"
	"strings"
	"testing"

	"kpc/internal/nstest"
)

// generationOf reads the nftables generation of namespace ns.
func generationOf(t *testing.T, ns string) uint32 {
	t.Helper()
	d, err := newDumper(Options{NetNS: nstest.Path(ns)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	g, err := d.generation()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// commit runs an nft script in ns and returns the generation it left.
func commit(t *testing.T, ns, script string) uint32 {
	t.Helper()
	nstest.Run(t, ns, script, "nft", "-f", "-")
	return generationOf(t, ns)
}

// TestWitness checks which commits a Witness finds clean: those that
// change other tables only, not those that change a table of its name (in
// any family), nor those it did not follow (before it started, or whose
// notifications it could not read), nor a generation not committed yet.
func TestWitness(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	o := Options{NetNS: nstest.Path(ns)}
	before := commit(t, ns, "add table ip kpc\n")
	w, err := Follow(o, "kpc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	g0 := generationOf(t, ns)
	g1 := commit(t, ns, "add table ip other\nadd chain ip other c\nadd set ip other s { type ipv4_addr; elements = { 192.0.2.1 } }\n")
	g2 := commit(t, ns, "add table inet kpc\n")
	g3 := commit(t, ns, "add rule ip other c counter\n")
	g4 := commit(t, ns, "add chain ip kpc x\nadd rule ip other c accept\n")
	for _, c := range []struct {
		from, to uint32
		want     bool
	}{
		{g0, g1, true},
		{g0, g2, false},
		{g1, g2, false},
		{g2, g3, true},
		{g1, g3, false}, // forgotten by the Clean before
		{g3, g4, false},
		{before - 1, g0, false}, // not followed
		{g3, g4 + 5, false},     // not committed
		{0, g1, false},          // unknown
	} {
		if got := w.Clean(c.from, c.to); got != c.want {
			t.Errorf("Clean(%d, %d) = %v, want %v (generations %d..%d)", c.from, c.to, got, c.want, g0, g4)
		}
	}
	if w.Clean(g0, g1) {
		t.Errorf("Clean(%d, %d) after Clean(%d, …) = true, want false: what came before was forgotten", g0, g1, g2)
	}
}

// TestWitnessLost checks that commits whose notifications overflowed the
// Witness's socket are not clean, even when they changed other tables
// only, and that the commits after them are followed again.
func TestWitnessLost(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	o := Options{NetNS: nstest.Path(ns)}
	saved := witnessBuffer
	witnessBuffer = 4096
	w, err := Follow(o, "kpc")
	witnessBuffer = saved
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	g0 := generationOf(t, ns)
	var b strings.Builder
	b.WriteString("add table ip other\nadd set ip other s { type ipv4_addr; }\nadd element ip other s {")
	for i := 0; i < 40000; i++ {
		fmt.Fprintf(&b, " 10.%d.%d.1,", i>>8, i&255)
	}
	b.WriteString(" }\n")
	g1 := commit(t, ns, b.String())
	// A commit after it, so that its notifications are all in, or lost.
	g2 := commit(t, ns, "add chain ip other c\n")
	if w.Clean(g0, g1) {
		t.Fatalf("Clean(%d, %d) = true after a commit of 40,000 notifications into a socket of 4 KiB", g0, g1)
	}
	g3 := commit(t, ns, "add rule ip other c counter\n")
	if !w.Clean(g2, g3) {
		t.Errorf("Clean(%d, %d) = false: the commits after the overflow are not followed", g2, g3)
	}
}
