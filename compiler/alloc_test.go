package compiler

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

func at(line int) func(*api.Service) {
	return func(s *api.Service) { s.Pos = diag.Pos{File: "svc.yaml", Line: line, Col: 1} }
}

func clusterIPOf(t *testing.T, p *ir.Program, f ir.Family, comment string) netip.Addr {
	t.Helper()
	for _, rs := range p.Rulesets {
		if rs.Family != f {
			continue
		}
		for _, list := range [][]ir.ServiceEntry{rs.Services, rs.NoEndpoints} {
			for _, e := range list {
				if e.Comment == comment && e.Kind == "cluster IP" {
					return e.Addr
				}
			}
		}
	}
	t.Fatalf("no %s cluster IP for %s", f, comment)
	return netip.Addr{}
}

func TestAllocateClusterIP(t *testing.T) {
	alone := mustCompile(t, &api.Input{Services: []*api.Service{mkSvc("default", "web")}}, Options{})
	ip := clusterIPOf(t, alone, ir.IPv4, "default/web:p80")
	cidr := netip.MustParsePrefix("10.96.0.0/12")
	if !cidr.Contains(ip) || ip == cidr.Addr() || ip == netip.MustParseAddr("10.96.0.1") || ip == netip.MustParseAddr("10.111.255.255") {
		t.Errorf("allocated %s: outside %s or reserved", ip, cidr)
	}
	want := []string{fmt.Sprintf("allocated cluster IP %s to default/web (no spec.clusterIP)", ip)}
	if diff := cmp.Diff(want, alone.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	// Stable whatever else is in the input.
	var many []*api.Service
	for i := range 50 {
		many = append(many, mkSvc("ns", fmt.Sprintf("s%d", i)))
	}
	many = append(many, mkSvc("default", "web"), mkSvc("x", "y", withClusterIP("10.96.0.10")))
	p := mustCompile(t, &api.Input{Services: many}, Options{})
	if got := clusterIPOf(t, p, ir.IPv4, "default/web:p80"); got != ip {
		t.Errorf("with 51 other Services: %s, alone: %s", got, ip)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range p.Rulesets[0].ClusterIPs {
		if seen[a] {
			t.Errorf("cluster IP %s allocated twice", a)
		}
		seen[a] = true
	}
	if len(seen) != 52 {
		t.Errorf("%d cluster IPs, want 52", len(seen))
	}
}

func TestAllocateClusterIPCollision(t *testing.T) {
	pool := newIPPool(netip.MustParsePrefix("10.96.0.0/12"))
	hashed, _, _ := pool.alloc(allocHash("ns/a"), func(netip.Addr) bool { return false })
	next := hashed.Next()
	in := &api.Input{Services: []*api.Service{
		mkSvc("ns", "a"),
		mkSvc("ns", "taken", withClusterIP(hashed.String())),
	}}
	p := mustCompile(t, in, Options{})
	if got := clusterIPOf(t, p, ir.IPv4, "ns/a:p80"); got != next {
		t.Errorf("ns/a got %s, want %s (probed past %s)", got, next, hashed)
	}
	want := []string{fmt.Sprintf("allocated cluster IP %s to ns/a (no spec.clusterIP; its hashed address %s was taken by ns/taken)", next, hashed)}
	if diff := cmp.Diff(want, p.Notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

func TestAllocateClusterIPExhausted(t *testing.T) {
	// A /30 has one allocatable address: .2 (.0 network, .1 reserved,
	// .3 broadcast).
	in := &api.Input{Services: []*api.Service{mkSvc("ns", "a", at(1)), mkSvc("ns", "b", at(2))}}
	p, d := Compile(in, Options{ServiceCIDRs: prefixes("192.0.2.0/30")})
	errs := errStrings(d)
	if len(errs) != 1 || !strings.Contains(errs[0], "no free address in service CIDR 192.0.2.0/30") {
		t.Fatalf("errors = %v", errs)
	}
	if got := p.Rulesets[0].ClusterIPs; !slices.Equal(got, addrs("192.0.2.2")) {
		t.Errorf("ClusterIPs = %v", got)
	}
}

func TestDualStack(t *testing.T) {
	in := &api.Input{
		Services: []*api.Service{
			mkSvc("ns", "dual", func(s *api.Service) { s.Spec.IPFamilyPolicy = "PreferDualStack" }),
			mkSvc("ns", "v6only", func(s *api.Service) { s.Spec.IPFamilies = []string{"IPv6"}; s.Spec.IPFamilyPolicy = "SingleStack" }),
			mkSvc("ns", "explicit", func(s *api.Service) {
				s.Spec.ClusterIP = "10.96.0.50"
				s.Spec.ClusterIPs = []string{"10.96.0.50", "fd00:10:96::50"}
				s.Spec.IPFamilyPolicy = "RequireDualStack"
			}),
			mkSvc("ns", "half", withClusterIP("10.96.0.60"), func(s *api.Service) { s.Spec.IPFamilyPolicy = "RequireDualStack" }),
		},
		EndpointSlices: []*api.EndpointSlice{
			mkSlice("ns", "dual", "dual-v4", "IPv4", 80, mkEp("10.0.0.1")),
			mkSlice("ns", "dual", "dual-v6", "IPv6", 80, mkEp("fd00:1::1")),
			mkSlice("ns", "explicit", "explicit-v6", "IPv6", 80, mkEp("fd00:1::2"), mkEp("10.0.0.9")),
		},
	}
	p := mustCompile(t, in, Options{})
	if len(p.Rulesets) != 2 || p.Rulesets[0].Family != ir.IPv4 || p.Rulesets[1].Family != ir.IPv6 {
		t.Fatalf("want IPv4 and IPv6 rulesets")
	}
	v4, v6 := p.Rulesets[0], p.Rulesets[1]
	if len(v4.ClusterIPs) != 3 || len(v6.ClusterIPs) != 4 {
		t.Errorf("cluster IPs v4 %v v6 %v", v4.ClusterIPs, v6.ClusterIPs)
	}
	if got := clusterIPOf(t, p, ir.IPv6, "ns/explicit:p80"); got != netip.MustParseAddr("fd00:10:96::50") {
		t.Errorf("explicit IPv6 = %s", got)
	}
	if !netip.MustParsePrefix("fd00:10:96::/108").Contains(clusterIPOf(t, p, ir.IPv6, "ns/half:p80")) {
		t.Errorf("RequireDualStack with one IP: second family not allocated")
	}
	if c := findChain(v6, "endpoint-"); c == nil || !strings.Contains(c.Name, "__fd00.1..1/80") && !strings.Contains(c.Name, "__fd00.1..2/80") {
		t.Errorf("IPv6 endpoint chain name = %v", c)
	}
	dualV6 := clusterIPOf(t, p, ir.IPv6, "ns/dual:p80")
	checkFlows(t, p, []flow{
		{desc: "v6 cluster IP", src: "fd00:2::1", dst: dualV6.String(), port: 80, want: ir.VerdictDNAT, eps: []string{"[fd00:1::1]:80"}},
		{desc: "v4 cluster IP", src: "10.1.1.1", dst: clusterIPOf(t, p, ir.IPv4, "ns/dual:p80").String(), port: 80, want: ir.VerdictDNAT, eps: []string{"10.0.0.1:80"}},
		{desc: "IPv4 address in an IPv6 slice ignored", src: "fd00:2::1", dst: "fd00:10:96::50", port: 80, want: ir.VerdictDNAT, eps: []string{"[fd00:1::2]:80"}},
	})
	var notes int
	for _, n := range p.Notes {
		if strings.Contains(n, "no IPv6 address in spec.clusterIPs") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("notes = %v", p.Notes)
	}
}

// TestDualStackNotes checks the allocation notes of a dual-stack Service
// without cluster IPs: in the order of its families, the second named by
// its index in spec.clusterIPs.
func TestDualStackNotes(t *testing.T) {
	for _, fams := range [][]string{{"IPv6", "IPv4"}, {"IPv4", "IPv6"}} {
		in := &api.Input{Services: []*api.Service{mkSvc("ns", "a", func(s *api.Service) {
			s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = "RequireDualStack", fams
		})}}
		p := mustCompile(t, in, Options{})
		if len(p.Notes) != 2 {
			t.Fatalf("%v: notes %q, want two", fams, p.Notes)
		}
		want := []string{"ns/a (no spec.clusterIP)", "ns/a (no spec.clusterIPs[1])"}
		var got []string
		for i, n := range p.Notes {
			ip, rest, _ := strings.Cut(strings.TrimPrefix(n, "allocated cluster IP "), " to ")
			a := netip.MustParseAddr(ip)
			if (fams[i] == "IPv6") != a.Is6() {
				t.Errorf("%v: note %d is of %s: %q", fams, i, ip, n)
			}
			got = append(got, rest)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v: notes (-want +got):\n%s", fams, diff)
		}
	}
}

func TestFamilyErrors(t *testing.T) {
	in := &api.Input{Services: []*api.Service{
		mkSvc("ns", "a", at(1), func(s *api.Service) { s.Spec.IPFamilies = []string{"IPv6"} }),
		mkSvc("ns", "b", at(5), func(s *api.Service) { s.Spec.IPFamilyPolicy = "RequireDualStack" }),
		mkSvc("ns", "c", at(9), func(s *api.Service) { s.Spec.IPFamilyPolicy = "PreferDualStack" }),
	}}
	_, d := Compile(in, Options{ServiceCIDRs: prefixes("10.96.0.0/16")})
	want := []string{
		"svc.yaml:1:1: Service ns/a: spec.ipFamilies[0]: IPv6 is not configured on this cluster (no IPv6 range in --service-cidr or the ServiceCIDR documents)",
		"svc.yaml:5:1: Service ns/b: spec.ipFamilyPolicy: RequireDualStack needs service CIDRs of both families (--service-cidr or ServiceCIDR documents)",
	}
	if diff := cmp.Diff(want, errStrings(d)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestAllocateNodePorts(t *testing.T) {
	in := &api.Input{Services: []*api.Service{
		mkSvc("ns", "dns", withType("NodePort"), func(s *api.Service) {
			s.Spec.Ports = []api.ServicePort{
				{Name: "dns-udp", Protocol: "UDP", Port: 53},
				{Name: "dns-tcp", Protocol: "TCP", Port: 53},
				{Name: "metrics", Protocol: "TCP", Port: 9153},
			}
		}),
		mkSvc("ns", "shared", withType("NodePort"), func(s *api.Service) {
			s.Spec.Ports = []api.ServicePort{
				{Name: "a", Protocol: "UDP", Port: 53},
				{Name: "b", Protocol: "TCP", Port: 53, NodePort: 31053},
			}
		}),
		mkSvc("ns", "lb-noalloc", withType("LoadBalancer"), func(s *api.Service) {
			s.Spec.AllocateLoadBalancerNodePorts = ptr(false)
			s.Spec.Ports = append(s.Spec.Ports, api.ServicePort{Name: "explicit", Protocol: "TCP", Port: 81, NodePort: 31081})
		}),
		mkSvc("ns", "lb-local", withType("LoadBalancer"), withETP("Local")),
	}}
	p := mustCompile(t, in, Options{})
	byComment := map[string][]uint16{}
	for _, e := range p.Rulesets[0].NoEndpointNodePorts {
		byComment[e.Comment] = append(byComment[e.Comment], e.Port)
	}
	dnsUDP, dnsTCP, metrics := byComment["ns/dns:dns-udp"], byComment["ns/dns:dns-tcp"], byComment["ns/dns:metrics"]
	if len(dnsUDP) != 1 || len(dnsTCP) != 1 || len(metrics) != 1 || dnsUDP[0] != dnsTCP[0] || dnsUDP[0] == metrics[0] {
		t.Errorf("ns/dns nodePorts udp %v tcp %v metrics %v: want the two port-53 entries to share one", dnsUDP, dnsTCP, metrics)
	}
	for _, np := range []uint16{dnsUDP[0], metrics[0]} {
		if np < 30000 || np > 32767 {
			t.Errorf("nodePort %d outside the default range", np)
		}
	}
	if got := byComment["ns/shared:a"]; !slices.Equal(got, []uint16{31053}) {
		t.Errorf("ns/shared:a nodePort = %v, want the explicit 31053 of the same port number", got)
	}
	if got := byComment["ns/lb-noalloc:p80"]; got != nil {
		t.Errorf("allocateLoadBalancerNodePorts false: got nodePort %v", got)
	}
	if got := byComment["ns/lb-noalloc:explicit"]; !slices.Equal(got, []uint16{31081}) {
		t.Errorf("explicit nodePort with allocateLoadBalancerNodePorts false = %v", got)
	}
	if hc := p.Rulesets[0].HealthCheckNodePorts; len(hc) != 1 {
		t.Errorf("HealthCheckNodePorts = %v", hc)
	}
	var kinds []string
	for _, n := range p.Notes {
		switch {
		case strings.Contains(n, "allocated nodePort"):
			kinds = append(kinds, "np")
		case strings.Contains(n, "allocated healthCheckNodePort"):
			kinds = append(kinds, "hc")
		}
	}
	// ns/dns: 2 (ports 53 and 9153); ns/lb-local: nodePort + health check.
	if len(kinds) != 4 {
		t.Errorf("notes = %v", p.Notes)
	}
	for _, n := range p.Notes {
		if strings.HasPrefix(n, "allocated nodePort") && strings.Contains(n, "ns/dns port 53 ") &&
			!strings.Contains(n, "(no spec.ports[0].nodePort, spec.ports[1].nodePort") {
			t.Errorf("shared allocation note = %q", n)
		}
	}
}

func TestDuplicateAllocations(t *testing.T) {
	in := &api.Input{Services: []*api.Service{
		mkSvc("ns", "b", at(10), withClusterIP("172.30.0.5"), withType("NodePort"), withNodePort(0, 30100)),
		mkSvc("ns", "a", at(1), withClusterIP("172.30.0.5"), withType("NodePort"), withNodePort(0, 30100)),
		mkSvc("ns", "c", at(20), withClusterIP("172.30.0.6"), withType("NodePort"), func(s *api.Service) {
			s.Spec.Ports[0].Protocol = "UDP"
			s.Spec.Ports[0].NodePort = 30100
		}),
		mkSvc("ns", "d", at(30), withClusterIP("172.30.0.7"), withExternalIPs("172.30.0.6"), func(s *api.Service) { s.Spec.Ports[0].Protocol = "UDP" }),
		mkSvc("ns", "a", at(40), withClusterIP("172.30.0.8")),
	}}
	want := []string{
		"svc.yaml:10:1: Service ns/b: spec.clusterIPs[0]: cluster IP 172.30.0.5 is already allocated to Service ns/a",
		"svc.yaml:10:1: Service ns/b: spec.ports[0].nodePort: nodePort 30100 is already allocated to Service ns/a",
		"svc.yaml:20:1: Service ns/c: spec.ports[0].nodePort: nodePort 30100 is already allocated to Service ns/a",
		"svc.yaml:30:1: Service ns/d: spec.externalIPs[0]: 172.30.0.6 port 80/UDP is already used by Service ns/c",
		"svc.yaml:40:1: Service ns/a: metadata.name: duplicate Service (first defined at svc.yaml:1:1)",
	}
	// The rulesets' conflicts are found whether their bodies are kept or
	// not.
	for _, skip := range []bool{false, true} {
		opts := kubeProxyTestOpts()
		opts.SkipRulesetBodies = skip
		p, d := Compile(in, opts)
		if diff := cmp.Diff(want, errStrings(d)); diff != "" {
			t.Errorf("SkipRulesetBodies %v: errors (-want +got):\n%s", skip, diff)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("SkipRulesetBodies %v: Validate: %v", skip, err)
		}
	}
}

func TestNodePortRangeOption(t *testing.T) {
	in := &api.Input{Services: []*api.Service{mkSvc("ns", "a", withType("NodePort")), mkSvc("ns", "b", withType("NodePort"))}}
	p := mustCompile(t, in, Options{NodePortRange: [2]int{40000, 40001}})
	var ports []uint16
	for _, e := range p.Rulesets[0].NoEndpointNodePorts {
		ports = append(ports, e.Port)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []uint16{40000, 40001}) {
		t.Errorf("nodePorts = %v", ports)
	}
	_, d := Compile(&api.Input{Services: []*api.Service{mkSvc("ns", "a", withType("NodePort")), mkSvc("ns", "b", withType("NodePort")),
		mkSvc("ns", "c", withType("NodePort"))}}, Options{NodePortRange: [2]int{40000, 40001}})
	if errs := errStrings(d); len(errs) != 1 || !strings.Contains(errs[0], "no free port in 40000-40001") {
		t.Errorf("errors = %v", errs)
	}
	_, d = Compile(in, Options{NodePortRange: [2]int{5, 1}})
	if errs := errStrings(d); len(errs) != 1 || !strings.Contains(errs[0], "invalid NodePort range 5-1") {
		t.Errorf("errors = %v", errs)
	}
}

func TestDefaultServiceCIDRs(t *testing.T) {
	v6 := func(ip string) func(*api.Service) {
		return func(s *api.Service) { s.Spec.ClusterIP, s.Spec.IPFamilies = ip, []string{"IPv6"} }
	}
	v4Default, v6Default := prefixes("10.96.0.0/12"), prefixes("fd00:10:96::/108")
	tests := []struct {
		name     string
		svcs     []*api.Service
		cidrs    []netip.Prefix // --service-cidr
		want     map[ir.Family][]netip.Prefix
		wantNote string
	}{{
		name: "inside the defaults",
		svcs: []*api.Service{mkSvc("ns", "a", withClusterIP("10.96.0.10")), mkSvc("ns", "b", v6("fd00:10:96::10")), mkSvc("ns", "c")},
		want: map[ir.Family][]netip.Prefix{ir.IPv4: v4Default, ir.IPv6: v6Default},
	}, {
		name: "an IPv4 cluster IP outside: IPv4 has no range, IPv6 keeps its",
		svcs: []*api.Service{mkSvc("ns", "a", withClusterIP("10.43.0.10")), mkSvc("ns", "b", withClusterIP("10.43.0.11")),
			mkSvc("ns", "c", withClusterIP("10.96.0.10")), mkSvc("ns", "d", v6("fd00:10:96::10"))},
		want: map[ir.Family][]netip.Prefix{ir.IPv4: nil, ir.IPv6: v6Default},
		wantNote: "cluster IP 10.43.0.10 of ns/a is outside the default IPv4 service CIDR 10.96.0.0/12, as are those of 1 more Services: " +
			"the cluster's range is not known, so no IPv4 address is dropped as unallocated; give --service-cidr with the cluster's ranges",
	}, {
		name: "an IPv4 cluster IP outside, and one allocated from the default",
		svcs: []*api.Service{mkSvc("ns", "a", withClusterIP("10.43.0.10")), mkSvc("ns", "e")},
		want: map[ir.Family][]netip.Prefix{ir.IPv4: nil},
		wantNote: "cluster IP 10.43.0.10 of ns/a is outside the default IPv4 service CIDR 10.96.0.0/12: " +
			"the cluster's range is not known, so no IPv4 address is dropped as unallocated, and the cluster IP kpc allocated is from that default range, " +
			"which the cluster may not use; give --service-cidr with the cluster's ranges",
	}, {
		name:     "an IPv6 cluster IP outside",
		svcs:     []*api.Service{mkSvc("ns", "a", withClusterIP("10.96.0.10")), mkSvc("ns", "b", v6("fd00:43::10"))},
		want:     map[ir.Family][]netip.Prefix{ir.IPv4: v4Default, ir.IPv6: nil},
		wantNote: "cluster IP fd00:43::10 of ns/b is outside the default IPv6 service CIDR fd00:10:96::/108: the cluster's range is not known, so no IPv6 address is dropped as unallocated; give --service-cidr with the cluster's ranges",
	}, {
		name:  "given ranges are kept as given",
		svcs:  []*api.Service{mkSvc("ns", "a", withClusterIP("10.43.0.10")), mkSvc("ns", "b", withClusterIP("10.96.0.10"))},
		cidrs: prefixes("10.43.0.0/16"),
		want:  map[ir.Family][]netip.Prefix{ir.IPv4: prefixes("10.43.0.0/16")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, &api.Input{Services: tt.svcs}, Options{ServiceCIDRs: tt.cidrs})
			got := map[ir.Family][]netip.Prefix{}
			for _, rs := range p.Rulesets {
				got[rs.Family] = rs.ServiceCIDRs
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("service CIDRs (-want +got):\n%s", diff)
			}
			var notes []string
			for _, n := range p.Notes {
				if !strings.HasPrefix(n, "allocated ") {
					notes = append(notes, n)
				}
			}
			var want []string
			if tt.wantNote != "" {
				want = []string{tt.wantNote}
			}
			if diff := cmp.Diff(want, notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPreferDualStackResolved(t *testing.T) {
	prefer := func(ips, fams []string) func(*api.Service) {
		return func(s *api.Service) {
			s.Spec.IPFamilyPolicy, s.Spec.ClusterIPs, s.Spec.IPFamilies = "PreferDualStack", ips, fams
			if len(ips) > 0 {
				s.Spec.ClusterIP = ips[0]
			}
		}
	}
	tests := []struct {
		name string
		svc  *api.Service
		want int // families
	}{
		{"as kubectl prints it from a single-stack cluster", mkSvc("ns", "a", prefer([]string{"10.96.0.70"}, []string{"IPv4"})), 1},
		{"an IP but no families: the second is allocated", mkSvc("ns", "a", prefer([]string{"10.96.0.70"}, nil)), 2},
		{"families but no IP: both allocated", mkSvc("ns", "a", prefer(nil, []string{"IPv4"})), 2},
		{"from a dual-stack cluster", mkSvc("ns", "a", prefer([]string{"10.96.0.70", "fd00:10:96::70"}, []string{"IPv4", "IPv6"})), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, &api.Input{Services: []*api.Service{tt.svc}}, Options{})
			if len(p.Rulesets) != tt.want {
				t.Errorf("%d Rulesets, want %d (notes %q)", len(p.Rulesets), tt.want, p.Notes)
			}
		})
	}
}

func TestServiceCIDRDocuments(t *testing.T) {
	doc := func(name string, cidrs ...string) *api.ServiceCIDR {
		return &api.ServiceCIDR{Metadata: api.ObjectMeta{Name: name}, Spec: api.ServiceCIDRSpec{CIDRs: cidrs}}
	}
	docs := []*api.ServiceCIDR{doc("extra", "10.44.0.0/16"), doc("kubernetes", "fd00:43::/108", "10.43.0.0/16")}
	svcs := []*api.Service{mkSvc("ns", "a", withClusterIP("10.43.0.10")), mkSvc("ns", "b")}
	tests := []struct {
		name  string
		cidrs []netip.Prefix // --service-cidr
		want  map[ir.Family][]netip.Prefix
	}{
		{"the documents, kubernetes first", nil, map[ir.Family][]netip.Prefix{ir.IPv4: prefixes("10.43.0.0/16", "10.44.0.0/16"), ir.IPv6: prefixes("fd00:43::/108")}},
		{"flags win", prefixes("10.43.0.0/20"), map[ir.Family][]netip.Prefix{ir.IPv4: prefixes("10.43.0.0/20")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, &api.Input{Services: svcs, ServiceCIDRs: docs}, Options{ServiceCIDRs: tt.cidrs})
			got := map[ir.Family][]netip.Prefix{}
			for _, rs := range p.Rulesets {
				got[rs.Family] = rs.ServiceCIDRs
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("service CIDRs (-want +got):\n%s", diff)
			}
			// ns/b, of no family, gets the primary one: the family of
			// the "kubernetes" document's first range.
			if tt.cidrs == nil {
				if ip := clusterIPOf(t, p, ir.IPv6, "ns/b:p80"); !netip.MustParsePrefix("fd00:43::/108").Contains(ip) {
					t.Errorf("ns/b got %s", ip)
				}
			}
		})
	}
}
