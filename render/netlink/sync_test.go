//go:build linux

package netlink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
	"kpc/internal/nstest"
	"kpc/render/internal/nftdirect"
	"kpc/render/internal/nftperf"
	"kpc/render/internal/nftplan"
)

// listing is the normalized listing of a namespace's ruleset.
func listing(t *testing.T, ns string) string {
	t.Helper()
	return nstest.SortElements(nstest.SortBlocks(nstest.Run(t, ns, "", "nft", "list", "ruleset")))
}

// syncIn runs Sync into namespace ns with the state kept in dir.
func syncIn(t *testing.T, p *ir.Program, ns, dir string, full bool) *SyncReport {
	t.Helper()
	rep, err := Sync(p, Options{NetNS: nstest.Path(ns), StateDir: dir, Full: full})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return rep
}

// TestSyncRandomSequences applies seeded random sequences of changes to a
// synthetic cluster with Sync and checks after each one that the kernel's
// tables list exactly as a fresh load of the same Program's text in
// another namespace, and that every Sync after the first was incremental
// (or found nothing to do).
func TestSyncRandomSequences(t *testing.T) {
	nstest.Require(t, "nft")
	steps := 30
	if testing.Short() {
		steps = 8
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("seed"+string(rune('0'+seed)), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			ns, fresh := nstest.New(t, "kpcnl"), nstest.New(t, "kpcnl")
			c := &cluster{}
			for i := 0; i < 6; i++ {
				c.mutate(r)
			}
			incremental := 0
			for step := 0; step < steps; step++ {
				what := "initial cluster"
				if step > 0 {
					what = c.mutate(r)
				}
				p := c.compile(t)
				rep := syncIn(t, p, ns, dir, false)
				if step > 0 && rep.Mode == SyncFull {
					t.Errorf("step %d (%s): full replace: %s", step, what, rep.Reason)
				}
				if rep.Mode == SyncIncremental {
					incremental++
				}
				b, err := Build(p, Options{})
				if err != nil {
					t.Fatal(err)
				}
				nstest.Run(t, fresh, string(b.Script()), "nft", "-f", "-")
				got, want := listing(t, ns), listing(t, fresh)
				if got != want {
					t.Fatalf("step %d (%s, %s): the kernel differs from a fresh load (-fresh +synced):\n%s",
						step, what, rep, cmp.Diff(want, got))
				}
				checkNoDrift(t, "after "+what, ns, programCase{p: p})
			}
			t.Logf("%d steps, %d incremental", steps, incremental)
		})
	}
}

// TestSyncModes walks Sync through its modes and reasons.
func TestSyncModes(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	ns := nstest.New(t, "kpcnl")
	// An IPv4 Service first, with one endpoint more in p2.
	p, p2 := smallUpdate(t)
	if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncFull || !strings.Contains(rep.Reason, "no cache") {
		t.Errorf("first Sync: %s, want a full replace for want of a cache", rep)
	}
	if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncUnchanged || rep.Sent.Messages != 0 {
		t.Errorf("same program again: %s, want unchanged", rep)
	}
	rep := syncIn(t, p2, ns, dir, false)
	if rep.Mode != SyncIncremental {
		t.Fatalf("one endpoint more: %s, want incremental", rep)
	}
	t.Logf("one endpoint more: %s", rep)
	if rep := syncIn(t, p2, ns, dir, true); rep.Mode != SyncFull || rep.Reason != "requested" {
		t.Errorf("Full: %s, want a requested full replace", rep)
	}
	// A table changed behind kpc's back (its fingerprint too) is replaced.
	nstest.Run(t, ns, "", "nft", "delete", "element", "ip", "kpc", "fingerprint", "{ 1 }")
	if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncFull || !strings.Contains(rep.Reason, "fingerprint") {
		t.Errorf("after the fingerprint changed: %s, want a full replace because of it", rep)
	}
	// Without the cache, a full replace.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".state") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if rep := syncIn(t, p2, ns, dir, false); rep.Mode != SyncFull {
		t.Errorf("without a cache: %s, want a full replace", rep)
	}
	// Without a cache but with the kernel already holding the program, the
	// cache is written, and the next change is an update.
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".state") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if rep := syncIn(t, p2, ns, dir, false); rep.Mode != SyncUnchanged {
		t.Errorf("the same program without a cache: %s, want unchanged", rep)
	}
	if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncIncremental {
		t.Errorf("a change after the cache was rewritten: %s, want incremental", rep)
	}
	// A corrupt cache is a reason, not an error.
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".state") {
			os.WriteFile(filepath.Join(dir, e.Name()), []byte("KPCNLST1garbage"), 0o600)
		}
	}
	if rep := syncIn(t, p2, ns, dir, false); rep.Mode != SyncFull || !strings.Contains(rep.Reason, "corrupt") {
		t.Errorf("with a corrupt cache: %s, want a full replace because of it", rep)
	}
	// An empty program leaves an empty table without a fingerprint: the
	// next Sync says so instead of blaming a change behind kpc's back.
	empty := &ir.Program{}
	syncIn(t, empty, ns, dir, false)
	if rep := syncIn(t, empty, ns, dir, false); rep.Mode != SyncFull || !strings.Contains(rep.Reason, "left table ip kpc empty") {
		t.Errorf("after an empty program: %s, want a full replace of the empty table", rep)
	}
	syncIn(t, p2, ns, dir, false)
	// A dry run sends nothing.
	before := nstest.Run(t, ns, "", "nft", "list", "ruleset")
	rep, err := Sync(p, Options{NetNS: nstest.Path(ns), StateDir: dir, DryRun: true})
	if err != nil || rep.Mode != SyncIncremental {
		t.Errorf("dry run: %v, %v; want an incremental plan", rep, err)
	}
	if after := nstest.Run(t, ns, "", "nft", "list", "ruleset"); after != before {
		t.Errorf("a dry run changed the ruleset:\n%s", cmp.Diff(before, after))
	}
}

