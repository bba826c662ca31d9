package nftdirect

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"kpc/compiler/ir"
)

// maxDepth bounds the Gotos followed from an entry (the IR has no loops;
// this only keeps a broken Ruleset from recursing without end).
const maxDepth = 16

// specState is the specialization of one entry's tree.
type specState struct {
	key     Key
	choices [][]Endpoint
	eps     []int32 // the endpoint chains chosen among
	// hairpins holds, for each of eps, its hairpin source and DNAT
	// address (read while specializing, on all CPUs, for commit).
	hairpins []Hairpin
	// done holds the shared chain of each chain already specialized: a
	// chain reached twice (by two Gotos) is one shared chain.
	done map[int]string
}

// lowering is an entry lowered without the analysis's shared state, so
// that entries can be lowered on all CPUs: its shared chains are
// registered, and the hairpins of its endpoints recorded, by commit, one
// entry after the other in the lists' order.
type lowering struct {
	entry Entry
	// shared are the entry's shared chains, by name.
	shared map[string]*sharedChain
	// eps are the endpoint chains chosen among, and hairpins their
	// hairpin sources and DNAT addresses.
	eps      []int32
	hairpins []Hairpin
	// sticky: lowered by lowerSticky; when its shared chain's name turns
	// out to be taken, the entry is lowered again the general way.
	sticky bool
	ok     bool
}

// lowerEntry specializes the tree of the entry of list l and key k whose
// target is chain ci. It only reads the analysis; sfx is the caller's
// cache of name suffixes.
func (a *analysis) lowerEntry(l List, i int, k Key, ci int, sfx map[string]string) lowering {
	if l == ServicesList {
		if lw := a.lowerSticky(i, k, ci, sfx); lw.ok {
			return lw
		}
	}
	return a.lowerGeneral(l, i, k, ci, sfx)
}

// lowerGeneral specializes the entry's tree chain by chain (see
// lowerEntry).
func (a *analysis) lowerGeneral(l List, i int, k Key, ci int, sfx map[string]string) lowering {
	st := &specState{key: k}
	pending := map[string]*sharedChain{}
	name, ok := a.specialize(ci, st, pending, 0, sfx)
	if !ok {
		return lowering{}
	}
	return lowering{entry: Entry{List: l, Index: i, Key: k, Chain: name, Choices: st.choices}, shared: pending, eps: st.eps, hairpins: st.hairpins, ok: true}
}

// commit registers a lowered entry's shared chains and hairpins, unless a
// shared chain of the same name but other content exists (a hash
// collision): then it registers nothing and returns false.
func (a *analysis) commit(lw lowering) bool {
	for n, s := range lw.shared {
		if old, exists := a.shared[n]; exists && old.content != s.content {
			return false
		}
	}
	for n, s := range lw.shared {
		if old, exists := a.shared[n]; exists {
			old.Entries++
		} else {
			s.Entries = 1
			a.shared[n] = s
		}
	}
	a.addHairpins(lw.eps, lw.hairpins)
	return true
}

// addHairpins records the hairpin elements of the chosen endpoint chains
// eps, whose hairpins are hairpins.
func (a *analysis) addHairpins(eps []int32, hairpins []Hairpin) {
	res := a.res
	for n, k := range eps {
		// Every chain of the group marks the same source.
		if grp, h := a.group[k], hairpins[n]; h.Src.IsValid() && !res.HairpinDone[grp] {
			res.HairpinDone[grp] = true
			res.Hairpins = append(res.Hairpins, h)
		}
	}
}

