//go:build linux

package netlink

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	mdnetlink "github.com/mdlayher/netlink"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/nstest"
	"kpc/render"
	"kpc/render/internal/nftdirect"
	"kpc/render/internal/nftperf"
)

// programCase is a Program to apply, with the options to apply it with.
type programCase struct {
	name string
	p    *ir.Program
	o    Options
}

// goldenPrograms compiles every valid golden case (load + compile, as the
// golden driver does), once with each layout.
func goldenPrograms(t *testing.T) []programCase {
	t.Helper()
	dirs, err := filepath.Glob("../../golden/testdata/*/input.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	sort.Strings(dirs)
	var out []programCase
	for _, in := range dirs {
		name := filepath.Base(filepath.Dir(in))
		input, diags := load.Load([]string{in}, nil, load.Options{})
		if diags.Err() != nil {
			continue // an invalid-input case
		}
		p, cd := compiler.Compile(input, compiler.Options{})
		if cd.Err() != nil || p == nil {
			continue
		}
		out = append(out, programCase{name: "golden/" + name, p: p},
			programCase{name: "golden/" + name + "/chains", p: p, o: Options{EndpointChains: true}})
	}
	return out
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// edgeProgram exercises spellings the golden cases do not reach: source
// ranges that merge into one range or several intervals (some adjacent,
// one reaching the top of the address space), a non-byte-aligned and a
// zero-length prefix, several service CIDRs, NodePorts on every local
// address, affinity with a millisecond timeout, a Goto, Drop and Reject
// in chains, and comments needing cleanup.
func edgeProgram(fam ir.Family) *ir.Program {
	v4 := fam == ir.IPv4
	pick := func(a, b string) string {
		if v4 {
			return a
		}
		return b
	}
	pfx := func(ss ...string) []netip.Prefix { return prefixes(ss...) }
	vip := addr(pick("172.30.0.10", "2001:db8:96::10"))
	ep1, ep2 := addr(pick("10.180.0.1", "2001:db8:1::1")), addr(pick("10.180.0.2", "2001:db8:1::2"))
	const (
		svc = "ns/edge:p"
		sc  = "service-EDGE0000-ns/edge/udp/p"
		fw  = "firewall-EDGE0000-ns/edge/udp/p"
		e1  = "endpoint-EDGE0001-ns/edge/udp/p__1"
		e2  = "endpoint-EDGE0002-ns/edge/udp/p__2"
		aff = "affinity-EDGE0001-ns/edge/udp/p__1"
		odd = "odd-EDGE0000-ns/edge"
	)
	merged := pfx(pick("198.51.100.0/25", "2001:db8:5::/49"), pick("198.51.100.128/25", "2001:db8:5:8000::/49"),
		pick("198.51.101.0/24", "2001:db8:6::/48"))
	several := pfx(pick("192.0.2.0/26", "2001:db8:7::/64"), pick("192.0.2.64/26", "2001:db8:7:1::/64"),
		pick("203.0.113.0/24", "2001:db8:9::/48"), pick("255.255.255.0/24", "ffff::/16"))
	rs := &ir.Ruleset{
		Family: fam, Table: "kpc", MasqMark: 0x200,
		Node: ir.Node{Name: "n", IPs: []netip.Addr{addr(pick("192.0.2.1", "2001:db8::1"))}, NodePortAllLocal: true,
			PodCIDRs: pfx(pick("10.0.0.0/12", "2001:db8:1::/50"))},
		Services: []ir.ServiceEntry{
			{Addr: vip, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: sc}, Comment: "ns/edge:\"p\"\nx"},
			{Addr: vip, Protocol: ir.SCTP, Port: 9, Target: ir.Target{Reject: true}},
		},
		NodePorts: []ir.NodePortEntry{{Protocol: ir.UDP, Port: 30053, Target: ir.Target{Chain: sc}, Comment: svc}},
		Firewall:  []ir.ServiceEntry{{Addr: vip, Protocol: ir.UDP, Port: 53, Target: ir.Target{Chain: fw}}},
		NoEndpoints: []ir.ServiceEntry{{Addr: addr(pick("172.30.0.11", "2001:db8:96::11")), Protocol: ir.TCP, Port: 80,
			Target: ir.Target{Reject: true}}},
		NoEndpointNodePorts: []ir.NodePortEntry{{Protocol: ir.TCP, Port: 30080, Target: ir.Target{Drop: true}}},
		ClusterIPs:          []netip.Addr{vip},
		RejectClusterIPs:    true,
		ServiceCIDRs:        pfx(pick("172.30.0.0/16", "2001:db8:96::/108"), pick("172.31.0.0/17", "2001:db8:97::/112")),
		DropServiceCIDRs:    true,
		AffinitySets:        []ir.AffinitySet{{Name: aff, Timeout: 2500 * time.Millisecond, Comment: strings.Repeat("é", 80)}},
		Chains: []*ir.Chain{
			{Name: e1, Kind: ir.EndpointChain, Protocol: ir.UDP, Rules: []ir.Rule{
				{Match: ir.Match{SrcAddr: ep1}, Action: &ir.MarkMasq{}},
				{Action: &ir.AffinityUpdate{Set: aff}},
				{Action: &ir.DNAT{Addr: ep1, Port: 5353, Protocol: ir.UDP}},
			}},
			{Name: e2, Kind: ir.EndpointChain, Protocol: ir.UDP, Rules: []ir.Rule{
				{Action: &ir.DNAT{Addr: ep2, Port: 5353, Protocol: ir.UDP}},
			}},
			{Name: fw, Kind: ir.FirewallChain, Protocol: ir.UDP, Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: several}, Action: &ir.Drop{}, Comment: "several"},
				{Match: ir.Match{SrcIn: merged}, Action: &ir.Reject{}, Comment: "merged"},
				{Match: ir.Match{SrcIn: pfx(pick("0.0.0.0/0", "::/0"))}, Action: &ir.Goto{Chain: odd}},
			}},
			{Name: odd, Kind: ir.ServiceChain, Protocol: ir.UDP, Rules: []ir.Rule{
				{Match: ir.Match{SrcNotIn: pfx(pick("10.0.0.0/9", "2001:db8::/33"))}, Action: &ir.MarkMasq{}},
				{Match: ir.Match{SrcIn: pfx(pick("10.1.0.0/16", "2001:db8::/32"), pick("10.2.0.0/15", "2001:db9::/32"))},
					Action: &ir.Drop{}},
				{Match: ir.Match{SrcIn: pfx(pick("10.1.0.0/16", "2001:db8::/32"), pick("10.2.0.0/16", "2001:db9::/32"))},
					Action: &ir.Drop{}},
				{Match: ir.Match{SrcLocal: true}, Action: &ir.Reject{}},
			}},
			{Name: sc, Kind: ir.ServiceChain, Protocol: ir.UDP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip, DstPort: 53, SrcNotIn: pfx(pick("10.0.0.0/12", "2001:db8:1::/50"))},
					Action: &ir.MarkMasq{}},
				{Match: ir.Match{Affinity: aff}, Action: &ir.Goto{Chain: e1}},
				{Action: &ir.Balance{Chains: []string{e1, e2}}},
			}},
		},
	}
	return &ir.Program{Rulesets: []*ir.Ruleset{rs}, Notes: []string{"edge"}}
}

