package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"kpc/compiler/ir"
)

// KubeProxyNFT writes p in kube-proxy's own nftables layout (v1.37, see
// the compiler's reference notes), as one "nft -f" transaction of add
// commands the way kube-proxy's full sync sends it into an empty table:
// table "kube-proxy" per family, the dispatch sets and verdict maps, the
// base and helper chains, then every IR chain with its rules, where a
// uniform choice (ir.Balance) is kube-proxy's inline anonymous verdict map
// "numgen random mod N vmap { 0 : goto endpoint-…, … }" and every endpoint
// keeps its own chain, then the map elements.
//
// It is a measurement fixture, the reference that kpc's own layout is
// compared with, not a renderer: it checks only what it needs to spell the
// Program (p must be valid) and omits most comments.
func KubeProxyNFT(w io.Writer, p *ir.Program) error {
	if p == nil {
		return errors.New("kube-proxy layout: nil program")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("kube-proxy layout: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, rs := range p.Rulesets {
		kp := &kpWriter{w: bw, rs: rs, l3: "ip", table: "ip kube-proxy", addrType: "ipv4_addr", loopback: "127.0.0.0/8"}
		if rs.Family == ir.IPv6 {
			kp.l3, kp.table, kp.addrType, kp.loopback = "ip6", "ip6 kube-proxy", "ipv6_addr", "::1"
		}
		if err := kp.write(); err != nil {
			return fmt.Errorf("kube-proxy layout: %v: %w", rs.Family, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("kube-proxy layout: writing: %w", err)
	}
	return nil
}

// kpWriter writes one family's table.
type kpWriter struct {
	w                             *bufio.Writer
	rs                            *ir.Ruleset
	l3, table, addrType, loopback string
}

// kpBaseChains are kube-proxy's hooked chains: name, type, hook, priority
// and rules.
var kpBaseChains = []struct {
	name, typ, hook string
	prio            int
	rules           []string
}{
	{"filter-prerouting-pre-dnat", "filter", "prerouting", -110, []string{"ct state new jump firewall-check"}},
	{"filter-output-pre-dnat", "filter", "output", -110, []string{"ct state new jump firewall-check"}},
	{"nat-prerouting", "nat", "prerouting", -100, []string{"jump services"}},
	{"nat-output", "nat", "output", -100, []string{"jump services"}},
	{"filter-forward", "filter", "forward", 0, []string{"ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"}},
	{"filter-input", "filter", "input", 0, []string{"ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"}},
	{"filter-output", "filter", "output", 0, []string{"ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"}},
	{"nat-postrouting", "nat", "postrouting", 100, []string{"jump masquerading"}},
}

func (k *kpWriter) printf(format string, args ...any) { fmt.Fprintf(k.w, format, args...) }

func (k *kpWriter) write() error {
	rs := k.rs
	t := k.table
	mark := fmt.Sprintf("%#x", rs.MasqMark)
	k.printf("add table %s { comment \"rules for kube-proxy\" ; }\n", t)
	for _, c := range kpBaseChains {
		k.printf("add chain %s %s { type %s hook %s priority %d ; }\n", t, c.name, c.typ, c.hook, c.prio)
	}
	helpers := []string{"mark-for-masquerade", "masquerading", "services", "firewall-check", "service-endpoints-check",
		"nodeport-endpoints-check", "cluster-ips-check", "reject-chain"}
	for _, c := range helpers {
		k.printf("add chain %s %s\n", t, c)
	}
	for _, c := range rs.Chains {
		k.printf("add chain %s %s\n", t, c.Name)
	}

	svcKey := k.addrType + " . inet_proto . inet_service : verdict"
	npKey := "inet_proto . inet_service : verdict"
	k.printf("add set %s cluster-ips { type %s ; comment \"Active ClusterIPs\" ; }\n", t, k.addrType)
	if !rs.Node.NodePortAllLocal {
		k.printf("add set %s nodeport-ips { type %s ; comment \"IPs that accept NodePort traffic\" ; }\n", t, k.addrType)
	}
	for _, m := range []struct{ name, typ string }{
		{"service-ips", svcKey}, {"service-nodeports", npKey}, {"firewall-ips", svcKey},
		{"no-endpoint-services", svcKey}, {"no-endpoint-nodeports", npKey},
	} {
		k.printf("add map %s %s { type %s ; }\n", t, m.name, m.typ)
	}
	for _, s := range rs.AffinitySets {
		k.printf("add set %s %s { type %s ; flags dynamic,timeout ; timeout %ds ; }\n", t, s.Name, k.addrType, int64((s.Timeout+time.Second-1)/time.Second))
	}

	for _, c := range kpBaseChains {
		for _, r := range c.rules {
			k.printf("add rule %s %s %s\n", t, c.name, r)
		}
	}
	k.printf("add rule %s mark-for-masquerade mark set mark or %s\n", t, mark)
	k.printf("add rule %s masquerading mark and %s == 0 return\n", t, mark)
	k.printf("add rule %s masquerading mark set mark xor %s\n", t, mark)
	k.printf("add rule %s masquerading masquerade fully-random\n", t)
	dispatch := k.l3 + " daddr . meta l4proto . th dport vmap @"
	nodePortDst := k.l3 + " daddr @nodeport-ips"
	if rs.Node.NodePortAllLocal {
		nodePortDst = "fib daddr type local " + k.l3 + " daddr != " + k.loopback
	}
	k.printf("add rule %s services %sservice-ips\n", t, dispatch)
	k.printf("add rule %s services %s meta l4proto . th dport vmap @service-nodeports\n", t, nodePortDst)
	k.printf("add rule %s firewall-check %sfirewall-ips\n", t, dispatch)
	k.printf("add rule %s service-endpoints-check %sno-endpoint-services\n", t, dispatch)
	k.printf("add rule %s nodeport-endpoints-check %s meta l4proto . th dport vmap @no-endpoint-nodeports\n", t, nodePortDst)
	if rs.RejectClusterIPs {
		k.printf("add rule %s cluster-ips-check %s daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n", t, k.l3)
	}
	if rs.DropServiceCIDRs && len(rs.ServiceCIDRs) > 0 {
		k.printf("add rule %s cluster-ips-check %s daddr %s drop comment \"Drop traffic to unallocated ClusterIPs\"\n", t, k.l3, kpPrefixes(rs.ServiceCIDRs))
	}
	k.printf("add rule %s reject-chain reject\n", t)

	var rule strings.Builder
	var rbuf [3]ir.Rule
	for _, c := range rs.Chains {
		rules := c.RulesInto(rbuf[:])
		for i := range rules {
			rule.Reset()
			if err := k.rule(&rule, c, &rules[i]); err != nil {
				return fmt.Errorf("chain %s rule %d: %w", c.Name, i, err)
			}
			k.printf("add rule %s %s %s\n", t, c.Name, rule.String())
		}
	}

	for _, a := range rs.ClusterIPs {
		k.printf("add element %s cluster-ips { %s }\n", t, a)
	}
	if !rs.Node.NodePortAllLocal {
		for _, a := range rs.Node.NodePortAddrs {
			k.printf("add element %s nodeport-ips { %s }\n", t, a)
		}
	}
	for _, m := range []struct {
		name    string
		es      []ir.ServiceEntry
		comment bool
	}{{"service-ips", rs.Services, false}, {"firewall-ips", rs.Firewall, false}, {"no-endpoint-services", rs.NoEndpoints, true}} {
		for _, e := range m.es {
			k.printf("add element %s %s { %s . %s . %d%s : %s }\n", t, m.name, e.Addr, kpProto(e.Protocol), e.Port, kpComment(m.comment, e.Comment), kpVerdict(e.Target))
		}
	}
	for _, m := range []struct {
		name    string
		es      []ir.NodePortEntry
		comment bool
	}{{"service-nodeports", rs.NodePorts, false}, {"no-endpoint-nodeports", rs.NoEndpointNodePorts, true}} {
		for _, e := range m.es {
			k.printf("add element %s %s { %s . %d%s : %s }\n", t, m.name, kpProto(e.Protocol), e.Port, kpComment(m.comment, e.Comment), kpVerdict(e.Target))
		}
	}
	return nil
}

// rule spells one IR rule of chain c.
func (k *kpWriter) rule(b *strings.Builder, c *ir.Chain, r *ir.Rule) error {
	m := &r.Match
	if m.DstAddr.IsValid() {
		fmt.Fprintf(b, "%s daddr %s ", k.l3, m.DstAddr)
	}
	if m.DstPort != 0 {
		fmt.Fprintf(b, "%s dport %d ", kpProto(c.Protocol), m.DstPort)
	}
	if m.SrcAddr.IsValid() {
		fmt.Fprintf(b, "%s saddr %s ", k.l3, m.SrcAddr)
	}
	if len(m.SrcIn) > 0 {
		fmt.Fprintf(b, "%s saddr %s ", k.l3, kpPrefixes(m.SrcIn))
	}
	if len(m.SrcNotIn) > 0 {
		fmt.Fprintf(b, "%s saddr != %s ", k.l3, kpPrefixes(m.SrcNotIn))
	}
	if m.SrcLocal {
		b.WriteString("fib saddr type local ")
	}
	if m.Iface != ir.IfaceAny {
		// kube-proxy writes iif, which needs the interface to exist when
		// the ruleset loads; iifname is the same test without that.
		op := ""
		if m.Iface == ir.IfaceNotLocal {
			op = "!= "
		}
		fmt.Fprintf(b, "iifname %s%q ", op, k.rs.Node.LocalIfacePattern())
	}
	if m.Affinity != "" {
		fmt.Fprintf(b, "%s saddr @%s ", k.l3, m.Affinity)
	}
	switch a := r.Action.(type) {
	case *ir.MarkMasq:
		b.WriteString("jump mark-for-masquerade")
	case *ir.AffinityUpdate:
		fmt.Fprintf(b, "update @%s { %s saddr }", a.Set, k.l3)
	case *ir.Goto:
		b.WriteString("goto " + a.Chain)
	case *ir.Balance:
		fmt.Fprintf(b, "numgen random mod %d vmap { ", len(a.Chains))
		for i, e := range a.Chains {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%d : goto %s", i, e)
		}
		b.WriteString(" }")
	case *ir.DNAT:
		ap := netip.AddrPortFrom(a.Addr, a.Port).String()
		fmt.Fprintf(b, "meta l4proto %s dnat to %s", kpProto(a.Protocol), ap)
	case *ir.Drop:
		b.WriteString("drop")
	case *ir.Reject:
		b.WriteString("reject")
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}

// kpPrefixes spells prefixes as one value or an anonymous set.
func kpPrefixes(ps []netip.Prefix) string {
	if len(ps) == 1 {
		return ps[0].Masked().String()
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

func kpProto(p ir.Protocol) string { return strings.ToLower(string(p)) }

// kpVerdict spells a dispatch target as a map verdict.
func kpVerdict(t ir.Target) string {
	switch {
	case t.Drop:
		return "drop"
	case t.Reject:
		return "goto reject-chain"
	}
	return "goto " + t.Chain
}

// kpComment spells an element comment (kube-proxy comments the elements of
// the no-endpoint maps only).
func kpComment(on bool, c string) string {
	if !on || c == "" {
		return ""
	}
	return " comment " + strconv.Quote(strings.ReplaceAll(c, `"`, "'"))
}
