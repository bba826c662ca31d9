package compiler

import (
	"net/netip"
	"slices"
	"testing"

	"kpc/compiler/ir"
)

// TestSortChains checks that the builder's chains come out sorted by name,
// the first added of a repeated name kept, and endpoint chains built with
// their rules.
func TestSortChains(t *testing.T) {
	p := &servicePort{name: "ns/svc:http", proto: ir.TCP, affinity: true}
	ep := &endpoint{ap: netip.MustParseAddrPort("10.0.0.1:80"), str: "10.0.0.1:80", chain: "endpoint-B", set: "affinity-B"}
	first := &ir.Chain{Name: "service-A", Comment: "first", Rules: []ir.Rule{{Action: &ir.DNAT{Addr: ep.ap.Addr(), Port: 80, Protocol: ir.TCP}}}}
	b := &builder{rs: &ir.Ruleset{}}
	b.addChain(&ir.Chain{Name: "service-C"})
	b.addEndpointChain(p, ep)
	b.addChain(first)
	b.addChain(&ir.Chain{Name: "service-A", Comment: "second"})
	b.sortChains()

	got := b.rs.Chains
	names := make([]string, len(got))
	for i, c := range got {
		names[i] = c.Name
	}
	if want := []string{"endpoint-B", "service-A", "service-C"}; !slices.Equal(names, want) {
		t.Fatalf("chains %q, want %q", names, want)
	}
	epc := got[0]
	got = got[1:]
	if got[0].Comment != "first" {
		t.Errorf("kept %q of the repeated name, want the first added", got[0].Comment)
	}
	if d, ok := got[0].Rules[0].Action.(*ir.DNAT); !ok || d.Addr != ep.ap.Addr() {
		t.Errorf("copied chain lost its DNAT: %#v", got[0].Rules)
	}
	if epc == nil || epc.Kind != ir.EndpointChain || epc.Comment != "ns/svc:http -> 10.0.0.1:80" || len(epc.Rules) != 3 {
		t.Fatalf("endpoint chain %+v", epc)
	}
	if u, ok := epc.Rules[1].Action.(*ir.AffinityUpdate); !ok || u.Set != "affinity-B" {
		t.Errorf("affinity update %#v", epc.Rules[1].Action)
	}
	if epc.Rules[0].Match.SrcAddr != ep.ap.Addr() || epc.Rules[0].Comment != "hairpin" {
		t.Errorf("hairpin rule %+v", epc.Rules[0])
	}
	if cap(epc.Rules) != len(epc.Rules) {
		t.Errorf("endpoint rules share spare capacity: len %d cap %d", len(epc.Rules), cap(epc.Rules))
	}
}
