// Package nftplan makes the layout decisions of kpc's nftables tables that
// go beyond spelling the IR one object at a time: where each uniform choice
// (ir.Balance) puts its elements, which Balances are lowered to a DNAT
// through a data map, and which endpoint chains are then left out. Both the
// nft text renderer and the netlink renderer build their tables from one
// Plan, so they create the same kernel objects.
//
// # Numbered maps
//
// Each Balance of N chains gets keys B..B+N-1 of one numbered map
// (endpoint-choice-K for chains, endpoints-K for lowered DNAT destinations),
// keyed by "numgen random mod N offset B". A map holds about the square
// root of all the Balances' elements. The kernel walks a map's elements each
// time a rule of another chain binds it and walks its bindings each time an
// element is added, so one map for all Balances makes a load quadratic; it
// also finds a set by name with a linear search for every rule that names
// one, so many tiny maps are slow too.
//
// # Lowering plain endpoint chains
//
// A plain endpoint chain is, exactly, an optional hairpin rule "source S:
// MarkMasq" followed by an unconditional DNAT to A:P over protocol X. A
// Balance whose chains are all plain, over one protocol X, in a chain that
// only packets of protocol X can reach (from the dispatch entries, through
// Goto and Balance), is lowered: it becomes one DNAT to the destination
// that numgen picks in an endpoints-K map, and the hairpin marks move to
// postrouting, where a connection that was DNATed and whose (source,
// destination, protocol, destination port) is in hairpin-endpoints is
// marked for masquerade. That set holds (S, A, X, P) for every lowered
// hairpin rule. This keeps every packet's fate only if all the chains of
// the Ruleset that DNAT to (A, X, P) mark the same sources, so a
// destination whose chains disagree, or do anything else before their
// DNAT, blocks the lowering of every Balance that reaches it. Endpoint
// chains that nothing else references (no dispatch entry, Goto or
// unlowered Balance) are left out.
package nftplan

import (
	"net/netip"

	"kpc/compiler/ir"
)

// Names of the objects a Plan adds to a table. Map K of a kind is the
// prefix followed by K in decimal.
const (
	ChoiceMapPrefix    = "endpoint-choice-"
	EndpointsMapPrefix = "endpoints-"
	HairpinSet         = "hairpin-endpoints"
)

// MinMapSize is the smallest number of elements a numbered map is sized for.
const MinMapSize = 64

// Options select the layout.
type Options struct {
	// EndpointChains disables the lowering: every Balance goes through an
	// endpoint-choice map and every chain is kept.
	EndpointChains bool
}

// RuleRef names rule Rule of chain Chain by their indexes in the Ruleset.
type RuleRef struct{ Chain, Rule int }

// Slot is where a Balance's elements are: map number and first key.
type Slot struct {
	Map    int
	Offset uint32
}

// Balance is the plan for one Balance rule.
type Balance struct {
	Slot Slot
	// N is the number of elements (the Balance's chains, repeats
	// included): the numgen modulus.
	N int
	// Lowered: the Balance is a DNAT through endpoints map Slot.Map, for
	// packets of Protocol; otherwise a vmap through endpoint-choice map
	// Slot.Map.
	Lowered  bool
	Protocol ir.Protocol
}

// ChoiceElem is one element of an endpoint-choice map: Key goes to Chain.
type ChoiceElem struct {
	Key   uint32
	Chain string
}

// EndpointElem is one element of an endpoints map: Key maps to Addr:Port.
type EndpointElem struct {
	Key  uint32
	Addr netip.Addr
	Port uint16
}

// HairpinElem is one element of the hairpin-endpoints set.
type HairpinElem struct {
	Src, Dst netip.Addr
	Protocol ir.Protocol
	Port     uint16
}

// Plan is the layout of one Ruleset.
type Plan struct {
	// Balances holds every Balance rule of every kept chain.
	Balances map[RuleRef]Balance
	// Dropped names the chains left out.
	Dropped map[string]bool
	// ChoiceMaps[K] and EndpointMaps[K] are the elements of
	// endpoint-choice-K and endpoints-K, in key order.
	ChoiceMaps   [][]ChoiceElem
	EndpointMaps [][]EndpointElem
	// Hairpin holds the elements of hairpin-endpoints, without repeats, in
	// the order of the lowered Balances. It is nil when nothing is lowered;
	// the set and its postrouting rule exist whenever lowering is enabled.
	Hairpin []HairpinElem
}

// shards hands out slots in numbered maps of a fixed size. A Balance never
// spans two maps, so a larger one gets a map of its own.
type shards struct {
	size int
	n    int
	used uint32
}

func newShards(total int) shards {
	size := MinMapSize
	for size*size < total {
		size *= 2
	}
	return shards{size: size}
}

