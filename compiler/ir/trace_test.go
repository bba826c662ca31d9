package ir

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestTrace(t *testing.T) {
	p := fixture()
	if err := p.Validate(); err != nil {
		t.Fatalf("fixture does not validate: %v", err)
	}
	external := a("203.0.113.9")
	blocked := a("198.51.100.7")
	pod := a("10.1.2.3")
	tests := []struct {
		name string
		pkt  Packet
		mode Mode
		want Result
	}{
		{
			name: "svc5 LB IP from allowed range: masqueraded to the endpoint",
			pkt:  Packet{Src: external, Dst: a("5.6.7.8"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.3:80"), Probability: 1, Masquerade: true,
				Path: []string{StepFirewall, "firewall-HVFWP5L3-ns5/svc5/tcp/p80", StepServices, "external-HVFWP5L3-ns5/svc5/tcp/p80",
					"service-HVFWP5L3-ns5/svc5/tcp/p80", "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
			}}},
		},
		{
			name: "svc5 LB IP from outside the source ranges: dropped",
			pkt:  Packet{Src: blocked, Dst: a("5.6.7.8"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDrop, Path: []string{StepFirewall, "firewall-HVFWP5L3-ns5/svc5/tcp/p80"}},
		},
		{
			name: "svc5 pods are filtered like everyone else",
			pkt:  Packet{Src: pod, Dst: a("5.6.7.8"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDrop, Path: []string{StepFirewall, "firewall-HVFWP5L3-ns5/svc5/tcp/p80"}},
		},
		{
			name: "svc5 NodePort is not filtered by source ranges",
			pkt:  Packet{Src: blocked, Dst: nodeIP, Protocol: TCP, Port: 3002},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.3:80"), Probability: 1, Masquerade: true,
				Path: []string{StepNodePorts, "external-HVFWP5L3-ns5/svc5/tcp/p80",
					"service-HVFWP5L3-ns5/svc5/tcp/p80", "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
			}}},
		},
		{
			name: "svc5 cluster IP from a pod: not masqueraded",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.45"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.3:80"), Probability: 1,
				Path: []string{StepServices, "service-HVFWP5L3-ns5/svc5/tcp/p80", "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
			}}},
		},
		{
			name: "svc5 cluster IP from off-cluster: masqueraded",
			pkt:  Packet{Src: external, Dst: a("172.30.0.45"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.3:80"), Probability: 1, Masquerade: true,
				Path: []string{StepServices, "service-HVFWP5L3-ns5/svc5/tcp/p80", "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
			}}},
		},
		{
			name: "svc5 hairpin: the endpoint itself is masqueraded",
			pkt:  Packet{Src: a("10.180.0.3"), Dst: a("172.30.0.45"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.3:80"), Probability: 1, Masquerade: true,
				Path: []string{StepServices, "service-HVFWP5L3-ns5/svc5/tcp/p80", "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
			}}},
		},
		{
			name: "svc4 two endpoints, half each",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.44"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{
				{Endpoint: ap("10.180.0.4:80"), Probability: 0.5, Path: []string{StepServices, "service-4SW47YFZ-ns4/svc4/tcp/p80", "endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80"}},
				{Endpoint: ap("10.180.0.5:80"), Probability: 0.5, Path: []string{StepServices, "service-4SW47YFZ-ns4/svc4/tcp/p80", "endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80"}},
			}},
		},
		{
			name: "wrong port of a cluster IP: rejected in nftables mode",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.44"), Protocol: TCP, Port: 81},
			want: Result{Verdict: VerdictReject, Path: []string{StepClusterIPs}},
		},
		{
			name: "wrong port of a cluster IP: untouched in iptables mode",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.44"), Protocol: TCP, Port: 81},
			mode: ModeIPTables,
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "wrong protocol of a cluster IP: rejected",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.44"), Protocol: UDP, Port: 80},
			want: Result{Verdict: VerdictReject, Path: []string{StepClusterIPs}},
		},
		{
			name: "unallocated service CIDR address: dropped in nftables mode",
			pkt:  Packet{Src: pod, Dst: a("172.30.9.9"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDrop, Path: []string{StepServiceCIDRs}},
		},
		{
			name: "unallocated service CIDR address: untouched in iptables mode",
			pkt:  Packet{Src: pod, Dst: a("172.30.9.9"), Protocol: TCP, Port: 80},
			mode: ModeIPTables,
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "svc6 no endpoints: rejected",
			pkt:  Packet{Src: pod, Dst: a("172.30.0.46"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictReject, Path: []string{StepNoEndpoints}},
		},
		{
			name: "svc2 eTP Local without local endpoints: external traffic to the LB IP is dropped",
			pkt:  Packet{Src: external, Dst: a("1.2.3.4"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDrop, Path: []string{StepServices, "external-42NFTM6N-ns2/svc2/tcp/p80", StepNoEndpoints}},
		},
		{
			name: "svc2 eTP Local without local endpoints: external traffic to the NodePort is dropped",
			pkt:  Packet{Src: external, Dst: nodeIP, Protocol: TCP, Port: 3001},
			want: Result{Verdict: VerdictDrop, Path: []string{StepNodePorts, "external-42NFTM6N-ns2/svc2/tcp/p80", StepNoEndpointNodePorts}},
		},
		{
			name: "svc2 eTP Local: pod traffic short-circuits to all endpoints unmasqueraded",
			pkt:  Packet{Src: pod, Dst: a("1.2.3.4"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.2:80"), Probability: 1,
				Path: []string{StepServices, "external-42NFTM6N-ns2/svc2/tcp/p80", "service-42NFTM6N-ns2/svc2/tcp/p80", "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"},
			}}},
		},
		{
			name: "svc2 eTP Local: node traffic short-circuits, masqueraded",
			pkt:  Packet{Src: nodeIP, Dst: a("1.2.3.4"), Protocol: TCP, Port: 80, FromNode: true},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.2:80"), Probability: 1, Masquerade: true,
				Path: []string{StepServices, "external-42NFTM6N-ns2/svc2/tcp/p80", "service-42NFTM6N-ns2/svc2/tcp/p80", "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"},
			}}},
		},
		{
			name: "svc7 eTP Local with a local endpoint: external traffic keeps its source",
			pkt:  Packet{Src: external, Dst: a("1.2.3.7"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.7:80"), Probability: 1,
				Path: []string{StepServices, "external-AAAAAAAA-ns7/svc7/tcp/p80", "local-AAAAAAAA-ns7/svc7/tcp/p80", "endpoint-BBBBBBBB-ns7/svc7/tcp/p80__10.180.0.7/80"},
			}}},
		},
		{
			name: "svc7 NodePort on a non-NodePort address: untouched",
			pkt:  Packet{Src: external, Dst: a("192.168.0.3"), Protocol: TCP, Port: 3007},
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "localhost NodePort from the node in iptables mode",
			pkt:  Packet{Src: a("127.0.0.1"), Dst: a("127.0.0.1"), Protocol: TCP, Port: 3007, FromNode: true},
			mode: ModeIPTables,
			want: Result{Verdict: VerdictDNAT, Reaches: []Reach{{
				Endpoint: ap("10.180.0.7:80"), Probability: 0.5, Masquerade: true,
				Path: []string{StepNodePorts, "external-AAAAAAAA-ns7/svc7/tcp/p80", "service-AAAAAAAA-ns7/svc7/tcp/p80", "endpoint-BBBBBBBB-ns7/svc7/tcp/p80__10.180.0.7/80"},
			}, {
				Endpoint: ap("10.180.0.8:80"), Probability: 0.5, Masquerade: true,
				Path: []string{StepNodePorts, "external-AAAAAAAA-ns7/svc7/tcp/p80", "service-AAAAAAAA-ns7/svc7/tcp/p80", "endpoint-CCCCCCCC-ns7/svc7/tcp/p80__10.180.0.8/80"},
			}}},
		},
		{
			// kube-proxy matches the node IPs inside nodePortAddresses one
			// by one: of 127.0.0.0/8, the loopback interface's 127.0.0.1.
			name: "localhost NodePort on another loopback address, with NodePort addresses, in iptables mode: untouched",
			pkt:  Packet{Src: a("127.0.0.1"), Dst: a("127.0.0.2"), Protocol: TCP, Port: 3007, FromNode: true},
			mode: ModeIPTables,
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "localhost NodePort in nftables mode: untouched",
			pkt:  Packet{Src: a("127.0.0.1"), Dst: a("127.0.0.1"), Protocol: TCP, Port: 3007, FromNode: true},
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "no IPv6 ruleset: untouched",
			pkt:  Packet{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictUntouched},
		},
		{
			name: "IPv4-mapped destination is unmapped",
			pkt:  Packet{Src: pod, Dst: a("::ffff:172.30.0.46"), Protocol: TCP, Port: 80},
			want: Result{Verdict: VerdictReject, Path: []string{StepNoEndpoints}},
		},
	}
	// One Tracer serves every case, in turn, as Trace serves each: no
	// trace may leave state for the next. Another skips the paths.
	tr := NewTracer(p)
	bare := NewTracer(p)
	bare.SkipPaths = true
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Trace(p, tt.pkt, tt.mode)
			if diff := cmp.Diff(tt.want, got, cmpNet); diff != "" {
				t.Errorf("Trace(%+v) mismatch (-want +got):\n%s", tt.pkt, diff)
			}
			if diff := cmp.Diff(tt.want, tr.Trace(tt.pkt, tt.mode), cmpNet); diff != "" {
				t.Errorf("Tracer.Trace(%+v) mismatch (-want +got):\n%s", tt.pkt, diff)
			}
			want := tt.want
			want.Path = nil
			want.Reaches = slices.Clone(want.Reaches)
			for i := range want.Reaches {
				want.Reaches[i].Path = nil
			}
			if diff := cmp.Diff(want, bare.Trace(tt.pkt, tt.mode), cmpNet); diff != "" {
				t.Errorf("Tracer.Trace(%+v) without paths mismatch (-want +got):\n%s", tt.pkt, diff)
			}
		})
	}
}

