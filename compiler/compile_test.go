package compiler

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

// kubeProxyTestOpts mirror kube-proxy's NewFakeProxier: node "test-node"
// with IP 192.168.0.2, cluster CIDR 10.0.0.0/8, service CIDR 172.30.0.0/16.
func kubeProxyTestOpts() Options {
	return Options{
		NodeName:     "test-node",
		NodeIPs:      addrs("192.168.0.2"),
		ClusterCIDRs: prefixes("10.0.0.0/8"),
		ServiceCIDRs: prefixes("172.30.0.0/16"),
	}
}

func mustCompile(t *testing.T, in *api.Input, opts Options) *ir.Program {
	t.Helper()
	p, d := Compile(in, opts)
	if err := d.Err(); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p
}

// TestSvc5 compares the whole IR of SEMANTICS.md §1.7's svc5 with
// kube-proxy's expected nftables rules, transcribed.
func TestSvc5(t *testing.T) {
	in := &api.Input{
		Services: []*api.Service{mkSvc("ns5", "svc5", withClusterIP("172.30.0.45"), withType("LoadBalancer"),
			withNodePort(0, 3002), withLB("5.6.7.8"), withSourceRanges("203.0.113.0/25"), withAffinity(10800))},
		EndpointSlices: []*api.EndpointSlice{mkSlice("ns5", "svc5", "svc5abc", "IPv4", 80, mkEp("10.180.0.3"))},
	}
	p := mustCompile(t, in, kubeProxyTestOpts())
	const (
		svc = "service-HVFWP5L3-ns5/svc5/tcp/p80"
		ext = "external-HVFWP5L3-ns5/svc5/tcp/p80"
		fw  = "firewall-HVFWP5L3-ns5/svc5/tcp/p80"
		ep  = "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		aff = "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		spn = "ns5/svc5:p80"
	)
	lbIP, cip := netip.MustParseAddr("5.6.7.8"), netip.MustParseAddr("172.30.0.45")
	want := &ir.Program{Rulesets: []*ir.Ruleset{{
		Family:   ir.IPv4,
		Table:    "kpc",
		MasqMark: 0x4000,
		Node: ir.Node{
			Name:          "test-node",
			IPs:           addrs("192.168.0.2"),
			PodCIDRs:      prefixes("10.0.0.0/8"),
			NodePortAddrs: addrs("192.168.0.2"),
			// No nodePortAddresses: nftables mode's default, the primary
			// IP; iptables mode's, every local address.
			NodePortDefault:    true,
			LocalhostNodePorts: true,
		},
		Services: []ir.ServiceEntry{
			{Addr: lbIP, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: ext}, Comment: spn, Kind: "load balancer IP"},
			{Addr: cip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: svc}, Comment: spn, Kind: "cluster IP"},
		},
		NodePorts:        []ir.NodePortEntry{{Protocol: ir.TCP, Port: 3002, Target: ir.Target{Chain: ext}, Comment: spn}},
		Firewall:         []ir.ServiceEntry{{Addr: lbIP, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: fw}, Comment: spn, Kind: "load balancer IP"}},
		ClusterIPs:       []netip.Addr{cip},
		RejectClusterIPs: true,
		ServiceCIDRs:     prefixes("172.30.0.0/16"),
		DropServiceCIDRs: true,
		Chains: []*ir.Chain{
			// Compact: the hairpin mark, the affinity update, the DNAT;
			// Describe gives the comment.
			{Name: ep, Kind: ir.EndpointChain, Service: spn, Protocol: ir.TCP, Endpoint: &ir.EndpointTarget{
				DNAT:   ir.DNAT{Addr: netip.MustParseAddr("10.180.0.3"), Port: 80, Protocol: ir.TCP},
				Update: ir.AffinityUpdate{Set: aff},
			}},
			{Name: ext, Kind: ir.ExternalChain, Service: spn, Protocol: ir.TCP, Comment: spn + " external destinations", Rules: []ir.Rule{
				{Action: &ir.MarkMasq{}, Comment: "masquerade traffic for " + spn + " external destinations"},
				{Action: &ir.Goto{Chain: svc}},
			}},
			{Name: fw, Kind: ir.FirewallChain, Service: spn, Protocol: ir.TCP, Comment: spn + " loadBalancerSourceRanges", Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: prefixes("203.0.113.0/25")}, Action: &ir.Drop{}, Comment: "other traffic to " + spn + " load balancer IPs"},
			}},
			{Name: svc, Kind: ir.ServiceChain, Service: spn, Protocol: ir.TCP, Comment: spn + " cluster endpoints", Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: cip, DstPort: 80, SrcNotIn: prefixes("10.0.0.0/8")}, Action: &ir.MarkMasq{}, Comment: spn + " cluster IP"},
				{Match: ir.Match{Affinity: aff}, Action: &ir.Goto{Chain: ep}, Comment: spn + " -> 10.180.0.3:80"},
				{Action: &ir.Balance{Chains: []string{ep}}},
			}},
		},
		AffinitySets: []ir.AffinitySet{{Name: aff, Timeout: 10800 * time.Second, Comment: spn + " -> 10.180.0.3:80"}},
	}}}
	if diff := cmp.Diff(want, p, cmpNet, cmpopts.IgnoreFields(ir.Program{}, "Services")); diff != "" {
		t.Errorf("svc5 IR mismatch (-want +got):\n%s", diff)
	}
	if got, want := p.Rulesets[0].Chains[0].Describe(), spn+" -> 10.180.0.3:80"; got != want {
		t.Errorf("endpoint chain described as %q, want %q", got, want)
	}
}

