package render

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
	"kpc/render/internal/nftperf"
)

// The golden files are rewritten with "go test ./render -update". The flag
// is shared with the package's other golden tests: define it only if no
// other file has (package variables are initialised before init runs).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files")
	}
}

func iptUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	v, _ := g.Get().(bool)
	return v
}

func iptIP(s string) netip.Addr    { return netip.MustParseAddr(s) }
func iptPfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func iptPfxs(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = iptPfx(p)
	}
	return out
}

// iptEndpoint builds a kube-proxy endpoint chain: hairpin mark, optional
// affinity update, DNAT.
func iptEndpoint(name, svc string, proto ir.Protocol, ep, affinity string) *ir.Chain {
	ap := netip.MustParseAddrPort(ep)
	rules := []ir.Rule{{Match: ir.Match{SrcAddr: ap.Addr()}, Action: &ir.MarkMasq{}}}
	if affinity != "" {
		rules = append(rules, ir.Rule{Action: &ir.AffinityUpdate{Set: affinity}})
	}
	rules = append(rules, ir.Rule{Action: &ir.DNAT{Addr: ap.Addr(), Port: ap.Port(), Protocol: proto}})
	return &ir.Chain{Name: name, Kind: ir.EndpointChain, Service: svc, Protocol: proto, Rules: rules}
}

// iptProgram sorts the chains of each Ruleset by name, as the compiler does.
func iptProgram(notes []string, rss ...*ir.Ruleset) *ir.Program {
	for _, rs := range rss {
		slices.SortFunc(rs.Chains, func(a, b *ir.Chain) int { return strings.Compare(a.Name, b.Name) })
	}
	return &ir.Program{Rulesets: rss, Notes: notes}
}

func iptNode4() ir.Node {
	return ir.Node{
		Name:               "node1",
		IPs:                []netip.Addr{iptIP("203.0.113.2")},
		PodCIDRs:           iptPfxs("192.0.2.0/24"),
		NodePortAllLocal:   true,
		LocalhostNodePorts: true,
	}
}

// iptClusterIP: one ClusterIP Service, one endpoint.
func iptClusterIP() *ir.Program {
	const svc, sc, ep = "ns1/svc1:p80", "service-AAAAAAAA-ns1/svc1/tcp/p80", "endpoint-BBBBBBBB-ns1/svc1/tcp/p80__192.0.2.10/8080"
	return iptProgram([]string{"allocated cluster IP 198.51.100.10 to ns1/svc1"}, &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: iptNode4(),
		Services: []ir.ServiceEntry{{Addr: iptIP("198.51.100.10"), Protocol: ir.TCP, Port: 80,
			Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"}},
		ClusterIPs:       []netip.Addr{iptIP("198.51.100.10")},
		RejectClusterIPs: true,
		Chains: []*ir.Chain{
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: iptIP("198.51.100.10"), DstPort: 80, SrcNotIn: iptPfxs("192.0.2.0/24")},
					Action: &ir.MarkMasq{}, Comment: "cluster IP"},
				{Action: &ir.Balance{Chains: []string{ep}}},
			}},
			iptEndpoint(ep, svc, ir.TCP, "192.0.2.10:8080", ""),
		},
	})
}