// TestTracerFirstEntry checks that of two dispatch entries of one key (an
// IR that Validate rejects) the first decides, as a scan of the list
// would, and that a Tracer of nil leaves packets untouched.
func TestTracerFirstEntry(t *testing.T) {
	dnat := func(ep string) *Chain {
		return &Chain{Name: ep, Rules: []Rule{{Action: &DNAT{Addr: a(ep), Port: 80, Protocol: TCP}}}}
	}
	p := &Program{Rulesets: []*Ruleset{{
		Family: IPv4,
		Services: []ServiceEntry{
			{Addr: a("10.0.0.1"), Protocol: TCP, Port: 80, Target: Target{Chain: "10.1.0.1"}},
			{Addr: a("10.0.0.1"), Protocol: TCP, Port: 80, Target: Target{Chain: "10.1.0.2"}},
		},
		NodePorts: []NodePortEntry{
			{Protocol: TCP, Port: 30080, Target: Target{Chain: "10.1.0.2"}},
			{Protocol: TCP, Port: 30080, Target: Target{Chain: "10.1.0.1"}},
		},
		Node:   Node{IPs: []netip.Addr{a("192.0.2.10")}, NodePortAllLocal: true},
		Chains: []*Chain{dnat("10.1.0.1"), dnat("10.1.0.2")},
	}}}
	tr := NewTracer(p)
	for _, tt := range []struct {
		pkt  Packet
		want netip.AddrPort
	}{
		{Packet{Src: a("203.0.113.1"), Dst: a("10.0.0.1"), Protocol: TCP, Port: 80}, ap("10.1.0.1:80")},
		{Packet{Src: a("203.0.113.1"), Dst: a("192.0.2.10"), Protocol: TCP, Port: 30080}, ap("10.1.0.2:80")},
	} {
		got := tr.Trace(tt.pkt, ModeNFT)
		if got.Verdict != VerdictDNAT || len(got.Reaches) != 1 || got.Reaches[0].Endpoint != tt.want {
			t.Errorf("Trace(%+v) = %+v, want DNAT to %v", tt.pkt, got, tt.want)
		}
	}
	if got := NewTracer(nil).Trace(Packet{Src: a("203.0.113.1"), Dst: a("10.0.0.1"), Protocol: TCP, Port: 80}, ModeNFT); got.Verdict != VerdictUntouched {
		t.Errorf("nil program: %v", got.Verdict)
	}
}

