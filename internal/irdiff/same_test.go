package irdiff

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/ir"
)

// TestTraceComparisonSound checks ir.TraceComparison.Same against
// tracing: after each edit of a mixed cluster, every dispatch key of
// either side that Same calls unchanged is traced on both sides, from
// every client diffTraffic uses, in both modes and with paths, and the
// Results must be equal. Same must also skip most keys of a local edit
// and none of an edit of the node's settings.
func TestTraceComparisonSound(t *testing.T) {
	tests := []struct {
		name string
		edit [2]string
		// most: Same holds for all but a few keys; none: for no IPv4 key
		// (the edit is of the IPv4 Ruleset's settings); neither: for all.
		most, none bool
	}{
		{"endpoint moves", [2]string{"- addresses: [\"10.128.0.2\"]", "- addresses: [\"10.1.3.250\"]"}, true, false},
		{"endpoint not ready", [2]string{"conditions: {ready: true}", "conditions: {ready: false}"}, true, false},
		{"port changes", [2]string{"port: 80\n", "port: 81\n"}, true, false},
		{"nodePort changes", [2]string{"nodePort: 30001\n", "nodePort: 32001\n"}, true, false},
		{"source ranges change", [2]string{"loadBalancerSourceRanges: [203.0.113.0/24, 198.51.100.0/24]", "loadBalancerSourceRanges: [203.0.113.0/24]"}, true, false},
		{"affinity goes", [2]string{"sessionAffinity: ClientIP", "sessionAffinity: None"}, true, false},
		{"cluster IP moves", [2]string{"clusterIP: 10.96.0.2\n", "clusterIP: 10.96.0.250\n"}, true, false},
		{"node address changes", [2]string{"address: 192.0.2.1\n", "address: 192.0.2.9\n"}, false, true},
		{"nothing changes", [2]string{"apiVersion", "apiVersion"}, false, false},
	}
	opts := cmp.Options{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})}
	for _, tc := range tests {
		a, b := synthPrograms(t, 120, tc.edit)
		oldT, newT := ir.NewTracer(a), ir.NewTracer(b)
		same := oldT.Compare(newT)
		keys, skipped, skipped4 := 0, 0, 0
		for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
			rs := rulesetOf(b, f)
			if rs == nil {
				continue
			}
			clients, npDst := clientsFor(f, rs)
			type key struct {
				dst   netip.Addr
				proto ir.Protocol
				port  uint16
				node  bool
			}
			seen := map[key]bool{}
			var srcs []netip.Addr
			for _, p := range []*ir.Program{a, b} {
				side := rulesetOf(p, f)
				if side == nil {
					continue
				}
				chains := chainsByName(side)
				for _, e := range side.Firewall {
					if src, ok := allowedSource(chains[e.Target.Chain]); ok {
						srcs = append(srcs, src)
					}
				}
				for _, list := range [][]ir.ServiceEntry{side.Services, side.Firewall, side.NoEndpoints} {
					for _, e := range list {
						seen[key{e.Addr.Unmap(), e.Protocol, e.Port, false}] = true
					}
				}
				for _, list := range [][]ir.NodePortEntry{side.NodePorts, side.NoEndpointNodePorts} {
					for _, e := range list {
						seen[key{npDst, e.Protocol, e.Port, true}] = true
					}
				}
			}
			for k := range seen {
				keys++
				if !same.Same(k.dst, k.proto, k.port) {
					continue
				}
				skipped++
				if f == ir.IPv4 {
					skipped4++
				}
				var pkts []ir.Packet
				for _, c := range clients {
					pkts = append(pkts, ir.Packet{Src: c.src, Dst: k.dst, Protocol: k.proto, Port: k.port, FromNode: c.fromNode, ToNode: k.node})
				}
				for _, src := range srcs {
					pkts = append(pkts, ir.Packet{Src: src, Dst: k.dst, Protocol: k.proto, Port: k.port, ToNode: k.node})
				}
				for _, pkt := range pkts {
					for _, mode := range []ir.Mode{ir.ModeNFT, ir.ModeIPTables} {
						if d := cmp.Diff(oldT.Trace(pkt, mode), newT.Trace(pkt, mode), opts); d != "" {
							t.Errorf("%s: %+v, mode %d: Same, but the traces differ (-old +new):\n%s", tc.name, pkt, mode, d)
						}
					}
				}
			}
		}
		t.Logf("%s: %d of %d keys skipped", tc.name, skipped, keys)
		switch {
		case tc.most && (skipped == keys || skipped < keys*9/10):
			t.Errorf("%s: %d of %d keys skipped, want all but a few", tc.name, skipped, keys)
		case !tc.most && !tc.none && skipped != keys:
			t.Errorf("%s: %d of %d keys skipped, want all", tc.name, skipped, keys)
		case tc.none && skipped4 != 0:
			t.Errorf("%s: %d IPv4 keys skipped, want none", tc.name, skipped4)
		}
	}
}
