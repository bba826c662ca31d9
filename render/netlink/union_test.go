//go:build linux

package netlink

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/nstest"
)

// compileText loads and compiles manifests given as text.
func compileText(t testing.TB, text string) *ir.Program {
	t.Helper()
	file := filepath.Join(t.TempDir(), "in.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	input, diags := load.Load([]string{file}, nil, load.Options{})
	if err := diags.Err(); err != nil {
		t.Fatalf("load: %v\n%s", err, text)
	}
	p, diags := compiler.Compile(input, compiler.Options{SkipServices: true})
	if err := diags.Err(); err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// servicePart is the contribution of one Service of the cluster.
func servicePart(t *testing.T, s *clusterService, ids *uint32) *Part {
	t.Helper()
	p, err := NewPart(compileText(t, clusterHeader+s.yaml()), Options{}, ids)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fingerprints matches the fingerprint element's comment in a listing.
var fingerprints = regexp.MustCompile(`1 comment "[^"]*"`)

// TestUnionRandomSequences applies seeded random sequences of changes to a
// synthetic cluster, each Service a part, through Union.Update, falling
// back to a full replace where Update asks for one, and checks after each
// change that the kernel's tables list exactly as a fresh load of the
// whole cluster's text (but for the fingerprint), that Compare finds no
// drift but the fingerprint, and that most changes were updates.
func TestUnionRandomSequences(t *testing.T) {
	nstest.Require(t, "nft")
	steps := 40
	if testing.Short() {
		steps = 12
	}
	var total [2]int // updates, changes
	defer func() {
		if total[0] < total[1]*4/5 {
			t.Errorf("only %d of %d changes were updates", total[0], total[1])
		}
	}()
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6, 7, 8} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			ns, fresh := nstest.New(t, "kpcnl"), nstest.New(t, "kpcnl")
			o := Options{NetNS: nstest.Path(ns)}
			c := &cluster{}
			for i := 0; i < 8; i++ {
				c.mutate(r)
			}
			u := NewUnion("kpc", o)
			parts := map[int]*Part{}
			texts := map[int]string{}
			var ids uint32
			for _, s := range c.services {
				parts[s.id], texts[s.id] = servicePart(t, s, &ids), s.yaml()
				if err := u.Count(parts[s.id]); err != nil {
					t.Fatal(err)
				}
			}
			replace := func() {
				t.Helper()
				b, err := Build(compileText(t, c.yaml()), o)
				if err != nil {
					t.Fatal(err)
				}
				full := o
				full.Full = true
				rep, err := SyncBatch(b, full)
				if err != nil {
					t.Fatal(err)
				}
				sum, err := b.Summary()
				if err != nil {
					t.Fatal(err)
				}
				if err := u.Adopt(sum, rep.Generation); err != nil {
					// With no Service, no part defines the tables kept
					// for the Service ranges: the union cannot follow
					// them, and the next change replaces them again.
					if len(c.services) > 0 {
						t.Fatalf("Adopt: %v", err)
					}
					t.Logf("no Service left: %v", err)
				}
			}
			// Once counted and in the kernel, a part is only taken back:
			// slim and shared, as the watcher keeps it.
			slim := func() {
				for _, p := range parts {
					p.Slim()
					u.Share(p)
				}
			}
			replace()
			slim()
			updates, fulls := 0, 0
			for step := 1; step <= steps; step++ {
				what := c.mutate(r)
				var changes []Change
				next := map[int]*Part{}
				now := map[int]string{}
				var ids uint32
				for _, s := range c.services {
					now[s.id] = s.yaml()
					if texts[s.id] == now[s.id] {
						next[s.id] = parts[s.id]
						continue
					}
					next[s.id] = servicePart(t, s, &ids)
					changes = append(changes, Change{Old: parts[s.id], New: next[s.id]})
				}
				for id, p := range parts {
					if _, ok := now[id]; !ok {
						changes = append(changes, Change{Old: p})
					}
				}
				rep, err := u.Update(changes)
				switch {
				case errors.Is(err, ErrNeedFull):
					fulls++
					t.Logf("step %d (%s): %v", step, what, err)
					for _, ch := range changes {
						if ch.Old != nil {
							if err := u.Uncount(ch.Old); err != nil {
								t.Fatal(err)
							}
						}
						if ch.New != nil {
							if err := u.Count(ch.New); err != nil {
								t.Fatal(err)
							}
						}
					}
					replace()
				case err != nil:
					t.Fatalf("step %d (%s): Update: %v", step, what, err)
				default:
					updates++
					t.Logf("step %d (%s): %s", step, what, rep)
				}
				parts, texts = next, now
				slim()

				b, err := Build(compileText(t, c.yaml()), Options{})
				if err != nil {
					t.Fatal(err)
				}
				nstest.Run(t, fresh, string(b.Script()), "nft", "-f", "-")
				got := fingerprints.ReplaceAllString(listing(t, ns), "FP")
				want := fingerprints.ReplaceAllString(listing(t, fresh), "FP")
				if got != want {
					t.Fatalf("step %d (%s): the kernel differs from a fresh load (-fresh +updated):\n%s", step, what, cmp.Diff(want, got))
				}
			}
			t.Logf("%d changes: %d updates, %d full replaces", steps, updates, fulls)
			if updates < steps/2 {
				t.Errorf("only %d of %d changes were updates", updates, steps)
			}
			total[0] += updates
			total[1] += steps
		})
	}
}

