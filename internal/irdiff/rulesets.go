package irdiff

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"kpc/compiler/ir"
)

// rsView is a Ruleset keyed for comparison: dispatch entries by
// destination, chains and affinity sets by name.
type rsView struct {
	Settings            settingsView
	ServiceIPs          map[string]string
	NodePorts           map[string]string
	FirewallIPs         map[string]string
	NoEndpointServices  map[string]string
	NoEndpointNodePorts map[string]string
	Chains              map[string]chainView
	AffinitySets        map[string]string
}

// settingsView is a Ruleset's node context and global settings.
type settingsView struct {
	Table                string
	MasqMark             string
	NodeName             string
	NodeIPs              []netip.Addr
	Zone                 string
	PodCIDRs             []netip.Prefix
	LocalIface           string
	NodePortAddrs        []netip.Addr
	NodePortAllLocal     bool
	LocalhostNodePorts   bool
	ServiceCIDRs         []netip.Prefix
	RejectClusterIPs     bool
	DropServiceCIDRs     bool
	HealthCheckNodePorts string
	ClusterIPs           []netip.Addr
}

type chainView struct {
	Kind    string
	Service string
	Rules   []string
}

// The names of the sections of rsView in reports (kube-proxy's map names).
var rsSections = map[string]string{
	"ServiceIPs":          "service-ips",
	"NodePorts":           "service-nodeports",
	"FirewallIPs":         "firewall-ips",
	"NoEndpointServices":  "no-endpoint-services",
	"NoEndpointNodePorts": "no-endpoint-nodeports",
	"Chains":              "chain",
	"AffinitySets":        "affinity-set",
}

// svcKeyText spells a dispatch key "addr:port/proto" ("[v6]:port/proto").
func svcKeyText(a netip.Addr, proto ir.Protocol, port uint16) string {
	return netip.AddrPortFrom(a, port).String() + "/" + strings.ToLower(string(proto))
}

func npKeyText(proto ir.Protocol, port uint16) string {
	return strconv.Itoa(int(port)) + "/" + strings.ToLower(string(proto))
}

func targetText(t ir.Target, comment, kind string) string {
	s := "goto " + t.Chain
	switch {
	case t.Drop:
		s = "drop"
	case t.Reject:
		s = "reject"
	}
	var why []string
	if comment != "" {
		why = append(why, comment)
	}
	if kind != "" {
		why = append(why, kind)
	}
	if len(why) > 0 {
		s += " (" + strings.Join(why, ", ") + ")"
	}
	return s
}

// rulesetViews returns the views of o and n without the compact endpoint
// chains that are the same on both sides (of a name, the last chain
// counts, as in a view): they are most chains of a large Ruleset, and
// their rules are a function of the chain's endpoint.
func rulesetViews(o, n *ir.Ruleset) (rsView, rsView) {
	byName := func(rs *ir.Ruleset) map[string]*ir.Chain {
		m := map[string]*ir.Chain{}
		for _, c := range rs.Chains {
			if c != nil {
				m[c.Name] = c
			}
		}
		return m
	}
	var oc, nc map[string]*ir.Chain
	var wg sync.WaitGroup
	wg.Go(func() { oc = byName(o) })
	nc = byName(n)
	wg.Wait()
	same := map[string]bool{}
	for name, a := range oc {
		if b := nc[name]; b != nil && a.Endpoint != nil && b.Endpoint != nil &&
			a.Kind == b.Kind && a.Service == b.Service && *a.Endpoint == *b.Endpoint {
			same[name] = true
		}
	}
	var ov rsView
	wg.Go(func() { ov = rulesetView(o, same) })
	nv := rulesetView(n, same)
	wg.Wait()
	return ov, nv
}

