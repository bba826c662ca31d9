package compiler

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"kpc/compiler/ir"
	"kpc/internal/par"
)

// builder accumulates one family's Ruleset. Dispatch keys are owned by the
// first Service (in processing order) that claims them; a later Service
// claiming the same key gets an error and no entry.
type builder struct {
	c  *compiler
	f  ir.Family
	rs *ir.Ruleset

	keyOwner   map[svcKey]string
	npOwner    map[npKey]string
	reported   map[string]bool
	services   map[svcKey]bool
	firewall   map[svcKey]bool
	noEndpoint map[svcKey]bool
	nodePorts  map[npKey]bool
	noEndpNP   map[npKey]bool
	clusterIPs map[netip.Addr]bool
	hcPorts    map[uint16]bool
	sets       map[string]bool

	// chains are the chains in the order they were added, endpoints the
	// endpoint chains among them, which are built by sort (see
	// materialize).
	chains    []chainEntry
	endpoints []pendingEndpoint
}

type svcKey struct {
	addr  netip.Addr
	proto ir.Protocol
	port  uint16
}

type npKey struct {
	proto ir.Protocol
	port  uint16
}

// buildRuleset compiles svcs, the Services proxied in family f, whose
// prepared ports are ports (see prepareServices); it returns nil when there
// is none and the family's service CIDRs are not given.
func (c *compiler) buildRuleset(f ir.Family, svcs []*svc, ports [][]*servicePort) *ir.Ruleset {
	b := &builder{
		c: c, f: f,
		rs: &ir.Ruleset{
			Family:              f,
			Table:               tableName,
			MasqMark:            c.cfg.masqMark,
			ConntrackTCPLiberal: c.cfg.tcpLiberal,
			Node:                c.cfg.irNode(f),
			RejectClusterIPs:    true,
			ServiceCIDRs:        c.cfg.knownServiceCIDRs(f),
		},
		npOwner:    map[npKey]string{},
		reported:   map[string]bool{},
		firewall:   map[svcKey]bool{},
		noEndpoint: map[svcKey]bool{},
		nodePorts:  map[npKey]bool{},
		noEndpNP:   map[npKey]bool{},
		hcPorts:    map[uint16]bool{},
	}
	b.rs.DropServiceCIDRs = len(b.rs.ServiceCIDRs) > 0
	// A chain per reachable endpoint of each port, and up to four more
	// (service, local, external, firewall); a dispatch key per address of
	// each port; an affinity set per endpoint of a port with affinity.
	endpoints, others, keys, sets := 0, 0, 0, 0
	for _, ps := range ports {
		for _, p := range ps {
			endpoints += len(p.cat.reachable)
			others += 4
			keys += 1 + len(p.externalIPs) + len(p.lbIPs)
			if p.affinity {
				sets += len(p.cat.reachable)
			}
		}
	}
	b.chains = make([]chainEntry, 0, endpoints+others)
	b.endpoints = make([]pendingEndpoint, 0, endpoints)
	b.keyOwner = make(map[svcKey]string, keys)
	b.services = make(map[svcKey]bool, keys)
	b.clusterIPs = make(map[netip.Addr]bool, len(svcs))
	b.sets = make(map[string]bool, sets)
	b.rs.Services = make([]ir.ServiceEntry, 0, keys)
	b.rs.ClusterIPs = make([]netip.Addr, 0, len(svcs))
	b.rs.AffinitySets = make([]ir.AffinitySet, 0, sets)
	for i, s := range svcs {
		b.addService(s, ports[i])
	}
	// kube-proxy keeps a table per family of the node even when it holds
	// no Service; what such a table does to packets is drop those to the
	// family's service CIDRs. A family is kept when its CIDRs were given
	// (flags or ServiceCIDR documents), not when they are the defaults.
	if !b.rs.HoldsServices() && (c.cfg.defaultCIDRs || len(b.rs.ServiceCIDRs) == 0) {
		return nil
	}
	if c.opts.SkipRulesetBodies {
		return b.rs.Settings()
	}
	b.sort()
	return b.rs
}

// prepareServices returns the prepared ports of each of svcs in family f
// (compiler.servicePorts): the endpoint work, which reads no builder state,
// spread over the CPUs in contiguous runs of Services.
func (c *compiler) prepareServices(svcs []*svc, f ir.Family) [][]*servicePort {
	out := make([][]*servicePort, len(svcs))
	prepare := func(lo, hi int) {
		var names nameBuf
		var scratch []byte
		for i := lo; i < hi; i++ {
			out[i] = c.servicePorts(svcs[i], f, &names, &scratch)
		}
	}
	par.Runs(len(svcs), 256, prepare)
	return out
}

// claim reports whether Service s may use dispatch key k; the first
// claimant owns it.
// path returns the spec path a conflict is reported at (called only then).
func (b *builder) claim(s *svc, k svcKey, path func() string) bool {
	owner, ok := b.keyOwner[k]
	if !ok {
		b.keyOwner[k] = s.id
		return true
	}
	if owner == s.id {
		return true
	}
	b.conflict(s, path(), fmt.Sprintf("%s port %d/%s is already used by Service %s", k.addr, k.port, k.proto, owner))
	return false
}

