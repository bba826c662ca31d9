package ir

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dump writes a deterministic, human-readable text form of p: the notes,
// then per Ruleset its node context, dispatch tables, affinity sets and
// chains, in the order the compiler sorted them. It is meant for review and
// for golden files (want.ir); it is not parsed back. Matches are spelled in
// an nft-like syntax ("ip saddr != 10.0.0.0/8 ip daddr 172.30.0.45 ->
// mark-masq") and actions by intent ("balance 2: endpoint-A, endpoint-B").
// A Program without a Ruleset says so; a nil Program writes nothing. The
// only errors are w's.
func Dump(w io.Writer, p *Program) error {
	if p == nil {
		return nil
	}
	d := &dumper{w: w}
	for _, n := range p.Notes {
		d.linef("note: %s", n)
	}
	if !slices.ContainsFunc(p.Rulesets, func(rs *Ruleset) bool { return rs != nil }) {
		d.linef("no ruleset: no Service of the input has a cluster IP that kube-proxy proxies (headless and ExternalName Services get no rules)")
	}
	for i, rs := range p.Rulesets {
		if rs == nil {
			continue
		}
		if i > 0 || len(p.Notes) > 0 {
			d.linef("")
		}
		d.ruleset(rs)
	}
	return d.err
}

type dumper struct {
	w   io.Writer
	err error
}

func (d *dumper) linef(format string, args ...any) {
	if d.err != nil {
		return
	}
	_, d.err = fmt.Fprintf(d.w, format+"\n", args...)
}

func (d *dumper) ruleset(rs *Ruleset) {
	d.linef("ruleset %s table %s masq-mark %#x%s", rs.Family, rs.Table, rs.MasqMark, flag(rs.ConntrackTCPLiberal, " conntrack-tcp-liberal (iptables: INVALID packets not dropped)"))
	n := &rs.Node
	name := n.Name
	if name == "" {
		name = "(none: no endpoint is local)"
	}
	zone := n.Zone
	if zone == "" {
		zone = "(none)"
	}
	d.linef("  node %s zone %s", name, zone)
	d.linef("  node ips %s", addrList(n.IPs))
	switch {
	case n.LocalIface != "" && n.LocalIfacePrefix:
		d.linef("  pod interfaces %s* (local-traffic detector by interface name prefix)", n.LocalIface)
	case n.LocalIface != "":
		d.linef("  pod interface %s (local-traffic detector by bridge interface)", n.LocalIface)
	case len(n.PodCIDRs) == 0:
		d.linef("  pod cidrs (none: no off-cluster masquerade)")
	default:
		d.linef("  pod cidrs %s", prefixList(n.PodCIDRs))
	}
	if n.NodePortAllLocal {
		d.linef("  nodeports on every local address (known: %s)", addrList(n.NodePortAddrs))
	} else if n.NodePortDefault {
		d.linef("  nodeports on %s (the default: every local address in iptables mode)", addrList(n.NodePortAddrs))
	} else {
		d.linef("  nodeports on %s", addrList(n.NodePortAddrs))
	}
	if n.LocalhostNodePorts {
		d.linef("  localhost nodeports (iptables)")
	}
	d.linef("  service cidrs %s%s", prefixList(rs.ServiceCIDRs), flag(rs.DropServiceCIDRs, " (drop unallocated)"))
	d.linef("  cluster ips %s%s", addrList(rs.ClusterIPs), flag(rs.RejectClusterIPs, " (reject other ports)"))
	if len(rs.HealthCheckNodePorts) > 0 {
		ports := make([]string, len(rs.HealthCheckNodePorts))
		for i, p := range rs.HealthCheckNodePorts {
			ports[i] = fmt.Sprint(p)
		}
		d.linef("  health check nodeports %s", strings.Join(ports, ", "))
	}
	d.serviceEntries("firewall", rs.Firewall)
	d.serviceEntries("services", rs.Services)
	d.nodePortEntries("nodeports", rs.NodePorts)
	d.serviceEntries("no-endpoints", rs.NoEndpoints)
	d.nodePortEntries("no-endpoint-nodeports", rs.NoEndpointNodePorts)
	if len(rs.AffinitySets) > 0 {
		d.linef("")
		d.linef("  affinity sets")
		for _, s := range rs.AffinitySets {
			d.linef("    %s timeout %s%s", s.Name, durationSeconds(s.Timeout), comment(s.Comment))
		}
	}
	ipx := "ip"
	if rs.Family == IPv6 {
		ipx = "ip6"
	}
	for _, c := range rs.Chains {
		if c == nil {
			continue
		}
		d.linef("")
		d.linef("  chain %s (%s %s %s)%s", c.Name, c.Kind, c.Service, strings.ToLower(string(c.Protocol)), comment(c.Describe()))
		for _, r := range c.RuleList() {
			m := matchString(ipx, &rs.Node, &r.Match)
			a := ActionString(r.Action)
			if m != "" {
				a = m + " -> " + a
			}
			d.linef("    %s%s", a, comment(r.Comment))
		}
	}
}

