package ir

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxNameLen is the longest chain or set name a Ruleset may use (the nftables
// limit, NFT_NAME_MAXLEN - 1).
const MaxNameLen = 255

// Validate checks the invariants every renderer relies on: the family is
// known and every address and prefix belongs to it; chain and set names are
// non-empty, unique and at most MaxNameLen bytes; every Goto, Balance and
// dispatch Target names an existing chain and no goto path loops; every
// Balance is non-empty; every affinity set a rule uses exists; dispatch keys
// are unique and have a valid protocol and a non-zero port; NoEndpoints
// targets only drop or reject. It returns nil or an error listing every
// violation.
func (rs *Ruleset) Validate() error { return rs.validate(nil) }

// validate is Validate with the chain index given (see
// Program.ValidateWith), or built when chains is nil.
func (rs *Ruleset) validate(chains map[string]int) error {
	if rs == nil {
		return errors.New("nil ruleset")
	}
	if len(chains) != len(rs.Chains) {
		chains = nil // not an entry per chain: made here
	}
	v := &validator{rs: rs, chains: chains}
	v.check()
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("ruleset %s: %w", rs.Family, errors.Join(v.errs...))
}

// Validate checks every Ruleset (see Ruleset.Validate) and that the
// Rulesets have distinct families, IPv4 first.
func (p *Program) Validate() error { return p.ValidateWith(nil) }

// ValidateWith is Validate for a caller that has indexed the chains
// already, as a renderer does: chains[i], when not nil, maps the name of
// every chain of p.Rulesets[i] to its position in Chains, and that Ruleset
// has no nil chain and no two chains of one name. ValidateWith trusts such
// an index instead of building its own; it builds a nil or missing index,
// and one without an entry per chain.
func (p *Program) ValidateWith(chains []map[string]int) error {
	if p == nil {
		return errors.New("nil program")
	}
	var errs []error
	seen := map[Family]bool{}
	for i, rs := range p.Rulesets {
		if rs == nil {
			errs = append(errs, fmt.Errorf("ruleset %d is nil", i))
			continue
		}
		if seen[rs.Family] {
			errs = append(errs, fmt.Errorf("ruleset %d: duplicate family %s", i, rs.Family))
		}
		seen[rs.Family] = true
		if i > 0 && p.Rulesets[i-1] != nil && p.Rulesets[i-1].Family > rs.Family {
			errs = append(errs, fmt.Errorf("ruleset %d: %s after %s", i, rs.Family, p.Rulesets[i-1].Family))
		}
		var index map[string]int
		if i < len(chains) {
			index = chains[i]
		}
		if err := rs.validate(index); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validator collects the violations of one Ruleset. Its checks take a fast
// path that allocates nothing and builds no message; only an entry or rule
// that fails it is checked again by the code that spells the errors.
type validator struct {
	rs   *Ruleset
	errs []error
	// chains maps a chain name to its index in rs.Chains (the last of
	// duplicates). When the caller gives it, it is trusted (see
	// Program.ValidateWith).
	chains map[string]int
	sets   map[string]bool
	// edges[start[i]:start[i+1]] are the indexes of the chains that the
	// Goto and Balance rules of chain i name, in rule order (found by
	// checkChain for checkLoops).
	edges []int32
	start []int32
	// dupChains: two chains have the same name.
	dupChains bool
}

// hasChain reports whether a chain of that name exists.
func (v *validator) hasChain(name string) bool {
	_, ok := v.chains[name]
	return ok
}

func (v *validator) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) check() {
	rs := v.rs
	if rs.Family != IPv4 && rs.Family != IPv6 {
		v.errorf("unknown family %d", rs.Family)
		return
	}
	if rs.Table == "" {
		v.errorf("empty table name")
	}
	if rs.MasqMark == 0 {
		v.errorf("masquerade mark is zero")
	}
	v.checkNode()
	v.checkNames()
	v.checkServiceEntries("services", rs.Services, false)
	v.checkServiceEntries("firewall", rs.Firewall, false)
	v.checkServiceEntries("no-endpoints", rs.NoEndpoints, true)
	v.checkNodePortEntries("nodeports", rs.NodePorts, false)
	v.checkNodePortEntries("no-endpoint-nodeports", rs.NoEndpointNodePorts, true)
	for _, a := range rs.ClusterIPs {
		v.addr("cluster IPs", a)
	}
	for _, p := range rs.ServiceCIDRs {
		v.prefix("service CIDRs", p)
	}
	seenHC := map[uint16]bool{}
	for _, p := range rs.HealthCheckNodePorts {
		if p == 0 {
			v.errorf("health check nodeports: port 0")
		}
		if seenHC[p] {
			v.errorf("health check nodeports: duplicate %d", p)
		}
		seenHC[p] = true
	}
	v.start = make([]int32, len(rs.Chains)+1)
	for i, c := range rs.Chains {
		v.start[i] = int32(len(v.edges))
		if c != nil {
			v.checkChain(c)
		}
	}
	v.start[len(rs.Chains)] = int32(len(v.edges))
	v.checkLoops()
}

func (v *validator) checkNode() {
	n := &v.rs.Node
	for _, a := range n.IPs {
		v.addr("node IPs", a)
	}
	for _, a := range n.NodePortAddrs {
		v.addr("nodeport addresses", a)
	}
	for _, p := range n.PodCIDRs {
		v.prefix("pod CIDRs", p)
	}
	if n.LocalIface != "" && len(n.PodCIDRs) > 0 {
		v.errorf("node has both pod CIDRs and a local-traffic interface")
	}
	if why := IfaceNameProblem(n.LocalIface, n.LocalIfacePrefix); n.LocalIface != "" && why != "" {
		v.errorf("local-traffic interface %q: %s", n.LocalIface, why)
	}
	if n.LocalhostNodePorts && v.rs.Family != IPv4 {
		v.errorf("localhost nodeports on %s", v.rs.Family)
	}
}

func (v *validator) checkNames() {
	if v.chains != nil {
		// An index from the caller: no duplicate.
		for i, c := range v.rs.Chains {
			if c == nil {
				v.errorf("chain %d is nil", i)
				continue
			}
			v.name("chain", c.Name)
		}
	} else {
		v.chains = make(map[string]int, len(v.rs.Chains))
		for i, c := range v.rs.Chains {
			if c == nil {
				v.errorf("chain %d is nil", i)
				continue
			}
			v.name("chain", c.Name)
			n := len(v.chains)
			if v.chains[c.Name] = i; len(v.chains) == n {
				v.errorf("duplicate chain %q", c.Name)
				v.dupChains = true
			}
		}
	}
	v.sets = make(map[string]bool, len(v.rs.AffinitySets))
	for _, s := range v.rs.AffinitySets {
		v.name("affinity set", s.Name)
		if v.sets[s.Name] {
			v.errorf("duplicate affinity set %q", s.Name)
		}
		if _, clash := v.chains[s.Name]; clash {
			v.errorf("affinity set %q has the name of a chain", s.Name)
		}
		if s.Timeout <= 0 {
			v.errorf("affinity set %q: timeout %v", s.Name, s.Timeout)
		}
		v.sets[s.Name] = true
	}
}

func (v *validator) name(what, name string) {
	if name != "" && len(name) <= MaxNameLen {
		return
	}
	switch {
	case name == "":
		v.errorf("%s with empty name", what)
	case len(name) > MaxNameLen:
		v.errorf("%s %q: name is %d bytes, limit %d", what, name, len(name), MaxNameLen)
	}
}

// addrOK is the fast path of addr.
func (v *validator) addrOK(a netip.Addr) bool {
	return a.IsValid() && familyOfAddr(a) == v.rs.Family
}

// prefixOK is the fast path of prefix.
func (v *validator) prefixOK(p netip.Prefix) bool {
	return p.IsValid() && familyOfAddr(p.Addr()) == v.rs.Family
}

func (v *validator) addr(where string, a netip.Addr) {
	if !a.IsValid() {
		v.errorf("%s: invalid address", where)
		return
	}
	if familyOfAddr(a) != v.rs.Family {
		v.errorf("%s: %s is not %s", where, a, v.rs.Family)
	}
}

func (v *validator) prefix(where string, p netip.Prefix) {
	if !p.IsValid() {
		v.errorf("%s: invalid prefix", where)
		return
	}
	if familyOfAddr(p.Addr()) != v.rs.Family {
		v.errorf("%s: %s is not %s", where, p, v.rs.Family)
	}
}

func familyOfAddr(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

func validProtocol(p Protocol) bool {
	return p == TCP || p == UDP || p == SCTP
}

// targetOK is the fast path of target.
func (v *validator) targetOK(t Target, verdictOnly bool) bool {
	switch {
	case t.Chain != "":
		return !t.Drop && !t.Reject && !verdictOnly && v.hasChain(t.Chain)
	case t.Drop:
		return !t.Reject
	}
	return t.Reject
}

func (v *validator) target(where string, t Target, verdictOnly bool) {
	n := 0
	if t.Chain != "" {
		n++
	}
	if t.Drop {
		n++
	}
	if t.Reject {
		n++
	}
	if n != 1 {
		v.errorf("%s: target must set exactly one of chain, drop, reject", where)
		return
	}
	if t.Chain != "" {
		if verdictOnly {
			v.errorf("%s: target must be drop or reject, not chain %q", where, t.Chain)
			return
		}
		if !v.hasChain(t.Chain) {
			v.errorf("%s: no such chain %q", where, t.Chain)
		}
	}
}

type entryKey struct {
	addr  netip.Addr
	proto Protocol
	port  uint16
}

func (v *validator) checkServiceEntries(table string, es []ServiceEntry, verdictOnly bool) {
	seen := make(map[entryKey]bool, len(es))
	for _, e := range es {
		k := entryKey{e.Addr, e.Protocol, e.Port}
		if v.addrOK(e.Addr) && validProtocol(e.Protocol) && e.Port != 0 && !seen[k] && v.targetOK(e.Target, verdictOnly) {
			seen[k] = true
			continue
		}
		where := fmt.Sprintf("%s %s %s %d", table, e.Addr, e.Protocol, e.Port)
		v.addr(table, e.Addr)
		v.keyProblems(where, e.Protocol, e.Port, seen[k])
		seen[k] = true
		v.target(where, e.Target, verdictOnly)
	}
}

// keyProblems reports what is wrong with a dispatch key's protocol and
// port, and a key seen before.
func (v *validator) keyProblems(where string, p Protocol, port uint16, dup bool) {
	if !validProtocol(p) {
		v.errorf("%s: unknown protocol", where)
	}
	if port == 0 {
		v.errorf("%s: port 0", where)
	}
	if dup {
		v.errorf("%s: duplicate key", where)
	}
}

func (v *validator) checkNodePortEntries(table string, es []NodePortEntry, verdictOnly bool) {
	seen := make(map[entryKey]bool, len(es))
	for _, e := range es {
		k := entryKey{proto: e.Protocol, port: e.Port}
		if validProtocol(e.Protocol) && e.Port != 0 && !seen[k] && v.targetOK(e.Target, verdictOnly) {
			seen[k] = true
			continue
		}
		where := fmt.Sprintf("%s %s %d", table, e.Protocol, e.Port)
		v.keyProblems(where, e.Protocol, e.Port, seen[k])
		seen[k] = true
		v.target(where, e.Target, verdictOnly)
	}
}

func (v *validator) checkChain(c *Chain) {
	if c.Kind < ServiceChain || c.Kind > EndpointChain {
		v.errorf("chain %q: unknown kind %d", c.Name, c.Kind)
	}
	if e := c.Endpoint; e != nil {
		v.checkEndpoint(c, e)
		return
	}
	for i := range c.Rules {
		// actionOK first: it records the rule's edges.
		if r := &c.Rules[i]; !v.actionOK(r.Action) || !v.matchOK(&r.Match) {
			v.checkRule(c, c.Rules, i)
		}
	}
}

// checkEndpoint checks compact endpoint chain c, whose target is e: its
// expanded rules have no edges.
func (v *validator) checkEndpoint(c *Chain, e *EndpointTarget) {
	if c.Kind != EndpointChain || len(c.Rules) > 0 {
		v.errorf("chain %q: a compact endpoint chain is of kind endpoint and has no rules", c.Name)
	}
	if v.addrOK(e.DNAT.Addr) && e.DNAT.Port != 0 && validProtocol(e.DNAT.Protocol) &&
		(e.Update.Set == "" || v.sets[e.Update.Set]) {
		return
	}
	rules := e.AppendRules(nil)
	for i := range rules {
		v.checkRule(c, rules, i)
	}
}

// edge records an edge to the chain called name, if there is one, and
// reports whether there is.
func (v *validator) edge(name string) bool {
	k, ok := v.chains[name]
	if ok {
		v.edges = append(v.edges, int32(k))
	}
	return ok
}

// matchOK is the fast path of checkMatch.
func (v *validator) matchOK(m *Match) bool {
	if m.DstAddr.IsValid() && !v.addrOK(m.DstAddr) || m.SrcAddr.IsValid() && !v.addrOK(m.SrcAddr) {
		return false
	}
	for _, p := range m.SrcIn {
		if !v.prefixOK(p) {
			return false
		}
	}
	for _, p := range m.SrcNotIn {
		if !v.prefixOK(p) {
			return false
		}
	}
	if m.Iface != IfaceAny && (m.Iface > IfaceNotLocal || v.rs.Node.LocalIface == "") {
		return false
	}
	return m.Affinity == "" || v.sets[m.Affinity]
}

// actionOK is the fast path of the action checks of checkRule. It records
// the edges of a Goto or Balance (see validator.edges).
func (v *validator) actionOK(a Action) bool {
	switch a := a.(type) {
	case *MarkMasq, *Drop, *Reject:
		return true
	case *AffinityUpdate:
		return a != nil && v.sets[a.Set]
	case *Goto:
		return a != nil && v.edge(a.Chain)
	case *Balance:
		if a == nil || len(a.Chains) == 0 {
			return false
		}
		ok := true
		for _, t := range a.Chains {
			if !v.edge(t) {
				ok = false
			}
		}
		return ok
	case *DNAT:
		return a != nil && v.addrOK(a.Addr) && a.Port != 0 && validProtocol(a.Protocol)
	}
	return false
}

// checkRule reports every violation of rule i of c, whose rules are rules.
func (v *validator) checkRule(c *Chain, rules []Rule, i int) {
	r := rules[i]
	where := fmt.Sprintf("chain %q rule %d", c.Name, i)
	v.checkMatch(where, &r.Match)
	switch a := r.Action.(type) {
	case nil:
		v.errorf("%s: nil action", where)
	case *MarkMasq, *Drop, *Reject:
	case *AffinityUpdate:
		if a == nil || !v.sets[a.Set] {
			v.errorf("%s: update of unknown affinity set", where)
		}
	case *Goto:
		if a == nil {
			v.errorf("%s: nil goto", where)
		} else if !v.hasChain(a.Chain) {
			v.errorf("%s: goto: no such chain %q", where, a.Chain)
		}
	case *Balance:
		if a == nil || len(a.Chains) == 0 {
			v.errorf("%s: empty balance", where)
			return
		}
		for _, t := range a.Chains {
			if !v.hasChain(t) {
				v.errorf("%s: balance: no such chain %q", where, t)
			}
		}
	case *DNAT:
		if a == nil {
			v.errorf("%s: nil dnat", where)
			return
		}
		v.addr(where+": dnat", a.Addr)
		if a.Port == 0 {
			v.errorf("%s: dnat to port 0", where)
		}
		if !validProtocol(a.Protocol) {
			v.errorf("%s: dnat: unknown protocol", where)
		}
	default:
		v.errorf("%s: unknown action %T", where, a)
	}
}

func (v *validator) checkMatch(where string, m *Match) {
	if m.DstAddr.IsValid() {
		v.addr(where+": daddr", m.DstAddr)
	}
	if m.SrcAddr.IsValid() {
		v.addr(where+": saddr", m.SrcAddr)
	}
	for _, p := range m.SrcIn {
		v.prefix(where+": saddr in", p)
	}
	for _, p := range m.SrcNotIn {
		v.prefix(where+": saddr not in", p)
	}
	if m.Affinity != "" && !v.sets[m.Affinity] {
		v.errorf("%s: unknown affinity set %q", where, m.Affinity)
	}
	switch {
	case m.Iface > IfaceNotLocal:
		v.errorf("%s: unknown interface test %d", where, m.Iface)
	case m.Iface != IfaceAny && v.rs.Node.LocalIface == "":
		v.errorf("%s: interface test without the node's local-traffic interface", where)
	}
}

// MaxIfaceName is the longest name of a Linux network interface
// (IFNAMSIZ less the terminating NUL).
const MaxIfaceName = 15

// IfaceNameProblem says why s cannot be a Node's LocalIface, or "": it is
// 1 to 15 bytes of letters, digits and "-_.@", which every renderer (nft's
// quoted iifname, iptables' "-i") spells as is, and as a prefix (of
// InterfaceNamePrefix) at most 14, since the renderers add a "*" or "+"
// and nft and iptables take 15 characters at most. Linux allows other
// characters too, which kube-proxy's own rules would not spell safely
// either.
func IfaceNameProblem(s string, prefix bool) string {
	if s == "" {
		return "an interface name is not empty"
	}
	if len(s) > MaxIfaceName {
		return fmt.Sprintf("an interface name has at most %d bytes, so no rule can match it (kube-proxy's would not load)", MaxIfaceName)
	}
	if prefix && len(s) == MaxIfaceName {
		return fmt.Sprintf("a prefix of interface names has at most %d bytes: nft and iptables spell it with a wildcard (%s* and %s+), in %d characters at most (kube-proxy's rules would not load)",
			MaxIfaceName-1, s, s, MaxIfaceName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return fmt.Sprintf(`kpc matches interface names of letters, digits and "-_.@" only, not %q (a limit of kpc's, which writes every name unquoted)`, r)
		}
	}
	return ""
}

// checkLoops reports a chain that can reach itself through Goto or Balance
// (the first one found, in chain order, depth first).
func (v *validator) checkLoops() {
	const (
		unvisited = iota
		active
		done
	)
	chains := v.rs.Chains
	state := make([]uint8, len(chains))
	reported := false
	var visit func(i int32)
	visit = func(i int32) {
		if reported {
			return
		}
		switch state[i] {
		case active:
			v.errorf("chain %q: goto loop", chains[i].Name)
			reported = true
			return
		case done:
			return
		}
		state[i] = active
		for _, k := range v.edges[v.start[i]:v.start[i+1]] {
			visit(k)
		}
		state[i] = done
	}
	for i, c := range chains {
		if c == nil {
			continue
		}
		// A name stands for its last chain; without repeated names, that
		// is the chain itself.
		k := int32(i)
		if v.dupChains {
			k = int32(v.chains[c.Name])
		}
		visit(k)
	}
}