func (s *shards) add(k int) Slot {
	if s.n == 0 || s.used > 0 && int(s.used)+k > s.size {
		s.n++
		s.used = 0
	}
	slot := Slot{s.n - 1, s.used}
	s.used += uint32(k)
	return slot
}

// New plans rs, which should be valid (see ir.Ruleset.Validate); names that
// do not resolve are treated as chains that cannot be lowered.
func New(rs *ir.Ruleset, o Options) *Plan {
	p := &Plan{Balances: map[RuleRef]Balance{}, Dropped: map[string]bool{}}
	if rs == nil {
		return p
	}
	total := 0
	for _, c := range rs.Chains {
		if c == nil {
			continue
		}
		for _, r := range c.Rules {
			if b, ok := r.Action.(*ir.Balance); ok && b != nil {
				total += len(b.Chains)
			}
		}
	}
	if !o.EndpointChains {
		p.lower(rs, total)
	}
	choice := newShards(total)
	for i, c := range rs.Chains {
		if c == nil || p.Dropped[c.Name] {
			continue
		}
		for j, r := range c.Rules {
			b, ok := r.Action.(*ir.Balance)
			ref := RuleRef{i, j}
			if _, lowered := p.Balances[ref]; !ok || b == nil || lowered {
				continue
			}
			slot := choice.add(len(b.Chains))
			p.Balances[ref] = Balance{Slot: slot, N: len(b.Chains)}
			if slot.Map == len(p.ChoiceMaps) {
				p.ChoiceMaps = append(p.ChoiceMaps, nil)
			}
			for k, e := range b.Chains {
				p.ChoiceMaps[slot.Map] = append(p.ChoiceMaps[slot.Map], ChoiceElem{slot.Offset + uint32(k), e})
			}
		}
	}
	return p
}

// protoBit is a protocol's bit in a reachability mask.
func protoBit(p ir.Protocol) uint8 {
	switch p {
	case ir.TCP:
		return 1
	case ir.UDP:
		return 2
	case ir.SCTP:
		return 4
	}
	return 8
}

// zeroMatch reports whether m matches every packet.
func zeroMatch(m *ir.Match) bool {
	return !m.DstAddr.IsValid() && m.DstPort == 0 && !m.SrcAddr.IsValid() && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Affinity == ""
}

// onlySrcAddr reports whether m matches exactly one source address.
func onlySrcAddr(m *ir.Match) bool {
	return m.SrcAddr.IsValid() && !m.DstAddr.IsValid() && m.DstPort == 0 && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Affinity == ""
}

// plain describes a plain endpoint chain.
type plain struct {
	src  netip.Addr // hairpin source; invalid without a hairpin rule
	dnat *ir.DNAT
}

// plainChain reports whether c is a plain endpoint chain.
func plainChain(c *ir.Chain) (plain, bool) {
	var p plain
	if c == nil {
		return p, false
	}
	rules := c.Rules
	if len(rules) == 2 {
		if _, ok := rules[0].Action.(*ir.MarkMasq); !ok || !onlySrcAddr(&rules[0].Match) {
			return p, false
		}
		p.src = rules[0].Match.SrcAddr
		rules = rules[1:]
	}
	if len(rules) != 1 || !zeroMatch(&rules[0].Match) {
		return p, false
	}
	d, ok := rules[0].Action.(*ir.DNAT)
	if !ok || d == nil {
		return p, false
	}
	p.dnat = d
	return p, true
}

// dnatKey identifies a DNAT destination.
type dnatKey struct {
	addr  netip.Addr
	proto ir.Protocol
	port  uint16
}

// hairpinSig is what the chains DNATing to one destination agree on.
type hairpinSig struct {
	src      netip.Addr
	seen     bool
	conflict bool
}

func (s *hairpinSig) add(src netip.Addr, ok bool) {
	switch {
	case !ok:
		s.conflict = true
	case !s.seen:
		s.seen, s.src = true, src
	case s.src != src:
		s.conflict = true
	}
}

// forTargets calls f with the target chain and protocol of every dispatch
// entry.
func forTargets(rs *ir.Ruleset, f func(chain string, p ir.Protocol)) {
	for _, es := range [][]ir.ServiceEntry{rs.Services, rs.Firewall, rs.NoEndpoints} {
		for _, e := range es {
			if e.Target.Chain != "" {
				f(e.Target.Chain, e.Protocol)
			}
		}
	}
	for _, es := range [][]ir.NodePortEntry{rs.NodePorts, rs.NoEndpointNodePorts} {
		for _, e := range es {
			if e.Target.Chain != "" {
				f(e.Target.Chain, e.Protocol)
			}
		}
	}
}

