package irdiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
)

// apply rebuilds b from a and the hunks, checking their line numbers.
func apply(t *testing.T, a []string, hunks []Hunk) []string {
	t.Helper()
	var out []string
	next := 0 // index into a of the next line to copy
	for _, h := range hunks {
		start := h.OldStart - 1
		if h.OldLines == 0 {
			start = h.OldStart
		}
		if start < next || start > len(a) {
			t.Fatalf("hunk %+v out of order", h)
		}
		out = append(out, a[next:start]...)
		if h.NewLines > 0 && h.NewStart != len(out)+1 || h.NewLines == 0 && h.NewStart != len(out) {
			t.Fatalf("hunk %+v: new start %d, want %d", h, h.NewStart, len(out)+1)
		}
		var del, add int
		for _, l := range h.Lines {
			switch l[0] {
			case '-':
				if a[start+del] != l[1:] {
					t.Fatalf("hunk %+v removes %q, old line is %q", h, l[1:], a[start+del])
				}
				del++
			case '+':
				out = append(out, l[1:])
				add++
			}
		}
		if del != h.OldLines || add != h.NewLines {
			t.Fatalf("hunk %+v counts -%d +%d", h, del, add)
		}
		next = start + del
	}
	return append(out, a[next:]...)
}

func TestDiffLines(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want []Hunk
	}{
		{"equal", "a b c", "a b c", nil},
		{"both empty", "", "", nil},
		{"insert middle", "a c", "a b c", []Hunk{{OldStart: 1, OldLines: 0, NewStart: 2, NewLines: 1, Lines: []string{"+b"}}}},
		{"insert first", "b", "a b", []Hunk{{OldStart: 0, OldLines: 0, NewStart: 1, NewLines: 1, Lines: []string{"+a"}}}},
		{"delete last", "a b", "a", []Hunk{{OldStart: 2, OldLines: 1, NewStart: 1, NewLines: 0, Lines: []string{"-b"}}}},
		{"replace", "a b c", "a x c", []Hunk{{OldStart: 2, OldLines: 1, NewStart: 2, NewLines: 1, Lines: []string{"-b", "+x"}}}},
		{"two hunks", "a b c d e", "a B c d E", []Hunk{
			{OldStart: 2, OldLines: 1, NewStart: 2, NewLines: 1, Lines: []string{"-b", "+B"}},
			{OldStart: 5, OldLines: 1, NewStart: 5, NewLines: 1, Lines: []string{"-e", "+E"}},
		}},
		{"from empty", "", "a b", []Hunk{{OldStart: 0, OldLines: 0, NewStart: 1, NewLines: 2, Lines: []string{"+a", "+b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := strings.Fields(tt.a), strings.Fields(tt.b)
			got := DiffLines(a, b)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if d := cmp.Diff(b, apply(t, a, got)); d != "" && len(b)+len(a) > 0 {
				t.Errorf("applying the hunks (-want +got):\n%s", d)
			}
		})
	}
}

// TestDiffLinesRandom checks that hunks always rebuild the new side, with
// a minimal script for small edits and the replacement fallback for large
// ones.
func TestDiffLinesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	for i := range 200 {
		n := r.IntN(60)
		if i%50 == 0 {
			n = 3 * maxEdits // exercises the fallback
		}
		var a []string
		for j := range n {
			a = append(a, fmt.Sprintf("l%d", j))
		}
		var b []string
		edits := 0
		for _, l := range a {
			switch x := r.IntN(10); {
			case x == 0:
				edits++ // dropped
			case x == 1 || i%50 == 0 && x < 6:
				b = append(b, l+"'")
				edits += 2
			default:
				b = append(b, l)
			}
		}
		hunks := DiffLines(a, b)
		got := apply(t, a, hunks)
		if d := cmp.Diff(b, got); d != "" && len(a)+len(b) > 0 {
			t.Fatalf("case %d: applying the hunks (-want +got):\n%s", i, d)
		}
		changed := 0
		for _, h := range hunks {
			changed += h.OldLines + h.NewLines
		}
		if edits <= maxEdits && changed > edits {
			t.Fatalf("case %d: %d changed lines for %d edits: not minimal", i, changed, edits)
		}
	}
}

