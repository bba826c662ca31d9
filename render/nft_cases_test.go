package render_test

import (
	"net/netip"
	"strings"
	"time"

	"kpc/compiler/ir"
	"kpc/render"
)

// nftCase is one rendering case: a hand-built Program and the renderer
// options; its golden output is testdata/nft/<name>.nft.
type nftCase struct {
	name string
	r    render.NFT
	p    *ir.Program
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = prefix(s)
	}
	return ps
}

// endpointChain is kube-proxy's endpoint chain: hairpin mark, optional
// affinity update, DNAT.
func endpointChain(name, svc string, proto ir.Protocol, ep string, port uint16, affinitySet string) *ir.Chain {
	a := addr(ep)
	rules := []ir.Rule{{Match: ir.Match{SrcAddr: a}, Action: &ir.MarkMasq{}}}
	if affinitySet != "" {
		rules = append(rules, ir.Rule{Action: &ir.AffinityUpdate{Set: affinitySet}})
	}
	rules = append(rules, ir.Rule{Action: &ir.DNAT{Addr: a, Port: port, Protocol: proto}})
	return &ir.Chain{Name: name, Kind: ir.EndpointChain, Service: svc, Protocol: proto,
		Comment: svc + " -> " + netip.AddrPortFrom(a, port).String(), Rules: rules}
}

// clusterIPProgram is one ClusterIP Service with two endpoints, as the
// compiler lays it out.
func clusterIPProgram() *ir.Program {
	const (
		svc  = "ns1/svc1:p80"
		sc   = "service-ULMVA6XW-ns1/svc1/tcp/p80"
		epA  = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
		epB  = "endpoint-VTTU5R3F-ns1/svc1/tcp/p80__10.180.0.2/80"
		vipS = "172.30.0.41"
	)
	vip := addr(vipS)
	return &ir.Program{
		Notes: []string{"allocated cluster IP 172.30.0.41 to ns1/svc1"},
		Rulesets: []*ir.Ruleset{{
			Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
			Node: ir.Node{Name: "node-a", IPs: []netip.Addr{addr("192.0.2.1")}, PodCIDRs: prefixes("10.0.0.0/8"),
				NodePortAddrs: []netip.Addr{addr("192.0.2.1")}},
			Services: []ir.ServiceEntry{{Addr: vip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc},
				Comment: svc, Kind: "cluster IP"}},
			ClusterIPs:       []netip.Addr{vip},
			RejectClusterIPs: true,
			ServiceCIDRs:     prefixes("172.30.0.0/16"),
			DropServiceCIDRs: true,
			Chains: []*ir.Chain{
				endpointChain(epA, svc, ir.TCP, "10.180.0.1", 80, ""),
				endpointChain(epB, svc, ir.TCP, "10.180.0.2", 80, ""),
				{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
					{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: prefixes("10.0.0.0/8")}, Action: &ir.MarkMasq{},
						Comment: "masquerade off-cluster traffic to " + svc},
					{Action: &ir.Balance{Chains: []string{epA, epB}}},
				}},
			},
		}},
	}
}

