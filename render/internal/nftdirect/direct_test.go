package nftdirect

import (
	"fmt"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/ir"
	"kpc/render/internal/nftperf"
)

var (
	pods = netip.MustParsePrefix("10.244.0.0/16")
	vip  = netip.MustParseAddr("10.96.0.10")
)

// endpoint is a kube-proxy endpoint chain, with an affinity update of set
// when set is not "".
func endpoint(name, addr string, hairpin bool, set string) *ir.Chain {
	a := netip.MustParseAddr(addr)
	var rules []ir.Rule
	if hairpin {
		rules = append(rules, ir.Rule{Match: ir.Match{SrcAddr: a}, Action: &ir.MarkMasq{}, Comment: "hairpin"})
	}
	if set != "" {
		rules = append(rules, ir.Rule{Action: &ir.AffinityUpdate{Set: set}})
	}
	rules = append(rules, ir.Rule{Action: &ir.DNAT{Addr: a, Port: 8080, Protocol: ir.TCP}})
	return &ir.Chain{Name: name, Kind: ir.EndpointChain, Protocol: ir.TCP, Rules: rules}
}

// masq is kube-proxy's off-cluster mark for vip:80.
func masq(addr netip.Addr) ir.Rule {
	return ir.Rule{Match: ir.Match{DstAddr: addr, DstPort: 80, SrcNotIn: []netip.Prefix{pods}}, Action: &ir.MarkMasq{},
		Comment: "cluster IP"}
}

func service(name string, rules ...ir.Rule) *ir.Chain {
	return &ir.Chain{Name: name, Kind: ir.ServiceChain, Protocol: ir.TCP, Rules: rules}
}

func entry(addr netip.Addr, p ir.Protocol, chain string) ir.ServiceEntry {
	return ir.ServiceEntry{Addr: addr, Protocol: p, Port: 80, Target: ir.Target{Chain: chain}}
}

// plainRuleset has one plain Service of two endpoints.
func plainRuleset() *ir.Ruleset {
	return &ir.Ruleset{Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Services: []ir.ServiceEntry{entry(vip, ir.TCP, "svc")},
		Chains: []*ir.Chain{
			endpoint("ep1", "10.244.1.1", true, ""), endpoint("ep2", "10.244.1.2", true, ""),
			service("svc", masq(vip), ir.Rule{Action: &ir.Balance{Chains: []string{"ep1", "ep2"}}}),
		}}
}

// stickyRuleset has one Service with affinity.
func stickyRuleset() *ir.Ruleset {
	rs := &ir.Ruleset{Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Services:     []ir.ServiceEntry{entry(vip, ir.TCP, "svc")},
		AffinitySets: []ir.AffinitySet{{Name: "a1", Timeout: 10 * time.Minute}, {Name: "a2", Timeout: 10 * time.Minute}},
		Chains: []*ir.Chain{
			endpoint("ep1", "10.244.1.1", true, "a1"), endpoint("ep2", "10.244.1.2", true, "a2"),
			service("svc", masq(vip),
				ir.Rule{Match: ir.Match{Affinity: "a1"}, Action: &ir.Goto{Chain: "ep1"}},
				ir.Rule{Match: ir.Match{Affinity: "a2"}, Action: &ir.Goto{Chain: "ep2"}},
				ir.Rule{Action: &ir.Balance{Chains: []string{"ep1", "ep2"}}}),
		}}
	return rs
}

// summary is what the tests compare of a Result.
type summary struct {
	Entries  map[string]string // "services/0" -> the shared chain's name prefix
	Absorbed []string
	Dropped  []string
	Hairpins int
	Sticky   int
}

var listNames = map[List]string{ServicesList: "services", NodePortsList: "nodeports", FirewallList: "firewall"}