// specialize specializes chain ci to st.key and returns the name of its
// shared chain, adding it (and those of the chains it goes to) to pending.
func (a *analysis) specialize(ci int, st *specState, pending map[string]*sharedChain, depth int, sfx map[string]string) (string, bool) {
	c := a.rs.Chains[ci]
	if c == nil || depth > maxDepth {
		return "", false
	}
	if name, ok := st.done[ci]; ok {
		return name, true
	}
	k := st.key
	edges := a.g.Edges[a.g.Start[ci]:a.g.Start[ci+1]]
	crules := c.RuleList()
	rules := make([]Rule, 0, len(crules))
	for j := range crules {
		r := &crules[j]
		// The edges of this rule, consumed whether it is kept or not.
		var targets []int32
		switch act := r.Action.(type) {
		case *ir.Goto:
			if act != nil {
				targets, edges = edges[:1], edges[1:]
			}
		case *ir.Balance:
			if act != nil {
				targets, edges = edges[:len(act.Chains)], edges[len(act.Chains):]
			}
		}
		m, holds, ok := a.residualMatch(c, r.Match, k)
		if !ok {
			return "", false
		}
		if !holds {
			continue
		}
		if m.Affinity != "" {
			return "", false
		}
		out := Rule{Match: m}
		switch act := r.Action.(type) {
		case *ir.MarkMasq:
			out.Action = MarkAction
		case *ir.Drop:
			out.Action = DropAction
		case *ir.Reject:
			out.Action = RejectAction
		case *ir.Goto:
			if act == nil || targets[0] < 0 {
				return "", false
			}
			sub, ok := a.specialize(int(targets[0]), st, pending, depth+1, sfx)
			if !ok {
				return "", false
			}
			out.Action, out.Goto = GotoAction, sub
		case *ir.Balance:
			if act == nil || len(targets) == 0 {
				return "", false
			}
			endpoints := make([]Endpoint, len(targets))
			st.hairpins = slices.Grow(st.hairpins, len(targets))
			for n, t := range targets {
				ep, ok := a.eps.at(t)
				if !ok || ep.Set != "" || !a.agrees(t) || ep.DNAT.Protocol != k.Protocol {
					return "", false
				}
				endpoints[n] = Endpoint{ep.DNAT.Addr, ep.DNAT.Port}
				st.hairpins = append(st.hairpins, Hairpin{ep.Hairpin, ep.DNAT.Addr})
			}
			st.eps = append(st.eps, targets...)
			out.Action, out.Kind, out.Variant, out.N = ChoiceAction, k.Kind, len(st.choices), len(targets)
			st.choices = append(st.choices, endpoints)
		default:
			return "", false
		}
		rules = append(rules, out)
	}
	name, content := sharedName(c.Kind, rules, sfx, &a.texts)
	if old, ok := pending[name]; ok && old.content != content {
		return "", false // a hash collision
	}
	pending[name] = &sharedChain{Shared: Shared{Name: name, From: c.Kind, Rules: rules}, content: content}
	if st.done == nil {
		st.done = map[int]string{}
	}
	st.done[ci] = name
	return name, true
}

// residualMatch returns m for packets of entry k: holds is false when a
// destination condition can never hold, otherwise m comes back without
// its destination conditions; ok is false when they cannot be decided.
func (a *analysis) residualMatch(c *ir.Chain, m ir.Match, k Key) (out ir.Match, holds, ok bool) {
	if m.DstAddr.IsValid() {
		switch {
		case k.Kind == AddrKey && m.DstAddr != k.Addr:
			return m, false, true
		case k.Kind == AddrKey:
		case a.rs.Node.NodePortAllLocal || a.nodeAddr[m.DstAddr]:
			// A NodePort path: the destination is one of the node's
			// addresses, which only the packet says.
			return m, false, false
		default:
			return m, false, true
		}
		m.DstAddr = netip.Addr{}
	}
	if m.DstPort != 0 {
		if c.Protocol != k.Protocol || m.DstPort != k.Port {
			return m, false, true
		}
		m.DstPort = 0
	}
	return m, true, true
}

