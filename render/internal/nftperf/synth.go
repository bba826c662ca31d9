// Package nftperf builds deterministic synthetic IR Programs of any size,
// laid out as the compiler lays out kube-proxy's nftables mode, for
// renderer benchmarks and kernel load measurements.
package nftperf

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"kpc/compiler/ir"
)

// Endpoints is the number of endpoints of every synthetic Service that has
// endpoints.
const Endpoints = 5

// Options say which Services of a synthetic Program get which features:
// Service i has the feature when Every > 0 and i%Every == Every/2.
type Options struct {
	// AffinityEvery: ClientIP session affinity (one set per endpoint).
	AffinityEvery int
	// LocalEvery: a NodePort and a load-balancer IP with
	// externalTrafficPolicy Local, two of its endpoints being local.
	LocalEvery int
	// NoEndpointsEvery: no endpoints (rejected).
	NoEndpointsEvery int
}

// Mixed is the default mix of Program: 10% of Services with affinity, 1/7
// with external traffic policy Local, 2% without endpoints.
var Mixed = Options{AffinityEvery: 10, LocalEvery: 7, NoEndpointsEvery: 50}

// Program is Generate(n, Mixed).
func Program(n int) *ir.Program { return Generate(n, Mixed) }

// Generate returns an IPv4 Program with n ClusterIP Services of one TCP
// port each, with Endpoints endpoints each unless o says otherwise. n must
// be below 2^20.
func Generate(n int, o Options) *ir.Program {
	has := func(i, every int) bool { return every > 0 && i%every == every/2 }
	podCIDR := netip.MustParsePrefix("10.128.0.0/9")
	rs := &ir.Ruleset{
		Family:   ir.IPv4,
		Table:    "kpc",
		MasqMark: 0x4000,
		Node: ir.Node{
			Name:          "node-a",
			IPs:           []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			PodCIDRs:      []netip.Prefix{podCIDR},
			NodePortAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		},
		RejectClusterIPs: true,
		ServiceCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		DropServiceCIDRs: true,
	}
	nodePort := uint16(30000)
	for i := 0; i < n; i++ {
		ns, name := fmt.Sprintf("ns%d", i%100), fmt.Sprintf("svc%d", i)
		svc := ns + "/" + name + ":p80"
		base := ns + "/" + name + "/tcp/p80"
		vip := addr4(0x0a600000 + uint32(i) + 1)
		rs.ClusterIPs = append(rs.ClusterIPs, vip)
		if has(i, o.NoEndpointsEvery) {
			rs.NoEndpoints = append(rs.NoEndpoints, ir.ServiceEntry{Addr: vip, Protocol: ir.TCP, Port: 80,
				Target: ir.Target{Reject: true}, Comment: svc, Kind: "cluster IP"})
			continue
		}
		affinity := has(i, o.AffinityEvery)
		svcChain := chainName("service", base)
		var eps []string
		var rules []ir.Rule
		rules = append(rules, ir.Rule{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: []netip.Prefix{podCIDR}},
			Action: &ir.MarkMasq{}, Comment: "masquerade off-cluster traffic to " + svc})
		for k := 0; k < Endpoints; k++ {
			ep := addr4(0x0a800000 + uint32(i)*8 + uint32(k) + 1)
			epBase := fmt.Sprintf("%s__%s/8080", base, ep)
			epChain := chainName("endpoint", epBase)
			eps = append(eps, epChain)
			// Compact, as the compiler builds it: the hairpin mark, the
			// affinity update, the DNAT (Describe gives the comment).
			target := &ir.EndpointTarget{DNAT: ir.DNAT{Addr: ep, Port: 8080, Protocol: ir.TCP}}
			if affinity {
				set := chainName("affinity", epBase)
				rs.AffinitySets = append(rs.AffinitySets, ir.AffinitySet{Name: set, Timeout: 10800 * time.Second,
					Comment: fmt.Sprintf("%s -> %s:8080", svc, ep)})
				rules = append(rules, ir.Rule{Match: ir.Match{Affinity: set}, Action: &ir.Goto{Chain: epChain}})
				target.Update.Set = set
			}
			rs.Chains = append(rs.Chains, &ir.Chain{Name: epChain, Kind: ir.EndpointChain, Service: svc,
				Protocol: ir.TCP, Endpoint: target})
		}
		rules = append(rules, ir.Rule{Action: &ir.Balance{Chains: eps}})
		rs.Chains = append(rs.Chains, &ir.Chain{Name: svcChain, Kind: ir.ServiceChain, Service: svc,
			Protocol: ir.TCP, Comment: svc, Rules: rules})
		rs.Services = append(rs.Services, ir.ServiceEntry{Addr: vip, Protocol: ir.TCP, Port: 80,
			Target: ir.Target{Chain: svcChain}, Comment: svc, Kind: "cluster IP"})
		if !has(i, o.LocalEvery) {
			continue
		}
		localChain := chainName("local", base)
		extChain := chainName("external", base)
		rs.Chains = append(rs.Chains,
			&ir.Chain{Name: localChain, Kind: ir.LocalChain, Service: svc, Protocol: ir.TCP, Comment: svc,
				Rules: []ir.Rule{{Action: &ir.Balance{Chains: []string{eps[0], eps[1]}}}}},
			&ir.Chain{Name: extChain, Kind: ir.ExternalChain, Service: svc, Protocol: ir.TCP, Comment: svc,
				Rules: []ir.Rule{
					{Match: ir.Match{SrcIn: []netip.Prefix{podCIDR}}, Action: &ir.Goto{Chain: svcChain},
						Comment: "short-circuit pod traffic"},
					{Match: ir.Match{SrcLocal: true}, Action: &ir.MarkMasq{}, Comment: "masquerade local traffic"},
					{Match: ir.Match{SrcLocal: true}, Action: &ir.Goto{Chain: svcChain}, Comment: "short-circuit local traffic"},
					{Action: &ir.Goto{Chain: localChain}},
				}})
		lb := addr4(0xc6120000 + uint32(i) + 1)
		rs.Services = append(rs.Services, ir.ServiceEntry{Addr: lb, Protocol: ir.TCP, Port: 80,
			Target: ir.Target{Chain: extChain}, Comment: svc, Kind: "load balancer IP"})
		rs.NodePorts = append(rs.NodePorts, ir.NodePortEntry{Protocol: ir.TCP, Port: nodePort,
			Target: ir.Target{Chain: extChain}, Comment: svc})
		nodePort++
	}
	sort.Slice(rs.Chains, func(i, j int) bool { return rs.Chains[i].Name < rs.Chains[j].Name })
	sort.Slice(rs.AffinitySets, func(i, j int) bool { return rs.AffinitySets[i].Name < rs.AffinitySets[j].Name })
	sort.Slice(rs.Services, func(i, j int) bool { return rs.Services[i].Addr.Less(rs.Services[j].Addr) })
	sort.Slice(rs.NoEndpoints, func(i, j int) bool { return rs.NoEndpoints[i].Addr.Less(rs.NoEndpoints[j].Addr) })
	return &ir.Program{Rulesets: []*ir.Ruleset{rs}}
}

// chainName is kube-proxy's hashAndTruncate scheme: prefix, the first 8
// base32 characters of the SHA-256 of base, and base.
func chainName(prefix, base string) string {
	h := sha256.Sum256([]byte(base))
	return prefix + "-" + base32.StdEncoding.EncodeToString(h[:])[:8] + "-" + base
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