// rulesetView returns the view of rs, without the chains named in skip.
func rulesetView(rs *ir.Ruleset, skip map[string]bool) rsView {
	n := &rs.Node
	v := rsView{
		Settings: settingsView{
			Table: rs.Table, MasqMark: fmt.Sprintf("%#x", rs.MasqMark),
			NodeName: n.Name, NodeIPs: n.IPs, Zone: n.Zone, PodCIDRs: n.PodCIDRs, LocalIface: n.LocalIfacePattern(),
			NodePortAddrs: n.NodePortAddrs, NodePortAllLocal: n.NodePortAllLocal, LocalhostNodePorts: n.LocalhostNodePorts,
			ServiceCIDRs: rs.ServiceCIDRs, RejectClusterIPs: rs.RejectClusterIPs, DropServiceCIDRs: rs.DropServiceCIDRs,
			ClusterIPs: rs.ClusterIPs,
		},
		ServiceIPs:          map[string]string{},
		NodePorts:           map[string]string{},
		FirewallIPs:         map[string]string{},
		NoEndpointServices:  map[string]string{},
		NoEndpointNodePorts: map[string]string{},
		Chains:              map[string]chainView{},
		AffinitySets:        map[string]string{},
	}
	var hc []string
	for _, p := range rs.HealthCheckNodePorts {
		hc = append(hc, strconv.Itoa(int(p)))
	}
	v.Settings.HealthCheckNodePorts = strings.Join(hc, ", ")
	for _, m := range []struct {
		dst     map[string]string
		entries []ir.ServiceEntry
	}{{v.ServiceIPs, rs.Services}, {v.FirewallIPs, rs.Firewall}, {v.NoEndpointServices, rs.NoEndpoints}} {
		for _, e := range m.entries {
			m.dst[svcKeyText(e.Addr, e.Protocol, e.Port)] = targetText(e.Target, e.Comment, e.Kind)
		}
	}
	for _, m := range []struct {
		dst     map[string]string
		entries []ir.NodePortEntry
	}{{v.NodePorts, rs.NodePorts}, {v.NoEndpointNodePorts, rs.NoEndpointNodePorts}} {
		for _, e := range m.entries {
			m.dst[npKeyText(e.Protocol, e.Port)] = targetText(e.Target, e.Comment, "")
		}
	}
	for _, c := range rs.Chains {
		if c == nil || skip[c.Name] {
			continue
		}
		cv := chainView{Kind: c.Kind.String(), Service: c.Service}
		for _, r := range c.RuleList() {
			cv.Rules = append(cv.Rules, ruleText(r))
		}
		v.Chains[c.Name] = cv
	}
	for _, s := range rs.AffinitySets {
		v.AffinitySets[s.Name] = "timeout " + s.Timeout.String()
	}
	return v
}

// ruleText spells a rule in the nft-like words of ir.Dump.
func ruleText(r ir.Rule) string {
	m := &r.Match
	var w []string
	if m.DstAddr.IsValid() {
		w = append(w, "daddr "+m.DstAddr.String())
	}
	if m.DstPort != 0 {
		w = append(w, "dport "+strconv.Itoa(int(m.DstPort)))
	}
	if m.SrcAddr.IsValid() {
		w = append(w, "saddr "+m.SrcAddr.String())
	}
	if len(m.SrcIn) > 0 {
		w = append(w, "saddr in {"+listText(m.SrcIn)+"}")
	}
	if len(m.SrcNotIn) > 0 {
		w = append(w, "saddr not in {"+listText(m.SrcNotIn)+"}")
	}
	if m.SrcLocal {
		w = append(w, "saddr local")
	}
	switch m.Iface {
	case ir.IfaceLocal:
		w = append(w, "iif local-pod")
	case ir.IfaceNotLocal:
		w = append(w, "iif not local-pod")
	}
	if m.Affinity != "" {
		w = append(w, "saddr in @"+m.Affinity)
	}
	var act string
	switch a := r.Action.(type) {
	case *ir.MarkMasq:
		act = "mark-masq"
	case *ir.AffinityUpdate:
		act = "update @" + a.Set
	case *ir.Goto:
		act = "goto " + a.Chain
	case *ir.Balance:
		act = "balance " + strings.Join(a.Chains, ", ")
	case *ir.DNAT:
		act = "dnat to " + netip.AddrPortFrom(a.Addr, a.Port).String()
	case *ir.Drop:
		act = "drop"
	case *ir.Reject:
		act = "reject"
	default:
		act = fmt.Sprintf("%T", r.Action)
	}
	if len(w) == 0 {
		return act
	}
	return strings.Join(w, " ") + " -> " + act
}

// ruleSep joins a chain's rules in a Change's Old and New.
const ruleSep = " | "