// program builds a one-Service Program by hand: cluster IP 10.96.0.10
// port 53/udp balancing over eps, with a catalog entry.
func program(eps ...string) *ir.Program {
	cip := netip.MustParseAddr("10.96.0.10")
	rs := &ir.Ruleset{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Node:         ir.Node{IPs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}},
		ClusterIPs:   []netip.Addr{cip},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
	}
	info := ir.ServiceInfo{Namespace: "kube-system", Name: "kube-dns", Type: "ClusterIP", ClusterIPs: []netip.Addr{cip},
		Ports: []ir.PortInfo{{Name: "dns", Protocol: ir.UDP, Port: 53, TargetPort: "53"}}, SessionAffinity: "None", InternalTrafficPolicy: "Cluster"}
	if len(eps) == 0 {
		rs.NoEndpoints = []ir.ServiceEntry{{Addr: cip, Protocol: ir.UDP, Port: 53, Target: ir.Target{Reject: true}, Comment: "kube-system/kube-dns:dns"}}
	} else {
		var chains []string
		for _, e := range eps {
			name := "endpoint-" + e
			chains = append(chains, name)
			rs.Chains = append(rs.Chains, &ir.Chain{Name: name, Kind: ir.EndpointChain, Service: "kube-system/kube-dns:dns", Protocol: ir.UDP,
				Rules: []ir.Rule{{Action: &ir.DNAT{Addr: netip.MustParseAddr(e), Port: 53, Protocol: ir.UDP}}}})
			info.Endpoints = append(info.Endpoints, ir.EndpointInfo{Addr: netip.MustParseAddr(e), Ready: true, Serving: true,
				Ports: []ir.EndpointPort{{Name: "dns", Protocol: ir.UDP, Port: 53}}})
		}
		rs.Chains = append(rs.Chains, &ir.Chain{Name: "service-dns", Kind: ir.ServiceChain, Service: "kube-system/kube-dns:dns", Protocol: ir.UDP,
			Rules: []ir.Rule{{Action: &ir.Balance{Chains: chains}}}})
		rs.Services = []ir.ServiceEntry{{Addr: cip, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: "service-dns"}, Comment: "kube-system/kube-dns:dns", Kind: "cluster IP"}}
	}
	return &ir.Program{Rulesets: []*ir.Ruleset{rs}, Services: []ir.ServiceInfo{info}}
}