// reachability returns, per chain index, the protocols of the packets that
// can reach the chain.
func reachability(rs *ir.Ruleset, index map[string]int) []uint8 {
	reach := make([]uint8, len(rs.Chains))
	var work []int
	add := func(to string, bits uint8) {
		k, ok := index[to]
		if ok && reach[k]|bits != reach[k] {
			reach[k] |= bits
			work = append(work, k)
		}
	}
	forTargets(rs, func(chain string, p ir.Protocol) { add(chain, protoBit(p)) })
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		for _, r := range rs.Chains[i].Rules {
			switch a := r.Action.(type) {
			case *ir.Goto:
				if a != nil {
					add(a.Chain, reach[i])
				}
			case *ir.Balance:
				if a != nil {
					for _, e := range a.Chains {
						add(e, reach[i])
					}
				}
			}
		}
	}
	return reach
}

// signatures returns, per DNAT destination, what the chains that DNAT to
// it do before the DNAT.
func signatures(rs *ir.Ruleset) map[dnatKey]*hairpinSig {
	sigs := map[dnatKey]*hairpinSig{}
	for _, c := range rs.Chains {
		if c == nil {
			continue
		}
		var src netip.Addr
		simple := true
		for j := range c.Rules {
			r := &c.Rules[j]
			switch a := r.Action.(type) {
			case *ir.DNAT:
				if a == nil {
					simple = false
					continue
				}
				k := dnatKey{a.Addr, a.Protocol, a.Port}
				s := sigs[k]
				if s == nil {
					s = &hairpinSig{}
					sigs[k] = s
				}
				s.add(src, simple && zeroMatch(&r.Match))
				simple = false
			case *ir.MarkMasq:
				if !onlySrcAddr(&r.Match) || src.IsValid() && src != r.Match.SrcAddr {
					simple = false
				}
				src = r.Match.SrcAddr
			case *ir.AffinityUpdate:
				if !zeroMatch(&r.Match) {
					simple = false
				}
			default:
				simple = false
			}
		}
	}
	return sigs
}

// lower plans the lowered Balances, the endpoints maps, the hairpin set and
// the dropped chains.
func (p *Plan) lower(rs *ir.Ruleset, total int) {
	index := make(map[string]int, len(rs.Chains))
	for i, c := range rs.Chains {
		if c != nil {
			index[c.Name] = i
		}
	}
	reach := reachability(rs, index)
	sigs := signatures(rs)

	maps := newShards(total)
	candidates := map[string]bool{}
	pairSeen := map[HairpinElem]bool{}
	for i, c := range rs.Chains {
		if c == nil {
			continue
		}
		for j, r := range c.Rules {
			b, ok := r.Action.(*ir.Balance)
			if !ok || b == nil || len(b.Chains) == 0 {
				continue
			}
			plains := make([]plain, 0, len(b.Chains))
			for _, e := range b.Chains {
				k, ok := index[e]
				if !ok {
					break
				}
				pl, ok := plainChain(rs.Chains[k])
				if !ok || sigs[dnatKey{pl.dnat.Addr, pl.dnat.Protocol, pl.dnat.Port}].conflict {
					break
				}
				if len(plains) > 0 && pl.dnat.Protocol != plains[0].dnat.Protocol {
					break
				}
				plains = append(plains, pl)
			}
			if len(plains) != len(b.Chains) || reach[i]&^protoBit(plains[0].dnat.Protocol) != 0 {
				continue
			}
			slot := maps.add(len(plains))
			p.Balances[RuleRef{i, j}] = Balance{Slot: slot, N: len(plains), Lowered: true, Protocol: plains[0].dnat.Protocol}
			if slot.Map == len(p.EndpointMaps) {
				p.EndpointMaps = append(p.EndpointMaps, nil)
			}
			for k, pl := range plains {
				p.EndpointMaps[slot.Map] = append(p.EndpointMaps[slot.Map],
					EndpointElem{slot.Offset + uint32(k), pl.dnat.Addr, pl.dnat.Port})
				candidates[b.Chains[k]] = true
				if pl.src.IsValid() {
					e := HairpinElem{pl.src, pl.dnat.Addr, pl.dnat.Protocol, pl.dnat.Port}
					if !pairSeen[e] {
						pairSeen[e] = true
						p.Hairpin = append(p.Hairpin, e)
					}
				}
			}
		}
	}

	// Keep every chain that a dispatch entry or an unlowered rule names.
	// Plain chains name no chain, so leaving them out orphans nothing.
	refs := map[string]bool{}
	forTargets(rs, func(chain string, _ ir.Protocol) { refs[chain] = true })
	for i, c := range rs.Chains {
		if c == nil {
			continue
		}
		for j, r := range c.Rules {
			switch a := r.Action.(type) {
			case *ir.Goto:
				if a != nil {
					refs[a.Chain] = true
				}
			case *ir.Balance:
				if _, lowered := p.Balances[RuleRef{i, j}]; a != nil && !lowered {
					for _, e := range a.Chains {
						refs[e] = true
					}
				}
			}
		}
	}
	for name := range candidates {
		if !refs[name] {
			p.Dropped[name] = true
		}
	}
}
