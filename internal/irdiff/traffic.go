package irdiff

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"kpc/compiler/ir"
	"kpc/internal/par"
)

// probe is a destination to trace: a dispatch key of either side.
type probe struct {
	family   ir.Family
	nodePort bool
	addr     netip.Addr // service keys only
	proto    ir.Protocol
	port     uint16
}

func (p probe) destination() string {
	if p.nodePort {
		return "NodePort " + npKeyText(p.proto, p.port)
	}
	return svcKeyText(p.addr, p.proto, p.port)
}

func compareProbes(a, b probe) int {
	return cmp.Or(
		cmp.Compare(a.family, b.family),
		compareBool(a.nodePort, b.nodePort),
		a.addr.Compare(b.addr),
		strings.Compare(string(a.proto), string(b.proto)),
		cmp.Compare(a.port, b.port),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// client is a kind of traffic source.
type client struct {
	// id is the JSON name: "pod", "old-pod" (see withOldPods), "external"
	// or "node".
	id string
	// text is the reviewer's name.
	text     string
	src      netip.Addr
	fromNode bool
	// iface is the interface the client's packets arrive on ("": one
	// the node's local-traffic detector does not take for a pod's).
	iface string
}

// Fallback addresses when a Ruleset says nothing (documentation ranges,
// as the golden tests use).
var (
	defaultNodeIP = map[ir.Family]netip.Addr{
		ir.IPv4: netip.MustParseAddr("198.51.100.1"),
		ir.IPv6: netip.MustParseAddr("2001:db8:1::1"),
	}
	externalClients = map[ir.Family][]netip.Addr{
		ir.IPv4: {netip.MustParseAddr("203.0.113.254"), netip.MustParseAddr("192.0.2.254")},
		ir.IPv6: {netip.MustParseAddr("2001:db8:ffff::fe"), netip.MustParseAddr("2001:db8:fffe::fe")},
	}
)

// clientsFor returns the clients traced for a family, taken from the node
// context of rs (the new side's Ruleset when it has one), and the
// destination used for NodePorts.
func clientsFor(f ir.Family, rs *ir.Ruleset) ([]client, netip.Addr) {
	var node ir.Node
	if rs != nil {
		node = rs.Node
	}
	nodeIP := defaultNodeIP[f]
	if len(node.IPs) > 0 {
		nodeIP = node.IPs[0]
	}
	npDst := nodeIP
	if len(node.NodePortAddrs) > 0 && !node.NodePortAllLocal {
		npDst = node.NodePortAddrs[0]
	}
	inPods := func(a netip.Addr) bool {
		return slices.ContainsFunc(node.PodCIDRs, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	var out []client
	if len(node.PodCIDRs) > 0 {
		pod := node.PodCIDRs[0].Masked().Addr().Next().Next()
		if pod.IsValid() && inPods(pod) {
			out = append(out, client{id: "pod", text: "pods", src: pod})
		}
	}
	if len(out) == 0 && node.LocalIface != "" {
		// A pod is known by the interface its packets arrive on (the
		// name, or the prefix itself, starts with the prefix); its
		// address is one no detector looks at.
		ps := externalClients[f]
		out = append(out, client{id: "pod", text: "pods", src: ps[len(ps)-1], iface: node.LocalIface})
	}
	ext := client{id: "external", text: "external clients"}
	if len(out) == 0 {
		ext.text = "off-node clients"
	}
	for _, a := range externalClients[f] {
		if !inPods(a) && !slices.Contains(node.IPs, a) {
			ext.src = a
			break
		}
	}
	if ext.src.IsValid() {
		out = append(out, ext)
	}
	out = append(out, client{id: "node", text: "the node", src: nodeIP, fromNode: true})
	return out, npDst
}

// withOldPods adds to the new side's clients the pods of the old side's
// local-traffic detector (old: its Ruleset, or nil), when it tells them
// differently: as "pod" when the new side tells none, else as "old-pod".
// A change of the detector then shows for the pods it concerns. The pod of
// the new side is then one of this node's by both detectors: an address
// of the old side's pod range on the new side's interface, or the other
// way round.
func withOldPods(clients []client, old *ir.Ruleset) []client {
	if old == nil {
		return clients
	}
	was, _ := clientsFor(old.Family, old)
	i := slices.IndexFunc(was, func(c client) bool { return c.id == "pod" })
	if i < 0 {
		return clients
	}
	op := was[i]
	j := slices.IndexFunc(clients, func(c client) bool { return c.id == "pod" })
	if j < 0 {
		out := append([]client{op}, clients...)
		for k := range out {
			if out[k].id == "external" {
				out[k].text = "external clients" // no longer every off-node one
			}
		}
		return out
	}
	out := slices.Clone(clients)
	np := &out[j]
	switch {
	case np.iface != "" && op.iface == "":
		np.src = op.src
	case np.iface == "" && op.iface != "":
		np.iface = op.iface
	}
	if np.src == op.src && np.iface == op.iface {
		return out
	}
	op.id, op.text = "old-pod", "pods by the old side's local-traffic detector"
	return slices.Insert(out, j+1, op)
}

// diffTraffic traces every dispatch key of both sides for every client
// and reports the fates that differ.
func diffTraffic(oldP, newP *ir.Program, mode ir.Mode) []TrafficChange {
	comments := map[probe]string{}
	// allowed is, per firewall key, a source inside the key's
	// loadBalancerSourceRanges (the new side's when both have one).
	allowed := map[probe]netip.Addr{}
	seen := map[probe]bool{}
	var probes []probe
	add := func(p probe, comment string) {
		if !seen[p] {
			seen[p] = true
			probes = append(probes, p)
		}
		if comment != "" {
			comments[p] = comment // the new side's comment wins: it is added last
		}
	}
	for _, prog := range []*ir.Program{oldP, newP} {
		for _, rs := range prog.Rulesets {
			if rs == nil {
				continue
			}
			for _, list := range [][]ir.ServiceEntry{rs.Services, rs.Firewall, rs.NoEndpoints} {
				for _, e := range list {
					add(probe{family: rs.Family, addr: e.Addr.Unmap(), proto: e.Protocol, port: e.Port}, e.Comment)
				}
			}
			chains := chainsByName(rs)
			for _, e := range rs.Firewall {
				if a, ok := allowedSource(chains[e.Target.Chain]); ok {
					allowed[probe{family: rs.Family, addr: e.Addr.Unmap(), proto: e.Protocol, port: e.Port}] = a
				}
			}
			for _, list := range [][]ir.NodePortEntry{rs.NodePorts, rs.NoEndpointNodePorts} {
				for _, e := range list {
					add(probe{family: rs.Family, nodePort: true, proto: e.Protocol, port: e.Port}, e.Comment)
				}
			}
		}
	}
	slices.SortFunc(probes, compareProbes)

	oldT, newT := ir.NewTracer(oldP), ir.NewTracer(newP)
	oldT.SkipPaths, newT.SkipPaths = true, true // fateOf reads no path
	// A probe whose lookups and chains are the same on both sides has the
	// same fates: only the others are traced.
	same := oldT.Compare(newT)
	out := []TrafficChange{}
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		rs := rulesetOf(newP, f)
		if rs == nil {
			rs = rulesetOf(oldP, f)
		}
		base, npDst := clientsFor(f, rs)
		if rs != nil && rs == rulesetOf(newP, f) {
			base = withOldPods(base, rulesetOf(oldP, f))
		}
		var fps []probe
		for _, p := range probes {
			if p.family == f {
				fps = append(fps, p)
			}
		}
		// The probes are traced on every CPU, each into its own slot, and
		// reported in order.
		found := make([][]TrafficChange, len(fps))
		par.Runs(len(fps), 256, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p := fps[i]
				dst := p.addr
				if p.nodePort {
					dst = npDst
				}
				if same.Same(dst, p.proto, p.port) {
					continue
				}
				clients := base
				if a, ok := allowed[p]; ok {
					clients = append([]client{{id: "allowed", text: "allowed sources", src: a}}, base...)
				}
				found[i] = probeChanges(p, comments[p], clients, npDst, oldT, newT, mode)
			}
		})
		for _, tcs := range found {
			out = append(out, tcs...)
		}
	}
	return out
}

// probeChanges traces probe p for each client on both sides and returns
// the fates that differ, a change per fate change (with the clients it
// concerns named when not all of them). comment names p's Service; npDst
// is the node address NodePort probes go to.
func probeChanges(p probe, comment string, clients []client, npDst netip.Addr, oldT, newT *ir.Tracer, mode ir.Mode) []TrafficChange {
	var changes []*TrafficChange
	for _, c := range clients {
		pkt := ir.Packet{Src: c.src, Dst: p.addr, Protocol: p.proto, Port: p.port, FromNode: c.fromNode, InIface: c.iface}
		if p.nodePort {
			// npDst is an address of the node, known or not.
			pkt.Dst, pkt.ToNode = npDst, true
		}
		or, nr := oldT.Trace(pkt, mode), newT.Trace(pkt, mode)
		if sameFate(or, nr) {
			continue
		}
		of, nf := fateOf(or), fateOf(nr)
		what, was := fateChangeText(of, nf)
		i := slices.IndexFunc(changes, func(tc *TrafficChange) bool { return tc.Text == what+was })
		if i < 0 {
			changes = append(changes, &TrafficChange{
				Family: p.family.String(), Destination: p.destination(), Service: comment, Text: what + was,
			})
			i = len(changes) - 1
		}
		changes[i].Clients = append(changes[i].Clients, ClientFate{Client: c.id, Old: of, New: nf})
	}
	var out []TrafficChange
	for _, tc := range changes {
		if len(tc.Clients) < len(clients) {
			var names []string
			for _, cf := range tc.Clients {
				i := slices.IndexFunc(clients, func(c client) bool { return c.id == cf.Client })
				names = append(names, clients[i].text)
			}
			what, was := fateChangeText(tc.Clients[0].Old, tc.Clients[0].New)
			tc.Text = what + " for " + joinAnd(names) + was
		}
		out = append(out, *tc)
	}
	return out
}

// chainsByName returns the chains of rs by name (those of a name in
// order: Validate rejects a name used twice).
func chainsByName(rs *ir.Ruleset) map[string][]*ir.Chain {
	m := make(map[string][]*ir.Chain, len(rs.Chains))
	for _, c := range rs.Chains {
		if c != nil {
			m[c.Name] = append(m[c.Name], c)
		}
	}
	return m
}

// allowedSource returns an address inside the source ranges of a firewall
// chain, given as the chains of its name (the ranges its drop rule
// spares).
func allowedSource(chains []*ir.Chain) (netip.Addr, bool) {
	for _, c := range chains {
		for _, r := range c.RuleList() {
			for _, pfx := range r.Match.SrcNotIn {
				a := pfx.Masked().Addr()
				if pfx.Bits() < a.BitLen() {
					a = a.Next()
				}
				if a.IsValid() && pfx.Contains(a) {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

// fateOf summarizes a trace.
func fateOf(r ir.Result) Fate {
	f := Fate{Verdict: r.Verdict.String(), Endpoints: []string{}, Masquerade: r.Masquerade}
	if r.Verdict == ir.VerdictDNAT {
		f.Masquerade = false
		for _, reach := range r.Reaches {
			f.Endpoints = append(f.Endpoints, reach.Endpoint.String())
			f.Masquerade = f.Masquerade || reach.Masquerade
		}
		slices.Sort(f.Endpoints)
		f.Endpoints = slices.Compact(f.Endpoints)
	}
	return f
}

// sameFate reports whether two traces have equal Fates (fateOf), without
// spelling their endpoints: a trace's reaches are sorted by endpoint, so
// each side's distinct endpoints are in the same order.
func sameFate(a, b ir.Result) bool {
	if a.Verdict != b.Verdict {
		return false
	}
	if a.Verdict != ir.VerdictDNAT {
		return a.Masquerade == b.Masquerade
	}
	masq := func(r ir.Result) bool {
		return slices.ContainsFunc(r.Reaches, func(x ir.Reach) bool { return x.Masquerade })
	}
	endpoints := func(r ir.Result) []netip.AddrPort {
		eps := make([]netip.AddrPort, 0, len(r.Reaches))
		for _, x := range r.Reaches {
			if len(eps) == 0 || eps[len(eps)-1] != x.Endpoint {
				eps = append(eps, x.Endpoint)
			}
		}
		return eps
	}
	return masq(a) == masq(b) && slices.Equal(endpoints(a), endpoints(b))
}

func endpointSet(eps []string) string { return "{" + strings.Join(eps, ", ") + "}" }

// fateText spells a fate for a reviewer; masq adds whether the packet
// is masqueraded.
func fateText(f Fate, masq bool) string {
	m := ""
	if masq && f.Masquerade {
		m = ", masqueraded"
	}
	switch f.Verdict {
	case "dnat":
		return "endpoints " + endpointSet(f.Endpoints) + m
	case "reject":
		return "rejected"
	case "drop":
		return "dropped"
	case "accept":
		return "accepted (a health-check NodePort)"
	}
	return "passed through untouched" + m
}

// fateChangeText describes a change of fate: "endpoints {a, b} -> {a}",
// "masquerade no -> yes", or "now dropped" with was " (was endpoints
// {a})". When the verdict changes, masquerading is left to the JSON form.
func fateChangeText(o, n Fate) (what, was string) {
	if o.Verdict == n.Verdict {
		var parts []string
		if !slices.Equal(o.Endpoints, n.Endpoints) {
			parts = append(parts, "endpoints "+endpointSet(o.Endpoints)+" -> "+endpointSet(n.Endpoints))
		}
		if o.Masquerade != n.Masquerade {
			parts = append(parts, "masquerade "+yesNo(o.Masquerade)+" -> "+yesNo(n.Masquerade))
		}
		return strings.Join(parts, "; "), ""
	}
	return "now " + fateText(n, false), " (was " + fateText(o, false) + ")"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// joinAnd joins names as "a", "a and b", "a, b and c".
func joinAnd(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
