package ir

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestRulesetReads classifies every field of Ruleset by what a trace reads
// of it, as TraceComparison.Same assumes: a field added to Ruleset fails
// here until Same is taught about it.
func TestRulesetReads(t *testing.T) {
	reads := map[string]string{
		// Compared by sameSettings (Ruleset.Settings, and the health-check
		// ports).
		"MasqMark": "settings", "ConntrackTCPLiberal": "settings", "Node": "settings",
		"RejectClusterIPs": "settings", "ServiceCIDRs": "settings", "DropServiceCIDRs": "settings",
		"HealthCheckNodePorts": "settings", "Table": "settings",
		// Looked up by the packet's keys.
		"Services": "keyed", "NodePorts": "keyed", "Firewall": "keyed", "NoEndpoints": "keyed",
		"NoEndpointNodePorts": "keyed", "ClusterIPs": "keyed",
		// Followed from the entries (sameChains).
		"Chains": "chains",
		// Not read by a trace: the family selects the Ruleset, and a first
		// packet is never in an affinity set.
		"Family": "unread", "AffinitySets": "unread",
	}
	rt := reflect.TypeFor[Ruleset]()
	for i := range rt.NumField() {
		name := rt.Field(i).Name
		if _, ok := reads[name]; !ok {
			t.Errorf("Ruleset.%s: what does a trace read of it? Teach TraceComparison.Same", name)
		}
		delete(reads, name)
	}
	for name := range reads {
		t.Errorf("Ruleset.%s: no such field", name)
	}
}

// TestTraceComparisonSame checks Same on small Rulesets against tracing:
// where it says the same, every packet to the destination must have the
// same Result on both sides.
func TestTraceComparisonSame(t *testing.T) {
	vip := netip.MustParseAddr("10.96.0.1")
	ep := func(name, addr string) *Chain {
		return &Chain{Name: name, Kind: EndpointChain, Service: "ns/s:p", Protocol: TCP,
			Endpoint: &EndpointTarget{DNAT: DNAT{Addr: netip.MustParseAddr(addr), Port: 8080, Protocol: TCP}}}
	}
	svc := func(name string, next ...string) *Chain {
		return &Chain{Name: name, Kind: ServiceChain, Service: "ns/s:p", Protocol: TCP, Rules: []Rule{{Action: &Balance{Chains: next}}}}
	}
	base := func(chains ...*Chain) *Ruleset {
		return &Ruleset{
			Family: IPv4, RejectClusterIPs: true, ClusterIPs: []netip.Addr{vip},
			Services: []ServiceEntry{{Addr: vip, Protocol: TCP, Port: 80, Target: Target{Chain: "svc"}}},
			Chains:   chains,
		}
	}
	loop := func(name, next string) *Chain {
		return &Chain{Name: name, Kind: ServiceChain, Protocol: TCP, Rules: []Rule{{Action: &Goto{Chain: next}}}}
	}
	fwOnly := func(clusterIP bool) *Ruleset {
		rs := &Ruleset{
			Family: IPv4, RejectClusterIPs: true,
			Firewall: []ServiceEntry{{Addr: vip, Protocol: TCP, Port: 80, Target: Target{Chain: "fw"}}},
			Chains:   []*Chain{{Name: "fw", Kind: FirewallChain, Protocol: TCP}},
		}
		if clusterIP {
			rs.ClusterIPs = []netip.Addr{vip}
		}
		return rs
	}
	tests := []struct {
		name string
		a, b *Ruleset
		want bool
	}{
		{"equal", base(svc("svc", "e1", "e2"), ep("e1", "10.0.0.1"), ep("e2", "10.0.0.2")),
			base(svc("svc", "e1", "e2"), ep("e1", "10.0.0.1"), ep("e2", "10.0.0.2")), true},
		{"an endpoint's address", base(svc("svc", "e1"), ep("e1", "10.0.0.1")), base(svc("svc", "e1"), ep("e1", "10.0.0.9")), false},
		{"an endpoint more", base(svc("svc", "e1"), ep("e1", "10.0.0.1")), base(svc("svc", "e1", "e2"), ep("e1", "10.0.0.1"), ep("e2", "10.0.0.2")), false},
		{"a chain missing on one side", base(svc("svc", "e1"), ep("e1", "10.0.0.1")), base(svc("svc", "e1")), false},
		{"a loop, the same on both sides", base(loop("svc", "x"), loop("x", "svc")), base(loop("svc", "x"), loop("x", "svc")), false},
		{"a cluster IP on one side only", fwOnly(true), fwOnly(false), false},
		{"the node's addresses", base(svc("svc", "e1"), ep("e1", "10.0.0.1")), func() *Ruleset {
			rs := base(svc("svc", "e1"), ep("e1", "10.0.0.1"))
			rs.Node.IPs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
			return rs
		}(), false},
	}
	srcs := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1")}
	for _, tc := range tests {
		ta, tb := NewTracer(&Program{Rulesets: []*Ruleset{tc.a}}), NewTracer(&Program{Rulesets: []*Ruleset{tc.b}})
		c := ta.Compare(tb)
		if got := c.Same(vip, TCP, 80); got != tc.want {
			t.Errorf("%s: Same = %v, want %v", tc.name, got, tc.want)
		}
		if c.Same(netip.MustParseAddr("2001:db8::1"), TCP, 80) {
			t.Errorf("%s: Same for a family neither side has", tc.name)
		}
		differ := false
		for _, src := range srcs {
			for _, mode := range []Mode{ModeNFT, ModeIPTables} {
				pkt := Packet{Src: src, Dst: vip, Protocol: TCP, Port: 80}
				if !reflect.DeepEqual(ta.Trace(pkt, mode), tb.Trace(pkt, mode)) {
					differ = true
				}
			}
		}
		if tc.want && differ {
			t.Errorf("%s: Same, but the traces differ", tc.name)
		}
		if !tc.want && !differ && tc.name != "a loop, the same on both sides" && tc.name != "the node's addresses" {
			t.Errorf("%s: the traces are the same: the case tests nothing", tc.name)
		}
	}
}