func TestTraceNodePortAllLocal(t *testing.T) {
	p := fixture()
	rs := p.Rulesets[0]
	rs.Node.NodePortAllLocal = true
	rs.Node.IPs = append(rs.Node.IPs, a("192.168.0.3"))
	tests := []struct {
		dst    string
		toNode bool
		want   Verdict
	}{
		{"192.168.0.2", false, VerdictDNAT},
		{"192.168.0.3", false, VerdictDNAT},
		{"192.168.0.4", false, VerdictUntouched},
		{"192.168.0.4", true, VerdictDNAT},
		{"127.0.0.1", false, VerdictUntouched},
		{"127.0.0.1", true, VerdictUntouched},
	}
	for _, tt := range tests {
		got := Trace(p, Packet{Src: a("203.0.113.1"), Dst: a(tt.dst), Protocol: TCP, Port: 3002, ToNode: tt.toNode}, ModeNFT)
		if got.Verdict != tt.want {
			t.Errorf("NodePort on %s (to the node: %v): verdict %v, want %v", tt.dst, tt.toNode, got.Verdict, tt.want)
		}
	}
	// Listed NodePort addresses are the only ones, local or not.
	rs.Node.NodePortAllLocal = false
	rs.Node.NodePortAddrs = []netip.Addr{a("192.168.0.2")}
	if got := Trace(p, Packet{Src: a("203.0.113.1"), Dst: a("192.168.0.4"), Protocol: TCP, Port: 3002, ToNode: true}, ModeNFT); got.Verdict != VerdictUntouched {
		t.Errorf("NodePort on an unlisted node address: verdict %v, want untouched", got.Verdict)
	}
}

