package nftplan

import (
	cmpx "cmp"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
)

func ep(name, addr string, hairpin bool, extra ...ir.Rule) *ir.Chain {
	a := netip.MustParseAddr(addr)
	var rules []ir.Rule
	if hairpin {
		rules = append(rules, ir.Rule{Match: ir.Match{SrcAddr: a}, Action: &ir.MarkMasq{}})
	}
	rules = append(rules, extra...)
	rules = append(rules, ir.Rule{Action: &ir.DNAT{Addr: a, Port: 80, Protocol: ir.TCP}})
	return &ir.Chain{Name: name, Kind: ir.EndpointChain, Protocol: ir.TCP, Rules: rules}
}

func svc(name string, rules ...ir.Rule) *ir.Chain {
	return &ir.Chain{Name: name, Kind: ir.ServiceChain, Protocol: ir.TCP, Rules: rules}
}

func balance(chains ...string) ir.Rule { return ir.Rule{Action: &ir.Balance{Chains: chains}} }

func entry(vip string, p ir.Protocol, chain string) ir.ServiceEntry {
	return ir.ServiceEntry{Addr: netip.MustParseAddr(vip), Protocol: p, Port: 80, Target: ir.Target{Chain: chain}}
}

// summary is the part of a Plan the tests compare.
type summary struct {
	Lowered, Kept []RuleRef
	Dropped       []string
	Hairpin       int
	Choice        []int // elements per endpoint-choice map
	Endpoints     []int // elements per endpoints map
	Direct        int   // Services entries of the direct layout
}