// iptAffinity: UDP Service, three endpoints, ClientIP affinity.
func iptAffinity() *ir.Program {
	const svc, sc = "ns2/dns:dns", "service-CCCCCCCC-ns2/dns/udp/dns"
	eps := []string{"192.0.2.21:53", "192.0.2.22:53", "192.0.2.23:53"}
	rs := &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: iptNode4(),
		Services: []ir.ServiceEntry{{Addr: iptIP("198.51.100.53"), Protocol: ir.UDP, Port: 53,
			Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"}},
		ClusterIPs: []netip.Addr{iptIP("198.51.100.53")},
	}
	svcChain := &ir.Chain{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.UDP, Rules: []ir.Rule{
		{Match: ir.Match{DstAddr: iptIP("198.51.100.53"), DstPort: 53, SrcNotIn: iptPfxs("192.0.2.0/24")}, Action: &ir.MarkMasq{}},
	}}
	var names []string
	for _, ep := range eps {
		name := "endpoint-DDDDDDDD-ns2/dns/udp/dns__" + strings.ReplaceAll(ep, ":", "/")
		set := "affinity-DDDDDDDD-ns2/dns/udp/dns__" + strings.ReplaceAll(ep, ":", "/")
		names = append(names, name)
		rs.AffinitySets = append(rs.AffinitySets, ir.AffinitySet{Name: set, Timeout: 10800 * time.Second, Comment: svc + " -> " + ep})
		svcChain.Rules = append(svcChain.Rules, ir.Rule{Match: ir.Match{Affinity: set}, Action: &ir.Goto{Chain: name}})
		rs.Chains = append(rs.Chains, iptEndpoint(name, svc, ir.UDP, ep, set))
	}
	svcChain.Rules = append(svcChain.Rules, ir.Rule{Action: &ir.Balance{Chains: names}})
	rs.Chains = append(rs.Chains, svcChain)
	return iptProgram(nil, rs)
}

// iptLocalPolicy: NodePort + external IP with externalTrafficPolicy Local,
// NodePorts on listed addresses, a health-check NodePort.
func iptLocalPolicy() *ir.Program {
	const (
		svc   = "ns3/web:http"
		sc    = "service-EEEEEEEE-ns3/web/tcp/http"
		lc    = "local-EEEEEEEE-ns3/web/tcp/http"
		xc    = "external-EEEEEEEE-ns3/web/tcp/http"
		epL   = "endpoint-FFFFFFFF-ns3/web/tcp/http__192.0.2.31/80"
		epR   = "endpoint-GGGGGGGG-ns3/web/tcp/http__192.0.2.32/80"
		vip   = "198.51.100.30"
		extIP = "203.0.113.30"
	)
	node := iptNode4()
	node.NodePortAllLocal = false
	node.NodePortAddrs = []netip.Addr{iptIP("203.0.113.2"), iptIP("127.0.0.1")}
	return iptProgram(nil, &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: node,
		Services: []ir.ServiceEntry{
			{Addr: iptIP(vip), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"},
			{Addr: iptIP(extIP), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: xc}, Comment: svc, Kind: "external IP"},
		},
		NodePorts:            []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30080, Target: ir.Target{Chain: xc}, Comment: svc}},
		ClusterIPs:           []netip.Addr{iptIP(vip)},
		HealthCheckNodePorts: []uint16{30999},
		Chains: []*ir.Chain{
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: iptIP(vip), DstPort: 80, SrcNotIn: iptPfxs("192.0.2.0/24")}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{epL, epR}}},
			}},
			{Name: lc, Kind: ir.LocalChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{epL}}},
			}},
			{Name: xc, Kind: ir.ExternalChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{SrcIn: iptPfxs("192.0.2.0/24")}, Action: &ir.Goto{Chain: sc}, Comment: "pod traffic for ns3/web:http external destinations"},
				{Match: ir.Match{SrcLocal: true}, Action: &ir.MarkMasq{}, Comment: "masquerade LOCAL traffic for ns3/web:http external destinations"},
				{Match: ir.Match{SrcLocal: true}, Action: &ir.Goto{Chain: sc}, Comment: "route LOCAL traffic for ns3/web:http external destinations"},
				{Action: &ir.Goto{Chain: lc}},
			}},
			iptEndpoint(epL, svc, ir.TCP, "192.0.2.31:80", ""),
			iptEndpoint(epR, svc, ir.TCP, "192.0.2.32:80", ""),
		},
	})
}

// iptLoadBalancer: LoadBalancer with source ranges (the node is allowed, so
// the LB IP is too), eTP Cluster, a NodePort.
func iptLoadBalancer() *ir.Program {
	const (
		svc = "ns4/lb:https"
		sc  = "service-HHHHHHHH-ns4/lb/tcp/https"
		xc  = "external-HHHHHHHH-ns4/lb/tcp/https"
		fc  = "firewall-HHHHHHHH-ns4/lb/tcp/https"
		ep  = "endpoint-IIIIIIII-ns4/lb/tcp/https__192.0.2.41/8443"
		vip = "198.51.100.40"
		lb  = "203.0.113.40"
	)
	return iptProgram(nil, &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: iptNode4(),
		Services: []ir.ServiceEntry{
			{Addr: iptIP(vip), Protocol: ir.TCP, Port: 443, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"},
			{Addr: iptIP(lb), Protocol: ir.TCP, Port: 443, Target: ir.Target{Chain: xc}, Comment: svc, Kind: "load balancer IP"},
		},
		NodePorts:  []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30443, Target: ir.Target{Chain: xc}, Comment: svc}},
		Firewall:   []ir.ServiceEntry{{Addr: iptIP(lb), Protocol: ir.TCP, Port: 443, Target: ir.Target{Chain: fc}, Comment: svc, Kind: "load balancer IP"}},
		ClusterIPs: []netip.Addr{iptIP(vip)},
		Chains: []*ir.Chain{
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: iptIP(vip), DstPort: 443, SrcNotIn: iptPfxs("192.0.2.0/24")}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{ep}}},
			}},
			{Name: xc, Kind: ir.ExternalChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.MarkMasq{}, Comment: "masquerade traffic for ns4/lb:https external destinations"},
				{Action: &ir.Goto{Chain: sc}},
			}},
			{Name: fc, Kind: ir.FirewallChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: iptPfxs("198.51.100.128/25", "203.0.113.0/24", lb+"/32")}, Action: &ir.Drop{}},
			}},
			iptEndpoint(ep, svc, ir.TCP, "192.0.2.41:8443", ""),
		},
	})
}