func TestTraceEdgeCases(t *testing.T) {
	if got := Trace(nil, Packet{}, ModeNFT); got.Verdict != VerdictUntouched {
		t.Errorf("nil program: %v", got.Verdict)
	}
	// A loop (rejected by Validate) must not hang the tracer.
	loop := &Program{Rulesets: []*Ruleset{{
		Family:   IPv4,
		Services: []ServiceEntry{{Addr: a("10.0.0.1"), Protocol: TCP, Port: 80, Target: Target{Chain: "x"}}},
		Chains:   []*Chain{{Name: "x", Rules: []Rule{{Action: &Goto{Chain: "x"}}}}},
	}}}
	if got := Trace(loop, Packet{Src: a("10.0.0.2"), Dst: a("10.0.0.1"), Protocol: TCP, Port: 80}, ModeNFT); got.Verdict != VerdictDrop {
		t.Errorf("loop: verdict %v, want drop", got.Verdict)
	}
	// The DNAT rule matches only its protocol.
	proto := &Program{Rulesets: []*Ruleset{{
		Family:   IPv4,
		Services: []ServiceEntry{{Addr: a("10.0.0.1"), Protocol: UDP, Port: 80, Target: Target{Chain: "x"}}},
		Chains:   []*Chain{{Name: "x", Rules: []Rule{{Action: &DNAT{Addr: a("10.1.0.1"), Port: 80, Protocol: TCP}}}}},
	}}}
	if got := Trace(proto, Packet{Src: a("10.0.0.2"), Dst: a("10.0.0.1"), Protocol: UDP, Port: 80}, ModeNFT); got.Verdict != VerdictUntouched {
		t.Errorf("protocol mismatch: verdict %v, want untouched", got.Verdict)
	}
	for v, s := range map[Verdict]string{VerdictUntouched: "untouched", VerdictDNAT: "dnat", VerdictReject: "reject", VerdictDrop: "drop"} {
		if v.String() != s {
			t.Errorf("Verdict(%d).String() = %q, want %q", v, v.String(), s)
		}
	}
}