func summarize(rs *ir.Ruleset, p *Plan) summary {
	var s summary
	for i, c := range rs.Chains {
		if c == nil {
			continue
		}
		if p.Dropped[c.Name] {
			s.Dropped = append(s.Dropped, c.Name)
		}
		for j := range c.Rules {
			if b, ok := p.Balances[RuleRef{i, j}]; ok {
				if b.Lowered {
					s.Lowered = append(s.Lowered, RuleRef{i, j})
				} else {
					s.Kept = append(s.Kept, RuleRef{i, j})
				}
			}
		}
	}
	s.Hairpin = len(p.Hairpin)
	for _, m := range p.ChoiceMaps {
		s.Choice = append(s.Choice, len(m))
	}
	for _, m := range p.EndpointMaps {
		s.Endpoints = append(s.Endpoints, len(m))
	}
	if p.Direct != nil {
		s.Direct = len(p.Direct.Entries)
	}
	return s
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		rs   *ir.Ruleset
		o    Options
		want summary
	}{{
		name: "a Service chain only Services entries reach goes direct",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			Chains:   []*ir.Chain{ep("a", "10.0.0.1", true), ep("b", "10.0.0.2", true), svc("svc", balance("a", "b"))},
		},
		want: summary{Dropped: []string{"a", "b", "svc"}, Hairpin: 2, Direct: 1},
	}, {
		name: "a NodePort reaching the chain goes direct too",
		rs: &ir.Ruleset{
			Services:  []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			NodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30000, Target: ir.Target{Chain: "svc"}}},
			Chains:    []*ir.Chain{ep("a", "10.0.0.1", true), ep("b", "10.0.0.2", true), svc("svc", balance("a", "b"))},
		},
		want: summary{Dropped: []string{"a", "b", "svc"}, Hairpin: 2, Direct: 2},
	}, {
		name: "plain endpoints of a chain that stays are lowered and left out",
		rs: &ir.Ruleset{
			Node:      ir.Node{NodePortAllLocal: true},
			Services:  []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			NodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30000, Target: ir.Target{Chain: "ext"}}},
			Chains: []*ir.Chain{ep("a", "10.0.0.1", true), ep("b", "10.0.0.2", true),
				{Name: "ext", Rules: []ir.Rule{
					{Match: ir.Match{DstAddr: netip.MustParseAddr("192.0.2.1")}, Action: &ir.Drop{}},
					{Action: &ir.Goto{Chain: "svc"}}}},
				svc("svc", balance("a", "b"))},
		},
		want: summary{Lowered: []RuleRef{{3, 0}}, Dropped: []string{"a", "b"}, Hairpin: 2, Endpoints: []int{2}, Direct: 1},
	}, {
		name: "EndpointChains keeps everything",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			Chains:   []*ir.Chain{ep("a", "10.0.0.1", true), ep("b", "10.0.0.2", true), svc("svc", balance("a", "b"))},
		},
		o:    Options{EndpointChains: true},
		want: summary{Kept: []RuleRef{{2, 0}}, Choice: []int{2}},
	}, {
		name: "a chain reached over two protocols is not lowered",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc"), entry("172.30.0.1", ir.UDP, "svc")},
			Chains:   []*ir.Chain{ep("a", "10.0.0.1", true), svc("svc", balance("a"))},
		},
		// The TCP entry goes direct; the UDP one keeps the chain.
		want: summary{Kept: []RuleRef{{1, 0}}, Choice: []int{1}, Hairpin: 1, Direct: 1},
	}, {
		name: "reachability follows gotos",
		rs: &ir.Ruleset{
			NodePorts: []ir.NodePortEntry{{Protocol: ir.UDP, Port: 30000, Target: ir.Target{Chain: "ext"}}},
			Services:  []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			Chains: []*ir.Chain{ep("a", "10.0.0.1", true), {Name: "ext", Rules: []ir.Rule{{Action: &ir.Goto{Chain: "svc"}}}},
				svc("svc", balance("a"))},
		},
		want: summary{Kept: []RuleRef{{2, 0}}, Choice: []int{1}, Hairpin: 1, Direct: 1},
	}, {
		name: "disagreeing hairpin marks for one destination block both",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "s1"), entry("172.30.0.2", ir.TCP, "s2")},
			Chains: []*ir.Chain{ep("a", "10.0.0.1", true), ep("b", "10.0.0.1", false), ep("c", "10.0.0.3", false),
				svc("s1", balance("a")), svc("s2", balance("b", "c"))},
		},
		want: summary{Kept: []RuleRef{{3, 0}, {4, 0}}, Choice: []int{3}},
	}, {
		name: "affinity endpoints are not plain but agree with plain ones",
		rs: &ir.Ruleset{
			AffinitySets: []ir.AffinitySet{{Name: "aff", Timeout: 1}},
			Services:     []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "s1"), entry("172.30.0.2", ir.TCP, "s2")},
			Chains: []*ir.Chain{
				ep("a", "10.0.0.1", true, ir.Rule{Action: &ir.AffinityUpdate{Set: "aff"}}),
				ep("b", "10.0.0.1", true),
				svc("s1", ir.Rule{Match: ir.Match{Affinity: "aff"}, Action: &ir.Goto{Chain: "a"}}, balance("a")),
				svc("s2", balance("b")),
			},
		},
		want: summary{Kept: []RuleRef{{2, 1}}, Dropped: []string{"b", "s2"}, Hairpin: 1, Choice: []int{1}, Direct: 1},
	}, {
		name: "a chain still named elsewhere is kept",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "svc")},
			Chains: []*ir.Chain{ep("a", "10.0.0.1", false), ep("b", "10.0.0.2", true),
				svc("svc", ir.Rule{Match: ir.Match{SrcAddr: netip.MustParseAddr("10.0.0.9")}, Action: &ir.Goto{Chain: "a"}},
					balance("a", "a", "b"))},
		},
		want: summary{Lowered: []RuleRef{{2, 1}}, Dropped: []string{"b"}, Hairpin: 1, Endpoints: []int{3}},
	}, {
		name: "unknown names do not panic",
		rs: &ir.Ruleset{
			Services: []ir.ServiceEntry{entry("172.30.0.1", ir.TCP, "nowhere")},
			Chains:   []*ir.Chain{nil, svc("svc", balance("missing"), ir.Rule{Action: &ir.Goto{Chain: "gone"}})},
		},
		want: summary{Kept: []RuleRef{{1, 0}}, Choice: []int{1}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(tt.rs, tt.o)
			got := summarize(tt.rs, p)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			// The options that only change how the plan is made or read
			// give the same plan.
			index := map[string]int{}
			for i, c := range tt.rs.Chains {
				if c != nil {
					index[c.Name] = i
				}
			}
			o := tt.o
			o.Index, o.DroppedAtOnly = index, true
			q := New(tt.rs, o)
			if len(q.Dropped) != 0 {
				t.Errorf("DroppedAtOnly: Dropped = %v", q.Dropped)
			}
			for i, c := range tt.rs.Chains {
				if c != nil && (q.DroppedAt(i) != p.Dropped[c.Name] || p.DroppedAt(i) != p.Dropped[c.Name]) {
					t.Errorf("chain %d: DroppedAt %v/%v, Dropped %v", i, q.DroppedAt(i), p.DroppedAt(i), p.Dropped[c.Name])
				}
			}
			q.Dropped = p.Dropped
			if diff := cmp.Diff(p, q, cmp.AllowUnexported(Plan{}), cmpopts.EquateComparable(netip.Addr{}),
				cmpopts.IgnoreUnexported(nftdirect.Result{})); diff != "" {
				t.Errorf("plan with Index and DroppedAtOnly differs (-default +options):\n%s", diff)
			}
		})
	}
}