// iptNoEndpoints: Services without (local) endpoints.
func iptNoEndpoints() *ir.Program {
	const (
		svcA = "ns5/gone:p80"  // no endpoints at all
		svcB = "ns5/local:p80" // eTP Local, no local endpoint
		svcC = "ns5/itp:p80"   // iTP Local, no local endpoint
		xcB  = "external-JJJJJJJJ-ns5/local/tcp/p80"
		scB  = "service-JJJJJJJJ-ns5/local/tcp/p80"
		epB  = "endpoint-KKKKKKKK-ns5/local/tcp/p80__192.0.2.51/80"
	)
	return iptProgram(nil, &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: iptNode4(),
		Services: []ir.ServiceEntry{
			{Addr: iptIP("198.51.100.51"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: scB}, Comment: svcB, Kind: "cluster IP"},
			{Addr: iptIP("203.0.113.51"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: xcB}, Comment: svcB, Kind: "external IP"},
		},
		NodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30051, Target: ir.Target{Chain: xcB}, Comment: svcB}},
		NoEndpoints: []ir.ServiceEntry{
			{Addr: iptIP("198.51.100.50"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Reject: true}, Comment: svcA, Kind: "cluster IP"},
			{Addr: iptIP("198.51.100.52"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Drop: true}, Comment: svcC, Kind: "cluster IP"},
			{Addr: iptIP("203.0.113.50"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Reject: true}, Comment: svcA, Kind: "external IP"},
			{Addr: iptIP("203.0.113.51"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Drop: true}, Comment: svcB, Kind: "external IP"},
		},
		NoEndpointNodePorts: []ir.NodePortEntry{
			{Protocol: ir.TCP, Port: 30050, Target: ir.Target{Reject: true}, Comment: svcA},
			{Protocol: ir.TCP, Port: 30051, Target: ir.Target{Drop: true}, Comment: svcB},
		},
		ClusterIPs: []netip.Addr{iptIP("198.51.100.50"), iptIP("198.51.100.51"), iptIP("198.51.100.52")},
		Chains: []*ir.Chain{
			{Name: scB, Kind: ir.ServiceChain, Service: svcB, Protocol: ir.TCP, Rules: []ir.Rule{
				{Action: &ir.Balance{Chains: []string{epB}}},
			}},
			{Name: xcB, Kind: ir.ExternalChain, Service: svcB, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{SrcIn: iptPfxs("192.0.2.0/24")}, Action: &ir.Goto{Chain: scB}},
				{Match: ir.Match{SrcLocal: true}, Action: &ir.MarkMasq{}},
				{Match: ir.Match{SrcLocal: true}, Action: &ir.Goto{Chain: scB}},
			}},
			iptEndpoint(epB, svcB, ir.TCP, "192.0.2.51:80", ""),
		},
	})
}

// iptIPv6Program: dual-stack Program; the IPv6 Ruleset has an SCTP
// Service with two endpoints and a rejected NodePort.
func iptIPv6Program() *ir.Program {
	const (
		svc = "ns6/sig:sctp"
		sc  = "service-LLLLLLLL-ns6/sig/sctp/sctp"
		xc  = "external-LLLLLLLL-ns6/sig/sctp/sctp"
		ep1 = "endpoint-MMMMMMMM-ns6/sig/sctp/sctp__2001.db8.244..5/3868"
		ep2 = "endpoint-NNNNNNNN-ns6/sig/sctp/sctp__2001.db8.244..6/3868"
	)
	v4 := iptClusterIP().Rulesets[0]
	return iptProgram([]string{"dual-stack"}, v4, &ir.Ruleset{
		Family: ir.IPv6, Table: "kpc", MasqMark: 0x4000,
		Node: ir.Node{Name: "node1", IPs: []netip.Addr{iptIP("2001:db8::2")}, PodCIDRs: iptPfxs("2001:db8:244::/64"), NodePortAllLocal: true},
		Services: []ir.ServiceEntry{
			{Addr: iptIP("2001:db8:96::10"), Protocol: ir.SCTP, Port: 3868, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"},
		},
		NodePorts:           []ir.NodePortEntry{{Protocol: ir.SCTP, Port: 31868, Target: ir.Target{Chain: xc}, Comment: svc}},
		NoEndpoints:         []ir.ServiceEntry{{Addr: iptIP("2001:db8:96::11"), Protocol: ir.TCP, Port: 443, Target: ir.Target{Reject: true}, Comment: "ns6/empty:https", Kind: "cluster IP"}},
		NoEndpointNodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30443, Target: ir.Target{Reject: true}, Comment: "ns6/empty:https"}},
		ClusterIPs:          []netip.Addr{iptIP("2001:db8:96::10"), iptIP("2001:db8:96::11")},
		Chains: []*ir.Chain{
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.SCTP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: iptIP("2001:db8:96::10"), DstPort: 3868, SrcNotIn: iptPfxs("2001:db8:244::/64")}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{ep1, ep2}}},
			}},
			{Name: xc, Kind: ir.ExternalChain, Service: svc, Protocol: ir.SCTP, Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: iptPfxs("2001:db8:244::/64", "2001:db8:1::/48")}, Action: &ir.MarkMasq{}},
				{Action: &ir.Goto{Chain: sc}},
			}},
			iptEndpoint(ep1, svc, ir.SCTP, "[2001:db8:244::5]:3868", ""),
			iptEndpoint(ep2, svc, ir.SCTP, "[2001:db8:244::6]:3868", ""),
		},
	})
}