// TestTraceHealthCheckNodePort checks iptables mode's accept of TCP to a
// local address and a health-check NodePort, and that nftables mode, UDP,
// other ports and other addresses are left untouched.
func TestTraceHealthCheckNodePort(t *testing.T) {
	p := fixture()
	p.Rulesets[0].HealthCheckNodePorts = []uint16{30000}
	external, node := a("203.0.113.9"), p.Rulesets[0].Node.IPs[0]
	accepted := Result{Verdict: VerdictAccept, Path: []string{StepHealthCheck}}
	for _, tt := range []struct {
		name string
		pkt  Packet
		mode Mode
		want Result
	}{
		{"to the node's address", Packet{Src: external, Dst: node, Protocol: TCP, Port: 30000}, ModeIPTables, accepted},
		{"to another local address", Packet{Src: external, Dst: a("198.51.100.77"), Protocol: TCP, Port: 30000, ToNode: true}, ModeIPTables, accepted},
		{"to loopback from the node", Packet{Src: a("127.0.0.1"), Dst: a("127.0.0.1"), Protocol: TCP, Port: 30000, FromNode: true}, ModeIPTables, accepted},
		{"nftables mode", Packet{Src: external, Dst: node, Protocol: TCP, Port: 30000}, ModeNFT, Result{}},
		{"UDP", Packet{Src: external, Dst: node, Protocol: UDP, Port: 30000}, ModeIPTables, Result{}},
		{"another port", Packet{Src: external, Dst: node, Protocol: TCP, Port: 30001}, ModeIPTables, Result{}},
		{"not a local address", Packet{Src: external, Dst: a("198.51.100.77"), Protocol: TCP, Port: 30000}, ModeIPTables, Result{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Trace(p, tt.pkt, tt.mode)
			if got.Verdict != tt.want.Verdict || !slices.Equal(got.Path, tt.want.Path) {
				t.Errorf("Trace = %v %v, want %v %v", got.Verdict, got.Path, tt.want.Verdict, tt.want.Path)
			}
		})
	}
	if VerdictAccept.String() != "accept" {
		t.Errorf("VerdictAccept.String() = %q", VerdictAccept.String())
	}
}