func (b *builder) claimNodePort(s *svc, k npKey, path func() string) bool {
	owner, ok := b.npOwner[k]
	if !ok {
		b.npOwner[k] = s.id
		return true
	}
	if owner == s.id {
		return true
	}
	b.conflict(s, path(), fmt.Sprintf("nodePort %d/%s is already used by Service %s", k.port, k.proto, owner))
	return false
}

func (b *builder) conflict(s *svc, path, msg string) {
	key := s.id + "\x00" + path + "\x00" + msg
	if b.reported[key] {
		return
	}
	b.reported[key] = true
	b.c.diags.Add(s.pos, s.obj, path, msg)
}

func (b *builder) addServiceEntry(table map[svcKey]bool, list *[]ir.ServiceEntry, e ir.ServiceEntry) {
	k := svcKey{e.Addr, e.Protocol, e.Port}
	if table[k] {
		return
	}
	table[k] = true
	*list = append(*list, e)
}

func (b *builder) addNodePortEntry(table map[npKey]bool, list *[]ir.NodePortEntry, e ir.NodePortEntry) {
	k := npKey{e.Protocol, e.Port}
	if table[k] {
		return
	}
	table[k] = true
	*list = append(*list, e)
}

// chainEntry is a chain of the Ruleset: built (c), or the endpoint chain
// of endpoints[ep].
type chainEntry struct {
	name string
	c    *ir.Chain
	ep   int32
	seq  int32 // the order in which it was added
	// key is nameKey(name): most comparisons of the sort need only it.
	key [2]uint64
}

// nameKey returns the first 16 bytes of name (zero-padded) as two
// big-endian numbers: nameKey(a) < nameKey(b) implies a < b, so only names
// with equal keys need comparing.
func nameKey(name string) [2]uint64 {
	var b [16]byte
	copy(b[:], name)
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// pendingEndpoint is an endpoint chain to build: endpoint e of p.
type pendingEndpoint struct {
	p *servicePort
	e *endpoint
}

// addChain adds a chain; of chains with the same name, the first added is
// kept (see sort).
func (b *builder) addChain(ch *ir.Chain) {
	b.chains = append(b.chains, chainEntry{name: ch.Name, c: ch, ep: -1})
}

// addEndpointChain adds the chain of endpoint e of p (see materialize).
func (b *builder) addEndpointChain(p *servicePort, e *endpoint) {
	b.chains = append(b.chains, chainEntry{name: e.chain, ep: int32(len(b.endpoints))})
	b.endpoints = append(b.endpoints, pendingEndpoint{p, e})
}

func (b *builder) addAffinitySet(name string, timeout time.Duration, comment string) {
	if b.sets[name] {
		return
	}
	b.sets[name] = true
	b.rs.AffinitySets = append(b.rs.AffinitySets, ir.AffinitySet{Name: name, Timeout: timeout, Comment: comment})
}

func compareServiceEntry(a, b ir.ServiceEntry) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func compareNodePortEntry(a, b ir.NodePortEntry) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func (b *builder) sort() {
	rs := b.rs
	for _, l := range []*[]ir.ServiceEntry{&rs.Services, &rs.Firewall, &rs.NoEndpoints} {
		slices.SortFunc(*l, compareServiceEntry)
	}
	for _, l := range []*[]ir.NodePortEntry{&rs.NodePorts, &rs.NoEndpointNodePorts} {
		slices.SortFunc(*l, compareNodePortEntry)
	}
	slices.SortFunc(rs.ClusterIPs, netip.Addr.Compare)
	slices.Sort(rs.HealthCheckNodePorts)
	b.sortChains()
	slices.SortFunc(rs.AffinitySets, func(x, y ir.AffinitySet) int { return strings.Compare(x.Name, y.Name) })
}

// sortChains sorts the chains by name, keeps the first added of equal
// names, and builds rs.Chains (see materialize).
func (b *builder) sortChains() {
	chains := sortedChains(b.chains)
	b.chains = nil
	kept := chains[:0]
	for i, c := range chains {
		if i > 0 && c.name == chains[i-1].name {
			continue
		}
		kept = append(kept, c)
	}
	b.rs.Chains = b.materialize(kept)
	b.endpoints = nil
}

// sortedChains sorts chains by name, chains of the same name in the order
// they were added, in place, and returns them.
//
// The compiler's chain names are a prefix, then eight characters of a
// hash (hashAndTruncate): the order of the prefix and the hash packs in 43
// bits, beside the chain's position, into one integer, and sorting
// integers is several times faster than sorting the entries by name. Only
// chains whose prefix and hash are the same are then compared by name.
func sortedChains(chains []chainEntry) []chainEntry {
	const posBits = 21
	keys := make([]uint64, len(chains))
	for i, c := range chains {
		k, ok := hashKey(c.name)
		if !ok || len(chains) >= 1<<posBits {
			sortChainsByName(chains)
			return chains
		}
		keys[i] = k<<posBits | uint64(i)
	}
	slices.Sort(keys)
	pos := func(k uint64) int { return int(k & (1<<posBits - 1)) }
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j]>>posBits == keys[i]>>posBits {
			j++
		}
		if j-i > 1 { // the same prefix and hash: by name, then position
			slices.SortFunc(keys[i:j], func(x, y uint64) int {
				return cmp.Or(strings.Compare(chains[pos(x)].name, chains[pos(y)].name), cmp.Compare(x, y))
			})
		}
		i = j
	}
	// The order is applied in place, a cycle of the permutation at a
	// time: a copy of the entries would be 48 bytes an entry more at the
	// compile's peak of memory (1.2 million entries at 50,000 Services x
	// 10 endpoints). A key whose entry has moved is set to done.
	const done = ^uint64(0)
	for i := range keys {
		if keys[i] == done {
			continue
		}
		first := chains[i]
		for j := i; ; {
			src := pos(keys[j])
			keys[j] = done
			if src == i {
				chains[j] = first
				break
			}
			chains[j] = chains[src]
			j = src
		}
	}
	return chains
}