// iptEdges: IR shapes the compiler does not produce today but the renderer
// must still spell exactly: verdicts at dispatch, several excluded and
// included source ranges in one rule, an affinity update that cannot be
// folded into the DNAT rule, an affinity set nobody records, firewall
// chains that allow everything or sit in front of no chain, four-endpoint
// probabilities.
func iptEdges() *ir.Program {
	const (
		svc = "ns7/edge:p"
		sc  = "service-OOOOOOOO-ns7/edge/tcp/p"
		fa  = "firewall-PPPPPPPP-ns7/edge/tcp/p"
		fb  = "firewall-QQQQQQQQ-ns7/edge/tcp/p"
		set = "affinity-RRRRRRRR-ns7/edge/tcp/p__192.0.2.71/80"
		un  = "affinity-SSSSSSSS-ns7/edge/tcp/p__unused"
	)
	var eps []string
	rs := &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x10000,
		Node: ir.Node{Name: "node1", NodePortAddrs: []netip.Addr{iptIP("203.0.113.2"), iptIP("203.0.113.3"), iptIP("127.0.0.1")}},
		Services: []ir.ServiceEntry{
			{Addr: iptIP("198.51.100.70"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"},
			{Addr: iptIP("198.51.100.71"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Drop: true}, Comment: svc, Kind: "cluster IP"},
			{Addr: iptIP("203.0.113.70"), Protocol: ir.UDP, Port: 53, Target: ir.Target{Reject: true}, Comment: svc, Kind: "external IP"},
			{Addr: iptIP("203.0.113.71"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "load balancer IP"},
		},
		NodePorts: []ir.NodePortEntry{{Protocol: ir.UDP, Port: 30053, Target: ir.Target{Reject: true}, Comment: svc}},
		Firewall: []ir.ServiceEntry{
			{Addr: iptIP("203.0.113.70"), Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: fb}, Comment: svc, Kind: "external IP"},
			{Addr: iptIP("203.0.113.71"), Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: fa}, Comment: svc},
		},
		ClusterIPs:   []netip.Addr{iptIP("198.51.100.70"), iptIP("198.51.100.71")},
		AffinitySets: []ir.AffinitySet{{Name: set, Timeout: 1500 * time.Millisecond}, {Name: un, Timeout: time.Minute}},
	}
	for i := 1; i <= 4; i++ {
		ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(70 + i)}), 80)
		name := "endpoint-TTTTTTTT-ns7/edge/tcp/p__" + strings.ReplaceAll(ep.String(), ":", "/")
		eps = append(eps, name)
		c := iptEndpoint(name, svc, ir.TCP, ep.String(), "")
		if i == 1 {
			c.Rules = []ir.Rule{
				{Match: ir.Match{SrcAddr: ep.Addr()}, Action: &ir.AffinityUpdate{Set: set}, Comment: "hairpin client"},
				{Action: &ir.AffinityUpdate{Set: set}},
				{Match: ir.Match{DstPort: 80}, Action: &ir.DNAT{Addr: ep.Addr(), Port: 80, Protocol: ir.TCP}},
			}
		}
		rs.Chains = append(rs.Chains, c)
	}
	rs.Chains = append(rs.Chains,
		&ir.Chain{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
			{Match: ir.Match{DstAddr: iptIP("198.51.100.70"), SrcIn: iptPfxs("198.51.100.0/24", "203.0.113.0/24"),
				SrcNotIn: iptPfxs("198.51.100.0/28", "203.0.113.128/25")}, Action: &ir.MarkMasq{}},
			{Match: ir.Match{SrcAddr: iptIP("192.0.2.9"), SrcIn: iptPfxs("198.51.100.0/24")}, Action: &ir.MarkMasq{}, Comment: "never matches"},
			{Match: ir.Match{SrcAddr: iptIP("192.0.2.9"), SrcNotIn: iptPfxs("192.0.2.0/24")}, Action: &ir.MarkMasq{}, Comment: "excluded source"},
			{Match: ir.Match{Affinity: un, SrcLocal: true}, Action: &ir.Goto{Chain: eps[0]}},
			{Action: &ir.Balance{Chains: eps}},
		}},
		&ir.Chain{Name: fa, Kind: ir.FirewallChain, Service: svc, Protocol: ir.TCP},
		&ir.Chain{Name: fb, Kind: ir.FirewallChain, Service: svc, Protocol: ir.UDP, Rules: []ir.Rule{
			{Match: ir.Match{SrcNotIn: iptPfxs("198.51.100.0/24")}, Action: &ir.Drop{}},
		}},
	)
	return iptProgram(nil, rs)
}

