// Package nftplan makes the layout decisions of kpc's nftables tables that
// go beyond spelling the IR one object at a time: which Services entries
// go straight to a shared chain (the direct layout of package nftdirect),
// where each other uniform choice (ir.Balance) puts its elements, which
// Balances are lowered to a DNAT through a data map, and which chains and
// affinity sets are then left out. Both the nft text renderer and the
// netlink renderer build their tables from one Plan, so they create the
// same kernel objects.
//
// # The direct layout
//
// A Service chain that only Services entries reach, and that only marks
// for masquerade and then chooses among plain endpoint chains (with or
// without session affinity), has no chain of its own: its entries go to a
// chain shared by all entries with the same marks and endpoint count,
// which DNATs through the map service-endpoints keyed by the packet's
// destination, protocol, port and a random bucket (see package nftdirect).
// Its chains, and the endpoint chains and affinity sets only it uses, are
// left out. This is most Services of a cluster; a plain one costs its
// elements and no chain or rule, and the kernel loads large maps in time
// linear in their elements.
//
// # Numbered maps
//
// Each other Balance of N chains gets keys B..B+N-1 of one numbered map
// (endpoint-choice-K for chains, endpoints-K for lowered DNAT destinations),
// keyed by "numgen random mod N offset B". The kernel walks a map's
// elements each time a rule of another chain binds it and walks its
// bindings each time an element is added, so one map for all Balances
// makes a load quadratic; it also finds a set by name with a linear search
// for every rule that names one, so many tiny maps are slow too. There are
// about as many maps as the square root of all these Balances' elements
// (Maps), so a map holds about as many.
//
// A Balance's map and first key are a hash of its chain's name and the
// rule's index, not the next free place, so that they do not depend on the
// other Services of the input: a Service compiled alone gets the slots it
// gets among all the others, given the same number of maps (Options.Maps).
// Keys are spread over the whole 32-bit space, so two Balances of one map
// rarely overlap: about once in 30,000 inputs with 1,000 Balances of 10
// that need a slot (mixed 50,000 Services), once in 90 if all 50,000
// Services need one. The overlapping map's Balances are then placed again,
// in chain order, each at the first hash of its own that is free; such a
// map's slots then depend on the other Services of that map.
//
// # Lowering plain endpoint chains
//
// A plain endpoint chain is, exactly, an optional hairpin rule "source S:
// MarkMasq" followed by an unconditional DNAT to A:P over protocol X. A
// Balance whose chains are all plain, over one protocol X, in a chain that
// only packets of protocol X can reach (from the dispatch entries, through
// Goto and Balance), is lowered: it becomes one DNAT to the destination
// that numgen picks in an endpoints-K map. The hairpin marks of lowered
// and direct endpoint chains move to postrouting, where a connection that
// was DNATed and whose (source, destination) is in hairpin-endpoints is
// marked for masquerade. That set holds (S, A) for every such hairpin
// rule. This keeps every packet's fate only if all the chains of the
// Ruleset that DNAT to address A mark the same source, so an address whose
// chains disagree, or do anything else before their DNAT, blocks the
// lowering of every Balance that reaches it. Endpoint chains that nothing
// else references (no dispatch entry, Goto or unlowered Balance) are left
// out.
package nftplan

import (
	"cmp"
	"net/netip"
	"slices"

	"kpc/compiler/ir"
	"kpc/internal/hashmix"
	"kpc/render/internal/nftdirect"
)

// Names of the objects a Plan adds to a table. Map K of a kind is the
// prefix followed by K in decimal.
const (
	ChoiceMapPrefix    = "endpoint-choice-"
	EndpointsMapPrefix = "endpoints-"
	HairpinSet         = "hairpin-endpoints"
)

// OneMapBelow is the number of Balance elements below which a Ruleset has
// one numbered map of each kind (see Maps).
const OneMapBelow = 4096

// Maps returns the number of numbered maps of each kind for a Ruleset whose
// Balances have total elements in all: one below OneMapBelow, then the
// largest power of two whose square is at most total. It changes only when
// total crosses a power of four.
func Maps(total int) int {
	if total < OneMapBelow {
		return 1
	}
	m := 64
	for 4*m*m <= total {
		m *= 2
	}
	return m
}