// chainPrefixes are the prefixes of the compiler's chain names, in byte
// order; none is a prefix of another.
var chainPrefixes = []string{prefixEndpoint, prefixExternal, prefixFirewall, prefixLocal, prefixService}

// hashKey returns the rank of name's prefix among chainPrefixes and the
// ranks of the eight base32 characters after it, 3 + 40 bits whose order
// is the order of the names' first len(prefix)+8 bytes; false when name
// is not so made.
func hashKey(name string) (uint64, bool) {
	for p, prefix := range chainPrefixes {
		if !strings.HasPrefix(name, prefix) || len(name) < len(prefix)+8 {
			continue
		}
		k := uint64(p)
		for _, c := range []byte(name[len(prefix) : len(prefix)+8]) {
			var r byte
			switch {
			case '2' <= c && c <= '7': // before the letters in byte order
				r = c - '2'
			case 'A' <= c && c <= 'Z':
				r = c - 'A' + 6
			default:
				return 0, false
			}
			k = k<<5 | uint64(r)
		}
		return k, true
	}
	return 0, false
}

// sortChainsByName sorts chains by name, then by the order they were added
// (their position in chains), comparing the names' first 16 bytes as
// numbers first.
func sortChainsByName(chains []chainEntry) {
	for i := range chains {
		chains[i].seq = int32(i)
		chains[i].key = nameKey(chains[i].name)
	}
	par.SortFunc(chains, func(x, y chainEntry) int {
		if c := cmp.Or(cmp.Compare(x.key[0], y.key[0]), cmp.Compare(x.key[1], y.key[1])); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(x.name, y.name), cmp.Compare(x.seq, y.seq))
	})
}

// materialize returns the chains of entries, in order. Their chain
// structs, rules, DNAT actions and endpoint targets are allocated in
// arrays in that order, built chains being copied: every later pass over
// a large Ruleset (validation, rendering) then reads memory in order
// instead of chasing pointers to where each Service's chains were built.
// Endpoint chains are compact (ir.Chain.Endpoint). The arrays are filled
// on all CPUs, each worker a contiguous run of entries.
func (b *builder) materialize(entries []chainEntry) []*ir.Chain {
	// at[i] is where entry i's rules, DNATs and endpoint target start.
	type offsets struct{ rule, dnat, target int32 }
	at := make([]offsets, len(entries)+1)
	var o offsets
	for i, ce := range entries {
		at[i] = o
		if ce.c == nil {
			o.target++
			continue
		}
		o.rule += int32(len(ce.c.Rules))
		for j := range ce.c.Rules {
			if _, ok := ce.c.Rules[j].Action.(*ir.DNAT); ok {
				o.dnat++
			}
		}
	}
	at[len(entries)] = o
	out := make([]*ir.Chain, len(entries))
	cs := make([]ir.Chain, len(entries))
	rules := make([]ir.Rule, o.rule)
	dnats := make([]ir.DNAT, o.dnat)
	targets := make([]ir.EndpointTarget, o.target)
	fill := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ce := entries[i]
			if ce.c == nil {
				pe := b.endpoints[ce.ep]
				p, e := pe.p, pe.e
				t := &targets[at[i].target]
				t.DNAT = ir.DNAT{Addr: e.ap.Addr(), Port: e.ap.Port(), Protocol: p.proto}
				if p.affinity {
					t.Update.Set = e.set
				}
				// The comment is left to Describe.
				cs[i] = ir.Chain{Name: e.chain, Kind: ir.EndpointChain, Service: p.name, Protocol: p.proto, Endpoint: t}
				out[i] = &cs[i]
				continue
			}
			r, d := at[i].rule, at[i].dnat
			cs[i] = *ce.c
			for _, rule := range ce.c.Rules {
				if x, ok := rule.Action.(*ir.DNAT); ok {
					if x != nil {
						dnats[d] = *x
						rule.Action = &dnats[d]
					}
					d++
				}
				rules[r] = rule
				r++
			}
			start, end := at[i].rule, at[i+1].rule
			cs[i].Rules = rules[start:end:end]
			out[i] = &cs[i]
		}
	}
	par.Runs(len(entries), 4096, fill)
	return out
}