// affinityProgram is kube-proxy's svc5: a LoadBalancer Service with source
// ranges, externalTrafficPolicy Cluster and ClientIP affinity.
func affinityProgram() *ir.Program {
	const (
		svc  = "ns5/svc5:p80"
		sc   = "service-HVFWP5L3-ns5/svc5/tcp/p80"
		ext  = "external-HVFWP5L3-ns5/svc5/tcp/p80"
		fw   = "firewall-HVFWP5L3-ns5/svc5/tcp/p80"
		ep   = "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		aff  = "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		ep2  = "endpoint-PQTQHOOO-ns5/svc5/tcp/p80__10.180.0.4/80"
		aff2 = "affinity-PQTQHOOO-ns5/svc5/tcp/p80__10.180.0.4/80"
	)
	vip, lb := addr("172.30.0.45"), addr("203.0.113.45")
	return &ir.Program{Rulesets: []*ir.Ruleset{{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Node: ir.Node{Name: "node-a", IPs: []netip.Addr{addr("192.0.2.1")}, PodCIDRs: prefixes("10.0.0.0/8"),
			NodePortAddrs: []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2")}},
		Services: []ir.ServiceEntry{
			{Addr: vip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"},
			{Addr: lb, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: ext}, Comment: svc, Kind: "load balancer IP"},
		},
		NodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30002, Target: ir.Target{Chain: ext}, Comment: svc}},
		Firewall: []ir.ServiceEntry{{Addr: lb, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: fw},
			Comment: svc, Kind: "load balancer IP"}},
		ClusterIPs: []netip.Addr{vip},
		Chains: []*ir.Chain{
			endpointChain(ep, svc, ir.TCP, "10.180.0.3", 80, aff),
			endpointChain(ep2, svc, ir.TCP, "10.180.0.4", 80, aff2),
			{Name: ext, Kind: ir.ExternalChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
				{Action: &ir.MarkMasq{}, Comment: "masquerade traffic for " + svc + " external destinations"},
				{Action: &ir.Goto{Chain: sc}},
			}},
			{Name: fw, Kind: ir.FirewallChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: prefixes("198.51.100.0/25", "198.51.100.0/24", "192.0.2.0/26", "203.0.113.45/32")},
					Action: &ir.Drop{}, Comment: "source ranges of " + svc},
			}},
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: prefixes("10.0.0.0/8")}, Action: &ir.MarkMasq{}},
				{Match: ir.Match{Affinity: aff}, Action: &ir.Goto{Chain: ep}},
				{Match: ir.Match{Affinity: aff2}, Action: &ir.Goto{Chain: ep2}},
				{Action: &ir.Balance{Chains: []string{ep, ep2}}},
			}},
		},
		AffinitySets: []ir.AffinitySet{
			{Name: aff, Timeout: 10800 * time.Second, Comment: svc + " -> 10.180.0.3:80"},
			{Name: aff2, Timeout: 1500 * time.Millisecond, Comment: svc + " -> 10.180.0.4:80"},
		},
	}}}
}

// stickyProgram has two ClusterIP Services with session affinity, a TCP
// one with a 3h timeout and a UDP one with 1.5s, which the direct layout
// spells through sticky-clients.
func stickyProgram() *ir.Program {
	p := affinityProgram()
	rs := p.Rulesets[0]
	rs.Services = rs.Services[:1]
	rs.NodePorts, rs.Firewall = nil, nil
	rs.AffinitySets[1].Timeout = 10800 * time.Second
	var kept []*ir.Chain
	for _, c := range rs.Chains {
		if c.Kind != ir.ExternalChain && c.Kind != ir.FirewallChain {
			kept = append(kept, c)
		}
	}
	const (
		svc = "ns6/dns:53"
		sc  = "service-DDDDDDDD-ns6/dns/udp/53"
		ep  = "endpoint-EEEEEEEE-ns6/dns/udp/53__10.180.0.6/53"
		aff = "affinity-EEEEEEEE-ns6/dns/udp/53__10.180.0.6/53"
	)
	vip := addr("172.30.0.46")
	rs.Services = append(rs.Services, ir.ServiceEntry{Addr: vip, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: sc},
		Comment: svc, Kind: "cluster IP"})
	rs.ClusterIPs = append(rs.ClusterIPs, vip)
	rs.Chains = append(kept, endpointChain(ep, svc, ir.UDP, "10.180.0.6", 53, aff),
		&ir.Chain{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.UDP, Comment: svc, Rules: []ir.Rule{
			{Match: ir.Match{DstAddr: vip, DstPort: 53, SrcNotIn: prefixes("10.0.0.0/8")}, Action: &ir.MarkMasq{}},
			{Match: ir.Match{Affinity: aff}, Action: &ir.Goto{Chain: ep}},
			{Action: &ir.Balance{Chains: []string{ep}}},
		}})
	rs.AffinitySets = append(rs.AffinitySets, ir.AffinitySet{Name: aff, Timeout: 1500 * time.Millisecond, Comment: svc + " -> 10.180.0.6:53"})
	return p
}