// SizedSetMin is the number of elements from which a set or map that kpc
// fills (not one the kernel fills, nor an interval set) declares a size.
const SizedSetMin = 1024

// SetSize returns the size a set or map of n elements that kpc fills
// declares (nft "size", NFTA_SET_DESC_SIZE), or 0 for none. With a size
// the kernel allocates the set's hash table for it at once instead of
// growing it as elements arrive, which takes about a third off the
// kernel's share of a large load. A size also caps the set, so it is
// twice n rounded up to a power of two: an incremental update that stays
// within it keeps the set, and one that needs a different size remakes it.
// Small sets declare none and keep the kernel's resizable default.
func SetSize(n int) uint32 {
	if n < SizedSetMin {
		return 0
	}
	size := uint32(SizedSetMin)
	for int64(size) < 2*int64(n) && size < 1<<30 {
		size <<= 1
	}
	return size
}

// Options select the layout.
type Options struct {
	// EndpointChains disables the lowering: every Balance goes through an
	// endpoint-choice map and every chain is kept.
	EndpointChains bool
	// Index, when not nil, maps the name of every chain of the Ruleset to
	// its index (the last one of a repeated name); New then uses it
	// instead of building its own. New does not modify it.
	Index map[string]int
	// DroppedAtOnly leaves Plan.Dropped empty: the caller asks DroppedAt,
	// and a large Ruleset saves a map of every dropped chain's name.
	DroppedAtOnly bool
	// Maps, when not zero, is the number of numbered maps of each kind,
	// instead of Maps of the Ruleset's Balance elements: a part of a
	// Ruleset planned alone gets the slots it has in the whole.
	Maps int
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

// HairpinElem is one element of the hairpin-endpoints set: a connection
// DNATed to Dst from Src is marked for masquerade.
type HairpinElem struct {
	Src, Dst netip.Addr
}

// Plan is the layout of one Ruleset.
type Plan struct {
	// Balances holds every Balance rule of every kept chain.
	Balances map[RuleRef]Balance
	// Dropped names the chains left out (empty with
	// Options.DroppedAtOnly; see DroppedAt).
	Dropped map[string]bool
	// ChoiceMaps[K] and EndpointMaps[K] are the elements of
	// endpoint-choice-K and endpoints-K, in key order. A map without
	// elements is not part of the table. Both have Maps entries, or none
	// when no Balance needs one.
	ChoiceMaps   [][]ChoiceElem
	EndpointMaps [][]EndpointElem
	// Maps is the number of numbered maps of each kind the slots were
	// hashed into; Total is the number of elements of the Balances that
	// have a slot (those of the direct layout's chains have none), from
	// which Maps follows unless Options.Maps sets it.
	Maps, Total int
	// Hairpin holds the elements of hairpin-endpoints, without repeats:
	// those of the direct layout, then those of the lowered Balances. It
	// is nil when nothing is lowered; the set and its postrouting rule
	// exist whenever lowering is enabled.
	Hairpin []HairpinElem
	// Direct is the direct layout of the Services entries (package
	// nftdirect); nil when lowering is disabled.
	Direct *nftdirect.Result
	// DroppedSets names the affinity sets left out (those only the direct
	// layout's entries used).
	DroppedSets map[string]bool

	// dropped is Dropped by chain index (nil when nothing is dropped).
	dropped []bool
}

// DroppedAt reports whether chain i of the Ruleset is left out: Dropped,
// by index, without hashing the chain's name.
func (p *Plan) DroppedAt(i int) bool {
	return i >= 0 && i < len(p.dropped) && p.dropped[i]
}

// slots hands out the slots of one kind of numbered map (see the package
// documentation): each Balance at a hash of its chain's name and rule
// index. A map's Balances are remembered in the order they were placed,
// so that check can place them again if two overlap.
type slots struct {
	maps   int
	placed [][]placed // by map
}

// placed is a Balance placed in a map: its rule, size and first key.
type placed struct {
	ref    RuleRef
	chain  string
	n      int
	offset uint32
}

func newSlots(maps int) *slots { return &slots{maps: maps, placed: make([][]placed, maps)} }

// slotHash hashes a Balance's identity (chain name, rule index) and the
// attempt number: FNV-1a, then a final mix so that low and high bits are
// both spread.
func slotHash(chain string, rule int, attempt uint32) uint64 {
	h := uint64(hashmix.FNVOffset)
	for i := 0; i < len(chain); i++ {
		h ^= uint64(chain[i])
		h *= hashmix.FNVPrime
	}
	for _, v := range [2]uint32{uint32(rule), attempt} {
		for k := 0; k < 4; k++ {
			h ^= uint64(byte(v >> (8 * k)))
			h *= hashmix.FNVPrime
		}
	}
	return hashmix.Mix64(h)
}

// offsetFor is the first key of a Balance of n elements from hash h: the
// high 32 bits of h, moved down so that the last key fits 32 bits.
func offsetFor(h uint64, n int) uint32 {
	off := h >> 32
	if last := off + uint64(n) - 1; n > 0 && last > 1<<32-1 {
		off -= last - (1<<32 - 1)
	}
	return uint32(off)
}

// add places a Balance of n elements: its map, from the hash's low bits,
// and its first key, from the high bits.
func (s *slots) add(ref RuleRef, chain string, n int) Slot {
	h := slotHash(chain, ref.Rule, 0)
	k := int(uint32(h) % uint32(s.maps))
	off := offsetFor(h, n)
	s.placed[k] = append(s.placed[k], placed{ref, chain, n, off})
	return Slot{k, off}
}

// overlaps reports whether two Balances of a map share a key; keys holds
// every element's key of the map (sorted here).
func overlaps(keys []uint32) bool {
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return true
		}
	}
	return false
}