func TestCompareTraffic(t *testing.T) {
	two, one, none := program("192.0.2.1", "192.0.2.2"), program("192.0.2.1"), program()
	// bridged masquerades what does not come in on the pods' bridge.
	bridged := program("192.0.2.1")
	rs := bridged.Rulesets[0]
	rs.Node.LocalIface = "cbr0"
	svc := rs.Chains[len(rs.Chains)-1]
	svc.Rules = append([]ir.Rule{{Match: ir.Match{DstAddr: rs.ClusterIPs[0], DstPort: 53, Iface: ir.IfaceNotLocal}, Action: &ir.MarkMasq{}}}, svc.Rules...)
	// ranged masquerades what is not from the pod range.
	ranged := program("192.0.2.1")
	rs = ranged.Rulesets[0]
	rs.Node.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	svc = rs.Chains[len(rs.Chains)-1]
	svc.Rules = append([]ir.Rule{{Match: ir.Match{DstAddr: rs.ClusterIPs[0], DstPort: 53, SrcNotIn: rs.Node.PodCIDRs}, Action: &ir.MarkMasq{}}}, svc.Rules...)
	// moved does so on another bridge.
	moved := program("192.0.2.1")
	rs = moved.Rulesets[0]
	rs.Node.LocalIface = "cni0"
	svc = rs.Chains[len(rs.Chains)-1]
	svc.Rules = append([]ir.Rule{{Match: ir.Match{DstAddr: rs.ClusterIPs[0], DstPort: 53, Iface: ir.IfaceNotLocal}, Action: &ir.MarkMasq{}}}, svc.Rules...)
	tests := []struct {
		name     string
		old, new *ir.Program
		format   string
		traffic  []string
		services []string
	}{
		{"endpoint removed", two, one, "nft",
			[]string{"10.96.0.10:53/udp: endpoints {192.0.2.1:53, 192.0.2.2:53} -> {192.0.2.1:53}"},
			[]string{"kube-system/kube-dns changed: endpoint 192.0.2.2 removed"}},
		{"last endpoint removed", one, none, "iptables",
			[]string{"10.96.0.10:53/udp: now rejected (was endpoints {192.0.2.1:53})"},
			[]string{"kube-system/kube-dns changed: endpoint 192.0.2.1 removed"}},
		{"Service removed", one, &ir.Program{}, "nft",
			[]string{"10.96.0.10:53/udp: now passed through untouched (was endpoints {192.0.2.1:53})"},
			[]string{"kube-system/kube-dns removed: "}},
		{"equal", two, program("192.0.2.1", "192.0.2.2"), "nft", nil, nil},
		{"a local-traffic detector by interface", one, bridged, "nft",
			[]string{"10.96.0.10:53/udp: masquerade no -> yes for external clients and the node"}, nil},
		{"a local-traffic detector by interface, iptables", one, bridged, "iptables",
			[]string{"10.96.0.10:53/udp: masquerade no -> yes for external clients and the node"}, nil},
		{"the detector removed: the old side's pods are probed", bridged, one, "nft",
			[]string{"10.96.0.10:53/udp: masquerade yes -> no for external clients and the node"}, nil},
		{"from the pod range to the bridge: this node's pods keep their address", ranged, bridged, "nft",
			[]string{"10.96.0.10:53/udp: masquerade no -> yes for pods by the old side's local-traffic detector"}, nil},
		{"the detector moved: both sides' pods are probed", bridged, moved, "nft",
			[]string{"10.96.0.10:53/udp: masquerade yes -> no for pods", "10.96.0.10:53/udp: masquerade no -> yes for pods by the old side's local-traffic detector"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Compare(tt.old, tt.new, Options{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			var traffic, services []string
			for _, tc := range rep.Traffic {
				traffic = append(traffic, tc.Destination+": "+tc.Text)
			}
			for _, s := range rep.Services {
				line := s.Service + " " + s.Change + ": "
				for _, c := range s.Changes {
					line += c.Subject + " " + c.Change
				}
				services = append(services, line)
			}
			if d := cmp.Diff(tt.traffic, traffic); d != "" {
				t.Errorf("traffic (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.services, services); d != "" {
				t.Errorf("services (-want +got):\n%s", d)
			}
			if rep.Equal != (tt.traffic == nil) {
				t.Errorf("equal = %v", rep.Equal)
			}
			if rep.Equal {
				return
			}
			if len(rep.Lines) == 0 || rep.Lines[0].Name != tt.format {
				t.Errorf("lines: %+v, want a %s diff", rep.Lines, tt.format)
			}
			var js bytes.Buffer
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(rep, &back); d != "" {
				t.Errorf("JSON round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	if _, err := Compare(nil, nil, Options{Format: "pf"}); err == nil {
		t.Error("unknown format accepted")
	}
	bad := &ir.Program{Rulesets: []*ir.Ruleset{{Family: ir.IPv4}}} // no table, no mark
	if _, err := Compare(nil, bad, Options{}); err == nil {
		t.Error("invalid program rendered")
	}
	rep, err := Compare(nil, nil, Options{})
	if err != nil || !rep.Equal {
		t.Errorf("nil vs nil: %+v, %v", rep, err)
	}
}