// TestSlimPart checks that a slim Part is taken back as it was counted,
// and that it cannot be counted again.
func TestSlimPart(t *testing.T) {
	c := &cluster{}
	r := rand.New(rand.NewPCG(3, 7))
	for i := 0; i < 4; i++ {
		c.mutate(r)
	}
	u := NewUnion("kpc", Options{})
	parts := countAll(t, u, c.services)
	for _, p := range parts {
		p.Slim()
		if err := u.Count(p); err == nil {
			t.Fatal("a slim part was counted again")
		}
	}
	uncountAll(t, u, parts)
}

// countAll counts the part of each Service of services in u.
func countAll(t *testing.T, u *Union, services []*clusterService) []*Part {
	t.Helper()
	var ids uint32
	var parts []*Part
	for _, s := range services {
		p := servicePart(t, s, &ids)
		if err := u.Count(p); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	return parts
}

// uncountAll takes every part back from u and checks that nothing is
// counted any more.
func uncountAll(t *testing.T, u *Union, parts []*Part) {
	t.Helper()
	for _, p := range parts {
		if err := u.Uncount(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, ut := range u.tables {
		if ut.parts != 0 || ut.slotted != 0 {
			t.Errorf("table %s: %d parts, %d slotted elements left", tableLabel(ut.table), ut.parts, ut.slotted)
		}
		for name, tl := range ut.chains {
			if tl.total() != 0 {
				t.Errorf("chain %s: %d contributions left", name, tl.total())
			}
		}
		for name, us := range ut.sets {
			if us.head.total() != 0 {
				t.Errorf("set %s: %d contributions left", name, us.head.total())
			}
			for k, tl := range us.elems {
				if tl.total() != 0 {
					t.Errorf("set %s, element %x: %d contributions left", name, k, tl.total())
				}
			}
		}
	}
}

// BenchmarkNewPart builds the parts of the Services of a small synthetic
// cluster (a mix of ports, types, policies, affinity and families): the
// work kpc apply --watch does per Service at start and per changed
// Service.
func BenchmarkNewPart(b *testing.B) {
	c := &cluster{}
	r := rand.New(rand.NewPCG(5, 7))
	for len(c.services) < 8 {
		c.mutate(r)
	}
	var progs []*ir.Program
	for _, s := range c.services {
		progs = append(progs, compileText(b, clusterHeader+s.yaml()))
	}
	b.ReportAllocs()
	for b.Loop() {
		var ids uint32
		for _, p := range progs {
			if _, err := NewPart(p, Options{}, &ids); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(progs)), "ns/part")
}

// TestShareBare checks that the slim Parts' tables of a family in which
// they hold no Service are shared, the others not, and that shared Parts
// are taken back as they were counted.
func TestShareBare(t *testing.T) {
	c := &cluster{}
	port := []clusterPort{{port: 80, target: 8080, proto: "TCP"}}
	c.services = []*clusterService{{id: 1, typ: "ClusterIP", ports: port, eps: []int{1}}, {id: 2, typ: "ClusterIP", ports: port, eps: []int{2}}, {id: 3, typ: "ClusterIP", v6: true, ports: port, eps: []int{3}}}
	u := NewUnion("kpc", Options{})
	parts := countAll(t, u, c.services)
	for _, p := range parts {
		before := slices.Clone(p.tables)
		u.Share(p) // not slim: nothing shared
		if !slices.Equal(before, p.tables) || len(u.bare[0])+len(u.bare[1]) > 1 {
			t.Fatalf("a Part that is not slim was shared")
		}
		p.Slim()
		u.Share(p)
	}
	ip6 := func(p *Part) *partTable {
		for _, pt := range p.tables {
			if pt.table.Family == famIPv6.table {
				return pt
			}
		}
		t.Fatal("no IPv6 table")
		return nil
	}
	if a, b := ip6(parts[0]), ip6(parts[1]); a != b || !a.serviceless {
		t.Errorf("the IPv4 Services' IPv6 tables: %p and %p, serviceless %v: want one shared table", a, b, a.serviceless)
	}
	if v6 := ip6(parts[2]); v6 == ip6(parts[0]) || v6.serviceless {
		t.Errorf("the IPv6 Service's table is shared or serviceless")
	}
	if n := len(u.bare[1]); n != 1 {
		t.Errorf("%d bare IPv6 tables kept, want 1", n)
	}
	uncountAll(t, u, parts)
}