// flow is one expected packet fate.
type flow struct {
	desc     string
	src, dst string
	proto    ir.Protocol // default TCP
	port     uint16
	fromNode bool
	mode     ir.Mode
	want     ir.Verdict
	eps      []string // reached endpoints, sorted
	masq     bool     // for every reach, or the non-DNAT verdict
}

func checkFlows(t *testing.T, p *ir.Program, flows []flow) {
	t.Helper()
	for _, f := range flows {
		proto := f.proto
		if proto == "" {
			proto = ir.TCP
		}
		pkt := ir.Packet{Src: netip.MustParseAddr(f.src), Dst: netip.MustParseAddr(f.dst), Protocol: proto, Port: f.port, FromNode: f.fromNode}
		res := ir.Trace(p, pkt, f.mode)
		var eps []string
		masq := res.Masquerade
		for i, r := range res.Reaches {
			eps = append(eps, r.Endpoint.String())
			if i == 0 {
				masq = r.Masquerade
			} else if r.Masquerade != masq {
				t.Errorf("%s: reaches differ in masquerade: %+v", f.desc, res.Reaches)
			}
		}
		if res.Verdict != f.want || !slices.Equal(eps, f.eps) || masq != f.masq {
			t.Errorf("%s: got %v %v masq=%v (path %v), want %v %v masq=%v", f.desc, res.Verdict, eps, masq, res.Path, f.want, f.eps, f.masq)
		}
	}
}