func (d *dumper) serviceEntries(title string, es []ServiceEntry) {
	if len(es) == 0 {
		return
	}
	d.linef("")
	d.linef("  %s", title)
	for _, e := range es {
		c := strings.TrimSpace(e.Comment + " " + e.Kind)
		d.linef("    %s %s %d -> %s%s", e.Addr, strings.ToLower(string(e.Protocol)), e.Port, e.Target, comment(c))
	}
}

func (d *dumper) nodePortEntries(title string, es []NodePortEntry) {
	if len(es) == 0 {
		return
	}
	d.linef("")
	d.linef("  %s", title)
	for _, e := range es {
		d.linef("    %s %d -> %s%s", strings.ToLower(string(e.Protocol)), e.Port, e.Target, comment(e.Comment))
	}
}

// String returns "goto <chain>", "drop" or "reject".
func (t Target) String() string {
	switch {
	case t.Chain != "":
		return "goto " + t.Chain
	case t.Drop:
		return "drop"
	case t.Reject:
		return "reject"
	}
	return "(none)"
}

// ActionString spells an action for Dump and trace paths: "mark-masq",
// "affinity-update @set", "goto chain", "balance N: a, b", "dnat tcp to
// ip:port", "drop", "reject".
func ActionString(a Action) string {
	switch a := a.(type) {
	case *MarkMasq:
		return "mark-masq"
	case *AffinityUpdate:
		if a == nil {
			return "affinity-update (nil)"
		}
		return "affinity-update @" + a.Set
	case *Goto:
		if a == nil {
			return "goto (nil)"
		}
		return "goto " + a.Chain
	case *Balance:
		if a == nil {
			return "balance (nil)"
		}
		return fmt.Sprintf("balance %d: %s", len(a.Chains), strings.Join(a.Chains, ", "))
	case *DNAT:
		if a == nil {
			return "dnat (nil)"
		}
		return fmt.Sprintf("dnat %s to %s", strings.ToLower(string(a.Protocol)), netip.AddrPortFrom(a.Addr, a.Port))
	case *Drop:
		return "drop"
	case *Reject:
		return "reject"
	case nil:
		return "(no action)"
	}
	return fmt.Sprintf("(unknown action %T)", a)
}

// matchString spells m in nft-like syntax; ipx is "ip" or "ip6", n the
// node whose local-traffic interface an interface test names. A zero Match
// gives "".
func matchString(ipx string, n *Node, m *Match) string {
	var parts []string
	if m.SrcAddr.IsValid() {
		parts = append(parts, ipx+" saddr "+m.SrcAddr.String())
	}
	if len(m.SrcIn) > 0 {
		parts = append(parts, ipx+" saddr "+prefixSet(m.SrcIn))
	}
	if len(m.SrcNotIn) > 0 {
		parts = append(parts, ipx+" saddr != "+prefixSet(m.SrcNotIn))
	}
	if m.SrcLocal {
		parts = append(parts, "fib saddr type local")
	}
	if m.Iface != IfaceAny {
		op := "iifname "
		if m.Iface == IfaceNotLocal {
			op += "!= "
		}
		parts = append(parts, op+strconv.Quote(n.LocalIfacePattern()))
	}
	if m.Affinity != "" {
		parts = append(parts, ipx+" saddr @"+m.Affinity)
	}
	if m.DstAddr.IsValid() {
		parts = append(parts, ipx+" daddr "+m.DstAddr.String())
	}
	if m.DstPort != 0 {
		parts = append(parts, fmt.Sprintf("th dport %d", m.DstPort))
	}
	return strings.Join(parts, " ")
}

func prefixSet(ps []netip.Prefix) string {
	if len(ps) == 1 {
		return ps[0].String()
	}
	return "{ " + prefixList(ps) + " }"
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "(none)"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func comment(c string) string {
	if c == "" {
		return ""
	}
	return "  # " + c
}

func durationSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