// TestSyncKeepsAffinity checks that the clients recorded in sticky-clients
// survive incremental updates, except those whose endpoint left their
// Service or whose Service no longer has affinity; and that the clients of
// an IPv6 Service's affinity sets survive too.
func TestSyncKeepsAffinity(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	ns := nstest.New(t, "kpcnl")
	c := &cluster{next: 4, services: []*clusterService{
		{id: 1, typ: "ClusterIP", ports: []clusterPort{{80, 8080, "TCP"}}, eps: []int{1, 2}, affinity: 600, notReady: map[int]bool{}},
		{id: 2, typ: "ClusterIP", ports: []clusterPort{{80, 8080, "TCP"}}, eps: []int{1}, notReady: map[int]bool{}},
		{id: 3, typ: "ClusterIP", v6: true, ports: []clusterPort{{80, 8080, "TCP"}}, eps: []int{1}, affinity: 600, notReady: map[int]bool{}},
		// Keeps sticky-clients when svc-1 loses its affinity.
		{id: 4, typ: "ClusterIP", ports: []clusterPort{{80, 8080, "UDP"}}, eps: []int{1}, affinity: 60, notReady: map[int]bool{}},
	}}
	syncIn(t, c.compile(t), ns, dir, false)
	clients := func() string { return nstest.Run(t, ns, "", "nft", "list", "map", "ip", "kpc", nftdirect.ClientsMap) }
	nstest.Run(t, ns, "", "nft", "add", "element", "ip", "kpc", nftdirect.ClientsMap,
		"{ 192.0.2.77 . 10.96.0.1 . tcp . 80 timeout 1h : 10.244.1.2 . 8080, 192.0.2.78 . 10.96.0.1 . tcp . 80 timeout 1h : 10.244.1.3 . 8080 }")
	v6set := ""
	for _, rs := range c.compile(t).Rulesets {
		for _, s := range rs.AffinitySets {
			if rs.Family == ir.IPv6 {
				v6set = s.Name
			}
		}
	}
	if v6set == "" {
		t.Fatal("the IPv6 Service has no affinity set")
	}
	nstest.Run(t, ns, "", "nft", "add", "element", "ip6", "kpc", v6set, "{ 2001:db8::77 }")

	steps := []struct {
		what     string
		change   func()
		keep     []string
		lose     []string
		stale    int
		v6Client bool
	}{
		{"another Service changes", func() { c.services[1].eps = append(c.services[1].eps, 3) },
			[]string{"192.0.2.77", "192.0.2.78"}, nil, 0, true},
		{"an endpoint leaves", func() { c.services[0].eps = []int{1} },
			[]string{"192.0.2.77"}, []string{"192.0.2.78"}, 1, true},
		{"the affinity timeout changes", func() { c.services[0].affinity = 300 },
			[]string{"192.0.2.77"}, nil, 0, true},
		{"affinity is turned off", func() { c.services[0].affinity = 0 }, nil, []string{"192.0.2.77"}, 1, true},
	}
	for _, st := range steps {
		st.change()
		rep := syncIn(t, c.compile(t), ns, dir, false)
		if rep.Mode != SyncIncremental {
			t.Fatalf("%s: %s, want incremental", st.what, rep)
		}
		if rep.StaleClients != st.stale {
			t.Errorf("%s: %d stale clients removed, want %d", st.what, rep.StaleClients, st.stale)
		}
		got := ""
		if _, err := nstest.Exec(ns, "", "nft", "list", "map", "ip", "kpc", nftdirect.ClientsMap); err == nil {
			got = clients()
		}
		for _, k := range st.keep {
			if !strings.Contains(got, k) {
				t.Errorf("%s: client %s was lost:\n%s", st.what, k, got)
			}
		}
		for _, k := range st.lose {
			if strings.Contains(got, k) {
				t.Errorf("%s: client %s survived:\n%s", st.what, k, got)
			}
		}
		if v6 := nstest.Run(t, ns, "", "nft", "list", "set", "ip6", "kpc", v6set); !strings.Contains(v6, "2001:db8::77") {
			t.Errorf("%s: the IPv6 affinity client was lost:\n%s", st.what, v6)
		}
	}
}

