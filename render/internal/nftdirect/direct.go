// Package nftdirect decides which dispatch entries of a Ruleset kpc's
// nftables tables spell with data instead of chains of their own.
//
// The IR gives every Service port its own chains: a service chain that
// chooses among endpoint chains, and for NodePorts and load balancers an
// external chain, a local chain and a firewall chain. A dispatch entry
// (an element of service-ips, service-nodeports or firewall-ips) reaches a
// tree of such chains. The direct layout specializes that tree to the
// entry's key: a rule whose destination condition names another address
// or port can never match packets of the entry and is left out, one that
// names the entry's own is kept without it, and each uniform choice among
// plain endpoint chains (an optional hairpin mark and a DNAT) becomes a
// DNAT through a map keyed by the packet's destination (address, protocol
// and port; protocol and port for NodePorts) and a random bucket, the map
// holding the entry's endpoints. What is left of the tree no longer names
// anything of the Service, so the specialized chains of all entries with
// the same structure, marks and endpoint counts are one set of shared
// chains: a plain ClusterIP Service has no chain at all, only elements.
// Choices are numbered per entry in the order they are met (variant 0, 1,
// ...), and each variant has its map (service-endpoints,
// service-endpoints-1; nodeport-endpoints, ...), since one entry can
// reach two choices (a Local policy's local and cluster endpoints).
//
// A Service port with ClientIP affinity is lowered when only its one
// Services entry reaches its chain (a ClusterIP Service): its shared chain
// first DNATs to the endpoint the map sticky-clients holds for the client
// and the entry's key, and after DNAT (in the filter chains) each new
// connection records or refreshes the client's endpoint there with the
// Service's timeout: the chain sticky-update looks the connection's
// original destination up in the verdict map sticky-timeouts, which sends
// the keys of each timeout to that timeout's chain ("sticky-update-600s").
// Every object of that path is the same whichever other Services the
// input holds, so the tables of a whole input are still the union of
// those of its Services. A client thus keeps its endpoint until the
// timeout since its last new connection, as with kube-proxy's
// per-endpoint sets;
// an endpoint that is removed must also leave sticky-clients (the
// incremental apply does it; a full load starts empty). nft 1.0.6 cannot
// encode the IPv6 record (its 60 bytes of key and data overflow its
// register allocation), so affinity is only lowered in IPv4 tables.
//
// Anything an entry's tree does that this cannot express (affinity
// elsewhere, a chain that is not a plain endpoint chain in a choice, a
// destination address condition on a NodePort path that only the node's
// addresses could decide, DNATs to an address whose chains disagree on the
// hairpin mark) leaves the entry as it is, and its chains stay in the
// table. The hairpin marks of the lowered endpoint chains move to the
// postrouting set hairpin-endpoints keyed by source and destination
// address, which keeps the packets' fates only if every chain that DNATs
// to an address marks the same source; an address whose chains disagree
// blocks the lowering of every choice that reaches it.
package nftdirect

import (
	"cmp"
	"encoding/binary"
	"kpc/internal/permute"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"kpc/compiler/ir"
	"kpc/internal/par"
)

// Names of the objects of the direct layout.
const (
	// DNATPrefix starts the names of the shared chains that mark and then
	// choose ("dnat-N", "dnat-N-HASH", "dnat-nodeport-N-HASH"),
	// StickyPrefix those that also keep clients on their endpoint
	// ("sticky-N-HASH"), SharedPrefix the other shared chains
	// ("shared-external-HASH").
	DNATPrefix   = "dnat-"
	StickyPrefix = "sticky-"
	SharedPrefix = "shared-"
	// EndpointsMap and NodePortEndpointsMap map an entry's key and a
	// bucket to an endpoint (variant 0; variant V adds "-V").
	EndpointsMap         = "service-endpoints"
	NodePortEndpointsMap = "nodeport-endpoints"
	// ClientsMap holds, per client and entry key, the client's endpoint.
	ClientsMap = "sticky-clients"
	// TimeoutsMap sends each entry key with affinity to the chain of its
	// timeout (TimeoutChain).
	TimeoutsMap = "sticky-timeouts"
	// UpdateChain records clients in ClientsMap after DNAT, through
	// TimeoutsMap.
	UpdateChain = "sticky-update"
)