// localPolicyProgram has externalTrafficPolicy Local Services (one with a
// local endpoint, one without), a Service without endpoints, UDP and SCTP
// ports, and NodePorts on every local address.
func localPolicyProgram() *ir.Program {
	const (
		svc2  = "ns2/svc2:dns"
		sc2   = "service-AAAAAAAA-ns2/svc2/udp/dns"
		loc2  = "local-AAAAAAAA-ns2/svc2/udp/dns"
		ext2  = "external-AAAAAAAA-ns2/svc2/udp/dns"
		ep2a  = "endpoint-BBBBBBBB-ns2/svc2/udp/dns__10.180.1.1/53"
		ep2b  = "endpoint-CCCCCCCC-ns2/svc2/udp/dns__10.180.2.1/53"
		svc3  = "ns3/svc3:sctp"
		sc3   = "service-DDDDDDDD-ns3/svc3/sctp/sctp"
		ext3  = "external-DDDDDDDD-ns3/svc3/sctp/sctp"
		ep3   = "endpoint-EEEEEEEE-ns3/svc3/sctp/sctp__10.180.2.7/9999"
		svc4  = "ns4/svc4:"
		short = "short-circuit pod traffic"
	)
	vip2, eip2 := addr("172.30.0.42"), addr("198.51.100.42")
	vip3, eip3 := addr("172.30.0.43"), addr("198.51.100.43")
	vip4 := addr("172.30.0.44")
	pods := prefixes("10.180.0.0/16")
	external := func(name, svc, sc string, proto ir.Protocol, local string) *ir.Chain {
		rules := []ir.Rule{
			{Match: ir.Match{SrcIn: pods}, Action: &ir.Goto{Chain: sc}, Comment: short},
			{Match: ir.Match{SrcLocal: true}, Action: &ir.MarkMasq{}, Comment: "masquerade local traffic"},
			{Match: ir.Match{SrcLocal: true}, Action: &ir.Goto{Chain: sc}, Comment: "route local traffic to all endpoints"},
		}
		if local != "" {
			rules = append(rules, ir.Rule{Action: &ir.Goto{Chain: local}})
		}
		return &ir.Chain{Name: name, Kind: ir.ExternalChain, Service: svc, Protocol: proto, Comment: svc, Rules: rules}
	}
	return &ir.Program{Rulesets: []*ir.Ruleset{{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x10000,
		Node: ir.Node{Name: "node-a", IPs: []netip.Addr{addr("192.0.2.1")}, PodCIDRs: pods,
			NodePortAddrs: []netip.Addr{addr("192.0.2.1")}, NodePortAllLocal: true},
		Services: []ir.ServiceEntry{
			{Addr: vip2, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: sc2}, Comment: svc2, Kind: "cluster IP"},
			{Addr: vip3, Protocol: ir.SCTP, Port: 9999, Target: ir.Target{Chain: sc3}, Comment: svc3, Kind: "cluster IP"},
			{Addr: eip2, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: ext2}, Comment: svc2, Kind: "external IP"},
			{Addr: eip3, Protocol: ir.SCTP, Port: 9999, Target: ir.Target{Chain: ext3}, Comment: svc3, Kind: "external IP"},
		},
		NodePorts: []ir.NodePortEntry{
			{Protocol: ir.UDP, Port: 30053, Target: ir.Target{Chain: ext2}, Comment: svc2},
			{Protocol: ir.SCTP, Port: 30099, Target: ir.Target{Chain: ext3}, Comment: svc3},
		},
		NoEndpoints: []ir.ServiceEntry{
			{Addr: vip4, Protocol: ir.TCP, Port: 80, Target: ir.Target{Reject: true}, Comment: svc4, Kind: "cluster IP"},
			{Addr: eip3, Protocol: ir.SCTP, Port: 9999, Target: ir.Target{Drop: true}, Comment: svc3, Kind: "external IP"},
		},
		NoEndpointNodePorts: []ir.NodePortEntry{
			{Protocol: ir.TCP, Port: 30080, Target: ir.Target{Reject: true}, Comment: svc4},
			{Protocol: ir.SCTP, Port: 30099, Target: ir.Target{Drop: true}, Comment: svc3},
		},
		ClusterIPs:           []netip.Addr{vip2, vip3, vip4},
		RejectClusterIPs:     true,
		ServiceCIDRs:         prefixes("172.30.0.0/16", "172.31.0.0/16", "172.30.128.0/17"),
		DropServiceCIDRs:     true,
		HealthCheckNodePorts: []uint16{31000},
		Chains: []*ir.Chain{
			endpointChain(ep2a, svc2, ir.UDP, "10.180.1.1", 53, ""),
			endpointChain(ep2b, svc2, ir.UDP, "10.180.2.1", 53, ""),
			endpointChain(ep3, svc3, ir.SCTP, "10.180.2.7", 9999, ""),
			external(ext2, svc2, sc2, ir.UDP, loc2),
			external(ext3, svc3, sc3, ir.SCTP, ""),
			{Name: loc2, Kind: ir.LocalChain, Service: svc2, Protocol: ir.UDP, Comment: svc2, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{ep2a}}},
			}},
			{Name: sc2, Kind: ir.ServiceChain, Service: svc2, Protocol: ir.UDP, Comment: svc2, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip2, DstPort: 53, SrcNotIn: pods}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{ep2a, ep2b}}},
			}},
			{Name: sc3, Kind: ir.ServiceChain, Service: svc3, Protocol: ir.SCTP, Comment: svc3, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip3, DstPort: 9999, SrcNotIn: pods}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{ep3}}},
			}},
		},
	}}}
}