// lowerSticky lowers a Services entry whose chain is marks, one affinity
// test per endpoint and a Balance over plain endpoint chains with their
// own affinity sets, which nothing else uses (see lowerEntry).
func (a *analysis) lowerSticky(i int, k Key, ci int, sfx map[string]string) lowering {
	if a.rs.Family != ir.IPv4 || a.entryRefs[ci] != 1 || a.other[ci] != 0 {
		return lowering{}
	}
	c := a.rs.Chains[ci]
	edges := a.g.Edges[a.g.Start[ci]:a.g.Start[ci+1]]
	rules := c.RuleList()
	var marks []Rule
	for len(rules) > 0 {
		if _, ok := rules[0].Action.(*ir.MarkMasq); !ok || rules[0].Match.Affinity != "" {
			break
		}
		m, holds, ok := a.residualMatch(c, rules[0].Match, k)
		if !ok {
			return lowering{}
		}
		if holds {
			marks = append(marks, Rule{Match: m, Action: MarkAction})
		}
		rules = rules[1:]
	}
	tests := map[int32]string{} // endpoint chain -> its affinity set
	for len(rules) > 0 {
		g, ok := rules[0].Action.(*ir.Goto)
		m := rules[0].Match
		if !ok || g == nil || m.Affinity == "" {
			break
		}
		m.Affinity = ""
		if !zeroMatch(&m) || len(edges) == 0 || edges[0] < 0 {
			return lowering{}
		}
		t := edges[0]
		edges = edges[1:]
		if _, dup := tests[t]; dup {
			return lowering{}
		}
		tests[t] = rules[0].Match.Affinity
		rules = rules[1:]
	}
	if len(tests) == 0 || len(rules) != 1 || !zeroMatch(&rules[0].Match) {
		return lowering{}
	}
	b, ok := rules[0].Action.(*ir.Balance)
	if !ok || b == nil || len(b.Chains) != len(tests) || len(edges) != len(b.Chains) {
		return lowering{}
	}
	var timeout time.Duration
	endpoints := make([]Endpoint, len(edges))
	hairpins := make([]Hairpin, len(edges))
	used := make(map[int32]bool, len(edges))
	for n, t := range edges {
		ep, ok := a.eps.at(t)
		if !ok || !a.agrees(t) || used[t] {
			return lowering{}
		}
		set, tested := tests[t]
		d := a.timeouts[set]
		switch {
		case !tested || ep.Set != set || d <= 0 || ep.DNAT.Protocol != k.Protocol:
			return lowering{}
		case a.sets[set] != 2 || a.other[t] != 2: // its test and update; its Goto and the Balance
			return lowering{}
		case timeout != 0 && timeout != d:
			return lowering{}
		}
		used[t], timeout = true, d
		endpoints[n] = Endpoint{ep.DNAT.Addr, ep.DNAT.Port}
		hairpins[n] = Hairpin{ep.Hairpin, ep.DNAT.Addr}
	}
	out := append(marks, Rule{Action: StickyAction},
		Rule{Action: ChoiceAction, Kind: AddrKey, Variant: 0, N: len(endpoints)})
	name, content := sharedName(c.Kind, out, sfx, &a.texts)
	return lowering{
		entry:  Entry{List: ServicesList, Index: i, Key: k, Chain: name, Choices: [][]Endpoint{endpoints}, Timeout: timeout},
		shared: map[string]*sharedChain{name: {Shared: Shared{Name: name, From: c.Kind, Rules: out}, content: content}},
		eps:    edges, hairpins: hairpins, sticky: true, ok: true,
	}
}

// sharedName names a shared chain and returns the content that tells it
// from another chain of that name. A chain of marks followed by a choice
// of variant 0 is "dnat-N" (or "dnat-nodeport-N"), with the hash of its
// marks when it has any, and "sticky-N" likewise with affinity: its
// content is its rules alone, so a Service's cluster chain and another's
// local chain that specialize to the same rules are one chain (were the
// kind part of it, the one met second could not take the name, and
// whether an entry is lowered would depend on the other Services of the
// Ruleset). Any other chain is "shared-KIND-HASH", its content its kind
// and its rules, hashed. sfx caches the hashes, texts the prefix lists.
func sharedName(from ir.ChainKind, rules []Rule, sfx map[string]string, texts *prefixTexts) (name, content string) {
	content = canonicalRules(rules, texts)
	n := len(rules)
	simple := n > 0 && rules[n-1].Action == ChoiceAction && rules[n-1].Variant == 0
	sticky := false
	if simple && n > 1 && rules[n-2].Action == StickyAction {
		sticky = true
		n--
	}
	for _, r := range rules[:n-1] {
		simple = simple && r.Action == MarkAction
	}
	if !simple {
		content = from.String() + content
		return SharedPrefix + from.String() + "-" + suffix(content, sfx), content
	}
	last := rules[len(rules)-1]
	name = DNATPrefix
	switch {
	case sticky:
		name = StickyPrefix
	case last.Kind == PortKey:
		name += "nodeport-"
	}
	name += strconv.Itoa(last.N)
	if marks := rules[:n-1]; len(marks) > 0 {
		name += "-" + suffix(canonicalMarks(marks, texts), sfx)
	}
	return name, content
}