// TimeoutChain is the name of the chain that records clients with
// timeout t ("sticky-update-600s", "sticky-update-1500ms").
func TimeoutChain(t time.Duration) string {
	if t%time.Second == 0 {
		return UpdateChain + "-" + strconv.FormatInt(int64(t/time.Second), 10) + "s"
	}
	return UpdateChain + "-" + strconv.FormatInt(int64(t/time.Millisecond), 10) + "ms"
}

// Protocols are the protocols sticky-update and each TimeoutChain have a
// rule for: all of them, whatever the entries use, so that these chains
// are the same for every input.
var Protocols = [...]ir.Protocol{ir.TCP, ir.UDP, ir.SCTP}

// KeyKind says what a dispatch key holds.
type KeyKind uint8

// The kinds of keys.
const (
	// AddrKey: destination address, protocol and port (service-ips,
	// firewall-ips).
	AddrKey KeyKind = iota
	// PortKey: protocol and port (service-nodeports).
	PortKey
)

// Key is the key of a dispatch entry. Addr is invalid for a PortKey.
type Key struct {
	Kind     KeyKind
	Addr     netip.Addr
	Protocol ir.Protocol
	Port     uint16
}

// List names a dispatch list of the Ruleset.
type List uint8

// The dispatch lists whose entries can go to shared chains.
const (
	ServicesList  List = iota // Ruleset.Services
	NodePortsList             // Ruleset.NodePorts
	FirewallList              // Ruleset.Firewall
)

// Endpoint is a DNAT destination.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// Entry is how one dispatch entry is spelled.
type Entry struct {
	List  List
	Index int // in its list
	Key   Key
	// Chain is the shared chain the entry's element goes to.
	Chain string
	// Choices are the destinations of buckets 0..N-1 of each variant.
	Choices [][]Endpoint
	// Timeout is the affinity timeout (0: no affinity).
	Timeout time.Duration
}

// Action is what a rule of a shared chain does.
type Action uint8

// The actions of the rules of shared chains.
const (
	MarkAction   Action = iota // jump mark-for-masquerade
	DropAction                 // drop
	RejectAction               // reject
	GotoAction                 // goto Rule.Goto
	ChoiceAction               // DNAT through variant Rule.Variant's map, Rule.N buckets
	StickyAction               // DNAT to the client's endpoint in ClientsMap, if any
)

// Rule is a rule of a shared chain.
type Rule struct {
	// Match has no destination address or port conditions.
	Match   ir.Match
	Action  Action
	Goto    string
	Kind    KeyKind // of ChoiceAction: which map family
	Variant int
	N       int
}

// Shared is a chain shared by entries.
type Shared struct {
	Name string
	// From is the kind of IR chain it specializes.
	From  ir.ChainKind
	Rules []Rule
	// Entries counts the entries whose tree uses it.
	Entries int
}

// MapName is the name of the map of a variant of a key kind.
func MapName(kind KeyKind, variant int) string {
	name := EndpointsMap
	if kind == PortKey {
		name = NodePortEndpointsMap
	}
	if variant > 0 {
		name += "-" + strconv.Itoa(variant)
	}
	return name
}

// MapUse is one map of endpoints.
type MapUse struct {
	Kind    KeyKind
	Variant int
}

// Hairpin is an element of hairpin-endpoints: a connection DNATed to Dst
// from Src is masqueraded.
type Hairpin struct{ Src, Dst netip.Addr }

// TimeoutKeys are the entry keys with one affinity timeout.
type TimeoutKeys struct {
	Timeout time.Duration
	Keys    []Key
}