// iptCase is one golden case: a Program rendered for one family.
type iptCase struct {
	name   string
	family ir.Family
	prog   func() *ir.Program
}

var iptCases = []iptCase{
	{"empty-ipv4", ir.IPv4, func() *ir.Program { return &ir.Program{} }},
	{"empty-ipv6", ir.IPv6, func() *ir.Program { return &ir.Program{} }},
	{"ipv4-only-rendered-ipv6", ir.IPv6, iptClusterIP},
	{"clusterip", ir.IPv4, iptClusterIP},
	{"affinity", ir.IPv4, iptAffinity},
	{"local-policy", ir.IPv4, iptLocalPolicy},
	{"loadbalancer-source-ranges", ir.IPv4, iptLoadBalancer},
	{"no-endpoints", ir.IPv4, iptNoEndpoints},
	{"dual-stack-ipv6", ir.IPv6, iptIPv6Program},
	{"edges", ir.IPv4, iptEdges},
}

func iptGoldenPath(name string) string {
	return filepath.Join("testdata", "iptables", name+".iptables")
}

func TestIPTablesGolden(t *testing.T) {
	for _, tc := range iptCases {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := (IPTables{Family: tc.family}).Render(&got, tc.prog()); err != nil {
				t.Fatalf("Render: %v", err)
			}
			var again bytes.Buffer
			if err := (IPTables{Family: tc.family}).Render(&again, tc.prog()); err != nil || !bytes.Equal(got.Bytes(), again.Bytes()) {
				t.Fatalf("second Render differs (err %v)", err)
			}
			var streamed bytes.Buffer
			if err := (IPTables{Family: tc.family, Stream: true}).Render(&streamed, tc.prog()); err != nil || !bytes.Equal(got.Bytes(), streamed.Bytes()) {
				t.Fatalf("streaming Render differs (err %v)", err)
			}
			path := iptGoldenPath(tc.name)
			if iptUpdate() {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

// TestIPTablesGoldenOrphans fails on golden files without a case.
func TestIPTablesGoldenOrphans(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "iptables", "*.iptables"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".iptables")
		if !slices.ContainsFunc(iptCases, func(c iptCase) bool { return c.name == name }) {
			t.Errorf("orphaned golden file %s", f)
		}
	}
}

func TestIPTablesRenderErrors(t *testing.T) {
	withRuleset := func(f func(rs *ir.Ruleset)) func() *ir.Program {
		return func() *ir.Program {
			p := iptClusterIP()
			f(p.Rulesets[0])
			return p
		}
	}
	fwChain := func(rules ...ir.Rule) func() *ir.Program {
		return func() *ir.Program {
			p := iptLoadBalancer()
			for _, c := range p.Rulesets[0].Chains {
				if c.Kind == ir.FirewallChain {
					c.Rules = rules
				}
			}
			return p
		}
	}
	tests := []struct {
		name        string
		family      ir.Family
		prog        func() *ir.Program
		unsupported bool
		want        string
	}{
		{name: "nil program", prog: func() *ir.Program { return nil }, want: "nil program"},
		{name: "unknown family", family: 5, prog: iptClusterIP, want: "unknown IP family 5"},
		{name: "invalid", prog: withRuleset(func(rs *ir.Ruleset) { rs.MasqMark = 0 }), want: "masquerade mark is zero"},
		// Validation runs alongside generation: its error must win over
		// anything generation trips on.
		{name: "nil chain", prog: withRuleset(func(rs *ir.Ruleset) { rs.Chains = append(rs.Chains, nil) }), want: "is nil"},
		{name: "nil action", prog: withRuleset(func(rs *ir.Ruleset) { rs.Chains[0].Rules[0].Action = nil }), want: "nil action"},
		{name: "long table", prog: withRuleset(func(rs *ir.Ruleset) { rs.Table = "kubeproxy" }), want: "must have 1 to 7 characters"},
		{name: "bad table", prog: withRuleset(func(rs *ir.Ruleset) { rs.Table = "k.p" }), want: "may only hold"},
		{name: "drop in chain", unsupported: true, want: "*ir.Drop in a nat chain",
			prog: withRuleset(func(rs *ir.Ruleset) {
				rs.Chains[0].Rules = append(rs.Chains[0].Rules, ir.Rule{Action: &ir.Drop{}})
			})},
		{name: "reject in chain", unsupported: true, want: "*ir.Reject in a nat chain",
			prog: withRuleset(func(rs *ir.Ruleset) {
				rs.Chains[0].Rules = append([]ir.Rule{{Action: &ir.Reject{}}}, rs.Chains[0].Rules...)
			})},
		{name: "dport without protocol", want: "needs the chain's protocol",
			prog: withRuleset(func(rs *ir.Ruleset) { rs.Chains[1].Protocol = "" })},
		{name: "two firewall rules", unsupported: true, want: "firewall chain",
			prog: fwChain(ir.Rule{Action: &ir.Drop{}}, ir.Rule{Action: &ir.Drop{}})},
		{name: "firewall chain accepting", unsupported: true, want: "firewall chain",
			prog: fwChain(ir.Rule{Match: ir.Match{SrcIn: iptPfxs("192.0.2.0/24")}, Action: &ir.Goto{Chain: "service-HHHHHHHH-ns4/lb/tcp/https"}})},
		{name: "firewall target not a firewall chain", unsupported: true, want: "not a firewall chain",
			prog: func() *ir.Program {
				p := iptLoadBalancer()
				p.Rulesets[0].Firewall[0].Target.Chain = "service-HHHHHHHH-ns4/lb/tcp/https"
				return p
			}},
		{name: "dispatch to firewall chain", unsupported: true, want: "jump to firewall chain",
			prog: func() *ir.Program {
				p := iptLoadBalancer()
				p.Rulesets[0].NodePorts[0].Target.Chain = "firewall-HHHHHHHH-ns4/lb/tcp/https"
				return p
			}},
		{name: "goto firewall chain", unsupported: true, want: "jump to firewall chain",
			prog: func() *ir.Program {
				p := iptLoadBalancer()
				for _, c := range p.Rulesets[0].Chains {
					if c.Kind == ir.ExternalChain {
						c.Rules[1].Action = &ir.Goto{Chain: "firewall-HHHHHHHH-ns4/lb/tcp/https"}
					}
				}
				return p
			}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				var out bytes.Buffer
				err := (IPTables{Family: tc.family, Stream: stream}).Render(&out, tc.prog())
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
				}
				var ue *UnsupportedError
				if got := errors.As(err, &ue); got != tc.unsupported {
					t.Errorf("errors.As(UnsupportedError) = %v, want %v (%v)", got, tc.unsupported, err)
				}
				// Streaming writes the head before the chains' rules, in
				// which an unsupported intent is then found; an invalid
				// Program gets nothing written either way.
				if out.Len() != 0 && (!stream || strings.Contains(err.Error(), "invalid program")) {
					t.Errorf("Render wrote %d bytes despite the error", out.Len())
				}
			})
		}
	}
}

