package render

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"kpc/compiler/ir"
	"kpc/render/internal/nftplan"
)

// nftPlan checks a Ruleset for everything the nft spelling relies on and
// prepares what is derived from it: map elements without repeated keys and
// the layout plan (numbered maps, lowering; see package nftplan). lower
// enables the lowering of plain endpoint chains. chains is rs's chain
// index (see chainIndex), or nil to make it here. maps, when not zero, is
// the number of numbered maps of each kind (nftplan.Options.Maps).
func nftPlan(rs *ir.Ruleset, fam nftFamily, lower bool, chains map[string]int, maps int) (*nftTable, error) {
	t := &nftTable{rs: rs, fam: fam, name: rs.Table}
	if err := nftCheckName("table", t.name); err != nil {
		return nil, err
	}
	if rs.MasqMark == 0 {
		return nil, errors.New("masquerade mark is zero")
	}

	t.sets = make(map[string]bool, len(rs.AffinitySets))
	for _, s := range rs.AffinitySets {
		if err := t.checkObjectName("affinity set", s.Name); err != nil {
			return nil, err
		}
		if t.sets[s.Name] {
			return nil, fmt.Errorf("duplicate affinity set %q", s.Name)
		}
		if _, err := nftCheckDuration(s.Timeout); err != nil {
			return nil, fmt.Errorf("affinity set %q: %w", s.Name, err)
		}
		t.sets[s.Name] = true
	}
	// The chains' names are checked with the rest (see checkRest).
	if t.chains = chains; t.chains == nil {
		var err error
		if t.chains, err = chainIndex(rs); err != nil {
			return nil, err
		}
	}

	// The layout plan is made while the rest is checked.
	t.lowering = lower
	type planned struct {
		plan *nftplan.Plan
		err  error
	}
	planc := make(chan planned, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				planc <- planned{err: fmt.Errorf("internal error: %v", v)}
			}
		}()
		planc <- planned{plan: nftplan.New(rs, nftplan.Options{EndpointChains: !lower, Index: t.chains, DroppedAtOnly: true, Maps: maps})}
	}()
	if err := t.checkRest(); err != nil {
		<-planc
		return nil, err
	}
	pl := <-planc
	if pl.err != nil {
		return nil, pl.err
	}
	t.plan = pl.plan
	// Writing needs no lookup by name: the index (55 MB at 50,000 Services
	// x 10 endpoints) is garbage before the text is.
	t.chains = nil
	return t, nil
}

// checkRest checks the Ruleset's entries, addresses, chain names and
// rules, and prepares the deduplicated entries.
func (t *nftTable) checkRest() error {
	rs := t.rs

	var err error
	if t.services, err = t.serviceEntries("service", rs.Services); err != nil {
		return err
	}
	if t.firewall, err = t.serviceEntries("firewall", rs.Firewall); err != nil {
		return err
	}
	if t.noEndpoints, err = t.serviceEntries("no-endpoint", rs.NoEndpoints); err != nil {
		return err
	}
	if t.nodePorts, err = t.nodePortEntries("NodePort", rs.NodePorts); err != nil {
		return err
	}
	if t.noEPNodePorts, err = t.nodePortEntries("no-endpoint NodePort", rs.NoEndpointNodePorts); err != nil {
		return err
	}
	if t.clusterIPs, err = t.addrs("cluster IP", rs.ClusterIPs); err != nil {
		return err
	}
	if !rs.Node.NodePortAllLocal {
		if t.nodePortIPs, err = t.addrs("NodePort address", rs.Node.NodePortAddrs); err != nil {
			return err
		}
	}
	if t.serviceCIDRs, err = t.prefixes("service CIDR", rs.ServiceCIDRs); err != nil {
		return err
	}
	var rbuf [3]ir.Rule
	for _, c := range rs.Chains {
		if err := t.checkObjectName("chain", c.Name); err != nil {
			return err
		}
		rules := c.RulesInto(rbuf[:])
		for j := range rules {
			if err := t.checkRule(c, &rules[j]); err != nil {
				return fmt.Errorf("chain %q rule %d: %w", c.Name, j, err)
			}
		}
	}
	return nil
}

// hasChain reports whether the Ruleset has a chain of that name.
func (t *nftTable) hasChain(name string) bool {
	_, ok := t.chains[name]
	return ok
}