// replace places the Balances of map k again, in the order they were first
// placed, each at the first attempt of its hash whose keys are all free,
// and returns the new first keys. It runs only when two overlap.
func (s *slots) replace(k int) []uint32 {
	used := map[uint32]bool{}
	offs := make([]uint32, len(s.placed[k]))
	for i, b := range s.placed[k] {
		for attempt := uint32(0); ; attempt++ {
			off := offsetFor(slotHash(b.chain, b.ref.Rule, attempt), b.n)
			free := true
			for e := 0; e < b.n && free; e++ {
				free = !used[off+uint32(e)]
			}
			if free {
				for e := 0; e < b.n; e++ {
					used[off+uint32(e)] = true
				}
				offs[i] = off
				break
			}
		}
	}
	return offs
}

// New plans rs, which should be valid (see ir.Ruleset.Validate); names that
// do not resolve are treated as chains that cannot be lowered.
func New(rs *ir.Ruleset, o Options) *Plan {
	p := &Plan{Balances: map[RuleRef]Balance{}, Dropped: map[string]bool{}}
	if rs == nil {
		return p
	}
	p.Maps = o.Maps
	if o.EndpointChains {
		p.count(rs, nil)
	} else {
		p.lower(rs, o.Index, !o.DroppedAtOnly)
	}
	choice := newSlots(p.Maps)
	for i, c := range rs.Chains {
		if c == nil || p.DroppedAt(i) {
			continue
		}
		for j := range c.Rules {
			b, ok := c.Rules[j].Action.(*ir.Balance)
			if !ok || b == nil {
				continue
			}
			ref := RuleRef{i, j}
			if _, lowered := p.Balances[ref]; lowered {
				continue
			}
			slot := choice.add(ref, c.Name, len(b.Chains))
			p.Balances[ref] = Balance{Slot: slot, N: len(b.Chains)}
			if p.ChoiceMaps == nil {
				p.ChoiceMaps = make([][]ChoiceElem, p.Maps)
			}
			for k, e := range b.Chains {
				p.ChoiceMaps[slot.Map] = append(p.ChoiceMaps[slot.Map], ChoiceElem{slot.Offset + uint32(k), e})
			}
		}
	}
	settle(choice, p.ChoiceMaps, func(e *ChoiceElem) *uint32 { return &e.Key }, p.Balances)
	return p
}