// suffix is the first 8 hex digits of the SHA-256 of s, cached in sfx.
func suffix(s string, sfx map[string]string) string {
	if h, ok := sfx[s]; ok {
		return h
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:4])
	sfx[s] = h
	return h
}

// canonicalRules spells a shared chain's rules for comparing and naming.
func canonicalRules(rules []Rule, texts *prefixTexts) string {
	var b []byte
	for _, r := range rules {
		b = append(b, '|')
		b = appendMatch(b, &r.Match, texts)
		b = append(b, " a="...)
		b = strconv.AppendUint(b, uint64(r.Action), 10)
		b = append(b, " g="...)
		b = append(b, r.Goto...)
		b = append(b, " k="...)
		b = strconv.AppendUint(b, uint64(r.Kind), 10)
		b = append(b, " v="...)
		b = strconv.AppendInt(b, int64(r.Variant), 10)
		b = append(b, " n="...)
		b = strconv.AppendInt(b, int64(r.N), 10)
	}
	return string(b)
}

// canonicalMarks spells marks for naming their chain.
func canonicalMarks(marks []Rule, texts *prefixTexts) string {
	var b []byte
	for _, r := range marks {
		b = append(b, "mark "...)
		b = appendMatch(b, &r.Match, texts)
		b = append(b, ';')
	}
	return string(b)
}

// appendMatch spells the source conditions of a match.
func appendMatch(b []byte, m *ir.Match, texts *prefixTexts) []byte {
	b = append(b, "src="...)
	b = m.SrcAddr.AppendTo(b)
	b = append(b, " in="...)
	b = texts.appendTo(b, m.SrcIn)
	b = append(b, " notin="...)
	b = texts.appendTo(b, m.SrcNotIn)
	b = append(b, " local="...)
	b = strconv.AppendBool(b, m.SrcLocal)
	if m.Iface != ir.IfaceAny {
		// The test names the Ruleset's one local-traffic interface.
		b = append(b, " iface="...)
		b = strconv.AppendUint(b, uint64(m.Iface), 10)
	}
	return b
}

// appendPrefixes appends the masked prefixes, sorted.
func appendPrefixes(b []byte, ps []netip.Prefix) []byte {
	if len(ps) == 1 {
		return ps[0].Masked().AppendTo(b)
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	sort.Strings(s)
	for i, p := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return b
}

// prefixTexts spells each long prefix list of the Ruleset once
// (appendPrefixes), by the list's identity: the compiler gives a
// Service's ports one list of firewall sources, which a Service of
// thousands of ports and ranges had spelled, sorted, for every port. It
// is safe for concurrent use.
type prefixTexts struct{ m sync.Map } // prefixKey -> string

// prefixKey is a prefix list's identity: its first element and length.
type prefixKey struct {
	first *netip.Prefix
	n     int
}

// minPrefixText is the shortest list prefixTexts keeps the text of.
const minPrefixText = 16

// appendTo appends appendPrefixes' text of ps to b.
func (t *prefixTexts) appendTo(b []byte, ps []netip.Prefix) []byte {
	if len(ps) < minPrefixText {
		return appendPrefixes(b, ps)
	}
	k := prefixKey{unsafe.SliceData(ps), len(ps)}
	if s, ok := t.m.Load(k); ok {
		return append(b, s.(string)...)
	}
	s := string(appendPrefixes(nil, ps))
	t.m.Store(k, s)
	return append(b, s...)
}