// Result is what Analyze found.
type Result struct {
	// Entries are the lowered entries: those of Services, then NodePorts,
	// then Firewall, each in its list's order.
	Entries []Entry
	// Shared are the shared chains, by name.
	Shared []Shared
	// Maps are the endpoint maps used, AddrKey first, by variant.
	Maps []MapUse
	// Absorbed holds, per chain index, whether the chain is no longer
	// needed: only lowered entries reach it.
	Absorbed []bool
	// DroppedSets are the affinity sets no chain that stays uses.
	DroppedSets map[string]bool
	// Hairpins are the hairpin marks of the lowered endpoint chains,
	// without repeats.
	Hairpins []Hairpin
	// Timeouts are the affinity entry keys by timeout, shortest first.
	Timeouts []TimeoutKeys
	// AgreeAt holds, per chain index, whether the chain is a plain
	// endpoint chain and every chain of the Ruleset that DNATs to its
	// address is one with the same hairpin mark: only then may that mark
	// move to hairpin-endpoints.
	AgreeAt []bool
	// Group is, per chain index, the group of the chains DNATing to the
	// same address as that plain endpoint chain (-1 for other chains),
	// and HairpinDone, per group, whether its hairpin element is in
	// Hairpins: one element serves the whole group.
	Group       []int32
	HairpinDone []bool

	byKey     map[listKey]int
	endpoints endpointTable
}

type listKey struct {
	list List
	key  Key
}

// Lookup returns the plan of the dispatching entry of a list with key k.
func (r *Result) Lookup(l List, k Key) (Entry, bool) {
	i, ok := r.byKey[listKey{l, k}]
	if !ok {
		return Entry{}, false
	}
	return r.Entries[i], true
}

// MapLen returns the number of elements of endpoint map m: one per choice
// of variant m.Variant of every entry of m's key kind.
func (r *Result) MapLen(m MapUse) int {
	n := 0
	for i := range r.Entries {
		if e := &r.Entries[i]; e.Key.Kind == m.Kind && m.Variant < len(e.Choices) {
			n += len(e.Choices[m.Variant])
		}
	}
	return n
}

// Sticky reports whether any entry has affinity.
func (r *Result) Sticky() bool { return len(r.Timeouts) > 0 }

// Lowered reports whether any entry is lowered.
func (r *Result) Lowered() bool { return r != nil && len(r.Entries) > 0 }

// EndpointAt returns chain k's parse, and whether it is a plain endpoint
// chain.
func (r *Result) EndpointAt(k int) (EndpointChain, bool) {
	return r.endpoints.at(int32(k))
}

// ReleaseChainFacts drops what only the placing of the Ruleset's other
// Balances reads (EndpointAt, AgreeAt, Group and HairpinDone): a Result
// kept for writing then holds no record per chain of the Ruleset (5 bytes
// a chain, and the parse of every endpoint chain written out as rules).
// After it, EndpointAt reports no endpoint chain and the three slices are
// nil.
func (r *Result) ReleaseChainFacts() {
	r.endpoints, r.AgreeAt, r.Group, r.HairpinDone = endpointTable{}, nil, nil, nil
}

// EndpointChain describes a plain endpoint chain: an optional hairpin
// mark of one source, an optional affinity update, a DNAT.
type EndpointChain struct {
	Hairpin netip.Addr // invalid without a hairpin mark
	Set     string     // the affinity set it updates ("" without)
	DNAT    *ir.DNAT
}

// parseEndpoint reports whether c is a plain endpoint chain.
func parseEndpoint(c *ir.Chain) (EndpointChain, bool) {
	var e EndpointChain
	if c == nil {
		return e, false
	}
	if t := c.Endpoint; t != nil {
		return EndpointChain{Hairpin: t.DNAT.Addr, Set: t.Update.Set, DNAT: &t.DNAT}, t.DNAT.Addr.IsValid()
	}
	rules := c.Rules
	if len(rules) > 0 {
		if _, ok := rules[0].Action.(*ir.MarkMasq); ok {
			if !onlySrcAddr(&rules[0].Match) {
				return e, false
			}
			e.Hairpin = rules[0].Match.SrcAddr
			rules = rules[1:]
		}
	}
	if len(rules) > 0 {
		if u, ok := rules[0].Action.(*ir.AffinityUpdate); ok {
			if u == nil || !zeroMatch(&rules[0].Match) {
				return e, false
			}
			e.Set = u.Set
			rules = rules[1:]
		}
	}
	if len(rules) != 1 || !zeroMatch(&rules[0].Match) {
		return e, false
	}
	d, ok := rules[0].Action.(*ir.DNAT)
	if !ok || d == nil || !d.Addr.IsValid() {
		return e, false
	}
	e.DNAT = d
	return e, true
}

