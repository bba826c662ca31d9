//go:build linux

package netlink

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/nftables"

	"kpc/compiler/ir"
	"kpc/internal/nstest"
)

// smallUpdate returns two Programs of a small cluster, for the tests of
// Sync: p, and p2 with one endpoint more (an incremental update from p).
func smallUpdate(t *testing.T) (p, p2 *ir.Program) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	c := &cluster{}
	for i := 0; i < 8; i++ {
		c.mutate(r)
	}
	c.services = append([]*clusterService{{id: 100, typ: "NodePort", ports: []clusterPort{{80, 8080, "TCP"}},
		eps: []int{1, 2}, affinity: 600, notReady: map[int]bool{}}}, c.services...)
	p = c.compile(t)
	c.services[0].eps = append(c.services[0].eps, 39)
	return p, c.compile(t)
}

// TestSyncForeignCommits checks what Sync does after commits other than
// its own in the namespace of its tables. A rule or an element added to
// kpc's tables (which leaves their fingerprint alone) is found when the
// tables are read back, and they are replaced, whether the manifests
// changed or not. A commit to another table makes Sync read kpc's tables
// back, find them unchanged, and update them (or leave them) as without
// it. With no commit but kpc's, nothing is read back. Either way, the
// kernel holds the Program afterwards, and the next Sync of it neither
// reads back nor sends anything.
func TestSyncForeignCommits(t *testing.T) {
	nstest.Require(t, "nft")
	p, p2 := smallUpdate(t)
	const (
		rule    = "add rule ip kpc services counter comment \"foreign\"\n"
		element = "add element ip kpc cluster-ips { 192.0.2.99 }\n"
		table   = "add table ip other\nadd chain ip other c\n"
	)
	cases := []struct {
		name     string
		foreign  string // an nft script run between the two Syncs
		next     *ir.Program
		mode     SyncMode
		verified bool
		gone     string // what the foreign commit adds to kpc's tables
	}{
		{name: "nothing foreign", next: p2, mode: SyncIncremental},
		{name: "nothing foreign, same manifests", next: p, mode: SyncUnchanged},
		{name: "a rule added", foreign: rule, next: p2, mode: SyncFull, gone: `comment "foreign"`},
		{name: "a rule added, same manifests", foreign: rule, next: p, mode: SyncFull, gone: `comment "foreign"`},
		{name: "an element added", foreign: element, next: p2, mode: SyncFull, gone: "192.0.2.99"},
		{name: "an element added, same manifests", foreign: element, next: p, mode: SyncFull, gone: "192.0.2.99"},
		{name: "another table", foreign: table, next: p2, mode: SyncIncremental, verified: true},
		{name: "another table, same manifests", foreign: table, next: p, mode: SyncUnchanged, verified: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, dir := nstest.New(t, "kpcnl"), t.TempDir()
			if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncFull || rep.Generation == 0 {
				t.Fatalf("first Sync: %s at generation %d, want a full replace at a known generation", rep, rep.Generation)
			}
			if tc.foreign != "" {
				nstest.Run(t, ns, tc.foreign, "nft", "-f", "-")
			}
			if tc.gone != "" && !strings.Contains(listing(t, ns), tc.gone) {
				t.Fatalf("the foreign commit did not add %q", tc.gone)
			}
			rep := syncIn(t, tc.next, ns, dir, false)
			if rep.Mode != tc.mode || rep.Verified != tc.verified {
				t.Errorf("Sync: %s (read back: %v), want %s (read back: %v)", rep, rep.Verified, tc.mode, tc.verified)
			}
			if tc.verified && rep.Checked != CheckedNote {
				t.Errorf("Sync: read back because %q, want %q", rep.Checked, CheckedNote)
			}
			if tc.mode == SyncFull && !strings.HasPrefix(rep.Reason, ChangedReason) {
				t.Errorf("Sync: %s, want a full replace because kpc's tables changed", rep)
			}
			if tc.gone != "" && strings.Contains(listing(t, ns), tc.gone) {
				t.Errorf("%q survived the Sync", tc.gone)
			}
			checkNoDrift(t, "after the Sync", ns, programCase{p: tc.next})
			if tc.foreign == table {
				nstest.Run(t, ns, "", "nft", "list", "chain", "ip", "other", "c")
			}
			if rep := syncIn(t, tc.next, ns, dir, false); rep.Mode != SyncUnchanged || rep.Verified || rep.Verify != 0 {
				t.Errorf("the same Sync again: %s (read back: %v), want unchanged without reading back", rep, rep.Verified)
			}
		})
	}
}