func TestCompileBehaviour(t *testing.T) {
	const (
		external = "203.0.113.9"
		pod      = "10.1.2.3"
		node     = "192.168.0.2"
	)
	dnat, drop, reject, untouched := ir.VerdictDNAT, ir.VerdictDrop, ir.VerdictReject, ir.VerdictUntouched
	tests := []struct {
		name  string
		in    api.Input
		opts  *Options // default kubeProxyTestOpts
		check func(t *testing.T, p *ir.Program)
		flows []flow
	}{
		{
			name: "svc5 flows",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns5", "svc5", withClusterIP("172.30.0.45"), withType("LoadBalancer"),
					withNodePort(0, 3002), withLB("5.6.7.8"), withSourceRanges("203.0.113.0/25"), withAffinity(10800))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns5", "svc5", "svc5abc", "IPv4", 80, mkEp("10.180.0.3"))},
			},
			flows: []flow{
				{desc: "allowed source to LB", src: external, dst: "5.6.7.8", port: 80, want: dnat, eps: []string{"10.180.0.3:80"}, masq: true},
				{desc: "blocked source to LB", src: "198.51.100.1", dst: "5.6.7.8", port: 80, want: drop},
				{desc: "pod to LB is filtered", src: pod, dst: "5.6.7.8", port: 80, want: drop},
				{desc: "NodePort ignores source ranges", src: "198.51.100.1", dst: node, port: 3002, want: dnat, eps: []string{"10.180.0.3:80"}, masq: true},
				{desc: "pod to cluster IP", src: pod, dst: "172.30.0.45", port: 80, want: dnat, eps: []string{"10.180.0.3:80"}},
				{desc: "off-cluster to cluster IP", src: external, dst: "172.30.0.45", port: 80, want: dnat, eps: []string{"10.180.0.3:80"}, masq: true},
				{desc: "hairpin", src: "10.180.0.3", dst: "172.30.0.45", port: 80, want: dnat, eps: []string{"10.180.0.3:80"}, masq: true},
				{desc: "wrong port nft", src: pod, dst: "172.30.0.45", port: 81, want: reject},
				{desc: "wrong port iptables", src: pod, dst: "172.30.0.45", port: 81, mode: ir.ModeIPTables, want: untouched},
				{desc: "unallocated", src: pod, dst: "172.30.1.1", port: 80, want: drop},
				{desc: "NodePort on a non-node address", src: external, dst: "192.168.0.3", port: 3002, want: untouched},
			},
		},
		{
			// kube-proxy's informers leave the label's objects out, though
			// the Service has a cluster IP.
			name: "a Service labelled headless gets no rules",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "echo", withClusterIP("172.30.0.62"),
						func(s *api.Service) { s.Metadata.Labels = map[string]string{api.HeadlessLabel: ""} }),
				},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "echo", "echo-1", "IPv4", 80, mkEp("10.180.0.62"))},
			},
			check: func(t *testing.T, p *ir.Program) {
				if !slices.Contains(p.Notes, `Service ns/echo is labelled service.kubernetes.io/headless: kube-proxy does not watch objects with that label (it marks a headless Service's), and kpc writes no rules for it`) {
					t.Errorf("notes = %q", p.Notes)
				}
			},
			flows: []flow{
				{desc: "its cluster IP", src: pod, dst: "172.30.0.62", port: 80, want: drop},
				{desc: "its cluster IP, iptables mode", src: pod, dst: "172.30.0.62", port: 80, mode: ir.ModeIPTables, want: untouched},
			},
		},
		{
			name: "a Service of another proxy gets no rules but keeps its addresses",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "mesh", withClusterIP("172.30.0.60"), withType("NodePort"), withNodePort(0, 3010),
						func(s *api.Service) { s.Metadata.Labels = map[string]string{api.ServiceProxyNameLabel: "other"} }),
					mkSvc("ns", "web", withClusterIP("172.30.0.61")),
				},
				EndpointSlices: []*api.EndpointSlice{
					mkSlice("ns", "mesh", "mesh-1", "IPv4", 80, mkEp("10.180.0.60")),
					mkSlice("ns", "web", "web-1", "IPv4", 80, mkEp("10.180.0.61")),
				},
			},
			check: func(t *testing.T, p *ir.Program) {
				if !slices.Contains(p.Notes, `Service ns/mesh is labelled service.kubernetes.io/service-proxy-name="other": kube-proxy leaves it to that proxy, and kpc writes no rules for it`) {
					t.Errorf("notes = %q", p.Notes)
				}
				if slices.Contains(p.Rulesets[0].ClusterIPs, netip.MustParseAddr("172.30.0.60")) {
					t.Errorf("cluster IPs %v hold the other proxy's", p.Rulesets[0].ClusterIPs)
				}
			},
			flows: []flow{
				{desc: "the other proxy's cluster IP", src: pod, dst: "172.30.0.60", port: 80, want: drop},
				{desc: "its NodePort", src: external, dst: node, port: 3010, want: untouched},
				{desc: "another Service", src: pod, dst: "172.30.0.61", port: 80, want: dnat, eps: []string{"10.180.0.61:80"}},
			},
		},
		{
			name: "eTP Local without local endpoints (svc2)",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns2", "svc2", withClusterIP("172.30.0.42"), withType("LoadBalancer"), withETP("Local"),
					withNodePort(0, 3001), withLB("1.2.3.4"), withExternalIPs("192.168.99.22"), func(s *api.Service) { s.Spec.HealthCheckNodePort = 30000 })},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns2", "svc2", "svc2abc", "IPv4", 80, mkEp("10.180.0.2", onNode("other-node")))},
			},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				want := []ir.ServiceEntry{
					{Addr: netip.MustParseAddr("1.2.3.4"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Drop: true}, Comment: "ns2/svc2:p80", Kind: "load balancer IP"},
					{Addr: netip.MustParseAddr("192.168.99.22"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Drop: true}, Comment: "ns2/svc2:p80", Kind: "external IP"},
				}
				if diff := cmp.Diff(want, rs.NoEndpoints, cmpNet); diff != "" {
					t.Errorf("NoEndpoints (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]ir.NodePortEntry{{Protocol: ir.TCP, Port: 3001, Target: ir.Target{Drop: true}, Comment: "ns2/svc2:p80"}}, rs.NoEndpointNodePorts); diff != "" {
					t.Errorf("NoEndpointNodePorts (-want +got):\n%s", diff)
				}
				if !slices.Equal(rs.HealthCheckNodePorts, []uint16{30000}) {
					t.Errorf("HealthCheckNodePorts = %v", rs.HealthCheckNodePorts)
				}
				if c := findChain(rs, "local-"); c != nil {
					t.Errorf("unexpected local chain %s", c.Name)
				}
			},
			flows: []flow{
				{desc: "external to LB", src: external, dst: "1.2.3.4", port: 80, want: drop},
				{desc: "external to external IP", src: external, dst: "192.168.99.22", port: 80, want: drop},
				{desc: "external to NodePort", src: external, dst: node, port: 3001, want: drop},
				{desc: "pod to LB short-circuits", src: pod, dst: "1.2.3.4", port: 80, want: dnat, eps: []string{"10.180.0.2:80"}},
				{desc: "node to LB short-circuits, masqueraded", src: node, dst: "1.2.3.4", port: 80, fromNode: true, want: dnat, eps: []string{"10.180.0.2:80"}, masq: true},
				{desc: "node to NodePort", src: node, dst: node, port: 3001, fromNode: true, want: dnat, eps: []string{"10.180.0.2:80"}, masq: true},
				{desc: "cluster IP still works", src: pod, dst: "172.30.0.42", port: 80, want: dnat, eps: []string{"10.180.0.2:80"}},
			},
		},
		{
			name: "eTP Local with a local endpoint",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "web", withClusterIP("172.30.0.10"), withType("LoadBalancer"), withETP("Local"),
					withNodePort(0, 30080), withLB("198.51.100.10"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "web", "web-1", "IPv4", 8080,
					mkEp("10.0.1.1", onNode("test-node")), mkEp("10.0.2.1", onNode("other")))},
			},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				if len(rs.NoEndpoints) != 0 || len(rs.NoEndpointNodePorts) != 0 {
					t.Errorf("unexpected no-endpoint entries: %+v %+v", rs.NoEndpoints, rs.NoEndpointNodePorts)
				}
				if len(rs.HealthCheckNodePorts) != 1 {
					t.Errorf("HealthCheckNodePorts = %v, want one allocated", rs.HealthCheckNodePorts)
				}
			},
			flows: []flow{
				{desc: "external to LB: local endpoint, source kept", src: external, dst: "198.51.100.10", port: 80, want: dnat, eps: []string{"10.0.1.1:8080"}},
				{desc: "external to NodePort: local endpoint", src: external, dst: node, port: 30080, want: dnat, eps: []string{"10.0.1.1:8080"}},
				{desc: "pod to LB: every endpoint", src: pod, dst: "198.51.100.10", port: 80, want: dnat, eps: []string{"10.0.1.1:8080", "10.0.2.1:8080"}},
				{desc: "cluster IP: every endpoint", src: pod, dst: "172.30.0.10", port: 80, want: dnat, eps: []string{"10.0.1.1:8080", "10.0.2.1:8080"}},
			},
		},
		{
			name: "no endpoints at all: reject everywhere",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns6", "svc6", withClusterIP("172.30.0.46"), withType("LoadBalancer"), withETP("Local"),
					withNodePort(0, 30006), withLB("198.51.100.6"), withExternalIPs("192.0.2.6"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns6", "svc6", "svc6abc", "IPv4", 80, mkEp("10.180.0.6", cond(false, false, false)))},
			},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				if len(rs.Services) != 0 || len(rs.NodePorts) != 0 || len(rs.Chains) != 0 {
					t.Errorf("unexpected dispatch: %+v %+v %d chains", rs.Services, rs.NodePorts, len(rs.Chains))
				}
				if len(rs.NoEndpoints) != 3 {
					t.Errorf("NoEndpoints = %+v", rs.NoEndpoints)
				}
			},
			flows: []flow{
				{desc: "cluster IP", src: pod, dst: "172.30.0.46", port: 80, want: reject},
				{desc: "LB IP", src: external, dst: "198.51.100.6", port: 80, want: reject},
				{desc: "external IP", src: external, dst: "192.0.2.6", port: 80, want: reject},
				{desc: "NodePort", src: external, dst: node, port: 30006, want: reject},
			},
		},
		{
			name: "iTP Local",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "remote", withClusterIP("172.30.0.20"), withITP("Local")),
					mkSvc("ns", "mixed", withClusterIP("172.30.0.21"), withITP("Local")),
				},
				EndpointSlices: []*api.EndpointSlice{
					mkSlice("ns", "remote", "remote-1", "IPv4", 80, mkEp("10.0.2.1", onNode("other"))),
					mkSlice("ns", "mixed", "mixed-1", "IPv4", 80, mkEp("10.0.1.1", onNode("test-node")), mkEp("10.0.2.2", onNode("other"))),
				},
			},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				c := findChain(rs, "local-")
				if c == nil || !strings.Contains(c.Name, "ns/mixed/") || c.Rules[0].Match.DstAddr != netip.MustParseAddr("172.30.0.21") {
					t.Errorf("local chain of ns/mixed with the masquerade rule first: %+v", c)
				}
				if findChain(rs, "service-") != nil {
					t.Errorf("no service- chain expected with iTP Local and no external access")
				}
			},
			flows: []flow{
				{desc: "only remote endpoints: drop", src: pod, dst: "172.30.0.20", port: 80, want: drop},
				{desc: "local endpoint only", src: pod, dst: "172.30.0.21", port: 80, want: dnat, eps: []string{"10.0.1.1:80"}},
			},
		},
		{
			name: "terminating fallback, cluster and local separately",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "term", withClusterIP("172.30.0.30")),
					mkSvc("ns", "local", withClusterIP("172.30.0.31"), withType("NodePort"), withNodePort(0, 30031), withETP("Local")),
				},
				EndpointSlices: []*api.EndpointSlice{
					mkSlice("ns", "term", "term-1", "IPv4", 80,
						mkEp("10.0.0.1", cond(false, true, true)),   // serving terminating
						mkEp("10.0.0.2", cond(false, false, true)),  // terminating, not serving
						mkEp("10.0.0.3", cond(false, true, false))), // serving, not ready, not terminating
					mkSlice("ns", "local", "local-1", "IPv4", 80,
						mkEp("10.0.1.1", onNode("test-node"), cond(false, true, true)),
						mkEp("10.0.2.1", onNode("other"))),
				},
			},
			flows: []flow{
				{desc: "only serving-terminating used", src: pod, dst: "172.30.0.30", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}},
				{desc: "cluster uses ready remote", src: pod, dst: "172.30.0.31", port: 80, want: dnat, eps: []string{"10.0.2.1:80"}},
				{desc: "local falls back to terminating local", src: external, dst: node, port: 30031, want: dnat, eps: []string{"10.0.1.1:80"}},
			},
		},
		{
			name: "topology hints",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "zoned", withClusterIP("172.30.0.40")),
					mkSvc("ns", "partial", withClusterIP("172.30.0.41")),
					mkSvc("ns", "otherzone", withClusterIP("172.30.0.42")),
					mkSvc("ns", "samenode", withClusterIP("172.30.0.43")),
				},
				EndpointSlices: []*api.EndpointSlice{
					mkSlice("ns", "zoned", "z", "IPv4", 80, mkEp("10.0.0.1", zoneHints("zone-a")), mkEp("10.0.0.2", zoneHints("zone-b")),
						mkEp("10.0.0.3", cond(false, false, false))), // not ready: needs no hint
					mkSlice("ns", "partial", "p", "IPv4", 80, mkEp("10.0.0.1", zoneHints("zone-a")), mkEp("10.0.0.2")),
					mkSlice("ns", "otherzone", "o", "IPv4", 80, mkEp("10.0.0.1", zoneHints("zone-b")), mkEp("10.0.0.2", zoneHints("zone-c"))),
					mkSlice("ns", "samenode", "s", "IPv4", 80, mkEp("10.0.0.1", nodeHints("test-node"), zoneHints("zone-b")),
						mkEp("10.0.0.2", nodeHints("other"), zoneHints("zone-a"))),
				},
				Nodes: []*api.Node{{Metadata: api.ObjectMeta{Name: "test-node", Labels: map[string]string{api.ZoneLabel: "zone-a"}}}},
			},
			flows: []flow{
				{desc: "zone hints", src: pod, dst: "172.30.0.40", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}},
				{desc: "an endpoint without hints disables them", src: pod, dst: "172.30.0.41", port: 80, want: dnat, eps: []string{"10.0.0.1:80", "10.0.0.2:80"}},
				{desc: "no hint for this zone", src: pod, dst: "172.30.0.42", port: 80, want: dnat, eps: []string{"10.0.0.1:80", "10.0.0.2:80"}},
				{desc: "node hints win", src: pod, dst: "172.30.0.43", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}},
			},
		},
		{
			name: "LB ingress: ipMode Proxy and hostname-only skipped; family filtered",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "lb", withClusterIP("172.30.0.50"), withType("LoadBalancer"), withNodePort(0, 30050),
					func(s *api.Service) {
						s.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{
							{IP: "198.51.100.1", IPMode: ptr("Proxy")},
							{Hostname: "lb.example.com"},
							{IP: "198.51.100.2"},
							{IP: "2001:db8::5"},
						}
					})},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "lb", "lb-1", "IPv4", 80, mkEp("10.0.0.1"))},
			},
			check: func(t *testing.T, p *ir.Program) {
				var got []string
				for _, e := range p.Rulesets[0].Services {
					got = append(got, e.Addr.String()+" "+e.Kind)
				}
				want := []string{"172.30.0.50 cluster IP", "198.51.100.2 load balancer IP"}
				if !slices.Equal(got, want) {
					t.Errorf("Services = %v, want %v", got, want)
				}
				if len(p.Rulesets) != 1 {
					t.Errorf("IPv6 LB IP of an IPv4 Service must not create an IPv6 ruleset")
				}
			},
			flows: []flow{
				{desc: "proxy-mode IP untouched", src: external, dst: "198.51.100.1", port: 80, want: untouched},
				{desc: "VIP", src: external, dst: "198.51.100.2", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}, masq: true},
			},
		},
		{
			name: "source ranges containing the node IP allow the LB IPs as sources",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "fw", withClusterIP("172.30.0.60"), withType("LoadBalancer"), withNodePort(0, 30060),
					withLB("198.51.100.60"), withSourceRanges(" 192.168.0.0/24 ", "2001:db8::/32"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "fw", "fw-1", "IPv4", 80, mkEp("10.0.0.1"))},
			},
			check: func(t *testing.T, p *ir.Program) {
				c := findChain(p.Rulesets[0], "firewall-")
				want := prefixes("192.168.0.0/24", "198.51.100.60/32")
				if c == nil || !slices.Equal(c.Rules[0].Match.SrcNotIn, want) {
					t.Errorf("firewall chain = %+v, want SrcNotIn %v", c, want)
				}
			},
			flows: []flow{
				{desc: "node range allowed", src: "192.168.0.7", dst: "198.51.100.60", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}, masq: true},
				{desc: "VIP as source allowed", src: "198.51.100.60", dst: "198.51.100.60", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}, masq: true},
				{desc: "others dropped", src: external, dst: "198.51.100.60", port: 80, want: drop},
			},
		},
		{
			name: "masquerade-all",
			in: api.Input{
				Services:       []*api.Service{mkSvc("ns", "m", withClusterIP("172.30.0.70"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "m", "m-1", "IPv4", 80, mkEp("10.0.0.1"))},
			},
			opts: func() *Options { o := kubeProxyTestOpts(); o.MasqueradeAll = ptr(true); return &o }(),
			check: func(t *testing.T, p *ir.Program) {
				c := findChain(p.Rulesets[0], "service-")
				if want := (ir.Match{DstAddr: netip.MustParseAddr("172.30.0.70"), DstPort: 80}); c == nil || !cmp.Equal(c.Rules[0].Match, want, cmpNet) {
					t.Errorf("first rule = %+v, want match %+v", c.Rules[0], want)
				}
			},
			flows: []flow{{desc: "pod masqueraded", src: pod, dst: "172.30.0.70", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}, masq: true}},
		},
		{
			name: "no cluster CIDR: no off-cluster masquerade, no pod short-circuit",
			in: api.Input{
				Services:       []*api.Service{mkSvc("ns", "m", withClusterIP("172.30.0.70"), withType("NodePort"), withNodePort(0, 30070), withETP("Local"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "m", "m-1", "IPv4", 80, mkEp("10.0.0.1", onNode("other")))},
			},
			opts: &Options{NodeName: "test-node", NodeIPs: addrs("192.168.0.2"), ServiceCIDRs: prefixes("172.30.0.0/16")},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				if c := findChain(rs, "service-"); len(c.Rules) != 1 {
					t.Errorf("service chain has a masquerade rule: %+v", c.Rules)
				}
				if c := findChain(rs, "external-"); len(c.Rules) != 2 {
					t.Errorf("external chain: want only the local-traffic rules, got %+v", c.Rules)
				}
			},
			flows: []flow{
				{desc: "external not masqueraded", src: external, dst: "172.30.0.70", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}},
				{desc: "pod to NodePort dropped", src: pod, dst: node, port: 30070, want: drop},
			},
		},
		{
			name: "ports matched by name and protocol; nil port unusable; FQDN and foreign slices ignored",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "multi", withClusterIP("172.30.0.80"), func(s *api.Service) {
					s.Spec.Ports = []api.ServicePort{
						{Name: "http", Protocol: "TCP", Port: 80},
						{Name: "dns", Protocol: "UDP", Port: 53},
						{Name: "dnstcp", Protocol: "TCP", Port: 53},
						{Name: "none", Protocol: "TCP", Port: 9},
					}
				})},
				EndpointSlices: []*api.EndpointSlice{
					{
						Metadata:    api.ObjectMeta{Namespace: "ns", Name: "multi-1", Labels: map[string]string{api.ServiceNameLabel: "multi"}},
						AddressType: "IPv4",
						Ports: []api.EndpointPort{
							{Name: ptr("http"), Protocol: ptr("TCP"), Port: ptr(int32(8080))},
							{Name: ptr("dns"), Protocol: ptr("UDP"), Port: ptr(int32(5353))},
							{Name: ptr("dnstcp"), Protocol: ptr("UDP"), Port: ptr(int32(5353))},
							{Name: ptr("none"), Protocol: ptr("TCP")},
						},
						Endpoints: []api.Endpoint{mkEp("10.0.0.1")},
					},
					{
						Metadata:    api.ObjectMeta{Namespace: "ns", Name: "multi-fqdn", Labels: map[string]string{api.ServiceNameLabel: "multi"}},
						AddressType: "FQDN",
						Ports:       []api.EndpointPort{{Name: ptr("http"), Protocol: ptr("TCP"), Port: ptr(int32(80))}},
						Endpoints:   []api.Endpoint{{Addresses: []string{"example.com"}}},
					},
					mkSlice("other", "multi", "multi-2", "IPv4", 80, mkEp("10.9.9.9")),
					{Metadata: api.ObjectMeta{Namespace: "ns", Name: "unlabelled"}, AddressType: "IPv4",
						Ports: []api.EndpointPort{{Name: ptr("http"), Protocol: ptr("TCP"), Port: ptr(int32(80))}}, Endpoints: []api.Endpoint{mkEp("10.9.9.8")}},
				},
			},
			flows: []flow{
				{desc: "http", src: pod, dst: "172.30.0.80", port: 80, want: dnat, eps: []string{"10.0.0.1:8080"}},
				{desc: "dns udp", src: pod, dst: "172.30.0.80", proto: ir.UDP, port: 53, want: dnat, eps: []string{"10.0.0.1:5353"}},
				{desc: "dns tcp: slice port has the wrong protocol", src: pod, dst: "172.30.0.80", port: 53, want: reject},
				{desc: "nil slice port", src: pod, dst: "172.30.0.80", port: 9, want: reject},
			},
		},
		{
			name: "duplicate endpoints merged, ready preferred; sorted by ip:port string",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "dup", withClusterIP("172.30.0.90"))},
				EndpointSlices: []*api.EndpointSlice{
					mkSlice("ns", "dup", "a", "IPv4", 80, mkEp("10.0.0.10", cond(false, false, false)), mkEp("10.0.0.9")),
					mkSlice("ns", "dup", "b", "IPv4", 80, mkEp("10.0.0.10"), mkEp("10.0.0.9", cond(false, false, true))),
				},
			},
			check: func(t *testing.T, p *ir.Program) {
				c := findChain(p.Rulesets[0], "service-")
				b := c.Rules[len(c.Rules)-1].Action.(*ir.Balance)
				if len(b.Chains) != 2 || !strings.HasSuffix(b.Chains[0], "__10.0.0.10/80") || !strings.HasSuffix(b.Chains[1], "__10.0.0.9/80") {
					t.Errorf("balance order = %v, want 10.0.0.10 before 10.0.0.9 (string order)", b.Chains)
				}
			},
			flows: []flow{{desc: "both ready", src: pod, dst: "172.30.0.90", port: 80, want: dnat, eps: []string{"10.0.0.9:80", "10.0.0.10:80"}}},
		},
		{
			name: "headless and ExternalName: no rules, no error",
			in: api.Input{
				Services: []*api.Service{
					mkSvc("ns", "headless", withClusterIP("None")),
					mkSvc("ns", "ext", withType("ExternalName"), func(s *api.Service) { s.Spec.ExternalName = "example.com" }),
				},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "headless", "h", "IPv4", 80, mkEp("10.0.0.1"))},
			},
			check: func(t *testing.T, p *ir.Program) {
				// The given IPv4 service CIDR keeps its family's table,
				// with no Service in it.
				if len(p.Rulesets) != 1 || len(p.Notes) != 0 {
					t.Fatalf("want one ruleset and no notes, got %d rulesets, notes %v", len(p.Rulesets), p.Notes)
				}
				if rs := p.Rulesets[0]; rs.Family != ir.IPv4 || len(rs.Services)+len(rs.ClusterIPs)+len(rs.Chains) != 0 || !rs.DropServiceCIDRs {
					t.Errorf("want an IPv4 ruleset of no Service that drops 172.30.0.0/16, got %s with %d services, %d cluster IPs, %d chains, drop %v",
						rs.Family, len(rs.Services), len(rs.ClusterIPs), len(rs.Chains), rs.DropServiceCIDRs)
				}
			},
			flows: []flow{{desc: "unallocated address in the service CIDR", src: pod, dst: "172.30.0.7", port: 80, want: drop}},
		},
		{
			name: "externalIPs with eTP Cluster are masqueraded",
			in: api.Input{
				Services:       []*api.Service{mkSvc("ns", "e", withClusterIP("172.30.0.95"), withExternalIPs("192.0.2.95", "2001:db8::95"))},
				EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "e", "e-1", "IPv4", 80, mkEp("10.0.0.1"))},
			},
			flows: []flow{
				{desc: "external IP", src: external, dst: "192.0.2.95", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}, masq: true},
				{desc: "IPv6 external IP of an IPv4 Service ignored", src: "2001:db8::1", dst: "2001:db8::95", port: 80, want: untouched},
			},
		},
		{
			name: "unnamed port and session affinity timeout",
			in: api.Input{
				Services: []*api.Service{mkSvc("ns", "u", withClusterIP("172.30.0.96"), withAffinity(60), func(s *api.Service) { s.Spec.Ports[0].Name = "" })},
				EndpointSlices: []*api.EndpointSlice{{
					Metadata: api.ObjectMeta{Namespace: "ns", Name: "u-1", Labels: map[string]string{api.ServiceNameLabel: "u"}}, AddressType: "IPv4",
					Ports: []api.EndpointPort{{Port: ptr(int32(80))}}, Endpoints: []api.Endpoint{mkEp("10.0.0.1")},
				}},
			},
			check: func(t *testing.T, p *ir.Program) {
				rs := p.Rulesets[0]
				if c := findChain(rs, "service-"); !strings.HasSuffix(c.Name, "-ns/u/tcp/") || c.Service != "ns/u" {
					t.Errorf("chain %q service %q", c.Name, c.Service)
				}
				if len(rs.AffinitySets) != 1 || rs.AffinitySets[0].Timeout != time.Minute {
					t.Errorf("AffinitySets = %+v", rs.AffinitySets)
				}
			},
			flows: []flow{{desc: "unnamed", src: pod, dst: "172.30.0.96", port: 80, want: dnat, eps: []string{"10.0.0.1:80"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := kubeProxyTestOpts()
			if tt.opts != nil {
				opts = *tt.opts
			}
			p := mustCompile(t, &tt.in, opts)
			if tt.check != nil {
				tt.check(t, p)
			}
			checkFlows(t, p, tt.flows)
		})
	}
}