// iptCountWriter counts the writes made to it.
type iptCountWriter struct {
	bytes.Buffer
	writes int
}

func (w *iptCountWriter) Write(b []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(b)
}

// TestIPTablesStream checks that a streaming Render of a large Ruleset
// writes what the whole Render writes, in parts of about iptStreamPart
// bytes.
func TestIPTablesStream(t *testing.T) {
	p := nftperf.Program(3000)
	var whole, streamed iptCountWriter
	if err := (IPTables{}).Render(&whole, p); err != nil {
		t.Fatal(err)
	}
	if err := (IPTables{Stream: true}).Render(&streamed, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole.Bytes(), streamed.Bytes()) {
		t.Fatal("the streamed output differs from the whole one")
	}
	if parts := whole.Len() / iptStreamPart; parts < 2 || streamed.writes < parts {
		t.Errorf("%d bytes in %d writes: want at least %d parts of %d bytes", whole.Len(), streamed.writes, max(parts, 2), iptStreamPart)
	}
	if err := (IPTables{Stream: true}).Render(iptFailWriter{}, p); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("streaming Render to a failing writer: %v, want the writer's error", err)
	}
}

type iptFailWriter struct{}

func (iptFailWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestIPTablesRenderWriteError(t *testing.T) {
	err := (IPTables{}).Render(iptFailWriter{}, iptClusterIP())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Render error = %v, want the writer's", err)
	}
}