func zeroMatch(m *ir.Match) bool {
	return !m.DstAddr.IsValid() && m.DstPort == 0 && !m.SrcAddr.IsValid() && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Iface == ir.IfaceAny && m.Affinity == ""
}

func onlySrcAddr(m *ir.Match) bool {
	return m.SrcAddr.IsValid() && !m.DstAddr.IsValid() && m.DstPort == 0 && len(m.SrcIn) == 0 &&
		len(m.SrcNotIn) == 0 && !m.SrcLocal && m.Iface == ir.IfaceAny && m.Affinity == ""
}

// Graph is the Ruleset's chains resolved to indexes: for chain i, in
// rule order, the target of every Goto (one) and non-nil Balance (one per
// chain) is Edges[Start[i]:Start[i+1]], -1 for a name that does not
// resolve. len(Start) is len(Ruleset.Chains)+1.
type Graph struct {
	Edges, Start []int32
}

// NewGraph resolves rs's Gotos and Balances through index.
func NewGraph(rs *ir.Ruleset, index map[string]int) *Graph {
	g := &Graph{Start: make([]int32, len(rs.Chains)+1)}
	resolve := func(name string) int32 {
		if k, ok := index[name]; ok {
			return int32(k)
		}
		return -1
	}
	for i, c := range rs.Chains {
		g.Start[i] = int32(len(g.Edges))
		if c == nil {
			continue
		}
		// A compact endpoint chain (no Rules) has no Goto or Balance.
		for j := range c.Rules {
			switch a := c.Rules[j].Action.(type) {
			case *ir.Goto:
				if a != nil {
					g.Edges = append(g.Edges, resolve(a.Chain))
				}
			case *ir.Balance:
				if a != nil {
					for _, e := range a.Chains {
						g.Edges = append(g.Edges, resolve(e))
					}
				}
			}
		}
	}
	g.Start[len(rs.Chains)] = int32(len(g.Edges))
	return g
}

// endpointTable gives the chains of a Ruleset parsed as plain endpoint
// chains: a compact chain's parse is read from it when asked for, and
// only the plain chains written out as rules (hand-written IR) are parsed
// ahead and kept. A large compiled Ruleset thus needs no record per
// chain.
type endpointTable struct {
	chains []*ir.Chain
	parsed map[int32]EndpointChain
}

// at returns chain k's parse, and whether it is a plain endpoint chain.
func (t *endpointTable) at(k int32) (EndpointChain, bool) {
	if uint(k) >= uint(len(t.chains)) || t.chains[k] == nil {
		return EndpointChain{}, false
	}
	if e := t.chains[k].Endpoint; e != nil {
		return EndpointChain{Hairpin: e.DNAT.Addr, Set: e.Update.Set, DNAT: &e.DNAT}, e.DNAT.Addr.IsValid()
	}
	if t.parsed == nil {
		return EndpointChain{}, false
	}
	e, ok := t.parsed[k]
	return e, ok
}

// analysis is the state of one Analyze.
type analysis struct {
	rs    *ir.Ruleset
	index map[string]int
	g     *Graph
	eps   endpointTable
	// group and groupOK: see Result.Group and Result.AgreeAt.
	group   []int32
	groupOK []bool
	// entryRefs counts the Services entries that dispatch to each chain,
	// other every other reference to it.
	entryRefs, other []int32
	// sets counts the rules that name each affinity set.
	sets     map[string]int
	timeouts map[string]time.Duration
	nodeAddr map[netip.Addr]bool

	shared map[string]*sharedChain
	res    *Result
	// texts spells the long prefix lists of canonical contents.
	texts prefixTexts
}

// sharedChain is a shared chain and its canonical content.
type sharedChain struct {
	Shared
	content string
}

