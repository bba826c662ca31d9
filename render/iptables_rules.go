package render

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"kpc/compiler/ir"
)

// iptFirewallRanges reads a firewall chain: no rule (every source is
// allowed) or one rule that drops sources outside the allowed ranges.
func iptFirewallRanges(c *ir.Chain) (allowAll bool, allowed []netip.Prefix, err error) {
	if len(c.Rules) == 0 {
		return true, nil, nil
	}
	r := c.Rules[0]
	m := r.Match
	_, drop := r.Action.(*ir.Drop)
	if len(c.Rules) > 1 || !drop || m.DstAddr.IsValid() || m.DstPort != 0 || m.SrcAddr.IsValid() ||
		len(m.SrcIn) > 0 || m.SrcLocal || m.Iface != ir.IfaceAny || m.Affinity != "" {
		return false, nil, &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("firewall chain %q other than one rule dropping sources outside the allowed ranges", c.Name)}
	}
	return false, m.SrcNotIn, nil
}

// chain writes the rules of IR chain i into the nat table (generate
// declared it).
func (g *iptGen) chain(i int) error {
	ci := &g.infos[i]
	c, name := ci.c, ci.name
	if c.Kind == ir.FirewallChain {
		t, ok := g.fwTarget[c.Name]
		if !ok {
			return nil // not used in front of a chain: rendered in filter
		}
		_, allowed, _ := iptFirewallRanges(c)
		svc := g.fwComment[c.Name]
		for _, p := range allowed {
			g.nat.add(name, iptComment(svc+" load balancer IP"), "-s", p.Masked().String(), "-g", g.nameOf(t))
		}
		g.nat.add(name, iptComment("other traffic to "+svc+" will be dropped by "+g.fixed(iptProxyFirewall)))
		return nil
	}
	rules := c.RulesInto(g.rules[:])
	for i := 0; i < len(rules); i++ {
		r := &rules[i]
		// kube-proxy records the affinity on the DNAT rule itself.
		if u, ok := r.Action.(*ir.AffinityUpdate); ok && u != nil && iptMatchesAll(&r.Match) && i+1 < len(rules) {
			next := &rules[i+1]
			if d, ok := next.Action.(*ir.DNAT); ok && d != nil && iptMatchesAll(&next.Match) {
				t := &g.nat
				t.begin(name)
				if !g.large {
					t.comment(g.ruleComment(c, next.Comment, ""))
				}
				t.args("-m recent --name", g.recent[u.Set], "--set")
				g.writeDNAT(d)
				t.end()
				i++
				continue
			}
		}
		alts, err := g.match(c, &r.Match)
		if err != nil {
			return fmt.Errorf("chain %q rule %d: %w", c.Name, i, err)
		}
		for _, m := range alts {
			if err := g.action(c, name, r, m); err != nil {
				return fmt.Errorf("chain %q rule %d: %w", c.Name, i, err)
			}
		}
	}
	return nil
}