func TestIPTablesHooks(t *testing.T) {
	tests := []struct {
		name   string
		family ir.Family
		prog   *ir.Program
		want   []string
	}{
		{"default prefix", ir.IPv4, nil, []string{
			"iptables -w 5 -t filter -C INPUT -j KPC-HOOK-INPUT 2>/dev/null || iptables -w 5 -t filter -I INPUT 1 -j KPC-HOOK-INPUT",
			"iptables -w 5 -t filter -C FORWARD -j KPC-HOOK-FORWARD 2>/dev/null || iptables -w 5 -t filter -I FORWARD 1 -j KPC-HOOK-FORWARD",
			"iptables -w 5 -t filter -C OUTPUT -j KPC-HOOK-OUTPUT 2>/dev/null || iptables -w 5 -t filter -I OUTPUT 1 -j KPC-HOOK-OUTPUT",
			"iptables -w 5 -t nat -C PREROUTING -j KPC-HOOK-PREROUTING 2>/dev/null || iptables -w 5 -t nat -I PREROUTING 1 -j KPC-HOOK-PREROUTING",
			"iptables -w 5 -t nat -C OUTPUT -j KPC-HOOK-OUTPUT 2>/dev/null || iptables -w 5 -t nat -I OUTPUT 1 -j KPC-HOOK-OUTPUT",
			"iptables -w 5 -t nat -C POSTROUTING -j KPC-HOOK-POSTROUTING 2>/dev/null || iptables -w 5 -t nat -I POSTROUTING 1 -j KPC-HOOK-POSTROUTING",
		}},
		{"ipv6 table prefix", ir.IPv6, iptProgram(nil, &ir.Ruleset{Family: ir.IPv6, Table: "k8s", MasqMark: 1}), []string{
			"ip6tables -w 5 -t filter -C INPUT -j K8S-HOOK-INPUT 2>/dev/null || ip6tables -w 5 -t filter -I INPUT 1 -j K8S-HOOK-INPUT",
			"ip6tables -w 5 -t filter -C FORWARD -j K8S-HOOK-FORWARD 2>/dev/null || ip6tables -w 5 -t filter -I FORWARD 1 -j K8S-HOOK-FORWARD",
			"ip6tables -w 5 -t filter -C OUTPUT -j K8S-HOOK-OUTPUT 2>/dev/null || ip6tables -w 5 -t filter -I OUTPUT 1 -j K8S-HOOK-OUTPUT",
			"ip6tables -w 5 -t nat -C PREROUTING -j K8S-HOOK-PREROUTING 2>/dev/null || ip6tables -w 5 -t nat -I PREROUTING 1 -j K8S-HOOK-PREROUTING",
			"ip6tables -w 5 -t nat -C OUTPUT -j K8S-HOOK-OUTPUT 2>/dev/null || ip6tables -w 5 -t nat -I OUTPUT 1 -j K8S-HOOK-OUTPUT",
			"ip6tables -w 5 -t nat -C POSTROUTING -j K8S-HOOK-POSTROUTING 2>/dev/null || ip6tables -w 5 -t nat -I POSTROUTING 1 -j K8S-HOOK-POSTROUTING",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (IPTables{Family: tc.family}).HookCommands(tc.prog)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("HookCommands mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (IPTables{Family: 9}).Hooks(nil); err == nil {
		t.Error("Hooks of an unknown family: no error")
	}
}

func TestIPTablesPrune(t *testing.T) {
	var old bytes.Buffer
	if err := (IPTables{}).Render(&old, iptAffinity()); err != nil {
		t.Fatal(err)
	}
	// An iptables-save listing after loading the old file, with foreign
	// chains, in another table too.
	saved := "# Generated by iptables-save\n*mangle\n:PREROUTING ACCEPT [0:0]\n:KPC-OLD - [0:0]\nCOMMIT\n" +
		strings.Replace(old.String(), "*nat\n", "*nat\n:PREROUTING ACCEPT [3:180]\n:FOREIGN - [0:0]\n:KPCX - [0:0]\n", 1)
	got, err := (IPTables{}).Prune([]byte(saved), iptClusterIP())
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("*mangle\n:KPC-OLD - [0:0]\n-X KPC-OLD\nCOMMIT\n*nat\n")
	var stale []string
	for _, c := range iptDeclared(old.Bytes())["nat"] {
		if strings.Contains(c, "-SVC-") || strings.Contains(c, "-SEP-") {
			stale = append(stale, c)
		}
	}
	slices.Sort(stale)
	if len(stale) != 4 {
		t.Fatalf("old file declares %d per-Service chains, want 4: %v", len(stale), stale)
	}
	for _, c := range stale {
		want.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range stale {
		want.WriteString("-X " + c + "\n")
	}
	want.WriteString("COMMIT\n")
	if diff := cmp.Diff(want.String(), string(got)); diff != "" {
		t.Errorf("Prune mismatch (-want +got):\n%s", diff)
	}
	if got, err := (IPTables{}).Prune(old.Bytes(), iptAffinity()); err != nil || len(got) != 0 {
		t.Errorf("Prune of the same program = %q, %v; want nothing", got, err)
	}
}

func TestIPTablesRange(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.0/24":    "192.0.2.0-192.0.2.255",
		"192.0.2.77/25":   "192.0.2.0-192.0.2.127",
		"10.0.0.0/8":      "10.0.0.0-10.255.255.255",
		"203.0.113.9/32":  "203.0.113.9-203.0.113.9",
		"0.0.0.0/0":       "0.0.0.0-255.255.255.255",
		"2001:db8::/126":  "2001:db8::-2001:db8::3",
		"2001:db8:1::/48": "2001:db8:1::-2001:db8:1:ffff:ffff:ffff:ffff:ffff",
	} {
		if got := iptRange(iptPfx(in)); got != want {
			t.Errorf("iptRange(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestIPTablesComment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"ns/svc:p80 cluster IP", `-m comment --comment "ns/svc:p80 cluster IP"`},
		{"a\"b\\c\nd", `-m comment --comment "a'b/c d"`},
		{strings.Repeat("é", 200), `-m comment --comment "` + strings.Repeat("é", 127) + `"`},
	}
	for _, tc := range tests {
		if got := iptComment(tc.in); got != tc.want {
			t.Errorf("iptComment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// iptSynthetic builds a Program of n ClusterIP Services with eps endpoints
// each, in the shape the compiler gives.
func iptSynthetic(n, eps int) *ir.Program {
	rs := &ir.Ruleset{Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, Node: iptNode4()}
	for i := range n {
		svc := fmt.Sprintf("ns%d/svc%d:p80", i%100, i)
		vip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		sc := fmt.Sprintf("service-%08d-ns%d/svc%d/tcp/p80", i, i%100, i)
		rs.Services = append(rs.Services, ir.ServiceEntry{Addr: vip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc}, Comment: svc, Kind: "cluster IP"})
		rs.ClusterIPs = append(rs.ClusterIPs, vip)
		var names []string
		for j := range eps {
			ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(128 + j), byte(i >> 8), byte(i)}), 8080)
			name := fmt.Sprintf("endpoint-%08d-ns%d/svc%d/tcp/p80__%s", i, i%100, i, strings.ReplaceAll(ep.String(), ":", "/"))
			names = append(names, name)
			rs.Chains = append(rs.Chains, iptEndpoint(name, svc, ir.TCP, ep.String(), ""))
		}
		rs.Chains = append(rs.Chains, &ir.Chain{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
			{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: iptPfxs("192.0.2.0/24")}, Action: &ir.MarkMasq{}},
			{Action: &ir.Balance{Chains: names}},
		}})
	}
	return iptProgram(nil, rs)
}

func BenchmarkIPTablesRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			p := iptSynthetic(n, 10)
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := (IPTables{}).Render(&buf, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/op-output")
		})
	}
}