// ipv6Program is one IPv6 ClusterIP Service with NodePorts on every local
// address.
func ipv6Program() *ir.Program {
	const (
		svc = "ns6/svc6:http"
		sc  = "service-FFFFFFFF-ns6/svc6/tcp/http"
		ext = "external-FFFFFFFF-ns6/svc6/tcp/http"
		epA = "endpoint-GGGGGGGG-ns6/svc6/tcp/http__2001.db8.1..10/8080"
		epB = "endpoint-HHHHHHHH-ns6/svc6/tcp/http__2001.db8.1..11/8080"
	)
	vip := addr("2001:db8:96::1")
	pods := prefixes("2001:db8:1::/64")
	return &ir.Program{Rulesets: []*ir.Ruleset{ipv6Ruleset(svc, sc, ext, epA, epB, vip, pods)}}
}

func ipv6Ruleset(svc, sc, ext, epA, epB string, vip netip.Addr, pods []netip.Prefix) *ir.Ruleset {
	return &ir.Ruleset{
		Family: ir.IPv6, Table: "kpc", MasqMark: 0x4000,
		Node: ir.Node{Name: "node-a", IPs: []netip.Addr{addr("2001:db8::1")}, PodCIDRs: pods, NodePortAllLocal: true},
		Services: []ir.ServiceEntry{{Addr: vip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc},
			Comment: svc, Kind: "cluster IP"}},
		NodePorts:        []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30080, Target: ir.Target{Chain: ext}, Comment: svc}},
		ClusterIPs:       []netip.Addr{vip},
		RejectClusterIPs: true,
		Chains: []*ir.Chain{
			endpointChain(epA, svc, ir.TCP, "2001:db8:1::10", 8080, ""),
			endpointChain(epB, svc, ir.TCP, "2001:db8:1::11", 8080, ""),
			{Name: ext, Kind: ir.ExternalChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
				{Action: &ir.MarkMasq{}},
				{Action: &ir.Goto{Chain: sc}},
			}},
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Comment: svc, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: pods}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{epA, epB}}},
			}},
		},
	}
}

// dualStackProgram has an IPv4 and an IPv6 Ruleset.
func dualStackProgram() *ir.Program {
	p := clusterIPProgram()
	p.Notes = append(p.Notes, "allocated cluster IP 2001:db8:96::7 to ns7/svc7")
	v6 := ipv6Ruleset("ns7/svc7:http", "service-IIIIIIII-ns7/svc7/tcp/http", "external-IIIIIIII-ns7/svc7/tcp/http",
		"endpoint-JJJJJJJJ-ns7/svc7/tcp/http__2001.db8.1..20/8080", "endpoint-KKKKKKKK-ns7/svc7/tcp/http__2001.db8.1..21/8080",
		addr("2001:db8:96::7"), prefixes("2001:db8:1::/64"))
	v6.Node.NodePortAllLocal = false
	v6.Node.NodePortAddrs = []netip.Addr{addr("2001:db8::1")}
	p.Rulesets = append(p.Rulesets, v6)
	return p
}