// action writes the rules of one IR rule of c (iptables chain name) for
// one match alternative.
func (g *iptGen) action(c *ir.Chain, name string, r *ir.Rule, m string) error {
	t := &g.nat
	// In large cluster mode the rules of endpoint chains and the endpoint
	// choices (affinity checks and random jumps) go without comments, as
	// kube-proxy's appendServiceCommentLocked leaves them.
	bare := g.large && (c.Kind == ir.EndpointChain || r.Match.Affinity != "" || isBalance(r.Action))
	comment := func(ct iptText) {
		if !bare {
			t.comment(ct)
		}
	}
	add := func(ct iptText, args ...string) {
		t.begin(name)
		comment(ct)
		t.args(m)
		t.args(args...)
		t.end()
	}
	switch a := r.Action.(type) {
	case *ir.MarkMasq:
		add(g.ruleComment(c, r.Comment, ""), "-j", g.fixed(iptMarkMasq))
	case *ir.AffinityUpdate:
		if a == nil {
			return errors.New("nil affinity update")
		}
		add(g.ruleComment(c, r.Comment, ""), "-m recent --name", g.recent[a.Set], "--set")
	case *ir.Goto:
		if a == nil {
			return errors.New("nil goto")
		}
		target, err := g.target(a.Chain)
		if err != nil {
			return err
		}
		add(g.ruleComment(c, r.Comment, g.endpointOf(a.Chain)), "-g", target)
	case *ir.Balance:
		if a == nil {
			return errors.New("nil balance")
		}
		for i, e := range a.Chains {
			target, err := g.target(e)
			if err != nil {
				return err
			}
			if left := len(a.Chains) - i; left > 1 {
				add(g.ruleComment(c, r.Comment, g.endpointOf(e)), "-m statistic --mode random --probability", g.probability(left), "-g", target)
			} else {
				add(g.ruleComment(c, r.Comment, g.endpointOf(e)), "-g", target)
			}
		}
	case *ir.DNAT:
		if a == nil {
			return errors.New("nil dnat")
		}
		switch {
		case r.Match.DstPort == 0:
			t.begin(name)
			comment(g.ruleComment(c, r.Comment, ""))
			t.args(m)
			g.writeDNAT(a)
			t.end()
		case c.Protocol == a.Protocol:
			// The match already has "-p": a rule takes one.
			t.begin(name)
			comment(g.ruleComment(c, r.Comment, ""))
			t.args(m, "-j DNAT --to-destination")
			t.addrPort(a.Addr, a.Port)
			t.end()
		}
		// Otherwise the protocols differ and no packet matches.
	case *ir.Drop, *ir.Reject:
		return &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("%T in a nat chain", a)}
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}

// isBalance reports whether a is a uniform choice among chains.
func isBalance(a ir.Action) bool {
	_, ok := a.(*ir.Balance)
	return ok
}

// writeDNAT appends g.dnat(d) as arguments of the nat rule being written.
func (g *iptGen) writeDNAT(d *ir.DNAT) {
	p := iptProto(d.Protocol)
	g.nat.args("-m", p, "-p", p, "-j DNAT --to-destination")
	g.nat.addrPort(d.Addr, d.Port)
}

// probability returns 1/n with 10 decimals, as kube-proxy prints it.
func (g *iptGen) probability(n int) string {
	for len(g.probs) <= n {
		g.probs = append(g.probs, fmt.Sprintf("%0.10f", 1/float64(len(g.probs))))
	}
	return g.probs[n]
}

// match spells a Match as one or more alternative iptables matches (one
// per allowed source prefix), each empty or ending without a space. A
// match that no packet can satisfy gives no alternative.
func (g *iptGen) match(c *ir.Chain, m *ir.Match) ([]string, error) {
	// The common matches: none, and a hairpin source.
	switch {
	case iptMatchesAll(m):
		return iptNoMatch, nil
	case m.SrcAddr.IsValid() && !m.DstAddr.IsValid() && m.DstPort == 0 && len(m.SrcIn) == 0 && len(m.SrcNotIn) == 0 &&
		!m.SrcLocal && m.Iface == ir.IfaceAny && m.Affinity == "":
		return []string{"-s " + m.SrcAddr.String() + g.fam.hostBits}, nil
	}
	var head, tail []string
	if m.DstAddr.IsValid() || m.DstPort != 0 {
		if m.DstPort != 0 {
			switch c.Protocol {
			case ir.TCP, ir.UDP, ir.SCTP:
			default:
				return nil, fmt.Errorf("destination port needs the chain's protocol, have %q", c.Protocol)
			}
			p := iptProto(c.Protocol)
			head = append(head, "-m", p, "-p", p)
		}
		if m.DstAddr.IsValid() {
			head = append(head, "-d", m.DstAddr.String()+g.fam.hostBits)
		}
		if m.DstPort != 0 {
			head = append(head, "--dport", strconv.Itoa(int(m.DstPort)))
		}
	}
	// Positive source matches become "-s" alternatives.
	var srcs []string
	switch {
	case m.SrcAddr.IsValid():
		if len(m.SrcIn) > 0 && !slices.ContainsFunc(m.SrcIn, func(p netip.Prefix) bool { return p.Contains(m.SrcAddr) }) {
			return nil, nil
		}
		srcs = []string{m.SrcAddr.String() + g.fam.hostBits}
	default:
		for _, p := range m.SrcIn {
			if s := p.Masked().String(); !slices.Contains(srcs, s) {
				srcs = append(srcs, s)
			}
		}
	}
	// Excluded sources: "! -s" when the rule has no "-s", else (and for
	// every further prefix) an iprange match, since a rule takes one "-s".
	for i, p := range m.SrcNotIn {
		if i == 0 && len(srcs) == 0 {
			tail = append(tail, "!", "-s", p.Masked().String())
			continue
		}
		tail = append(tail, "-m", "iprange", "!", "--src-range", iptRange(p))
	}
	if m.SrcLocal {
		tail = append(tail, "-m", "addrtype", "--src-type", "LOCAL")
	}
	if m.Iface != ir.IfaceAny {
		// kube-proxy's "-i cbr0" or "-i veth+"; the name is one of
		// ir.IfaceNameProblem's, which needs no quoting.
		name := g.rs.Node.LocalIface
		if g.rs.Node.LocalIfacePrefix {
			name += "+"
		}
		if m.Iface == ir.IfaceNotLocal {
			tail = append(tail, "!")
		}
		tail = append(tail, "-i", name)
	}
	if m.Affinity != "" {
		tail = append(tail, "-m", "recent", "--name", g.recent[m.Affinity], "--rcheck", "--seconds", g.seconds[m.Affinity], "--reap")
	}
	if len(srcs) == 0 {
		return []string{strings.Join(slices.Concat(head, tail), " ")}, nil
	}
	alts := make([]string, len(srcs))
	for i, s := range srcs {
		alts[i] = strings.Join(slices.Concat(head, []string{"-s", s}, tail), " ")
	}
	return alts, nil
}