// prepare parses the chains once: endpoint chains, hairpin agreement and
// references (those of the dispatch entries being jobs).
func (a *analysis) prepare(jobs []entryJob) {
	rs := a.rs
	n := len(rs.Chains)
	a.eps = endpointTable{chains: rs.Chains}
	// The DNATs of all chains, sorted by address: the chains of one
	// address agree when all are plain with the same hairpin source.
	dnats := make([]dnat, 0, n)
	a.entryRefs, a.other = make([]int32, n), make([]int32, n)
	a.sets = map[string]int{}
	var buf [3]ir.Rule
	for i, c := range rs.Chains {
		if c == nil {
			continue
		}
		rules := c.RulesInto(buf[:])
		if ep, ok := parseEndpoint(c); ok {
			if c.Endpoint == nil {
				if a.eps.parsed == nil {
					a.eps.parsed = map[int32]EndpointChain{}
				}
				a.eps.parsed[int32(i)] = ep
			}
			dnats = append(dnats, dnat{ep.DNAT.Addr, ep.Hairpin, int32(i), true})
		} else {
			for j := range rules {
				if d, ok := rules[j].Action.(*ir.DNAT); ok && d != nil {
					dnats = append(dnats, dnat{d.Addr, netip.Addr{}, int32(i), false})
				}
			}
		}
		for j := range rules {
			r := &rules[j]
			if r.Match.Affinity != "" {
				a.sets[r.Match.Affinity]++
			}
			if u, ok := r.Action.(*ir.AffinityUpdate); ok && u != nil {
				a.sets[u.Set]++
			}
		}
		for _, k := range a.g.Edges[a.g.Start[i]:a.g.Start[i+1]] {
			if k >= 0 {
				a.other[k]++
			}
		}
	}
	sortByAddr(dnats)
	a.group = make([]int32, n)
	for i := range a.group {
		a.group[i] = -1
	}
	for i := 0; i < len(dnats); {
		j, ok := i, true
		for ; j < len(dnats) && dnats[j].addr == dnats[i].addr; j++ {
			ok = ok && dnats[j].plain && dnats[j].src == dnats[i].src
		}
		g := int32(len(a.groupOK))
		a.groupOK = append(a.groupOK, ok)
		for k := i; k < j; k++ {
			if dnats[k].plain {
				a.group[dnats[k].chain] = g
			}
		}
		i = j
	}
	for _, jb := range jobs {
		switch {
		case jb.ci < 0:
		case jb.l == ServicesList:
			a.entryRefs[jb.ci]++
		default:
			a.other[jb.ci]++
		}
	}
	for _, e := range rs.NoEndpoints {
		if k := a.resolve(e.Target.Chain); k >= 0 {
			a.other[k]++
		}
	}
	for _, e := range rs.NoEndpointNodePorts {
		if k := a.resolve(e.Target.Chain); k >= 0 {
			a.other[k]++
		}
	}
	a.timeouts = make(map[string]time.Duration, len(rs.AffinitySets))
	for _, s := range rs.AffinitySets {
		a.timeouts[s.Name] = s.Timeout
	}
	a.nodeAddr = map[netip.Addr]bool{}
	for _, x := range rs.Node.NodePortAddrs {
		a.nodeAddr[x] = true
	}
}

// dnat is a DNAT of chain: to addr, from a plain endpoint chain whose
// hairpin mark is for src.
type dnat struct {
	addr, src netip.Addr
	chain     int32
	plain     bool
}

// sortByAddr sorts ds by address. When every address is IPv4 (as in an
// IPv4 Ruleset) it sorts integers packing the address and the position,
// several times faster than comparing netip.Addrs.
func sortByAddr(ds []dnat) {
	keys := make([]uint64, len(ds))
	for i, d := range ds {
		if !d.addr.Is4() {
			par.SortFunc(ds, func(x, y dnat) int { return x.addr.Compare(y.addr) })
			return
		}
		b := d.addr.As4()
		keys[i] = uint64(binary.BigEndian.Uint32(b[:]))<<32 | uint64(i)
	}
	par.SortFunc(keys, cmp.Compare[uint64])
	permute.InPlace(ds, func(i int) int { return int(uint32(keys[i])) })
}

// entryJob is a dispatch entry to lower: entry i of list l, with key k,
// whose target is chain ci (-1 when its name does not resolve).
type entryJob struct {
	l  List
	i  int
	k  Key
	ci int
}

// lowerWindow is how many entries Analyze lowers before it commits them;
// a variable for the tests.
var lowerWindow = 8192

