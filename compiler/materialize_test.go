package compiler

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"kpc/compiler/api"
	"kpc/compiler/ir"
	"kpc/internal/par"
)

// TestSortChains checks that the builder's chains come out sorted by name,
// the first added of a repeated name kept, and endpoint chains built
// compact.
func TestSortChains(t *testing.T) {
	p := &servicePort{name: "ns/svc:http", proto: ir.TCP, affinity: true}
	ep := &endpoint{ap: netip.MustParseAddrPort("10.0.0.1:80"), chain: "endpoint-B", set: "affinity-B"}
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
	if epc == nil || epc.Kind != ir.EndpointChain || epc.Describe() != "ns/svc:http -> 10.0.0.1:80" || len(epc.Rules) != 0 || epc.Endpoint == nil {
		t.Fatalf("endpoint chain %+v", epc)
	}
	want := ir.EndpointTarget{DNAT: ir.DNAT{Addr: ep.ap.Addr(), Port: 80, Protocol: ir.TCP}, Update: ir.AffinityUpdate{Set: "affinity-B"}}
	if *epc.Endpoint != want {
		t.Errorf("endpoint target %+v, want %+v", *epc.Endpoint, want)
	}
}

// TestCompileManyServices compiles enough Services and endpoints for the
// parallel steps (the endpoint work, the sort of the chains and their
// layout) to run on several CPUs, in two orders: the Programs are equal
// (run with -race to check the steps share nothing).
func TestCompileManyServices(t *testing.T) {
	in := &api.Input{}
	for i := range 8400 {
		ns, name := fmt.Sprintf("ns%d", i%7), fmt.Sprintf("svc%d", i)
		in.Services = append(in.Services, mkSvc(ns, name, withClusterIP(fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250))))
		in.EndpointSlices = append(in.EndpointSlices, mkSlice(ns, name, name+"-x", "IPv4", 8080,
			mkEp(fmt.Sprintf("10.128.%d.%d", i/250, 1+i%250)), mkEp(fmt.Sprintf("10.129.%d.%d", i/250, 1+i%250)),
			mkEp(fmt.Sprintf("10.130.%d.%d", i/250, 1+i%250), onNode("node-a"))))
	}
	want, diags := Compile(in, Options{})
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(want.Rulesets[0].Chains); n < 2*par.MinSortRun {
		t.Fatalf("%d chains: too few for their sort to run in parallel", n)
	}
	slices.Reverse(in.Services)
	slices.Reverse(in.EndpointSlices)
	got, _ := Compile(in, Options{})
	var a, b bytes.Buffer
	if err := ir.Dump(&a, want); err != nil {
		t.Fatal(err)
	}
	if err := ir.Dump(&b, got); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("the Program depends on the order of the input")
	}
}