// count sets Total, and Maps when not set yet, from the Balances of the
// chains not absorbed by the direct layout (absorbed by chain index; nil
// for none).
func (p *Plan) count(rs *ir.Ruleset, absorbed []bool) {
	p.Total = 0
	for i, c := range rs.Chains {
		if c == nil || absorbed != nil && absorbed[i] {
			continue
		}
		for j := range c.Rules {
			if b, ok := c.Rules[j].Action.(*ir.Balance); ok && b != nil {
				p.Total += len(b.Chains)
			}
		}
	}
	if p.Maps <= 0 {
		p.Maps = Maps(p.Total)
	}
}

// settle checks each map of one kind for Balances that overlap, places
// the Balances of such a map again (slots.replace), and sorts every map's
// elements by key. Each map's elements are those of its Balances in the
// order they were placed, each Balance's in key order.
func settle[E any](s *slots, maps [][]E, key func(*E) *uint32, balances map[RuleRef]Balance) {
	var keys []uint32
	for k, elems := range maps {
		if len(elems) == 0 {
			continue
		}
		keys = keys[:0]
		for i := range elems {
			keys = append(keys, *key(&elems[i]))
		}
		if overlaps(keys) {
			offs := s.replace(k)
			pos := 0
			for i, b := range s.placed[k] {
				for e := 0; e < b.n; e++ {
					*key(&elems[pos]) = offs[i] + uint32(e)
					pos++
				}
				pb := balances[b.ref]
				pb.Slot.Offset = offs[i]
				balances[b.ref] = pb
			}
		}
		slices.SortFunc(elems, func(a, b E) int { return cmp.Compare(*key(&a), *key(&b)) })
	}
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

// graph is the Ruleset's chains as a graph: the targets of every Goto and
// Balance, resolved once to chain indexes.
type graph struct {
	// Graph holds the resolved Goto and Balance edges of every chain.
	nftdirect.Graph
	// dispatch are the chain indexes and protocols of the dispatch
	// entries' chain targets (see forTargets) that resolve.
	dispatch []dispatchTarget
}

// dispatchTarget is a dispatch entry's target chain and protocol.
type dispatchTarget struct {
	chain int32
	proto ir.Protocol
}

// newGraph resolves the targets of rs's rules and dispatch entries.
func newGraph(rs *ir.Ruleset, index map[string]int) *graph {
	g := &graph{Graph: *nftdirect.NewGraph(rs, index)}
	forTargets(rs, func(chain string, p ir.Protocol) {
		if k, ok := index[chain]; ok {
			g.dispatch = append(g.dispatch, dispatchTarget{int32(k), p})
		}
	})
	return g
}

// reachability returns, per chain index, the protocols of the packets that
// can reach the chain.
func (g *graph) reachability(n int) []uint8 {
	reach := make([]uint8, n)
	var work []int32
	add := func(k int32, bits uint8) {
		if k >= 0 && reach[k]|bits != reach[k] {
			reach[k] |= bits
			work = append(work, k)
		}
	}
	for _, d := range g.dispatch {
		add(d.chain, protoBit(d.proto))
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		for _, k := range g.Edges[g.Start[i]:g.Start[i+1]] {
			add(k, reach[i])
		}
	}
	return reach
}

// lower plans the lowered Balances, the endpoints maps, the hairpin set and
// the dropped chains.
func (p *Plan) lower(rs *ir.Ruleset, index map[string]int, byName bool) {
	if index == nil {
		index = make(map[string]int, len(rs.Chains))
		for i, c := range rs.Chains {
			if c != nil {
				index[c.Name] = i
			}
		}
	}
	g := newGraph(rs, index)
	reach := g.reachability(len(rs.Chains))

	// The direct layout goes first: its Service chains (and, with
	// affinity, their endpoint chains) leave the table, and its endpoint
	// chains are candidates for leaving it.
	d := nftdirect.Analyze(rs, index, &g.Graph)
	p.Direct = d
	p.DroppedSets = d.DroppedSets
	absorbed := d.Absorbed
	p.count(rs, absorbed)
	candidate := make([]bool, len(rs.Chains))
	if len(d.Hairpins) > 0 {
		p.Hairpin = make([]HairpinElem, len(d.Hairpins))
		for i, h := range d.Hairpins {
			p.Hairpin[i] = HairpinElem{h.Src, h.Dst}
		}
	}

	maps := newSlots(p.Maps)
	var targets []int32 // chain indexes of one Balance
	for i, c := range rs.Chains {
		if c == nil || absorbed[i] {
			continue
		}
		edges := g.Edges[g.Start[i]:g.Start[i+1]]
		for j := range c.Rules {
			var b *ir.Balance
			switch a := c.Rules[j].Action.(type) {
			case *ir.Goto:
				if a != nil {
					edges = edges[1:]
				}
				continue
			case *ir.Balance:
				if a == nil {
					continue
				}
				b = a
			default:
				continue
			}
			ks := edges[:len(b.Chains)]
			edges = edges[len(b.Chains):]
			if len(ks) == 0 {
				continue
			}
			targets = targets[:0]
			var proto ir.Protocol
			for _, k := range ks {
				if k < 0 {
					break
				}
				ep, ok := d.EndpointAt(int(k))
				if !ok || ep.Set != "" || !d.AgreeAt[k] {
					break
				}
				if len(targets) > 0 && ep.DNAT.Protocol != proto {
					break
				}
				proto = ep.DNAT.Protocol
				targets = append(targets, k)
			}
			if len(targets) != len(ks) || reach[i]&^protoBit(proto) != 0 {
				continue
			}
			slot := maps.add(RuleRef{i, j}, c.Name, len(targets))
			p.Balances[RuleRef{i, j}] = Balance{Slot: slot, N: len(targets), Lowered: true, Protocol: proto}
			if p.EndpointMaps == nil {
				p.EndpointMaps = make([][]EndpointElem, p.Maps)
			}
			for n, k := range targets {
				ep, _ := d.EndpointAt(int(k))
				p.EndpointMaps[slot.Map] = append(p.EndpointMaps[slot.Map],
					EndpointElem{slot.Offset + uint32(n), ep.DNAT.Addr, ep.DNAT.Port})
				candidate[k] = true
				// Every chain that DNATs to the address marks the same
				// source (AgreeAt), so one element serves them all.
				if grp := d.Group[k]; ep.Hairpin.IsValid() && !d.HairpinDone[grp] {
					d.HairpinDone[grp] = true
					p.Hairpin = append(p.Hairpin, HairpinElem{ep.Hairpin, ep.DNAT.Addr})
				}
			}
		}
	}

	d.ReleaseChainFacts()
	settle(maps, p.EndpointMaps, func(e *EndpointElem) *uint32 { return &e.Key }, p.Balances)

	// Keep every chain that a dispatch entry or an unlowered rule names.
	// Plain chains name no chain, so leaving them out orphans nothing.
	ref := make([]bool, len(rs.Chains))
	mark := func(ks []int32) {
		for _, k := range ks {
			if k >= 0 {
				ref[k] = true
			}
		}
	}
	for _, d := range g.dispatch {
		ref[d.chain] = true
	}
	for i, c := range rs.Chains {
		if c == nil || absorbed[i] {
			continue
		}
		edges := g.Edges[g.Start[i]:g.Start[i+1]]
		for j := range c.Rules {
			switch a := c.Rules[j].Action.(type) {
			case *ir.Goto:
				if a != nil {
					mark(edges[:1])
					edges = edges[1:]
				}
			case *ir.Balance:
				if a != nil {
					if _, lowered := p.Balances[RuleRef{i, j}]; !lowered {
						mark(edges[:len(a.Chains)])
					}
					edges = edges[len(a.Chains):]
				}
			}
		}
	}
	n := 0
	for k := range candidate {
		if candidate[k] && !ref[k] || absorbed[k] {
			n++
		}
	}
	if n == 0 {
		return
	}
	p.dropped = make([]bool, len(rs.Chains))
	if byName {
		p.Dropped = make(map[string]bool, n)
	}
	for k := range candidate {
		if candidate[k] && !ref[k] || absorbed[k] {
			p.dropped[k] = true
			if byName {
				p.Dropped[rs.Chains[k].Name] = true
			}
		}
	}
}