// TestSyncWithoutCache checks a Sync without a state directory, or with
// an empty one: the tables are replaced whole, unless they already hold
// the Program, which it reads them back to know, and says so (and then
// caches, when it has a state directory).
func TestSyncWithoutCache(t *testing.T) {
	nstest.Require(t, "nft")
	p, p2 := smallUpdate(t)
	for _, dir := range []string{"", "empty"} {
		ns := nstest.New(t, "kpcnl")
		if dir != "" {
			dir = t.TempDir()
		}
		if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncFull {
			t.Fatalf("first Sync: %s, want a full replace", rep)
		}
		if dir != "" {
			dir = t.TempDir() // a state directory without the cache
		}
		rep := syncIn(t, p, ns, dir, false)
		if rep.Mode != SyncUnchanged || !rep.Verified || rep.Checked != uncachedNote {
			t.Errorf("state directory %q, the same Program: %s (read back: %v, because %q), want unchanged, read back because %q",
				dir, rep, rep.Verified, rep.Checked, uncachedNote)
		}
		if strings.Contains(rep.String(), "committed") {
			t.Errorf("state directory %q: %q speaks of a commit", dir, rep)
		}
		// The tables read back are cached: the next Sync is incremental,
		// but without a state directory.
		want := SyncIncremental
		if dir == "" {
			want = SyncFull
		}
		if rep := syncIn(t, p2, ns, dir, false); rep.Mode != want || rep.Verified {
			t.Errorf("state directory %q, another Program: %s (read back: %v), want %s", dir, rep, rep.Verified, want)
		}
		checkNoDrift(t, "after the Syncs", ns, programCase{p: p2})
	}
}