// TestIPTablesLargeCluster checks kube-proxy's large cluster mode: with
// more than 1,000 endpoint chains, the rules of the endpoint chains and
// the endpoint choices of the Service chains carry no comment; the
// dispatch rules keep theirs. Below the threshold every rule has one.
func TestIPTablesLargeCluster(t *testing.T) {
	for _, tt := range []struct {
		services int
		large    bool
	}{{150, false}, {1000, true}} {
		t.Run(strconv.Itoa(tt.services), func(t *testing.T) {
			p := nftperf.Program(tt.services)
			endpoints := 0
			for _, c := range p.Rulesets[0].Chains {
				if c.Kind == ir.EndpointChain {
					endpoints++
				}
			}
			if large := endpoints > iptLargeClusterEndpoints; large != tt.large {
				t.Fatalf("%d endpoint chains: large is %v, the test wants %v", endpoints, large, tt.large)
			}
			var b bytes.Buffer
			if err := (IPTables{Family: ir.IPv4}).Render(&b, p); err != nil {
				t.Fatal(err)
			}
			counts := map[string][2]int{} // kind of rule -> rules, rules with a comment
			for _, l := range strings.Split(b.String(), "\n") {
				var kind string
				switch {
				case strings.HasPrefix(l, "-A KPC-SEP-"):
					kind = "endpoint chain"
				case strings.HasPrefix(l, "-A KPC-SVC-") && strings.Contains(l, "-m statistic"):
					kind = "random choice"
				case strings.HasPrefix(l, "-A KPC-SVC-") && strings.Contains(l, "--rcheck"):
					kind = "affinity check"
				case strings.HasPrefix(l, "-A KPC-SERVICES "):
					kind = "dispatch"
				default:
					continue
				}
				c := counts[kind]
				c[0]++
				if strings.Contains(l, "--comment") {
					c[1]++
				}
				counts[kind] = c
			}
			for _, kind := range []string{"endpoint chain", "random choice", "affinity check", "dispatch"} {
				c := counts[kind]
				if c[0] == 0 {
					t.Errorf("no %s rules", kind)
					continue
				}
				want := c[0]
				if tt.large && kind != "dispatch" {
					want = 0
				}
				if c[1] != want {
					t.Errorf("%d of %d %s rules have a comment, want %d", c[1], c[0], kind, want)
				}
			}
		})
	}
}

// TestIPTablesConntrackLiberal checks that INVALID packets are dropped in
// forwarding unless conntrack is liberal with TCP windows (kube-proxy's
// conntrack.tcpBeLiberal).
func TestIPTablesConntrackLiberal(t *testing.T) {
	for _, liberal := range []bool{false, true} {
		p := nftperf.Program(3)
		p.Rulesets[0].ConntrackTCPLiberal = liberal
		var b bytes.Buffer
		if err := (IPTables{Family: ir.IPv4}).Render(&b, p); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "-A KPC-FORWARD -m conntrack --ctstate INVALID -j DROP\n"); got == liberal {
			t.Errorf("liberal %v: INVALID drop rule present: %v", liberal, got)
		}
	}
}