// TestTraceIPTablesFilterPaths checks where iptables mode meets the filter
// checks of Services without endpoints, as kube-proxy hooks them: cluster
// IPs on the forward and output paths, other addresses and NodePorts on
// the forward and input paths (by the entry's kind, not its address), a
// NodePort's check on every local address, and no source ranges for a
// load-balancer IP without endpoints; nftables mode meets every check, and
// the source ranges.
func TestTraceIPTablesFilterPaths(t *testing.T) {
	node, pod, outside, allowed := a("192.0.2.10"), a("10.244.1.5"), a("203.0.113.9"), a("198.51.100.9")
	cip, cip2, ext, lb, lbLive := a("10.96.0.1"), a("10.96.0.2"), a("203.0.113.50"), a("203.0.113.60"), a("203.0.113.61")
	fw, live := "firewall-X", "service-Y"
	p := &Program{Rulesets: []*Ruleset{{
		Family: IPv4,
		Node:   Node{IPs: []netip.Addr{node}, NodePortAddrs: []netip.Addr{node}},
		Services: []ServiceEntry{
			{Addr: lbLive, Protocol: TCP, Port: 80, Target: Target{Chain: live}},
		},
		Firewall: []ServiceEntry{
			{Addr: lb, Protocol: TCP, Port: 80, Target: Target{Chain: fw}},
			{Addr: lbLive, Protocol: TCP, Port: 80, Target: Target{Chain: fw}},
		},
		NoEndpoints: []ServiceEntry{
			{Addr: cip, Protocol: TCP, Port: 80, Target: Target{Reject: true}},
			{Addr: ext, Protocol: TCP, Port: 80, Target: Target{Reject: true}},
			{Addr: lb, Protocol: TCP, Port: 80, Target: Target{Reject: true}},
			// An external IP that is another Service's cluster IP.
			{Addr: cip2, Protocol: TCP, Port: 8080, Target: Target{Reject: true}, Kind: "external IP"},
		},
		NoEndpointNodePorts: []NodePortEntry{{Protocol: TCP, Port: 30000, Target: Target{Reject: true}}},
		ClusterIPs:          []netip.Addr{cip, cip2},
		Chains: []*Chain{
			{Name: fw, Kind: FirewallChain, Rules: []Rule{{Match: Match{SrcNotIn: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, Action: &Drop{}}}},
			{Name: live, Kind: ServiceChain, Rules: []Rule{{Action: &DNAT{Addr: a("10.244.2.7"), Port: 8080, Protocol: TCP}}}},
		},
	}}}
	tcp := func(src, dst netip.Addr, port uint16, fromNode, toNode bool) Packet {
		return Packet{Src: src, Dst: dst, Protocol: TCP, Port: port, FromNode: fromNode, ToNode: toNode}
	}
	for _, tt := range []struct {
		name      string
		pkt       Packet
		nft, ipts Verdict
	}{
		{"cluster IP from a pod", tcp(pod, cip, 80, false, false), VerdictReject, VerdictReject},
		{"cluster IP from the node", tcp(node, cip, 80, true, false), VerdictReject, VerdictReject},
		{"external IP from outside", tcp(outside, ext, 80, false, false), VerdictReject, VerdictReject},
		{"external IP from the node", tcp(node, ext, 80, true, false), VerdictReject, VerdictUntouched},
		{"external IP of the node, from the node", tcp(node, ext, 80, true, true), VerdictReject, VerdictReject},
		{"external IP that is a cluster IP, from the node", tcp(node, cip2, 8080, true, false), VerdictReject, VerdictUntouched},
		{"external IP that is a cluster IP, from a pod", tcp(pod, cip2, 8080, false, false), VerdictReject, VerdictReject},
		{"NodePort on a served address", tcp(outside, node, 30000, false, false), VerdictReject, VerdictReject},
		{"NodePort on another local address", tcp(outside, a("198.51.100.77"), 30000, false, true), VerdictUntouched, VerdictReject},
		{"NodePort on loopback from the node", tcp(a("127.0.0.1"), a("127.0.0.1"), 30000, true, false), VerdictUntouched, VerdictReject},
		{"NodePort on an address not the node's", tcp(outside, a("198.51.100.77"), 30000, false, false), VerdictUntouched, VerdictUntouched},
		{"LB IP without endpoints, allowed source", tcp(allowed, lb, 80, false, false), VerdictReject, VerdictReject},
		{"LB IP without endpoints, other source", tcp(outside, lb, 80, false, false), VerdictDrop, VerdictReject},
		{"LB IP with endpoints, other source", tcp(outside, lbLive, 80, false, false), VerdictDrop, VerdictDrop},
		{"LB IP with endpoints, allowed source", tcp(allowed, lbLive, 80, false, false), VerdictDNAT, VerdictDNAT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []struct {
				mode Mode
				want Verdict
			}{{ModeNFT, tt.nft}, {ModeIPTables, tt.ipts}} {
				if got := Trace(p, tt.pkt, m.mode); got.Verdict != m.want {
					t.Errorf("mode %d: verdict %v (path %v), want %v", m.mode, got.Verdict, got.Path, m.want)
				}
			}
		})
	}
}