// TestSyncCommitAfterPlan commits to another table between Sync's reading
// of the kernel and its update: the kernel refuses the update, which was
// sent at the generation read first, and Sync replaces the tables.
func TestSyncCommitAfterPlan(t *testing.T) {
	nstest.Require(t, "nft")
	p, p2 := smallUpdate(t)
	ns, dir := nstest.New(t, "kpcnl"), t.TempDir()
	syncIn(t, p, ns, dir, false)
	o := Options{NetNS: nstest.Path(ns), StateDir: dir, afterPlan: func() {
		nstest.Run(t, ns, "", "nft", "add", "table", "ip", "other")
	}}
	rep, err := Sync(p2, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != SyncFull || !strings.Contains(rep.Reason, "committed to nftables while kpc read its tables") {
		t.Errorf("Sync: %s, want a full replace because of the commit after the plan", rep)
	}
	checkNoDrift(t, "after the Sync", ns, programCase{p: p2})
	if rep := syncIn(t, p2, ns, dir, false); rep.Mode != SyncUnchanged || rep.Verified {
		t.Errorf("the same Sync again: %s (read back: %v), want unchanged without reading back", rep, rep.Verified)
	}
}

// TestBatchAtGeneration checks the kernel's side of the generation: every
// commit moves it by one, a batch sent at the generation is committed, and
// one sent at an older generation is refused without a change.
func TestBatchAtGeneration(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	o := Options{NetNS: nstest.Path(ns)}
	gen := func() uint32 { return generationOf(t, ns) }
	g0 := gen()
	nstest.Run(t, ns, "", "nft", "add", "table", "ip", "other")
	g1 := gen()
	if g1 != nextGeneration(g0) {
		t.Errorf("a commit moved the generation from %d to %d", g0, g1)
	}
	q := newQueue()
	q.send(func(nc *nftables.Conn) { nc.AddTable(&nftables.Table{Name: "kpc", Family: nftables.TableFamilyIPv4}) })
	msgs, err := q.finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := sendBatch(o, msgs, g0); !generationMoved(err) {
		t.Errorf("a batch at the generation before the last commit: %v, want it refused", err)
	}
	if out, _ := nstest.Exec(ns, "", "nft", "list", "tables"); strings.Contains(out, "table ip kpc") || gen() != g1 {
		t.Errorf("the refused batch changed something:\n%s", out)
	}
	if err := sendBatch(o, msgs, g1); err != nil {
		t.Fatalf("a batch at the generation: %v", err)
	}
	if out := nstest.Run(t, ns, "", "nft", "list", "tables"); !strings.Contains(out, "table ip kpc") || gen() != nextGeneration(g1) {
		t.Errorf("the batch at the generation was not committed (generation %d):\n%s", gen(), out)
	}
}

// adoptedUnion is a cluster of six random Services (of seed) applied whole
// into a namespace, and a Union of its Services' parts that adopted it.
type adoptedUnion struct {
	c     *cluster
	u     *Union
	parts map[int]*Part
	ids   uint32
}

// newAdoptedUnion applies the cluster of seed into namespace ns and has a
// Union of its parts adopt it. follow, when set, runs between the apply
// and the adoption (to start a Witness of the commits after the apply).
func newAdoptedUnion(t *testing.T, ns string, seed uint64, follow func(o Options, u *Union)) *adoptedUnion {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	a := &adoptedUnion{c: &cluster{}, parts: map[int]*Part{}}
	for i := 0; i < 6; i++ {
		a.c.mutate(r)
	}
	o := Options{NetNS: nstest.Path(ns)}
	a.u = NewUnion("kpc", o)
	for _, s := range a.c.services {
		a.parts[s.id] = servicePart(t, s, &a.ids)
		if err := a.u.Count(a.parts[s.id]); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Build(compileText(t, a.c.yaml()), o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := SyncBatch(b, o)
	if err != nil {
		t.Fatal(err)
	}
	if follow != nil {
		follow(o, a.u)
	}
	sum, err := b.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.u.Adopt(sum, rep.Generation); err != nil {
		t.Fatal(err)
	}
	return a
}

// change gives the cluster's first Service one endpoint more and returns
// the update.
func (a *adoptedUnion) change(t *testing.T) []Change {
	t.Helper()
	s := a.c.services[0]
	s.eps = append(s.eps, 30+len(s.eps))
	next := servicePart(t, s, &a.ids)
	ch := []Change{{Old: a.parts[s.id], New: next}}
	a.parts[s.id] = next
	return ch
}

// TestUnionForeignCommit checks that a Union refuses an update once
// anything but its own updates was committed: a rule added to kpc's table
// by hand, which leaves the fingerprint alone, or a commit to another
// table (which the full apply the caller falls back to reads back).
func TestUnionForeignCommit(t *testing.T) {
	nstest.Require(t, "nft")
	for _, foreign := range []string{"add rule ip kpc services counter\n", "add table ip other\n"} {
		ns := nstest.New(t, "kpcnl")
		a := newAdoptedUnion(t, ns, 3, nil)
		if _, err := a.u.Update(a.change(t)); err != nil {
			t.Fatalf("an update with nothing foreign: %v", err)
		}
		nstest.Run(t, ns, foreign, "nft", "-f", "-")
		if _, err := a.u.Update(a.change(t)); !errors.Is(err, ErrNeedFull) || !strings.Contains(err.Error(), "committed") {
			t.Errorf("an update after %q: %v, want it refused because of the commit", foreign, err)
		}
	}
}