func summarize(rs *ir.Ruleset, r *Result) summary {
	s := summary{Entries: map[string]string{}, Hairpins: len(r.Hairpins)}
	for _, e := range r.Entries {
		name := e.Chain
		// The hash suffix is not compared.
		if i := strings.LastIndex(name, "-"); i > 0 && len(name)-i == 9 {
			name = name[:i+1]
		}
		s.Entries[fmt.Sprintf("%s/%d", listNames[e.List], e.Index)] = name
	}
	for i, ok := range r.Absorbed {
		if ok {
			s.Absorbed = append(s.Absorbed, rs.Chains[i].Name)
		}
	}
	sort.Strings(s.Absorbed)
	for name := range r.DroppedSets {
		s.Dropped = append(s.Dropped, name)
	}
	sort.Strings(s.Dropped)
	for _, t := range r.Timeouts {
		s.Sticky += len(t.Keys)
	}
	return s
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name string
		rs   func() *ir.Ruleset
		want summary
	}{
		{"plain", plainRuleset, summary{Entries: map[string]string{"services/0": "dnat-2-"},
			Absorbed: []string{"ep1", "ep2", "svc"}, Hairpins: 2}},
		{"sticky", stickyRuleset, summary{Entries: map[string]string{"services/0": "sticky-2-"},
			Absorbed: []string{"ep1", "ep2", "svc"}, Dropped: []string{"a1", "a2"}, Hairpins: 2, Sticky: 1}},
		{"sticky IPv6 is not lowered", func() *ir.Ruleset {
			rs := stickyRuleset()
			rs.Family = ir.IPv6
			return rs
		}, summary{Entries: map[string]string{}}},
		{"masquerade all", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Chains[2].Rules[0] = ir.Rule{Match: ir.Match{DstAddr: vip}, Action: &ir.MarkMasq{}}
			return rs
		}, summary{Entries: map[string]string{"services/0": "dnat-2-"}, Absorbed: []string{"ep1", "ep2", "svc"}, Hairpins: 2}},
		{"a mark for another address is left out", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Chains[2].Rules[0].Match.DstAddr = netip.MustParseAddr("10.96.0.99")
			return rs
		}, summary{Entries: map[string]string{"services/0": "dnat-2"}, Absorbed: []string{"ep1", "ep2", "svc"}, Hairpins: 2}},
		{"a NodePort through an external chain", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Chains = append(rs.Chains, &ir.Chain{Name: "ext", Kind: ir.ExternalChain, Protocol: ir.TCP,
				Rules: []ir.Rule{{Action: &ir.MarkMasq{}}, {Action: &ir.Goto{Chain: "svc"}}}})
			rs.NodePorts = []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30000, Target: ir.Target{Chain: "ext"}}}
			return rs
		}, summary{Entries: map[string]string{"services/0": "dnat-2-", "nodeports/0": "shared-external-"},
			Absorbed: []string{"ep1", "ep2", "ext", "svc"}, Hairpins: 2}},
		{"a NodePort path with a node address condition is not lowered", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Node.NodePortAllLocal = true
			rs.Chains = append(rs.Chains, &ir.Chain{Name: "ext", Kind: ir.ExternalChain, Protocol: ir.TCP,
				Rules: []ir.Rule{{Action: &ir.Goto{Chain: "svc"}}}})
			rs.NodePorts = []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30000, Target: ir.Target{Chain: "ext"}}}
			return rs
		}, summary{Entries: map[string]string{"services/0": "dnat-2-"}, Hairpins: 2}},
		{"other protocol", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Services[0].Protocol = ir.UDP
			return rs
		}, summary{Entries: map[string]string{}}},
		{"hairpin disagreement", func() *ir.Ruleset {
			rs := plainRuleset()
			other := endpoint("ep3", "10.244.1.1", false, "")
			other.Rules[0].Action.(*ir.DNAT).Port = 9090
			rs.Chains = append(rs.Chains, other)
			return rs
		}, summary{Entries: map[string]string{}}},
		{"shadowed entry", func() *ir.Ruleset {
			rs := plainRuleset()
			rs.Chains = append(rs.Chains, endpoint("ep9", "10.244.9.9", true, ""),
				service("svc2", ir.Rule{Action: &ir.Balance{Chains: []string{"ep9"}}}))
			rs.Services = append(rs.Services, entry(vip, ir.TCP, "svc2"))
			return rs
		}, summary{Entries: map[string]string{"services/0": "dnat-2-"},
			Absorbed: []string{"ep1", "ep2", "svc"}, Hairpins: 2}},
		{"sticky set used elsewhere", func() *ir.Ruleset {
			rs := stickyRuleset()
			rs.Chains = append(rs.Chains, service("spy", ir.Rule{Match: ir.Match{Affinity: "a1"}, Action: &ir.Drop{}}))
			rs.Services = append(rs.Services, entry(netip.MustParseAddr("10.96.0.11"), ir.TCP, "spy"))
			return rs
		}, summary{Entries: map[string]string{}}},
		{"sticky with two timeouts", func() *ir.Ruleset {
			rs := stickyRuleset()
			rs.AffinitySets[1].Timeout = time.Hour
			return rs
		}, summary{Entries: map[string]string{}}},
		{"sticky test of a chain not chosen", func() *ir.Ruleset {
			rs := stickyRuleset()
			rs.Chains[2].Rules[3] = ir.Rule{Action: &ir.Balance{Chains: []string{"ep1"}}}
			return rs
		}, summary{Entries: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := tt.rs()
			got := summarize(rs, Analyze(rs, nil, nil))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Analyze (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnalyzeDetails(t *testing.T) {
	r := Analyze(stickyRuleset(), nil, nil)
	e := r.Entries[0]
	want := Entry{List: ServicesList, Key: Key{AddrKey, vip, ir.TCP, 80}, Chain: e.Chain, Timeout: 10 * time.Minute,
		Choices: [][]Endpoint{{{netip.MustParseAddr("10.244.1.1"), 8080}, {netip.MustParseAddr("10.244.1.2"), 8080}}}}
	if diff := cmp.Diff(want, e, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if len(r.Shared) != 1 {
		t.Fatalf("shared chains: %+v", r.Shared)
	}
	rules := r.Shared[0].Rules
	if len(rules) != 3 || rules[0].Action != MarkAction || rules[1].Action != StickyAction || rules[2].Action != ChoiceAction ||
		rules[2].N != 2 {
		t.Fatalf("sticky chain rules: %+v", rules)
	}
	m := rules[0].Match
	if m.DstAddr.IsValid() || m.DstPort != 0 || len(m.SrcNotIn) != 1 {
		t.Errorf("the mark keeps only its source condition: %+v", m)
	}
	if len(r.Timeouts) != 1 || r.Timeouts[0].Timeout != 10*time.Minute || len(r.Timeouts[0].Keys) != 1 {
		t.Errorf("timeouts: %+v", r.Timeouts)
	}
	// Two Services with equal marks and endpoint counts share a chain.
	rs := plainRuleset()
	vip2 := netip.MustParseAddr("10.96.0.11")
	rs.Chains = append(rs.Chains, endpoint("ep3", "10.244.1.3", true, ""), endpoint("ep4", "10.244.1.4", true, ""),
		service("svc2", masq(vip2), ir.Rule{Action: &ir.Balance{Chains: []string{"ep3", "ep4"}}}))
	rs.Services = append(rs.Services, entry(vip2, ir.TCP, "svc2"))
	r = Analyze(rs, nil, nil)
	if len(r.Shared) != 1 || r.Entries[0].Chain != r.Entries[1].Chain || r.Shared[0].Entries != 2 {
		t.Errorf("two equal Services got chains %q and %q (%d shared)", r.Entries[0].Chain, r.Entries[1].Chain, len(r.Shared))
	}
	if e, ok := r.Lookup(ServicesList, Key{AddrKey, vip2, ir.TCP, 80}); !ok || e.Index != 1 {
		t.Errorf("Lookup = %+v, %v", e, ok)
	}
}

// TestAnalyzeOnAllCPUs checks that Analyze of a Ruleset large enough for
// its sort to run on several CPUs finds what it finds on one.
func TestAnalyzeOnAllCPUs(t *testing.T) {
	rs := nftperf.Generate(8000, nftperf.Mixed).Rulesets[0]
	analyze := func(procs int) *Result {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		return Analyze(rs, nil, nil)
	}
	one := analyze(1)
	if n := len(one.Hairpins); n < 32768 {
		t.Fatalf("%d endpoint addresses: too few for the sort to run on two CPUs", n)
	}
	all := analyze(max(2, runtime.NumCPU()))
	opts := []cmp.Option{cmp.AllowUnexported(Result{}, listKey{}, endpointTable{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}
	if diff := cmp.Diff(one, all, opts...); diff != "" {
		t.Errorf("Analyze on all CPUs differs from on one (-one +all):\n%s", diff)
	}
}

// TestAnalyzeWindows checks that Analyze finds the same whether it lowers
// the entries a few at a time before committing them, or all at once.
func TestAnalyzeWindows(t *testing.T) {
	rs := nftperf.Generate(600, nftperf.Mixed).Rulesets[0]
	old := lowerWindow
	defer func() { lowerWindow = old }()
	analyze := func(window int) *Result {
		lowerWindow = window
		return Analyze(rs, nil, nil)
	}
	whole := analyze(1 << 30)
	if len(whole.Entries) < 700 {
		t.Fatalf("%d entries: too few for windows of several sizes", len(whole.Entries))
	}
	opts := []cmp.Option{cmp.AllowUnexported(Result{}, listKey{}, endpointTable{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}
	for _, window := range []int{1, 7, 512} {
		if diff := cmp.Diff(whole, analyze(window), opts...); diff != "" {
			t.Errorf("windows of %d entries differ from one window (-one +windows):\n%s", window, diff)
		}
	}
}

// TestAnalyzeCompactMatchesRules checks that Analyze finds the same in a
// Ruleset whose endpoint chains are compact (as the compiler builds them)
// as in the same Ruleset with those chains written out as rules (as in
// hand-written IR, parsed ahead into the endpoint table's map).
func TestAnalyzeCompactMatchesRules(t *testing.T) {
	compact := nftperf.Generate(600, nftperf.Mixed).Rulesets[0]
	written := *compact
	written.Chains = make([]*ir.Chain, len(compact.Chains))
	n := 0
	for i, c := range compact.Chains {
		w := *c
		if c.Endpoint != nil {
			w.Rules, w.Comment, w.Endpoint = c.RuleList(), c.Describe(), nil
			n++
		}
		written.Chains[i] = &w
	}
	if n == 0 {
		t.Fatal("no compact endpoint chain to write out")
	}
	a, b := Analyze(compact, nil, nil), Analyze(&written, nil, nil)
	if a.endpoints.parsed != nil || len(b.endpoints.parsed) != n {
		t.Errorf("parsed ahead: %d compact, %d written out; want 0 and %d", len(a.endpoints.parsed), len(b.endpoints.parsed), n)
	}
	for k := range compact.Chains {
		ea, oka := a.EndpointAt(k)
		eb, okb := b.EndpointAt(k)
		if oka != okb || ea.Hairpin != eb.Hairpin || ea.Set != eb.Set || oka && *ea.DNAT != *eb.DNAT {
			t.Fatalf("chain %d: EndpointAt %+v %v (compact), %+v %v (written out)", k, ea, oka, eb, okb)
		}
	}
	opts := []cmp.Option{cmp.AllowUnexported(Result{}, listKey{}), cmpopts.IgnoreFields(Result{}, "endpoints"),
		cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}
	if diff := cmp.Diff(a, b, opts...); diff != "" {
		t.Errorf("Analyze differs (-compact +written out):\n%s", diff)
	}
}

// TestCommit checks that a lowered entry whose shared chain's name is
// taken by other content (a hash collision) registers nothing, and that
// one with the same content counts as one more entry of the chain.
func TestCommit(t *testing.T) {
	chain := func(content string) map[string]*sharedChain {
		return map[string]*sharedChain{"dnat-2": {Shared: Shared{Name: "dnat-2"}, content: content}}
	}
	tests := []struct {
		name    string
		content string
		want    bool
		entries int
	}{
		{"same content", "a", true, 2},
		{"collision", "b", false, 1},
	}
	for _, tt := range tests {
		a := &analysis{shared: chain("a"), res: &Result{}}
		a.shared["dnat-2"].Entries = 1
		if got := a.commit(lowering{shared: chain(tt.content), ok: true}); got != tt.want {
			t.Errorf("%s: commit = %v, want %v", tt.name, got, tt.want)
		}
		if got := a.shared["dnat-2"]; got.Entries != tt.entries || got.content != "a" {
			t.Errorf("%s: shared chain %+v, want content a and %d entries", tt.name, got, tt.entries)
		}
	}
}

// TestSortByAddr checks both ways of sorting DNATs by address: packed
// integers for IPv4 only, netip.Addr.Compare otherwise (an IPv6 address,
// or an IPv4-mapped one, which must not meet its IPv4 twin).
func TestSortByAddr(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
	}{
		{"IPv4", []string{"10.0.0.3", "10.0.0.1", "192.0.2.1", "10.0.0.3", "1.2.3.4", "10.0.0.1"}},
		{"IPv6", []string{"2001:db8::2", "2001:db8::1", "2001:db8::2", "::1"}},
		{"IPv4 and mapped", []string{"10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1", "9.9.9.9"}},
	}
	for _, tt := range tests {
		var ds []dnat
		for i, a := range tt.addrs {
			ds = append(ds, dnat{addr: netip.MustParseAddr(a), chain: int32(i)})
		}
		sortByAddr(ds)
		var got []string
		seen := map[int32]bool{}
		for i, d := range ds {
			if i > 0 && ds[i-1].addr.Compare(d.addr) > 0 {
				t.Errorf("%s: %v before %v", tt.name, ds[i-1].addr, d.addr)
			}
			seen[d.chain] = true
			got = append(got, d.addr.String())
		}
		if len(seen) != len(tt.addrs) {
			t.Errorf("%s: sorted %v: elements lost or repeated", tt.name, got)
		}
	}
}

func TestReleaseChainFacts(t *testing.T) {
	rs := plainRuleset()
	r := Analyze(rs, nil, nil)
	for k := range 2 { // ep1 and ep2
		if _, ok := r.EndpointAt(k); !ok || !r.AgreeAt[k] {
			t.Fatalf("before: chain %d is not a plain endpoint chain that agrees", k)
		}
	}
	entries := len(r.Entries)
	r.ReleaseChainFacts()
	for k := range rs.Chains {
		if _, ok := r.EndpointAt(k); ok {
			t.Errorf("after: EndpointAt(%d) still reports an endpoint chain", k)
		}
	}
	if r.AgreeAt != nil || r.Group != nil || r.HairpinDone != nil {
		t.Errorf("after: AgreeAt, Group and HairpinDone are %v, %v, %v; want nil", r.AgreeAt, r.Group, r.HairpinDone)
	}
	if len(r.Entries) != entries || entries == 0 {
		t.Errorf("after: %d entries, want the %d lowered before", len(r.Entries), entries)
	}
}

// TestSharedAcrossKinds checks that a Service's cluster chain and
// another's local chain that specialize to the same rules share one
// "dnat-" chain, whichever entry comes first: a Service's lowering does
// not depend on the other Services of the Ruleset.
func TestSharedAcrossKinds(t *testing.T) {
	vip2 := netip.MustParseAddr("10.96.0.11")
	local := &ir.Chain{Name: "local2", Kind: ir.LocalChain, Protocol: ir.TCP,
		Rules: []ir.Rule{masq(vip2), {Action: &ir.Balance{Chains: []string{"ep3", "ep4"}}}}}
	for _, localFirst := range []bool{false, true} {
		rs := plainRuleset()
		rs.Chains = append(rs.Chains, endpoint("ep3", "10.244.2.1", true, ""), endpoint("ep4", "10.244.2.2", true, ""), local)
		e := entry(vip2, ir.TCP, "local2")
		if localFirst {
			rs.Services = append([]ir.ServiceEntry{e}, rs.Services...)
		} else {
			rs.Services = append(rs.Services, e)
		}
		if err := rs.Validate(); err != nil {
			t.Fatal(err)
		}
		r := Analyze(rs, nil, nil)
		if len(r.Entries) != 2 {
			t.Fatalf("local first %v: %d entries lowered, want 2: %+v", localFirst, len(r.Entries), summarize(rs, r))
		}
		if a, b := r.Entries[0].Chain, r.Entries[1].Chain; a != b || !strings.HasPrefix(a, "dnat-2-") {
			t.Errorf("local first %v: entries go to %s and %s, want one dnat-2- chain", localFirst, a, b)
		}
		if len(r.Shared) != 1 || r.Shared[0].Entries != 2 {
			t.Errorf("local first %v: shared chains %+v, want one of 2 entries", localFirst, r.Shared)
		}
	}
}