// checkObjectName checks a name that an IR chain or set gives an nft
// object.
func (t *nftTable) checkObjectName(kind, name string) error {
	if err := nftCheckName(kind, name); err != nil {
		return err
	}
	if len(name) <= nftReservedMaxLen && nftReserved[name] || nftDirectReserved(name) ||
		strings.HasPrefix(name, nftplan.ChoiceMapPrefix) || strings.HasPrefix(name, nftplan.EndpointsMapPrefix) {
		return fmt.Errorf("%s name %q is reserved for kpc's fixed layout", kind, name)
	}
	return nil
}

// Bits of nftNameChars: a character that may start a name, and one that
// may follow.
const (
	nftNameFirst = 1 << iota
	nftNameNext
)

// nftNameChars classifies the bytes of names: letters, "_" and "." may
// start a name, digits, "/" and "-" may follow.
var nftNameChars = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '.':
			t[c] = nftNameFirst | nftNameNext
		case c >= '0' && c <= '9', c == '/', c == '-':
			t[c] = nftNameNext
		}
	}
	return t
}()

// nftCheckName checks that name can be written unquoted in nft 1.0.6 (which
// rejects quoted chain names in block syntax) and fits the kernel's limit.
func nftCheckName(kind, name string) error {
	ok := len(name) >= 1 && len(name) <= 255 && nftNameChars[name[0]]&nftNameFirst != 0
	for i := 1; ok && i < len(name); i++ {
		ok = nftNameChars[name[i]] != 0
	}
	if !ok {
		return &UnsupportedError{Backend: "nft", Feature: fmt.Sprintf(
			"%s name %q (names must be 1-255 characters of letters, digits, _ . / -, starting with a letter, _ or .)", kind, name)}
	}
	return nil
}

// checkAddr checks that a is a valid address of the table's family.
func (t *nftTable) checkAddr(what string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("%s: invalid address", what)
	case t.fam.family == ir.IPv4 && !a.Is4():
		return fmt.Errorf("%s %s is not an IPv4 address", what, a)
	case t.fam.family == ir.IPv6 && !a.Is6():
		return fmt.Errorf("%s %s is not an IPv6 address", what, a)
	case a.Zone() != "":
		return fmt.Errorf("%s %s has a zone", what, a)
	}
	return nil
}

// checkTarget checks a dispatch verdict.
func (t *nftTable) checkTarget(what string, tg ir.Target) error {
	n := 0
	if tg.Chain != "" {
		n++
		if !t.hasChain(tg.Chain) {
			return fmt.Errorf("%s: unknown chain %q", what, tg.Chain)
		}
	}
	if tg.Drop {
		n++
	}
	if tg.Reject {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%s: target must be exactly one of chain, drop, reject", what)
	}
	return nil
}