// extraPrograms are the hand-made cases.
func extraPrograms() []programCase {
	dual := edgeProgram(ir.IPv4)
	dual.Rulesets = append(dual.Rulesets, edgeProgram(ir.IPv6).Rulesets...)
	return []programCase{
		{name: "empty", p: &ir.Program{}},
		{name: "edge-ipv4", p: edgeProgram(ir.IPv4)},
		{name: "edge-ipv6", p: edgeProgram(ir.IPv6)},
		{name: "edge-dual", p: dual},
		{name: "edge-dual/chains", p: dual, o: Options{EndpointChains: true}},
		// Maps of a few thousand elements take several netlink messages.
		{name: "synthetic-2000", p: nftperf.Program(2000)},
		{name: "synthetic-600/chains", p: nftperf.Program(600), o: Options{EndpointChains: true}},
	}
}

// applyNFT loads the text of c into a fresh namespace and returns the
// namespace and its listing.
func applyNFT(t *testing.T, c programCase) (string, string) {
	t.Helper()
	b, err := Build(c.p, c.o)
	if err != nil {
		t.Fatal(err)
	}
	ns := nstest.New(t, "kpcnl")
	nstest.Run(t, ns, string(b.Script()), "nft", "-f", "-")
	return ns, nstest.Run(t, ns, "", "nft", "list", "ruleset")
}

// checkNoDrift fails t when Compare finds a difference in namespace ns.
func checkNoDrift(t *testing.T, what, ns string, c programCase) {
	t.Helper()
	o := c.o
	o.NetNS = nstest.Path(ns)
	d, err := Compare(c.p, o)
	if err != nil {
		t.Fatalf("Compare (%s): %v", what, err)
	}
	if !d.Equal() {
		t.Errorf("Compare reports drift on a table %s:\n%s", what, d)
	}
}