// TestStateCache round-trips the state of a batch through the cache format
// and checks that damage is detected.
func TestStateCache(t *testing.T) {
	b, err := Build(nftperf.Program(300), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []*tableState
	for _, tb := range b.tables {
		st, err := tb.state("sha256:x")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st)
	}
	enc := encodeStates(want, 1<<32-1)
	got, gen, err := decodeStates(enc)
	if err != nil {
		t.Fatal(err)
	}
	if gen != 1<<32-1 {
		t.Errorf("generation %d after decoding, want %d", gen, uint32(1<<32-1))
	}
	if len(got) != len(want) {
		t.Fatalf("%d tables, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.name != g.name || w.family != g.family || w.defined != g.defined || w.fingerprint != g.fingerprint ||
			len(w.chains) != len(g.chains) || len(w.sets) != len(g.sets) {
			t.Fatalf("table %d: decoded %+v, want %+v", i, g, w)
		}
		for j := range w.chains {
			if strings.Join(w.chains[j].refs, ",") != strings.Join(g.chains[j].refs, ",") || w.chains[j].rules != g.chains[j].rules {
				t.Errorf("chain %s differs after decoding", w.chains[j].name)
			}
		}
		for j, ws := range w.sets {
			gs := g.sets[j]
			if gs.count() != ws.count() || gs.head != ws.head {
				t.Errorf("set %s: %d elements after decoding, want %d", ws.name, gs.count(), ws.count())
			}
			del, add, err := diffElems(gs, ws)
			if err != nil || len(del)+len(add) != 0 {
				t.Errorf("set %s differs from itself after decoding: %d deleted, %d added, %v", ws.name, len(del), len(add), err)
			}
		}
	}
	for _, bad := range [][]byte{nil, []byte("KPCNLST1"), enc[:len(enc)-1], append([]byte("x"), enc[1:]...)} {
		if _, _, err := decodeStates(bad); err == nil {
			t.Errorf("decoding %d damaged bytes succeeded", len(bad))
		}
	}
	flipped := append([]byte(nil), enc...)
	flipped[len(flipped)/2] ^= 1
	if _, _, err := decodeStates(flipped); err == nil {
		t.Error("decoding a flipped bit succeeded")
	}
}

// TestSyncTouchesOneService changes one endpoint of one Service among
// hundreds and checks that the update sends only that Service's elements
// (its endpoints and hairpin elements) and the fingerprint, in a handful
// of messages, and leaves the table equal to a fresh load.
func TestSyncTouchesOneService(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	ns, fresh := nstest.New(t, "kpcnl"), nstest.New(t, "kpcnl")
	p := nftperf.Generate(300, nftperf.Options{})
	if rep := syncIn(t, p, ns, dir, false); rep.Mode != SyncFull {
		t.Fatalf("first Sync: %s", rep)
	}
	// Service 150's first endpoint moves from 10.128.4.177 to 10.127.0.1.
	rs := p.Rulesets[0]
	old, moved := netip.MustParseAddr("10.128.4.177"), netip.MustParseAddr("10.127.0.1")
	vip := netip.MustParseAddr("10.96.0.151")
	changed := 0
	for _, c := range rs.Chains {
		if e := c.Endpoint; e != nil && e.DNAT.Addr == old {
			// A compact endpoint chain: its DNAT is also its hairpin
			// source.
			e.DNAT.Addr = moved
			changed++
		}
		for j := range c.Rules {
			r := &c.Rules[j]
			if d, ok := r.Action.(*ir.DNAT); ok && d.Addr == old {
				r.Action = &ir.DNAT{Addr: moved, Port: d.Port, Protocol: d.Protocol}
				changed++
			}
			if r.Match.SrcAddr == old {
				r.Match.SrcAddr = moved
			}
		}
	}
	if changed != 1 {
		t.Fatalf("%d DNATs to %s, want 1", changed, old)
	}
	b, err := Build(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]*tableState, len(b.tables))
	for i, tb := range b.tables {
		fp, _ := tableFingerprint(b.script, familyOf(tb), tb.table.Name)
		if want[i], err = tb.state(fp); err != nil {
			t.Fatal(err)
		}
	}
	path, err := cachePath(Options{NetNS: nstest.Path(ns), StateDir: dir}, "kpc")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := b.plan(want, path, Options{NetNS: nstest.Path(ns)})
	if err != nil || pl.diffs == nil {
		t.Fatalf("plan: %v, %+v", err, pl)
	}
	d := pl.diffs[0]
	if len(d.newChains)+len(d.newSets)+len(d.flushChains)+len(d.delSets)+len(d.remakeSets)+len(d.rules)+len(d.delChains) != 0 {
		t.Errorf("the update changes chains or sets: %+v", d)
	}
	for _, ops := range [][]elemOp{d.delElems, d.addElems} {
		for _, op := range ops {
			for _, e := range op.elems {
				k := e.Key
				switch op.set.Name {
				case nftdirect.EndpointsMap:
					if !bytes.HasPrefix(k, vip.AsSlice()) {
						t.Errorf("element %x of %s is not the Service's", k, op.set.Name)
					}
				case nftplan.HairpinSet:
					if a, _ := netip.AddrFromSlice(k[:4]); a != old && a != moved {
						t.Errorf("hairpin element %x is not the endpoint's", k)
					}
				case fingerprintSet:
				default:
					t.Errorf("element %x of set %s changes", k, op.set.Name)
				}
			}
		}
	}
	rep := syncIn(t, p, ns, dir, false)
	if rep.Mode != SyncIncremental || rep.Sent.Messages > 8 {
		t.Errorf("Sync: %s, want an update of at most 8 messages", rep)
	}
	t.Logf("one endpoint of one Service among 300: %s", rep)
	nstest.Run(t, fresh, string(b.Script()), "nft", "-f", "-")
	if got, want := listing(t, ns), listing(t, fresh); got != want {
		t.Errorf("the kernel differs from a fresh load (-fresh +synced):\n%s", cmp.Diff(want, got))
	}
}

// TestSyncResizesSets grows and shrinks a cluster across the sizes of its
// sets (nftplan.SetSize): an update that needs another size remakes the
// set, and the kernel then still lists as a fresh load, with no drift.
func TestSyncResizesSets(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	ns := nstest.New(t, "kpcnl")
	for i, n := range []int{1000, 1100, 1100, 600, 2100, 1000} {
		p := nftperf.Generate(n, nftperf.Options{})
		rep := syncIn(t, p, ns, dir, false)
		if i > 0 && rep.Mode == SyncFull {
			t.Errorf("%d Services: full replace: %s", n, rep)
		}
		b, err := Build(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fresh := nstest.New(t, "kpcnl")
		nstest.Run(t, fresh, string(b.Script()), "nft", "-f", "-")
		if got, want := listing(t, ns), listing(t, fresh); got != want {
			t.Fatalf("%d Services (%s): the kernel differs from a fresh load (-fresh +synced):\n%s", n, rep, cmp.Diff(want, got))
		}
		checkNoDrift(t, fmt.Sprintf("after the update to %d Services", n), ns, programCase{p: p})
		t.Logf("%d Services: %s", n, rep)
	}
}