// diffRulesets compares the Rulesets of each family.
func diffRulesets(oldP, newP *ir.Program) []RulesetChange {
	out := []RulesetChange{}
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		o, n := rulesetOf(oldP, f), rulesetOf(newP, f)
		switch {
		case o == nil && n == nil:
		case o == nil:
			out = append(out, RulesetChange{Family: f.String(), Change: Added, Changes: []Change{{Change: Added, New: rulesetSummary(n)}}})
		case n == nil:
			out = append(out, RulesetChange{Family: f.String(), Change: Removed, Changes: []Change{{Change: Removed, Old: rulesetSummary(o)}}})
		default:
			if ch := rulesetChanges(rulesetViews(o, n)); len(ch) > 0 {
				out = append(out, RulesetChange{Family: f.String(), Change: Changed, Changes: ch})
			}
		}
	}
	return out
}

func rulesetOf(p *ir.Program, f ir.Family) *ir.Ruleset {
	for _, rs := range p.Rulesets {
		if rs != nil && rs.Family == f {
			return rs
		}
	}
	return nil
}

func rulesetSummary(rs *ir.Ruleset) string {
	return fmt.Sprintf("%s, %s, %s", plural(len(rs.Services), "service-ips entry"),
		plural(len(rs.NodePorts), "service-nodeports entry"), plural(len(rs.Chains), "chain"))
}

// plural spells "1 chain", "2 chains", "2 entries".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// rulesetChanges returns the changes from view o to view n (which it
// prunes).
func rulesetChanges(o, n rsView) []Change {
	pruneEqual(&o, &n)
	return viewChanges(o, n)
}

// viewChanges turns go-cmp's leaves of two views into reviewer terms.
func viewChanges(o, n rsView) []Change {
	var out []Change
	for _, d := range compare(o, n) {
		if len(d.path) < 2 {
			continue
		}
		c := Change{Change: kindOf(d)}
		if d.path[0] == "Settings" {
			c.Field = lowerFirst(d.path[1])
			c.Old, c.New = valueText("", d.vx), valueText("", d.vy)
			out = append(out, c)
			continue
		}
		c.Subject = rsSections[d.path[0]] + " " + d.path[1]
		switch {
		case d.path[0] == "Chains" && len(d.path) == 2:
			c.Old, c.New = chainText(d.vx), chainText(d.vy)
		case d.path[0] == "Chains":
			c.Field = lowerFirst(d.path[2])
			if c.Field == "rules" {
				c.Old, c.New = rulesText(d.vx), rulesText(d.vy)
			} else {
				c.Old, c.New = valueText("", d.vx), valueText("", d.vy)
			}
		default:
			c.Old, c.New = valueText("", d.vx), valueText("", d.vy)
		}
		out = append(out, c)
	}
	return out
}

func chainText(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	c, ok := v.Interface().(chainView)
	if !ok {
		return fmt.Sprint(v.Interface())
	}
	return fmt.Sprintf("%s chain of %s, %s", c.Kind, c.Service, plural(len(c.Rules), "rule"))
}

func rulesText(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	rules, ok := v.Interface().([]string)
	if !ok {
		return fmt.Sprint(v.Interface())
	}
	return strings.Join(rules, ruleSep)
}

// pruneEqual removes from both views the entries that are the same on
// both sides, which go-cmp reports nothing of: it would sort the keys of
// every map to walk them (at 50,000 Services, about half a million
// chains and entries: 9.6 s of a comparison that took 21.8 s).
func pruneEqual(o, n *rsView) {
	for _, m := range [][2]map[string]string{
		{o.ServiceIPs, n.ServiceIPs}, {o.NodePorts, n.NodePorts}, {o.FirewallIPs, n.FirewallIPs},
		{o.NoEndpointServices, n.NoEndpointServices}, {o.NoEndpointNodePorts, n.NoEndpointNodePorts},
		{o.AffinitySets, n.AffinitySets},
	} {
		pruneMap(m[0], m[1], func(a, b string) bool { return a == b })
	}
	// reflect.DeepEqual is stricter than cmpOptions (a nil list is not an
	// empty one): a chain it calls equal is one go-cmp does.
	pruneMap(o.Chains, n.Chains, func(a, b chainView) bool { return reflect.DeepEqual(a, b) })
}

// pruneMap deletes from a and b the keys whose values in both are equal.
func pruneMap[V any](a, b map[string]V, equal func(V, V) bool) {
	for k, va := range a {
		if vb, ok := b[k]; ok && equal(va, vb) {
			delete(a, k)
			delete(b, k)
		}
	}
}
