package ir

import (
	"net/netip"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
)

// Test fixtures: a hand-written IPv4 Ruleset mirroring kube-proxy's
// TestOverallNFTablesRules services (SEMANTICS.md §1.7):
//   - ns5/svc5: LoadBalancer 5.6.7.8, eTP Cluster, source range
//     203.0.113.0/25, ClientIP affinity, one endpoint 10.180.0.3:80,
//     cluster IP 172.30.0.45, NodePort 3002;
//   - ns4/svc4: two endpoints 10.180.0.4:80 and 10.180.0.5:80, cluster IP
//     172.30.0.44, external IP 192.168.99.33;
//   - ns2/svc2: LoadBalancer 1.2.3.4, eTP Local, only a remote endpoint
//     10.180.0.2:80, cluster IP 172.30.0.42, NodePort 3001;
//   - ns6/svc6: no endpoints, cluster IP 172.30.0.46;
//   - ns7/svc7: eTP Local LoadBalancer 1.2.3.7 with a local endpoint
//     10.180.0.7:80 and a remote one 10.180.0.8:80, NodePort 3007.

var (
	podCIDR = netip.MustParsePrefix("10.0.0.0/8")
	nodeIP  = netip.MustParseAddr("192.168.0.2")
)

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func hairpin(ip string) Rule {
	return Rule{Match: Match{SrcAddr: a(ip)}, Action: &MarkMasq{}}
}

func masqRule(cip string) Rule {
	return Rule{Match: Match{DstAddr: a(cip), SrcNotIn: []netip.Prefix{podCIDR}}, Action: &MarkMasq{}}
}

func dnat(ip string) Rule {
	return Rule{Action: &DNAT{Addr: a(ip), Port: 80, Protocol: TCP}}
}