// entryJobs returns the entries of Services, NodePorts and Firewall, in
// that order, their targets resolved on all CPUs.
func (a *analysis) entryJobs() []entryJob {
	rs := a.rs
	jobs := make([]entryJob, 0, len(rs.Services)+len(rs.NodePorts)+len(rs.Firewall))
	for i, e := range rs.Services {
		jobs = append(jobs, entryJob{ServicesList, i, Key{AddrKey, e.Addr, e.Protocol, e.Port}, -1})
	}
	for i, e := range rs.NodePorts {
		jobs = append(jobs, entryJob{NodePortsList, i, Key{PortKey, netip.Addr{}, e.Protocol, e.Port}, -1})
	}
	for i, e := range rs.Firewall {
		jobs = append(jobs, entryJob{FirewallList, i, Key{AddrKey, e.Addr, e.Protocol, e.Port}, -1})
	}
	par.Runs(len(jobs), 4096, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			var target string
			switch jb := &jobs[j]; jb.l {
			case ServicesList:
				target = rs.Services[jb.i].Target.Chain
			case NodePortsList:
				target = rs.NodePorts[jb.i].Target.Chain
			default:
				target = rs.Firewall[jb.i].Target.Chain
			}
			jobs[j].ci = a.resolve(target)
		}
	})
	return jobs
}

// resolve returns the index of the chain of that name, or -1.
func (a *analysis) resolve(name string) int {
	if name == "" {
		return -1
	}
	if k, ok := a.index[name]; ok {
		return k
	}
	return -1
}

// agrees reports whether chain k is a plain endpoint chain whose address's
// chains agree on the hairpin mark.
func (a *analysis) agrees(k int32) bool {
	g := a.group[k]
	return g >= 0 && a.groupOK[g]
}