// TestApplyMatchesNFT applies every case over netlink into a fresh
// namespace and compares the kernel's listing with that of the same
// Program's text loaded with nft -f, after normalize, and the number of
// elements of every set and map with the Program's.
func TestApplyMatchesNFT(t *testing.T) {
	nstest.Require(t, "nft")
	cases := append(goldenPrograms(t), extraPrograms()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nftNS, want := applyNFT(t, c)
			ns := nstest.New(t, "kpcnl")
			o := c.o
			o.NetNS = nstest.Path(ns)
			st, err := Apply(c.p, o)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			// Only element order is normalized: the typeof declarations,
			// in particular, list the same from netlink as from the text
			// (see typeof.go).
			got := nstest.SortElements(nstest.Run(t, ns, "", "nft", "list", "ruleset"))
			if want := nstest.SortElements(want); got != want {
				t.Errorf("netlink listing differs from nft -f listing (-nft +netlink):\n%s", cmp.Diff(want, got))
			}
			checkElementCounts(t, ns, c.p, !c.o.EndpointChains)
			checkNoDrift(t, "applied over netlink", ns, c)
			checkNoDrift(t, "loaded with nft -f", nftNS, c)
			if st.Tables != max(1, len(c.p.Rulesets)) {
				t.Errorf("Stats.Tables = %d, want %d", st.Tables, max(1, len(c.p.Rulesets)))
			}
		})
	}
}

// wantElements counts, from the IR and the direct layout's analysis, the
// elements kpc's sets and maps must hold: the dispatch maps without
// repeated keys, the address sets without repeats, as many numbered-map
// and service-endpoints elements as the Balances of the chains left and
// the entries of the direct layout choose among, one element per Service
// with affinity in sticky-timeouts, and the fingerprint. Affinity
// sets and sticky-clients are empty until traffic fills them.
func wantElements(rs *ir.Ruleset, lower bool) map[string]int {
	m := map[string]int{}
	svcKeys := func(es []ir.ServiceEntry) int {
		seen := map[string]bool{}
		for _, e := range es {
			seen[fmt.Sprint(e.Addr, e.Protocol, e.Port)] = true
		}
		return len(seen)
	}
	npKeys := func(es []ir.NodePortEntry) int {
		seen := map[string]bool{}
		for _, e := range es {
			seen[fmt.Sprint(e.Protocol, e.Port)] = true
		}
		return len(seen)
	}
	addrs := func(as []netip.Addr) int {
		seen := map[netip.Addr]bool{}
		for _, a := range as {
			seen[a] = true
		}
		return len(seen)
	}
	m[clusterIPsSet] = addrs(rs.ClusterIPs)
	if !rs.Node.NodePortAllLocal {
		m[nodePortIPsSet] = addrs(rs.Node.NodePortAddrs)
	}
	m[serviceIPsMap] = svcKeys(rs.Services)
	m[serviceNodePortsMap] = npKeys(rs.NodePorts)
	m[firewallIPsMap] = svcKeys(rs.Firewall)
	m[noEPServicesMap] = svcKeys(rs.NoEndpoints)
	m[noEPNodePortsMap] = npKeys(rs.NoEndpointNodePorts)
	m[fingerprintSet] = 1
	d := &nftdirect.Result{Absorbed: make([]bool, len(rs.Chains))}
	if lower {
		d = nftdirect.Analyze(rs, nil, nil)
	}
	for i, c := range rs.Chains {
		if d.Absorbed[i] {
			continue
		}
		for _, r := range c.Rules {
			if b, ok := r.Action.(*ir.Balance); ok {
				m["<choices>"] += len(b.Chains)
			}
		}
	}
	for _, e := range d.Entries {
		for _, c := range e.Choices {
			m["<choices>"] += len(c)
		}
	}
	if d.Sticky() {
		m[nftdirect.ClientsMap] = 0
		for _, t := range d.Timeouts {
			m[nftdirect.TimeoutsMap] += len(t.Keys)
		}
	}
	for _, s := range rs.AffinitySets {
		if !d.DroppedSets[s.Name] {
			m[s.Name] = 0
		}
	}
	return m
}

