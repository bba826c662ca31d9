package render

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

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
		len(m.SrcIn) > 0 || m.SrcLocal || m.Affinity != "" {
		return false, nil, &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("firewall chain %q other than one rule dropping sources outside the allowed ranges", c.Name)}
	}
	return false, m.SrcNotIn, nil
}

// chain writes one IR chain into the nat table.
func (g *iptGen) chain(c *ir.Chain) error {
	name := g.names[c.Name]
	if c.Kind == ir.FirewallChain {
		t, ok := g.fwTarget[c.Name]
		if !ok {
			return nil // not used in front of a chain: rendered in filter
		}
		g.nat.declare(name)
		_, allowed, _ := iptFirewallRanges(c)
		svc := g.fwComment[c.Name]
		for _, p := range allowed {
			g.nat.add(name, iptComment(svc+" load balancer IP"), "-s", p.Masked().String(), "-g", g.names[t])
		}
		g.nat.add(name, iptComment("other traffic to "+svc+" will be dropped by "+g.fixed(iptProxyFirewall)))
		return nil
	}
	g.nat.declare(name)
	for i := 0; i < len(c.Rules); i++ {
		r := c.Rules[i]
		// kube-proxy records the affinity on the DNAT rule itself.
		if u, ok := r.Action.(*ir.AffinityUpdate); ok && u != nil && iptMatchesAll(&r.Match) && i+1 < len(c.Rules) {
			next := c.Rules[i+1]
			if d, ok := next.Action.(*ir.DNAT); ok && d != nil && iptMatchesAll(&next.Match) {
				g.nat.add(name, iptComment(g.ruleComment(c, next.Comment, "")), "-m recent --name", g.recent[u.Set], "--set", g.dnat(d))
				i++
				continue
			}
		}
		alts, err := g.match(c, &r.Match)
		if err != nil {
			return fmt.Errorf("chain %q rule %d: %w", c.Name, i, err)
		}
		for _, m := range alts {
			if err := g.action(c, r, m); err != nil {
				return fmt.Errorf("chain %q rule %d: %w", c.Name, i, err)
			}
		}
	}
	return nil
}

// action writes the rules of one IR rule for one match alternative.
func (g *iptGen) action(c *ir.Chain, r ir.Rule, m string) error {
	name := g.names[c.Name]
	add := func(comment string, args ...string) {
		g.nat.add(name, append([]string{iptComment(comment), m}, args...)...)
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
		t, err := g.target(a.Chain)
		if err != nil {
			return err
		}
		add(g.ruleComment(c, r.Comment, g.endpoint[a.Chain]), "-g", t)
	case *ir.Balance:
		if a == nil {
			return errors.New("nil balance")
		}
		for i, t := range a.Chains {
			name, err := g.target(t)
			if err != nil {
				return err
			}
			if left := len(a.Chains) - i; left > 1 {
				add(g.ruleComment(c, r.Comment, g.endpoint[t]), "-m statistic --mode random --probability", g.probability(left), "-g", name)
			} else {
				add(g.ruleComment(c, r.Comment, g.endpoint[t]), "-g", name)
			}
		}
	case *ir.DNAT:
		if a == nil {
			return errors.New("nil dnat")
		}
		switch {
		case r.Match.DstPort == 0:
			add(g.ruleComment(c, r.Comment, ""), g.dnat(a))
		case c.Protocol == a.Protocol:
			// The match already has "-p": a rule takes one.
			add(g.ruleComment(c, r.Comment, ""), "-j DNAT --to-destination", netip.AddrPortFrom(a.Addr, a.Port).String())
		}
		// Otherwise the protocols differ and no packet matches.
	case *ir.Drop, *ir.Reject:
		return &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("%T in a nat chain", a)}
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}

// probability returns 1/n with 10 decimals, as kube-proxy prints it.
func (g *iptGen) probability(n int) string {
	for len(g.probs) <= n {
		g.probs = append(g.probs, fmt.Sprintf("%0.10f", 1/float64(len(g.probs))))
	}
	return g.probs[n]
}

// dnat spells a DNAT action (it matches only the Service's protocol).
func (g *iptGen) dnat(d *ir.DNAT) string {
	p := iptProto(d.Protocol)
	return "-m " + p + " -p " + p + " -j DNAT --to-destination " + netip.AddrPortFrom(d.Addr, d.Port).String()
}

// match spells a Match as one or more alternative iptables matches (one
// per allowed source prefix), each empty or ending without a space. A
// match that no packet can satisfy gives no alternative.
func (g *iptGen) match(c *ir.Chain, m *ir.Match) ([]string, error) {
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

// ruleComment returns the comment of a rule of c: the rule's own comment
// (prefixed with the Service when it does not name it), else the Service,
// with " -> ENDPOINT" when the rule picks an endpoint.
func (g *iptGen) ruleComment(c *ir.Chain, own, endpoint string) string {
	svc := c.Service
	switch {
	case own != "" && (svc == "" || strings.Contains(own, svc)):
		return own
	case own != "":
		return svc + " " + own
	case endpoint != "":
		return strings.TrimSpace(svc + " -> " + endpoint)
	}
	return svc
}

// iptMatchesAll reports whether m has no condition.
func iptMatchesAll(m *ir.Match) bool {
	return !m.DstAddr.IsValid() && m.DstPort == 0 && !m.SrcAddr.IsValid() && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Affinity == ""
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