// Analyze finds the dispatch entries of rs that can be spelled through
// shared chains. rs should be valid (ir.Ruleset.Validate); anything that
// does not resolve is left alone. index, when not nil, maps every chain's
// name to its index in rs.Chains (the last of a repeated name), and g,
// when not nil, is NewGraph(rs, index).
func Analyze(rs *ir.Ruleset, index map[string]int, g *Graph) *Result {
	res := &Result{DroppedSets: map[string]bool{}, byKey: map[listKey]int{}}
	if rs == nil {
		return res
	}
	n := len(rs.Chains)
	if index == nil {
		index = make(map[string]int, n)
		for i, c := range rs.Chains {
			if c != nil {
				index[c.Name] = i
			}
		}
	}
	if g == nil {
		g = NewGraph(rs, index)
	}
	a := &analysis{rs: rs, index: index, g: g, shared: map[string]*sharedChain{}, res: res}
	jobs := a.entryJobs()
	a.prepare(jobs)
	res.Group, res.endpoints = a.group, a.eps
	res.AgreeAt = make([]bool, n)
	for k := range a.group {
		res.AgreeAt[k] = a.agrees(int32(k))
	}
	res.HairpinDone = make([]bool, len(a.groupOK))
	res.Hairpins = make([]Hairpin, 0, len(a.groupOK)) // at most one per group

	// Which entries are lowered; the chains the others reach stay, and so
	// do the chains no entry reaches.
	keep := make([]bool, n)
	var stack []int32
	stay := func(k int) {
		if k >= 0 && !keep[k] {
			keep[k] = true
			stack = append(stack, int32(k))
		}
	}
	// The entries, in the lists' order, are lowered on all CPUs a window
	// at a time, then committed in that order. A lowering holds its
	// endpoints' hairpins and its own copy of every shared chain it
	// reaches until it is committed: lowering all entries before
	// committing any held them all at once (about 180 MB at 50,000
	// Services x 10 endpoints), a window holds a small part.
	lowerings := make([]lowering, min(len(jobs), lowerWindow))
	lower := func(base int) {
		hi := min(len(jobs), base+lowerWindow)
		clear(lowerings) // what the shadowed entries of the window before left
		par.Runs(hi-base, 512, func(lo, hi int) {
			sfx := map[string]string{}
			for j := lo; j < hi; j++ {
				// An entry shadowed by an earlier one of its key is
				// lowered too, and left out below.
				if jb := jobs[base+j]; jb.ci >= 0 {
					lowerings[j] = a.lowerEntry(jb.l, jb.i, jb.k, jb.ci, sfx)
				}
			}
		})
	}
	var lowered []int32
	byTimeout := map[time.Duration][]Key{}
	seen := make(map[listKey]bool, len(jobs))
	sfx := map[string]string{}
	// At most an entry per job.
	res.Entries = make([]Entry, 0, len(jobs))
	res.byKey = make(map[listKey]int, len(jobs))
	for j, jb := range jobs {
		if j%lowerWindow == 0 {
			lower(j)
		}
		lk := listKey{jb.l, jb.k}
		if seen[lk] {
			continue // shadowed by an earlier entry of the key
		}
		seen[lk] = true
		ci := jb.ci
		if ci < 0 {
			continue
		}
		lw := lowerings[j%lowerWindow]
		lowerings[j%lowerWindow] = lowering{}
		ok := lw.ok && a.commit(lw)
		if !ok && lw.sticky {
			// Its shared chain's name was taken: the general way.
			lw = a.lowerGeneral(jb.l, jb.i, jb.k, ci, sfx)
			ok = lw.ok && a.commit(lw)
		}
		if !ok {
			stay(ci)
			continue
		}
		e := lw.entry
		res.byKey[lk] = len(res.Entries)
		res.Entries = append(res.Entries, e)
		lowered = append(lowered, int32(ci))
		if e.Timeout > 0 {
			byTimeout[e.Timeout] = append(byTimeout[e.Timeout], jb.k)
		}
	}
	for _, e := range rs.NoEndpoints {
		stay(a.resolve(e.Target.Chain))
	}
	for _, e := range rs.NoEndpointNodePorts {
		stay(a.resolve(e.Target.Chain))
	}
	reach := func(mark []bool) {
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, t := range g.Edges[g.Start[k]:g.Start[k+1]] {
				if t >= 0 && !mark[t] {
					mark[t] = true
					stack = append(stack, t)
				}
			}
		}
	}
	reach(keep)
	byLowered := make([]bool, n)
	for _, k := range lowered {
		if !byLowered[k] {
			byLowered[k] = true
			stack = append(stack, k)
		}
	}
	reach(byLowered)
	for k := range keep {
		keep[k] = keep[k] || !byLowered[k]
	}
	res.Absorbed = make([]bool, n)
	used := map[string]bool{}
	var buf [3]ir.Rule
	for i, c := range rs.Chains {
		if c == nil {
			continue
		}
		res.Absorbed[i] = !keep[i]
		if !keep[i] {
			continue
		}
		rules := c.RulesInto(buf[:])
		for j := range rules {
			r := &rules[j]
			if r.Match.Affinity != "" {
				used[r.Match.Affinity] = true
			}
			if u, ok := r.Action.(*ir.AffinityUpdate); ok && u != nil {
				used[u.Set] = true
			}
		}
	}
	for _, s := range rs.AffinitySets {
		if !used[s.Name] {
			res.DroppedSets[s.Name] = true
		}
	}

	maps := map[MapUse]bool{}
	for _, s := range a.shared {
		res.Shared = append(res.Shared, s.Shared)
		for _, r := range s.Rules {
			if r.Action == ChoiceAction {
				maps[MapUse{r.Kind, r.Variant}] = true
			}
		}
	}
	sort.Slice(res.Shared, func(i, j int) bool { return res.Shared[i].Name < res.Shared[j].Name })
	for m := range maps {
		res.Maps = append(res.Maps, m)
	}
	sort.Slice(res.Maps, func(i, j int) bool {
		if res.Maps[i].Kind != res.Maps[j].Kind {
			return res.Maps[i].Kind < res.Maps[j].Kind
		}
		return res.Maps[i].Variant < res.Maps[j].Variant
	})
	for t, keys := range byTimeout {
		res.Timeouts = append(res.Timeouts, TimeoutKeys{t, keys})
	}
	sort.Slice(res.Timeouts, func(i, j int) bool { return res.Timeouts[i].Timeout < res.Timeouts[j].Timeout })
	return res
}