// unloweredProgram holds Balances the lowering must leave alone, next to
// ones it may lower.
func unloweredProgram() *ir.Program {
	const (
		svcM = "ns8/multi:p"
		scM  = "service-MMMMMMMM-ns8/multi/tcp/p"
		epM  = "endpoint-NNNNNNNN-ns8/multi/tcp/p__10.180.0.8/80"
		svcH = "ns8/hairpin:p"
		scH1 = "service-OOOOOOOO-ns8/hairpin-a/tcp/p"
		scH2 = "service-PPPPPPPP-ns8/hairpin-b/tcp/p"
		epH1 = "endpoint-QQQQQQQQ-ns8/hairpin-a/tcp/p__10.180.0.9/80"
		epH2 = "endpoint-RRRRRRRR-ns8/hairpin-b/tcp/p__10.180.0.9/80"
		svcW = "ns8/weighted:p"
		scW  = "service-SSSSSSSS-ns8/weighted/tcp/p"
		epW1 = "endpoint-TTTTTTTT-ns8/weighted/tcp/p__10.180.0.10/80"
		epW2 = "endpoint-UUUUUUUU-ns8/weighted/tcp/p__10.180.0.11/80"
		epW3 = "endpoint-VVVVVVVV-ns8/weighted/tcp/p__10.180.0.12/80"
	)
	v := func(s string) netip.Addr { return addr(s) }
	bare := &ir.Chain{Name: epH2, Kind: ir.EndpointChain, Service: svcH, Protocol: ir.TCP, Rules: []ir.Rule{
		{Action: &ir.DNAT{Addr: v("10.180.0.9"), Port: 80, Protocol: ir.TCP}},
	}}
	return &ir.Program{Rulesets: []*ir.Ruleset{{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Node: ir.Node{Name: "node-a", IPs: []netip.Addr{v("192.0.2.1")}, NodePortAddrs: []netip.Addr{v("192.0.2.1")}},
		Services: []ir.ServiceEntry{
			// One chain reached over TCP and UDP: not lowered.
			{Addr: v("172.30.0.80"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: scM}, Comment: svcM},
			{Addr: v("172.30.0.80"), Protocol: ir.UDP, Port: 80, Target: ir.Target{Chain: scM}, Comment: svcM},
			// Two chains DNAT to 10.180.0.9:80, one with a hairpin mark and
			// one without: neither is lowered.
			{Addr: v("172.30.0.81"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: scH1}, Comment: svcH},
			{Addr: v("172.30.0.82"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: scH2}, Comment: svcH},
			// Repeated and shared endpoint chains: lowered with weights;
			// the endpoint chain also used by a Goto stays.
			{Addr: v("172.30.0.83"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: scW}, Comment: svcW},
		},
		ClusterIPs: []netip.Addr{v("172.30.0.80"), v("172.30.0.81"), v("172.30.0.82"), v("172.30.0.83")},
		Chains: []*ir.Chain{
			endpointChain(epM, svcM, ir.TCP, "10.180.0.8", 80, ""),
			endpointChain(epH1, svcH, ir.TCP, "10.180.0.9", 80, ""),
			bare,
			endpointChain(epW1, svcW, ir.TCP, "10.180.0.10", 80, ""),
			endpointChain(epW2, svcW, ir.TCP, "10.180.0.11", 80, ""),
			endpointChain(epW3, svcW, ir.TCP, "10.180.0.12", 80, ""),
			{Name: scM, Kind: ir.ServiceChain, Service: svcM, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{epM}}},
			}},
			{Name: scH1, Kind: ir.ServiceChain, Service: svcH, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{epH1}}},
			}},
			{Name: scH2, Kind: ir.ServiceChain, Service: svcH, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{epH2}}},
			}},
			{Name: scW, Kind: ir.ServiceChain, Service: svcW, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{SrcAddr: v("10.180.0.99")}, Action: &ir.Goto{Chain: epW3}},
				{Action: &ir.Balance{Chains: []string{epW1, epW1, epW2, epW3}}},
			}},
		},
	}}}
}

// commentsProgram has comments and notes that nft cannot take verbatim.
func commentsProgram() *ir.Program {
	p := clusterIPProgram()
	p.Notes = []string{"a note\nover two lines", `with "quotes"`}
	rs := p.Rulesets[0]
	rs.Services[0].Comment = `quote " and tab` + "\t" + "end"
	rs.Chains[2].Comment = "chain comment\nwith a newline"
	rs.Chains[2].Rules[0].Comment = strings.Repeat("é", 70) // 140 bytes: cut at 128
	return p
}

// nftCases are the golden rendering cases.
func nftCases() []nftCase {
	return []nftCase{
		{name: "empty", p: &ir.Program{}},
		{name: "clusterip", p: clusterIPProgram()},
		{name: "clusterip-chains", r: render.NFT{EndpointChains: true}, p: clusterIPProgram()},
		{name: "affinity-firewall", p: affinityProgram()},
		{name: "sticky", p: stickyProgram()},
		{name: "local-policy", p: localPolicyProgram()},
		{name: "local-policy-chains", r: render.NFT{EndpointChains: true}, p: localPolicyProgram()},
		{name: "ipv6", p: ipv6Program()},
		{name: "dual-stack", p: dualStackProgram()},
		{name: "unlowered", p: unloweredProgram()},
		{name: "comments", p: commentsProgram()},
	}
}