// iptNoMatch is the alternatives of a match without conditions (shared:
// callers must not modify it).
var iptNoMatch = []string{""}

// ruleComment returns the comment of a rule of c: the rule's own comment
// (prefixed with the Service when it does not name it), else the Service,
// with " -> ENDPOINT" when the rule picks an endpoint.
func (g *iptGen) ruleComment(c *ir.Chain, own, endpoint string) iptText {
	svc := c.Service
	switch {
	case own != "" && (svc == "" || strings.Contains(own, svc)):
		return iptText{a: own}
	case own != "":
		return iptText{svc, " ", own}
	case endpoint != "":
		// TrimSpace can only cut where svc starts or endpoint ends.
		if svc != "" && svc[0] > ' ' && svc[0] < utf8.RuneSelf && endpoint[len(endpoint)-1] > ' ' && endpoint[len(endpoint)-1] < utf8.RuneSelf {
			return iptText{svc, " -> ", endpoint}
		}
		return iptText{a: strings.TrimSpace(svc + " -> " + endpoint)}
	}
	return iptText{a: svc}
}

// iptMatchesAll reports whether m has no condition.
func iptMatchesAll(m *ir.Match) bool {
	return !m.DstAddr.IsValid() && m.DstPort == 0 && !m.SrcAddr.IsValid() && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Iface == ir.IfaceAny && m.Affinity == ""
}

// iptRange spells a prefix as an iprange "first-last".
func iptRange(p netip.Prefix) string {
	p = p.Masked()
	first := p.Addr()
	b := first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return first.String() + "-" + last.String()
}

// iptProto spells a protocol for -p and -m.
func iptProto(p ir.Protocol) string { return strings.ToLower(string(p)) }

// iptEntryComment is "ns/svc:port KIND" (KIND may be empty).
func iptEntryComment(svc, kind string) string {
	return strings.TrimSpace(svc + " " + kind)
}

// iptComment spells "-m comment --comment" with s quoted; an empty s gives
// an empty string (no comment).
func iptComment(s string) string {
	s = iptSanitize(s)
	if s == "" {
		return ""
	}
	if len(s) > iptMaxComment {
		s = strings.ToValidUTF8(s[:iptMaxComment], "")
	}
	return `-m comment --comment "` + s + `"`
}

// iptSanitize makes s safe inside a quoted iptables-restore argument and a
// "#" line: no quotes, backslashes or control characters.
func iptSanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\':
			return '/'
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}
