//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

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

// TestUnionFollow checks that a Union with a Witness updates its tables
// after commits that left them alone: a commit to another table before
// the update, and one between its check of the generation and its batch
// (which the kernel refuses, and the Union sends again); that it still
// refuses an update after an edit of its own table; and that the kernel
// then holds what a fresh load of the same cluster holds.
func TestUnionFollow(t *testing.T) {
	nstest.Require(t, "nft")
	ns, fresh := nstest.New(t, "kpcnl"), nstest.New(t, "kpcnl")
	a := newAdoptedUnion(t, ns, 5, func(o Options, u *Union) {
		w, err := Follow(o, "kpc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		u.Follow(w)
	})
	c, u := a.c, a.u
	change := func() []Change { return a.change(t) }
	// The same foreign tables in both namespaces, so that their listings
	// compare.
	foreign := func(script string) {
		nstest.Run(t, ns, script, "nft", "-f", "-")
		nstest.Run(t, fresh, script, "nft", "-f", "-")
	}
	same := func(when string) {
		t.Helper()
		b, err := Build(compileText(t, c.yaml()), Options{})
		if err != nil {
			t.Fatal(err)
		}
		nstest.Run(t, fresh, "add table ip kpc\ndelete table ip kpc\n"+string(b.Script()), "nft", "-f", "-")
		got := fingerprints.ReplaceAllString(listing(t, ns), "FP")
		want := fingerprints.ReplaceAllString(listing(t, fresh), "FP")
		if got != want {
			t.Fatalf("%s: the kernel differs from a fresh load (-fresh +updated):\n%s", when, cmp.Diff(want, got))
		}
	}

	foreign("add table ip other\nadd chain ip other c\n")
	foreign("add rule ip other c counter\n")
	up, err := u.Update(change())
	if err != nil {
		t.Fatalf("an update after two commits to another table: %v", err)
	}
	if up.Foreign != 2 || up.Resent != 0 {
		t.Errorf("an update after two commits to another table: Foreign %d, Resent %d, want 2 and 0 (%s)", up.Foreign, up.Resent, up)
	}
	same("after two commits to another table")

	once := false
	u.o.afterPlan = func() {
		if !once {
			once = true
			foreign("add rule ip other c accept\n")
		}
	}
	up, err = u.Update(change())
	u.o.afterPlan = nil
	if err != nil {
		t.Fatalf("an update with a commit to another table before its batch: %v", err)
	}
	if up.Resent != 1 || up.Foreign != 1 {
		t.Errorf("an update with a commit to another table before its batch: Foreign %d, Resent %d, want 1 and 1 (%s)", up.Foreign, up.Resent, up)
	}
	same("after a commit to another table before the batch")

	nstest.Run(t, ns, "add rule ip kpc services counter\n", "nft", "-f", "-")
	if _, err := u.Update(change()); !errors.Is(err, ErrNeedFull) {
		t.Errorf("an update after a rule was added to kpc's table: %v, want it refused", err)
	}
}

// TestWitnessNote feeds a Witness notifications as the kernel sends them,
// without a kernel: the messages of a commit, then its generation.
func TestWitnessNote(t *testing.T) {
	msg := func(typ uint16, attrs ...mdnetlink.Attribute) mdnetlink.Message {
		b, err := mdnetlink.MarshalAttributes(attrs)
		if err != nil {
			t.Fatal(err)
		}
		return mdnetlink.Message{Header: mdnetlink.Header{Type: mdnetlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ)},
			Data: append([]byte{unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0}, b...)}
	}
	object := func(typ uint16, table string) mdnetlink.Message {
		return msg(typ, mdnetlink.Attribute{Type: 1, Data: append([]byte(table), 0)})
	}
	gen := func(id uint32) mdnetlink.Message {
		return msg(unix.NFT_MSG_NEWGEN, mdnetlink.Attribute{Type: unix.NFTA_GEN_ID, Data: binary.BigEndian.AppendUint32(nil, id)})
	}
	w := &Witness{table: []byte("kpc"), known: 10, seen: 10, wake: make(chan struct{})}
	for _, m := range []mdnetlink.Message{
		// A commit before the Witness read generation 10, to kpc's table.
		object(unix.NFT_MSG_NEWRULE, "kpc"), gen(9),
		// Another table's.
		object(unix.NFT_MSG_NEWTABLE, "other"), object(unix.NFT_MSG_NEWSETELEM, "other"), gen(11),
		// kpc's, among others.
		object(unix.NFT_MSG_NEWCHAIN, "other"), object(unix.NFT_MSG_DELSETELEM, "kpc"), gen(12),
		// A table whose name starts like kpc's.
		object(unix.NFT_MSG_NEWCHAIN, "kpc2"), gen(13),
		// A message of another subsystem names no table.
		{Header: mdnetlink.Header{Type: mdnetlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK << 8)}, Data: []byte{2, 0, 0, 0, 8, 0, 1, 0, 'k', 'p', 'c', 0}},
		gen(14),
	} {
		w.note(m)
	}
	if w.seen != 14 {
		t.Fatalf("seen %d, want 14", w.seen)
	}
	if want := []genRange{{11, 12}}; !slices.Equal(w.dirty, want) {
		t.Errorf("dirty %v, want %v", w.dirty, want)
	}
	for _, c := range []struct {
		from, to uint32
		want     bool
	}{{10, 11, true}, {11, 12, false}, {12, 14, true}} {
		if got := w.Clean(c.from, c.to); got != c.want {
			t.Errorf("Clean(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