// serviceEntries checks exact-match entries and drops later duplicates of
// a key (the first entry of a key is the one that dispatches).
func (t *nftTable) serviceEntries(kind string, es []ir.ServiceEntry) ([]ir.ServiceEntry, error) {
	type key struct {
		a netip.Addr
		p ir.Protocol
		n uint16
	}
	seen := make(map[key]bool, len(es))
	out := make([]ir.ServiceEntry, 0, len(es))
	for i, e := range es {
		if err := t.checkServiceEntry(e); err != nil {
			return nil, fmt.Errorf("%s entry %d (%s): %w", kind, i, e.Comment, err)
		}
		k := key{e.Addr, e.Protocol, e.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out, nil
}

// checkServiceEntry checks one exact-match entry.
func (t *nftTable) checkServiceEntry(e ir.ServiceEntry) error {
	if err := t.checkAddr("address", e.Addr); err != nil {
		return err
	}
	if err := nftCheckProto("protocol", e.Protocol); err != nil {
		return err
	}
	if e.Port == 0 {
		return errors.New("port 0")
	}
	return t.checkTarget("target", e.Target)
}

// nodePortEntries is serviceEntries for NodePort entries.
func (t *nftTable) nodePortEntries(kind string, es []ir.NodePortEntry) ([]ir.NodePortEntry, error) {
	type key struct {
		p ir.Protocol
		n uint16
	}
	seen := make(map[key]bool, len(es))
	out := make([]ir.NodePortEntry, 0, len(es))
	for i, e := range es {
		err := nftCheckProto("protocol", e.Protocol)
		if err == nil && e.Port == 0 {
			err = errors.New("port 0")
		}
		if err == nil {
			err = t.checkTarget("target", e.Target)
		}
		if err != nil {
			return nil, fmt.Errorf("%s entry %d (%s): %w", kind, i, e.Comment, err)
		}
		k := key{e.Protocol, e.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out, nil
}

// addrs checks addresses of the table's family and drops duplicates.
func (t *nftTable) addrs(kind string, as []netip.Addr) ([]netip.Addr, error) {
	seen := make(map[netip.Addr]bool, len(as))
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if err := t.checkAddr(kind, a); err != nil {
			return nil, err
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// prefixes checks prefixes of the table's family and normalizes them:
// masked, sorted, and without prefixes contained in another.
func (t *nftTable) prefixes(kind string, ps []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if err := t.checkPrefix(kind, p); err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	kept := out[:0]
	for _, p := range out {
		if n := len(kept); n > 0 && kept[n-1].Bits() <= p.Bits() && kept[n-1].Contains(p.Addr()) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// checkPrefix checks that p is a valid prefix of the table's family.
func (t *nftTable) checkPrefix(kind string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("%s: invalid prefix", kind)
	}
	return t.checkAddr(kind, p.Addr())
}

// nftCheckProto checks a Service protocol.
func nftCheckProto(what string, p ir.Protocol) error {
	switch p {
	case ir.TCP, ir.UDP, ir.SCTP:
		return nil
	}
	return fmt.Errorf("%s: unknown protocol %q", what, p)
}

// checkRule checks one rule of chain c. Prefix lists are only checked
// here; they are normalized when spelled.
func (t *nftTable) checkRule(c *ir.Chain, r *ir.Rule) error {
	m := &r.Match
	if m.DstAddr.IsValid() {
		if err := t.checkAddr("destination", m.DstAddr); err != nil {
			return err
		}
	}
	if m.DstPort != 0 {
		if err := nftCheckProto("destination port match", c.Protocol); err != nil {
			return err
		}
	}
	if m.SrcAddr.IsValid() {
		if err := t.checkAddr("source", m.SrcAddr); err != nil {
			return err
		}
	}
	for _, p := range m.SrcIn {
		if err := t.checkPrefix("source range", p); err != nil {
			return err
		}
	}
	for _, p := range m.SrcNotIn {
		if err := t.checkPrefix("excluded source range", p); err != nil {
			return err
		}
	}
	if m.Affinity != "" && !t.sets[m.Affinity] {
		return fmt.Errorf("unknown affinity set %q", m.Affinity)
	}
	if m.Iface != ir.IfaceAny && (m.Iface > ir.IfaceNotLocal || ir.IfaceNameProblem(t.rs.Node.LocalIface, t.rs.Node.LocalIfacePrefix) != "") {
		return fmt.Errorf("interface test without a valid local-traffic interface")
	}
	switch a := r.Action.(type) {
	case *ir.MarkMasq, *ir.Drop, *ir.Reject:
	case *ir.AffinityUpdate:
		if a == nil || !t.sets[a.Set] {
			return fmt.Errorf("affinity update of an unknown set")
		}
	case *ir.Goto:
		// That the target exists is checked by ir.Validate, which Render
		// runs alongside and whose error wins.
		if a == nil {
			return fmt.Errorf("goto an unknown chain")
		}
	case *ir.Balance:
		if a == nil || len(a.Chains) == 0 {
			return fmt.Errorf("balance over no chains")
		}
	case *ir.DNAT:
		if a == nil {
			return fmt.Errorf("nil DNAT")
		}
		if err := t.checkAddr("DNAT", a.Addr); err != nil {
			return err
		}
		if a.Port == 0 {
			return fmt.Errorf("DNAT to port 0")
		}
		if err := nftCheckProto("DNAT", a.Protocol); err != nil {
			return err
		}
	case nil:
		return fmt.Errorf("no action")
	default:
		return &UnsupportedError{Backend: "nft", Feature: fmt.Sprintf("action %T", a)}
	}
	return nil
}

// writeChains writes the IR's chains, except those the lowering removed.
func (t *nftTable) writeChains(buf *bytes.Buffer) {
	var rbuf [3]ir.Rule
	for i, c := range t.rs.Chains {
		if t.plan.DroppedAt(i) {
			continue
		}
		comment := c.Describe()
		if comment == "" {
			comment = c.Service
		}
		if comment != "" {
			buf.WriteString("\t# ")
			nftWriteLineText(buf, comment)
			buf.WriteByte('\n')
		}
		buf.WriteString("\tchain ")
		buf.WriteString(c.Name)
		buf.WriteString(" {\n")
		rules := c.RulesInto(rbuf[:])
		for j := range rules {
			buf.WriteString("\t\t")
			t.spellRule(buf, i, j, &rules[j])
			buf.WriteByte('\n')
		}
		buf.WriteString("\t}\n")
	}
}

// spellRule writes rule r, rule j of chain i (checked by checkRule).
func (t *nftTable) spellRule(buf *bytes.Buffer, i, j int, r *ir.Rule) {
	c := t.rs.Chains[i]
	t.spellMatch(buf, c, &r.Match)
	f := t.fam
	switch a := r.Action.(type) {
	case *ir.MarkMasq:
		buf.WriteString("jump " + nftMarkMasqChain)
	case *ir.AffinityUpdate:
		buf.WriteString("update @")
		buf.WriteString(a.Set)
		buf.WriteString(" { ")
		buf.WriteString(f.l3)
		buf.WriteString(" saddr }")
	case *ir.Goto:
		buf.WriteString("goto ")
		buf.WriteString(a.Chain)
	case *ir.Balance:
		b := t.plan.Balances[nftplan.RuleRef{Chain: i, Rule: j}]
		if b.Lowered {
			buf.WriteString("meta l4proto ")
			buf.WriteString(nftProto(b.Protocol))
			buf.WriteString(" dnat ")
			buf.WriteString(f.l3)
			buf.WriteString(" to ")
		}
		buf.WriteString("numgen random mod ")
		nftWriteUint(buf, uint64(len(a.Chains)))
		if b.Slot.Offset != 0 {
			buf.WriteString(" offset ")
			nftWriteUint(buf, uint64(b.Slot.Offset))
		}
		if b.Lowered {
			buf.WriteString(" map @" + nftplan.EndpointsMapPrefix)
		} else {
			buf.WriteString(" vmap @" + nftplan.ChoiceMapPrefix)
		}
		nftWriteUint(buf, uint64(b.Slot.Map))
	case *ir.DNAT:
		buf.WriteString("meta l4proto ")
		buf.WriteString(nftProto(a.Protocol))
		buf.WriteString(" dnat to ")
		nftWriteAddrPort(buf, a.Addr, a.Port)
	case *ir.Drop:
		buf.WriteString("drop")
	case *ir.Reject:
		buf.WriteString("reject")
	}
	if r.Comment != "" {
		buf.WriteString(" comment ")
		nftWriteQuoted(buf, r.Comment)
	}
}

// spellMatch writes the conditions of m, each followed by a space.
func (t *nftTable) spellMatch(buf *bytes.Buffer, c *ir.Chain, m *ir.Match) {
	l3 := t.fam.l3
	if m.DstAddr.IsValid() {
		buf.WriteString(l3)
		buf.WriteString(" daddr ")
		nftWriteAddr(buf, m.DstAddr)
		buf.WriteByte(' ')
	}
	if m.DstPort != 0 {
		buf.WriteString(nftProto(c.Protocol))
		buf.WriteString(" dport ")
		nftWriteUint(buf, uint64(m.DstPort))
		buf.WriteByte(' ')
	}
	if m.SrcAddr.IsValid() {
		buf.WriteString(l3)
		buf.WriteString(" saddr ")
		nftWriteAddr(buf, m.SrcAddr)
		buf.WriteByte(' ')
	}
	if len(m.SrcIn) > 0 {
		buf.WriteString(l3)
		buf.WriteString(" saddr ")
		t.writePrefixes(buf, m.SrcIn)
		buf.WriteByte(' ')
	}
	if len(m.SrcNotIn) > 0 {
		buf.WriteString(l3)
		buf.WriteString(" saddr != ")
		t.writePrefixes(buf, m.SrcNotIn)
		buf.WriteByte(' ')
	}
	if m.SrcLocal {
		buf.WriteString("fib saddr type local ")
	}
	if m.Iface != ir.IfaceAny {
		nftWriteIface(buf, &t.rs.Node, m.Iface)
	}
	if m.Affinity != "" {
		buf.WriteString(l3)
		buf.WriteString(" saddr @")
		buf.WriteString(m.Affinity)
		buf.WriteByte(' ')
	}
}

// nftWriteIface writes the interface test it of node n, followed by a
// space: iifname "cbr0", iifname != "cbr0", or iifname "veth*" for a
// prefix. kube-proxy matches a bridge with "iif", which looks the
// interface up when the rule is loaded and fails when it does not exist
// yet; iifname compares the name of every packet's interface, which is the
// same test of the same packets and loads before the bridge exists.
// The name is one of ir.IfaceNameProblem's, which needs no escape.
func nftWriteIface(buf *bytes.Buffer, n *ir.Node, it ir.IfaceTest) {
	buf.WriteString("iifname ")
	if it == ir.IfaceNotLocal {
		buf.WriteString("!= ")
	}
	buf.WriteByte('"')
	buf.WriteString(n.LocalIfacePattern())
	buf.WriteString(`" `)
}

// writePrefixes writes nftPrefixes of the normalized prefixes ps (checked
// by checkRule).
func (t *nftTable) writePrefixes(buf *bytes.Buffer, ps []netip.Prefix) {
	if len(ps) == 1 {
		// One prefix normalizes to itself, masked.
		nftWritePrefix(buf, ps[0].Masked())
		return
	}
	norm, _ := t.prefixes("", ps)
	buf.WriteString(nftPrefixes(norm))
}

// nftPrefixes spells normalized prefixes (see prefixes) as one value or an
// anonymous set. nft merges adjacent intervals of an anonymous set, and a
// set that merges into one interval lists as "{ 10.0.0.0/15 }" but loads
// back as a plain value, so such a list is spelled as that one value here,
// which keeps the kernel's listing stable when it is loaded again.
func nftPrefixes(ps []netip.Prefix) string {
	if len(ps) == 1 {
		return ps[0].String()
	}
	if one, ok := nftOneInterval(ps); ok {
		return one
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// nftOneInterval reports whether sorted, non-overlapping prefixes cover one
// contiguous range, and spells it as a prefix or a range.
func nftOneInterval(ps []netip.Prefix) (string, bool) {
	first := ps[0].Addr()
	last := nftLastAddr(ps[0])
	for _, p := range ps[1:] {
		next := last.Next()
		if !next.IsValid() || p.Addr() != next {
			return "", false
		}
		last = nftLastAddr(p)
	}
	for bits := 0; bits <= first.BitLen(); bits++ {
		if p := netip.PrefixFrom(first, bits); p.Masked().Addr() == first && nftLastAddr(p) == last {
			return p.String(), true
		}
	}
	return first.String() + "-" + last.String(), true
}

// nftLastAddr returns the last address of a masked prefix.
func nftLastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nftProto spells a protocol as nft's inet_proto keyword.
func nftProto(p ir.Protocol) string {
	switch p {
	case ir.TCP:
		return "tcp"
	case ir.UDP:
		return "udp"
	case ir.SCTP:
		return "sctp"
	}
	return strings.ToLower(string(p))
}

// nftCheckDuration spells an affinity timeout in whole seconds or, when
// that is not exact, whole milliseconds (the kernel's granularity).
func nftCheckDuration(d time.Duration) (string, error) {
	switch {
	case d <= 0:
		return "", fmt.Errorf("timeout %v is not positive", d)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second), nil
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond), nil
	}
	return "", &UnsupportedError{Backend: "nft", Feature: fmt.Sprintf("timeout %v (finer than a millisecond)", d)}
}

// nftDuration is nftCheckDuration for a checked duration.
func nftDuration(d time.Duration) string {
	s, _ := nftCheckDuration(d)
	return s
}

// nftCommentMax is nft's limit on comment length, in bytes.
const nftCommentMax = 128

// nftQuote spells s as an nft quoted string: nft has no escapes, so double
// quotes become single quotes and control characters spaces, and the text
// is cut to nft's comment limit at a character boundary.
func nftQuote(s string) string {
	s = strings.ReplaceAll(nftLineText(s), `"`, "'")
	if len(s) > nftCommentMax {
		n := nftCommentMax
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return `"` + s + `"`
}

// nftLineText makes s safe for one line of the script: valid UTF-8 without
// control characters.
func nftLineText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