func TestNewNil(t *testing.T) {
	p := New(nil, Options{})
	if len(p.Balances) != 0 || len(p.Dropped) != 0 {
		t.Errorf("New(nil) = %+v, want an empty plan", p)
	}
}

func TestMaps(t *testing.T) {
	for _, tt := range []struct{ total, want int }{
		{0, 1}, {1, 1}, {OneMapBelow - 1, 1}, {OneMapBelow, 64}, {16383, 64},
		{16384, 128}, {65535, 128}, {65536, 256}, {500000, 512}, {1 << 20, 1024},
	} {
		if got := Maps(tt.total); got != tt.want {
			t.Errorf("Maps(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

// TestSlotsIndependent checks that a Balance's slot depends on its chain's
// name, its rule and the number of maps, not on the other chains: planned
// alone with the whole's map count, a chain gets the slots it has in the
// whole.
func TestSlotsIndependent(t *testing.T) {
	const services = 400
	var all ir.Ruleset
	var alone []*ir.Ruleset
	for i := 0; i < services; i++ {
		var rs ir.Ruleset
		var names []string
		for k := 0; k < 1+i%20; k++ {
			a := netip.AddrFrom4([4]byte{10, 180, byte(i), byte(k + 1)})
			name := fmt.Sprintf("endpoint-%d-%d", i, k)
			names = append(names, name)
			// An endpoint chain that does more than DNAT is not plain,
			// so its Balance is not lowered.
			rs.Chains = append(rs.Chains, ep(name, a.String(), false, ir.Rule{Action: &ir.MarkMasq{}}))
		}
		sc := svc(fmt.Sprintf("service-%d", i), balance(names...), ir.Rule{Match: ir.Match{DstPort: 8080}, Action: &ir.Balance{Chains: names[:1]}})
		rs.Chains = append(rs.Chains, sc)
		rs.Services = []ir.ServiceEntry{entry(fmt.Sprintf("172.30.%d.%d", i/250, i%250+1), ir.TCP, sc.Name)}
		alone = append(alone, &rs)
		all.Chains = append(all.Chains, rs.Chains...)
		all.Services = append(all.Services, rs.Services...)
	}
	slots := func(rs *ir.Ruleset, p *Plan) map[string]Balance {
		m := map[string]Balance{}
		for ref, b := range p.Balances {
			m[fmt.Sprintf("%s/%d", rs.Chains[ref.Chain].Name, ref.Rule)] = b
		}
		return m
	}
	whole := New(&all, Options{})
	if whole.Maps != 64 || whole.Total < OneMapBelow {
		t.Fatalf("whole: %d maps for %d elements, want 64 for at least %d", whole.Maps, whole.Total, OneMapBelow)
	}
	want := slots(&all, whole)
	if len(want) != 2*services {
		t.Fatalf("whole: %d Balances planned, want %d", len(want), 2*services)
	}
	got := map[string]Balance{}
	for _, rs := range alone {
		for k, v := range slots(rs, New(rs, Options{Maps: whole.Maps})) {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slots planned alone differ from the whole's (-whole +alone):\n%s", diff)
	}
	for k, m := range whole.ChoiceMaps {
		for i := 1; i < len(m); i++ {
			if m[i].Key <= m[i-1].Key {
				t.Fatalf("endpoint-choice-%d: keys %d, %d out of order or repeated", k, m[i-1].Key, m[i].Key)
			}
		}
	}
}

// TestSettleOverlap checks that Balances of a map that overlap are placed
// again without overlap, their rules' slots and their elements' keys
// moved together, and the elements sorted by key.
func TestSettleOverlap(t *testing.T) {
	s := newSlots(1)
	balances := map[RuleRef]Balance{}
	var elems [][]ChoiceElem = make([][]ChoiceElem, 1)
	for i, n := range []int{3, 2, 4} {
		ref := RuleRef{i, 0}
		slot := s.add(ref, fmt.Sprintf("service-%d", i), n)
		// Force every Balance to the same first key.
		slot.Offset = 1000
		s.placed[0][i].offset = 1000
		balances[ref] = Balance{Slot: slot, N: n}
		for e := 0; e < n; e++ {
			elems[0] = append(elems[0], ChoiceElem{1000 + uint32(e), fmt.Sprintf("endpoint-%d-%d", i, e)})
		}
	}
	settle(s, elems, func(e *ChoiceElem) *uint32 { return &e.Key }, balances)
	seen := map[uint32]bool{}
	for ref, b := range balances {
		for e := 0; e < b.N; e++ {
			k := b.Slot.Offset + uint32(e)
			if seen[k] {
				t.Fatalf("key %d used twice", k)
			}
			seen[k] = true
			want := fmt.Sprintf("endpoint-%d-%d", ref.Chain, e)
			i, ok := slices.BinarySearchFunc(elems[0], k, func(x ChoiceElem, k uint32) int { return cmpx.Compare(x.Key, k) })
			if !ok || elems[0][i].Chain != want {
				t.Errorf("key %d: element %v, want %s", k, elems[0], want)
			}
		}
	}
	if len(seen) != 9 || len(elems[0]) != 9 {
		t.Errorf("%d keys, %d elements; want 9 of each", len(seen), len(elems[0]))
	}
	// The first Balance placed keeps its first attempt (which was moved
	// here to 1000, so it moves back to its hash).
	if got, want := balances[RuleRef{0, 0}].Slot.Offset, offsetFor(slotHash("service-0", 0, 0), 3); got != want {
		t.Errorf("first Balance at %d, want %d", got, want)
	}
}

func TestSetSize(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want uint32
	}{
		{0, 0}, {1, 0}, {SizedSetMin - 1, 0},
		{SizedSetMin, 2048}, {1025, 4096}, {2048, 4096}, {2049, 8192},
		{50000, 131072}, {250000, 524288}, {1 << 30, 1 << 30},
	} {
		got := SetSize(tt.n)
		if got != tt.want {
			t.Errorf("SetSize(%d) = %d, want %d", tt.n, got, tt.want)
		}
		if got != 0 && int64(got) < int64(tt.n) {
			t.Errorf("SetSize(%d) = %d holds fewer elements", tt.n, got)
		}
	}
}