// findChain returns the first chain whose name starts with prefix.
func findChain(rs *ir.Ruleset, prefix string) *ir.Chain {
	for _, c := range rs.Chains {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	return nil
}

// errStrings formats the error diagnostics.
func errStrings(d diag.List) []string {
	var out []string
	for _, e := range d.Errors() {
		out = append(out, e.Error())
	}
	return out
}

// TestFirewallSourcesShared checks that the firewall chains of a
// Service's ports hold one list of sources (the renderers spell a list
// once; a Service of thousands of ports and ranges spelled one per port),
// with the LB IPs added when the node's primary address is in the ranges.
func TestFirewallSourcesShared(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ranges []string
		want   []netip.Prefix
	}{
		{"ranges only", []string{"203.0.113.0/24"}, prefixes("203.0.113.0/24")},
		{"the node in the ranges", []string{"192.168.0.0/24"}, prefixes("192.168.0.0/24", "5.6.7.8/32")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := mkSvc("ns", "lb", withClusterIP("172.30.0.41"), withType("LoadBalancer"), withLB("5.6.7.8"),
				withSourceRanges(tt.ranges...), func(s *api.Service) {
					s.Spec.Ports = append(s.Spec.Ports, api.ServicePort{Name: "p81", Protocol: "TCP", Port: 81, TargetPort: api.IntOrString{IntVal: 81}})
				})
			p := mustCompile(t, &api.Input{Services: []*api.Service{svc}}, kubeProxyTestOpts())
			var lists [][]netip.Prefix
			for _, c := range p.Rulesets[0].Chains {
				if c.Kind == ir.FirewallChain {
					lists = append(lists, c.Rules[0].Match.SrcNotIn)
				}
			}
			if len(lists) != 2 {
				t.Fatalf("%d firewall chains, want 2", len(lists))
			}
			if diff := cmp.Diff(tt.want, lists[0], cmpNet); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
			if &lists[0][0] != &lists[1][0] || len(lists[0]) != len(lists[1]) {
				t.Errorf("the ports' firewall chains hold two lists of sources")
			}
		})
	}
}