func fixture() *Program {
	const (
		svc5   = "service-HVFWP5L3-ns5/svc5/tcp/p80"
		ext5   = "external-HVFWP5L3-ns5/svc5/tcp/p80"
		fw5    = "firewall-HVFWP5L3-ns5/svc5/tcp/p80"
		ep5    = "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		aff5   = "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
		svc4   = "service-4SW47YFZ-ns4/svc4/tcp/p80"
		ext4   = "external-4SW47YFZ-ns4/svc4/tcp/p80"
		ep4a   = "endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80"
		ep4b   = "endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80"
		svc2   = "service-42NFTM6N-ns2/svc2/tcp/p80"
		ext2   = "external-42NFTM6N-ns2/svc2/tcp/p80"
		ep2    = "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"
		svc7   = "service-AAAAAAAA-ns7/svc7/tcp/p80"
		local7 = "local-AAAAAAAA-ns7/svc7/tcp/p80"
		ext7   = "external-AAAAAAAA-ns7/svc7/tcp/p80"
		ep7a   = "endpoint-BBBBBBBB-ns7/svc7/tcp/p80__10.180.0.7/80"
		ep7b   = "endpoint-CCCCCCCC-ns7/svc7/tcp/p80__10.180.0.8/80"
	)
	se := func(addr string, port uint16, t Target, kind string) ServiceEntry {
		return ServiceEntry{Addr: a(addr), Protocol: TCP, Port: port, Target: t, Kind: kind}
	}
	ch := func(name string, kind ChainKind, rules ...Rule) *Chain {
		return &Chain{Name: name, Kind: kind, Protocol: TCP, Rules: rules}
	}
	local := []Rule{
		{Match: Match{SrcIn: []netip.Prefix{podCIDR}}, Action: &Goto{Chain: ""}},
		{Match: Match{SrcLocal: true}, Action: &MarkMasq{}},
		{Match: Match{SrcLocal: true}, Action: &Goto{Chain: ""}},
	}
	shortCircuit := func(to string) []Rule {
		r := make([]Rule, len(local))
		copy(r, local)
		r[0].Action = &Goto{Chain: to}
		r[2].Action = &Goto{Chain: to}
		return r
	}
	rs := &Ruleset{
		Family:   IPv4,
		Table:    "kpc",
		MasqMark: 0x4000,
		Node: Node{
			Name:               "test-node",
			IPs:                []netip.Addr{nodeIP},
			PodCIDRs:           []netip.Prefix{podCIDR},
			NodePortAddrs:      []netip.Addr{nodeIP},
			LocalhostNodePorts: true,
		},
		Services: []ServiceEntry{
			se("1.2.3.4", 80, Target{Chain: ext2}, "load balancer IP"),
			se("1.2.3.7", 80, Target{Chain: ext7}, "load balancer IP"),
			se("5.6.7.8", 80, Target{Chain: ext5}, "load balancer IP"),
			se("172.30.0.42", 80, Target{Chain: svc2}, "cluster IP"),
			se("172.30.0.44", 80, Target{Chain: svc4}, "cluster IP"),
			se("172.30.0.45", 80, Target{Chain: svc5}, "cluster IP"),
			se("172.30.0.47", 80, Target{Chain: svc7}, "cluster IP"),
			se("192.168.99.33", 80, Target{Chain: ext4}, "external IP"),
		},
		NodePorts: []NodePortEntry{
			{Protocol: TCP, Port: 3001, Target: Target{Chain: ext2}},
			{Protocol: TCP, Port: 3002, Target: Target{Chain: ext5}},
			{Protocol: TCP, Port: 3007, Target: Target{Chain: ext7}},
		},
		Firewall: []ServiceEntry{se("5.6.7.8", 80, Target{Chain: fw5}, "load balancer IP")},
		NoEndpoints: []ServiceEntry{
			se("1.2.3.4", 80, Target{Drop: true}, "load balancer IP"),
			se("172.30.0.46", 80, Target{Reject: true}, "cluster IP"),
		},
		NoEndpointNodePorts: []NodePortEntry{{Protocol: TCP, Port: 3001, Target: Target{Drop: true}}},
		ClusterIPs:          []netip.Addr{a("172.30.0.42"), a("172.30.0.44"), a("172.30.0.45"), a("172.30.0.46"), a("172.30.0.47")},
		RejectClusterIPs:    true,
		ServiceCIDRs:        []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")},
		DropServiceCIDRs:    true,
		Chains: []*Chain{
			ch(ep4b, EndpointChain, hairpin("10.180.0.5"), dnat("10.180.0.5")),
			ch(ep5, EndpointChain, hairpin("10.180.0.3"), Rule{Action: &AffinityUpdate{Set: aff5}}, dnat("10.180.0.3")),
			ch(ep7a, EndpointChain, hairpin("10.180.0.7"), dnat("10.180.0.7")),
			ch(ep7b, EndpointChain, hairpin("10.180.0.8"), dnat("10.180.0.8")),
			ch(ep2, EndpointChain, hairpin("10.180.0.2"), dnat("10.180.0.2")),
			ch(ep4a, EndpointChain, hairpin("10.180.0.4"), dnat("10.180.0.4")),
			ch(ext2, ExternalChain, shortCircuit(svc2)...),
			ch(ext4, ExternalChain, Rule{Action: &MarkMasq{}}, Rule{Action: &Goto{Chain: svc4}}),
			ch(ext5, ExternalChain, Rule{Action: &MarkMasq{}}, Rule{Action: &Goto{Chain: svc5}}),
			ch(ext7, ExternalChain, append(shortCircuit(svc7), Rule{Action: &Goto{Chain: local7}})...),
			ch(fw5, FirewallChain, Rule{Match: Match{SrcNotIn: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/25")}}, Action: &Drop{}}),
			ch(local7, LocalChain, Rule{Action: &Balance{Chains: []string{ep7a}}}),
			ch(svc2, ServiceChain, masqRule("172.30.0.42"), Rule{Action: &Balance{Chains: []string{ep2}}}),
			ch(svc4, ServiceChain, masqRule("172.30.0.44"), Rule{Action: &Balance{Chains: []string{ep4a, ep4b}}}),
			ch(svc5, ServiceChain, masqRule("172.30.0.45"),
				Rule{Match: Match{Affinity: aff5}, Action: &Goto{Chain: ep5}},
				Rule{Action: &Balance{Chains: []string{ep5}}}),
			ch(svc7, ServiceChain, masqRule("172.30.0.47"), Rule{Action: &Balance{Chains: []string{ep7a, ep7b}}}),
		},
		AffinitySets: []AffinitySet{{Name: aff5, Timeout: 10800 * time.Second}},
	}
	return &Program{Rulesets: []*Ruleset{rs}, Notes: []string{"a note"}}
}

// cmpNet compares net/netip values by ==.
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})
