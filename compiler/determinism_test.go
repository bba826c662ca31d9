package compiler

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

// richInput is an input exercising most features, with a distinct position
// per document (as the loader gives them).
func richInput() *api.Input {
	in := &api.Input{
		Services: []*api.Service{
			mkSvc("ns5", "svc5", withClusterIP("172.30.0.45"), withType("LoadBalancer"), withNodePort(0, 30002),
				withLB("5.6.7.8"), withSourceRanges("203.0.113.0/25"), withAffinity(10800)),
			mkSvc("ns2", "svc2", withType("LoadBalancer"), withETP("Local"), withLB("1.2.3.4", "2001:db8::4"),
				func(s *api.Service) { s.Spec.IPFamilyPolicy = "PreferDualStack" }),
			mkSvc("ns", "dns", withType("NodePort"), func(s *api.Service) {
				s.Spec.Ports = []api.ServicePort{{Name: "udp", Protocol: "UDP", Port: 53}, {Name: "tcp", Protocol: "TCP", Port: 53}}
			}),
			mkSvc("ns", "local", withITP("Local"), withExternalIPs("192.0.2.50")),
			mkSvc("ns", "dup", withClusterIP("172.30.0.45")), // error: duplicate cluster IP
			mkSvc("ns", "headless", withClusterIP("None")),
			mkSvc("ns", "external", func(s *api.Service) { s.Spec.IPFamilyPolicy = "PreferDualStack" }),
		},
		EndpointSlices: []*api.EndpointSlice{
			mkSlice("ns5", "svc5", "svc5-a", "IPv4", 80, mkEp("10.180.0.3")),
			mkSlice("ns5", "svc5", "svc5-b", "IPv4", 80, mkEp("10.180.0.3", cond(false, true, true)), mkEp("10.180.0.30")),
			mkSlice("ns2", "svc2", "svc2-a", "IPv4", 80, mkEp("10.180.0.2", onNode("test-node")), mkEp("10.180.0.22")),
			mkSlice("ns2", "svc2", "svc2-b", "IPv6", 80, mkEp("fd00::2", onNode("other"))),
			mkSlice("ns", "local", "local-a", "IPv4", 80, mkEp("10.0.0.1", onNode("test-node")), mkEp("10.0.0.2", onNode("x"))),
		},
		Nodes: []*api.Node{
			mkNode("test-node", "zone-a", "InternalIP", "192.168.0.2", "InternalIP", "fd00:ffff::2"),
			mkNode("other", "zone-b", "InternalIP", "192.168.0.3"),
		},
		ProxyConfigs: []*api.KubeProxyConfiguration{{ClusterCIDR: "10.0.0.0/8,fd00::/48"}},
		Endpoints: []*api.Endpoints{
			mkEndpoints("ns", "external", []string{"192.0.2.61", "2001:db8::61"}, []string{"192.0.2.62"}, "p80/5432"),
			mkEndpoints("ns", "external", []string{"192.0.2.63"}, nil, "p80/5432"), // error: duplicate Endpoints
			mkEndpoints("ns", "gone", []string{"192.0.2.64"}, nil, "p80/5432"),
		},
	}
	line := 1
	for _, s := range in.Services {
		s.Pos = diag.Pos{File: "in.yaml", Line: line}
		line += 10
	}
	for _, s := range in.EndpointSlices {
		s.Pos = diag.Pos{File: "in.yaml", Line: line}
		line += 10
	}
	for _, n := range in.Nodes {
		n.Pos = diag.Pos{File: "in.yaml", Line: line}
		line += 10
	}
	for _, e := range in.Endpoints {
		e.Pos = diag.Pos{File: "in.yaml", Line: line}
		line += 10
	}
	return in
}

func dumpString(t *testing.T, p *ir.Program, d diag.List) string {
	t.Helper()
	var b bytes.Buffer
	if err := ir.Dump(&b, p); err != nil {
		t.Fatal(err)
	}
	for _, e := range d {
		fmt.Fprintln(&b, e.Error())
	}
	return b.String()
}

func TestDeterministic(t *testing.T) {
	opts := Options{NodeName: "test-node", ServiceCIDRs: prefixes("172.30.0.0/16", "fd00:30::/108")}
	p, d := Compile(richInput(), opts)
	want := dumpString(t, p, d)
	if len(d.Errors()) != 2 {
		t.Fatalf("want exactly the duplicate cluster IP and Endpoints errors, got %v", d)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		in := richInput()
		r.Shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
		r.Shuffle(len(in.EndpointSlices), func(i, j int) {
			in.EndpointSlices[i], in.EndpointSlices[j] = in.EndpointSlices[j], in.EndpointSlices[i]
		})
		r.Shuffle(len(in.Nodes), func(i, j int) { in.Nodes[i], in.Nodes[j] = in.Nodes[j], in.Nodes[i] })
		r.Shuffle(len(in.Endpoints), func(i, j int) { in.Endpoints[i], in.Endpoints[j] = in.Endpoints[j], in.Endpoints[i] })
		p, d := Compile(in, opts)
		if diff := cmp.Diff(want, dumpString(t, p, d)); diff != "" {
			t.Fatalf("shuffle %d changed the output (-want +got):\n%s", i, diff)
		}
	}
}

// TestSkipOptions checks that Options.SkipServices drops the catalog and
// nothing else, and that Options.SkipSelfCheck changes nothing on valid
// output.
func TestSkipOptions(t *testing.T) {
	full, fullDiags := Compile(richInput(), Options{})
	if len(full.Services) == 0 {
		t.Fatal("the full compile has no Service catalog")
	}
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"SkipServices", Options{SkipServices: true}},
		{"SkipSelfCheck", Options{SkipSelfCheck: true}},
		{"both", Options{SkipServices: true, SkipSelfCheck: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := Compile(richInput(), tt.opts)
			want := *full
			if tt.opts.SkipServices {
				if got.Services != nil {
					t.Errorf("Program.Services has %d entries, want none", len(got.Services))
				}
				want.Services = nil
			}
			if d := cmp.Diff(&want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
				t.Errorf("the Program differs (-full +got):\n%s", d)
			}
			if d := cmp.Diff(fullDiags.Error(), diags.Error()); d != "" {
				t.Errorf("the diagnostics differ (-full +got):\n%s", d)
			}
		})
	}
}