// checkElementCounts reads every named set of kpc's tables back over
// netlink and compares its element count with wantElements.
func checkElementCounts(t *testing.T, ns string, p *ir.Program, lower bool) {
	t.Helper()
	c, err := dial(Options{NetNS: nstest.Path(ns)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, rs := range p.Rulesets {
		fam := famIPv4
		if rs.Family == ir.IPv6 {
			fam = famIPv6
		}
		table := &nftables.Table{Name: rs.Table, Family: fam.table}
		sets, err := c.nft.GetSets(table)
		if err != nil {
			t.Fatalf("GetSets: %v", err)
		}
		got := map[string]int{}
		for _, s := range sets {
			if s.Anonymous || strings.HasPrefix(s.Name, "__") || s.Name == "hairpin-endpoints" {
				continue
			}
			elems, err := c.nft.GetSetElements(s)
			if err != nil {
				t.Fatalf("GetSetElements %s: %v", s.Name, err)
			}
			name := s.Name
			if strings.HasPrefix(name, "endpoint-choice-") || strings.HasPrefix(name, "endpoints-") ||
				strings.HasPrefix(name, nftdirect.EndpointsMap) || strings.HasPrefix(name, nftdirect.NodePortEndpointsMap) {
				name = "<choices>"
			}
			// A listing during a hash table resize can repeat an element.
			keys := map[string]bool{}
			for _, e := range elems {
				keys[string(e.Key)] = true
			}
			got[name] += len(keys)
		}
		want := wantElements(rs, lower)
		if want["<choices>"] == 0 {
			delete(want, "<choices>")
		}
		for name, n := range want {
			if got[name] != n {
				t.Errorf("%v set %s: %d elements in the kernel, the IR has %d", rs.Family, name, got[name], n)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%v: unexpected set %s in the kernel", rs.Family, name)
			}
		}
	}
}

// TestForeignTablesSurvive applies, re-applies and deletes kpc's tables in
// a namespace holding other tables (one of them named kpc in the inet
// family) and checks that those never change.
func TestForeignTablesSurvive(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	nstest.Run(t, ns, nstest.Foreign, "nft", "-f", "-")
	before := nstest.ListTables(t, ns, nstest.ForeignTables...)
	o := Options{NetNS: nstest.Path(ns)}
	p := edgeProgram(ir.IPv4)
	for i := 0; i < 2; i++ {
		if _, err := Apply(p, o); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
		if got := nstest.ListTables(t, ns, nstest.ForeignTables...); got != before {
			t.Fatalf("apply %d changed the foreign tables:\n%s", i+1, cmp.Diff(before, got))
		}
	}
	first := nstest.Run(t, ns, "", "nft", "list", "table", "ip", "kpc")
	// A dual-stack apply over it, then the IPv4-only one again: the IPv6
	// table is removed by the second.
	dual := edgeProgram(ir.IPv4)
	dual.Rulesets = append(dual.Rulesets, edgeProgram(ir.IPv6).Rulesets...)
	if _, err := Apply(dual, o); err != nil {
		t.Fatal(err)
	}
	if _, err := nstest.Exec(ns, "", "nft", "list", "table", "ip6", "kpc"); err != nil {
		t.Fatalf("no ip6 kpc table after a dual-stack apply: %v", err)
	}
	if _, err := Apply(p, o); err != nil {
		t.Fatal(err)
	}
	if _, err := nstest.Exec(ns, "", "nft", "list", "table", "ip6", "kpc"); err == nil {
		t.Error("ip6 kpc table survived an IPv4-only apply")
	}
	if got := nstest.Run(t, ns, "", "nft", "list", "table", "ip", "kpc"); nstest.SortElements(got) != nstest.SortElements(first) {
		t.Errorf("re-apply gave a different table:\n%s", cmp.Diff(nstest.SortElements(first), nstest.SortElements(got)))
	}

	st, err := Delete(Options{NetNS: nstest.Path(ns), DryRun: true})
	if err != nil || st.Tables != 1 {
		t.Fatalf("Delete dry run = %+v, %v; want 1 table", st, err)
	}
	if _, err := nstest.Exec(ns, "", "nft", "list", "table", "ip", "kpc"); err != nil {
		t.Fatalf("a dry-run Delete removed the table: %v", err)
	}
	for i, want := range []int{1, 0} {
		st, err := Delete(o)
		if err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
		if st.Tables != want {
			t.Errorf("delete %d: Stats.Tables = %d, want %d", i+1, st.Tables, want)
		}
	}
	if _, err := nstest.Exec(ns, "", "nft", "list", "table", "ip", "kpc"); err == nil {
		t.Error("ip kpc table survived Delete")
	}
	if got := nstest.ListTables(t, ns, nstest.ForeignTables...); got != before {
		t.Errorf("delete changed the foreign tables:\n%s", cmp.Diff(before, got))
	}
}

// TestAtomicFailure makes a batch fail at its very end (an invalid rule
// added through the test hook after every object of a valid replacement)
// and checks that the previous ruleset is byte-for-byte unchanged.
func TestAtomicFailure(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	nstest.Run(t, ns, nstest.Foreign, "nft", "-f", "-")
	o := Options{NetNS: nstest.Path(ns)}
	if _, err := Apply(edgeProgram(ir.IPv4), o); err != nil {
		t.Fatal(err)
	}
	before := nstest.Run(t, ns, "", "nft", "list", "ruleset")

	replacement := nftperf.Program(300)
	replacement.Rulesets = append(replacement.Rulesets, edgeProgram(ir.IPv6).Rulesets...)
	bad := o
	bad.beforeFlush = func(tables []*tableSpec) []mdnetlink.Message {
		// A jump to a chain that does not exist, in the last table.
		last := tables[len(tables)-1].table
		b := newRawBatch()
		b.addRule(&nftables.Rule{Table: last, Chain: &nftables.Chain{Name: rejectChain, Table: last},
			Exprs: one(verdict(expr.VerdictJump, "no-such-chain"))})
		msgs, err := b.finish()
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	_, err := Apply(replacement, bad)
	if err == nil {
		t.Fatal("Apply with an invalid last message succeeded")
	}
	t.Logf("failed as expected: %v", err)
	if !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("error does not say that nothing changed: %v", err)
	}
	if after := nstest.Run(t, ns, "", "nft", "list", "ruleset"); after != before {
		t.Errorf("ruleset changed after a failed batch:\n%s", cmp.Diff(before, after))
	}
	// The same replacement without the invalid rule goes through.
	if _, err := Apply(replacement, o); err != nil {
		t.Fatalf("valid replacement: %v", err)
	}
}

// TestDryRun checks that a dry run reports the batch and leaves the kernel
// alone, and that Build's script is render.NFT's text.
func TestDryRun(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	before := nstest.Run(t, ns, "", "nft", "list", "ruleset")
	p := edgeProgram(ir.IPv4)
	st, err := Apply(p, Options{NetNS: nstest.Path(ns), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Chains == 0 || st.Rules == 0 || st.Messages == 0 {
		t.Errorf("dry run stats %+v: want chains, rules and messages", st)
	}
	if after := nstest.Run(t, ns, "", "nft", "list", "ruleset"); after != before {
		t.Errorf("dry run changed the ruleset:\n%s", cmp.Diff(before, after))
	}
	var text strings.Builder
	if err := (render.NFT{}).Render(&text, p); err != nil {
		t.Fatal(err)
	}
	b, err := Build(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Script()) != text.String() {
		t.Error("Build's script differs from render.NFT's text")
	}
}

// TestCompareDrift changes an applied table behind kpc's back and checks
// that Compare reports each change, and nothing else.
func TestCompareDrift(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.New(t, "kpcnl")
	o := Options{NetNS: nstest.Path(ns)}
	p := edgeProgram(ir.IPv4)
	if d, err := Compare(p, o); err != nil || d.Equal() || !strings.Contains(d.String(), "+ table ip kpc (not in the kernel)") {
		t.Fatalf("Compare before any apply = %v, %v; want the table reported missing", d, err)
	}
	if _, err := Apply(p, o); err != nil {
		t.Fatal(err)
	}
	nstest.Run(t, ns, `delete element ip kpc service-ips { 172.30.0.10 . udp . 53 }
add element ip kpc cluster-ips { 172.30.9.9 }
add chain ip kpc extra
add rule ip kpc services counter
add table ip6 kpc
`, "nft", "-f", "-")
	d, err := Compare(p, o)
	if err != nil {
		t.Fatal(err)
	}
	// A diff from the kernel to the manifests: "-" for what only the
	// kernel holds (the table, chain, rule and element added by hand), "+"
	// for what only Apply would install (the element deleted by hand).
	want := []string{
		"- table ip6 kpc (kpc would delete it)",
		"- ip kpc chain extra (0 rules)",
		"~ ip kpc chain services",
		"    rule 3 kernel: Counter",
		"    rule 3 kpc:    (none)",
		"~ ip kpc set cluster-ips",
		"    - element 172.30.9.9",
		"~ ip kpc set service-ips",
		`    + element 172.30.0.10 . udp . 53 comment "ns/edge:'p' x" : goto service-EDGE0000-ns/edge/udp/p`,
	}
	got := d.String()
	t.Logf("drift report:\n%s", got)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("drift report lacks %q:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n~ ") + strings.Count(got, "\n+ ") + strings.Count(got, "\n- ") + 1; n != 5 {
		t.Errorf("drift report has %d top-level lines, want 5:\n%s", n, got)
	}
}
