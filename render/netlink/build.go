//go:build linux

package netlink

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
	"kpc/render/internal/nftplan"
)

// tableSpec is one table of the batch: its objects in the order they are
// created (the order of render.NFT's text, which is the kernel's listing
// order).
type tableSpec struct {
	table *nftables.Table
	// define is false for a family without a Ruleset: the batch only
	// removes a stale table of that name.
	define bool
	chains []*nftables.Chain
	sets   []*setSpec
	rules  []*ruleSpec
	// maps is the number of numbered maps of each kind the plan hashed
	// Balances into, and slotted the elements of those Balances (see
	// nftplan.Plan's Maps and Total).
	maps, slotted int
}

// setSpec is a set or map and its elements.
type setSpec struct {
	set   *nftables.Set
	elems []nftables.SetElement
	// userdata, when set, replaces the userdata google/nftables writes
	// (see typeof.go).
	userdata []byte
}

// ruleSpec is a rule and the anonymous sets it looks up, which are added
// just before it.
type ruleSpec struct {
	rule *nftables.Rule
	anon []*setSpec
}

// Names of the fixed objects of a kpc table (see render.NFT).
const (
	servicesChain        = "services"
	firewallCheckChain   = "firewall-check"
	serviceEPCheckChain  = "service-endpoints-check"
	nodePortEPCheckChain = "nodeport-endpoints-check"
	clusterIPsCheckChain = "cluster-ips-check"
	rejectChain          = "reject-chain"
	markMasqChain        = "mark-for-masquerade"
	masqueradingChain    = "masquerading"

	clusterIPsSet       = "cluster-ips"
	nodePortIPsSet      = "nodeport-ips"
	serviceIPsMap       = "service-ips"
	serviceNodePortsMap = "service-nodeports"
	firewallIPsMap      = "firewall-ips"
	noEPServicesMap     = "no-endpoint-services"
	noEPNodePortsMap    = "no-endpoint-nodeports"

	// defaultTable names the tables of a Program without Rulesets.
	defaultTable = "kpc"
	// commentMax is nft's limit on a comment, in bytes.
	commentMax = 128
)

// baseChain is one hooked chain of the fixed layout.
type baseChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority int32
}

// baseChains are the hooked chains, in the order of the text.
var baseChains = []baseChain{
	{"filter-prerouting-pre-dnat", nftables.ChainTypeFilter, nftables.ChainHookPrerouting, -110},
	{"filter-output-pre-dnat", nftables.ChainTypeFilter, nftables.ChainHookOutput, -110},
	{"nat-prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, -100},
	{"nat-output", nftables.ChainTypeNAT, nftables.ChainHookOutput, -100},
	{"filter-forward", nftables.ChainTypeFilter, nftables.ChainHookForward, 0},
	{"filter-input", nftables.ChainTypeFilter, nftables.ChainHookInput, 0},
	{"filter-output", nftables.ChainTypeFilter, nftables.ChainHookOutput, 0},
	{"nat-postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, 100},
}

// builder builds the tableSpec of one Ruleset.
type builder struct {
	rs    *ir.Ruleset
	fam   family
	table *nftables.Table
	spec  *tableSpec
	plan  *nftplan.Plan
	lower bool
	ids   *uint32
	// direct is the direct layout of the Services entries (nil when none
	// is lowered).
	direct *nftdirect.Result

	chains map[string]*nftables.Chain
	sets   map[string]*nftables.Set
}

// nextID gives out set IDs, unique within the batch. Named sets are
// referenced by name and ID, anonymous ones by ID (the kernel names them).
func (b *builder) nextID() uint32 {
	*b.ids++
	return *b.ids
}

// buildTable builds the table of one Ruleset from the plan render.NFT made
// of it; the Ruleset must have been checked by render.NFT (names,
// addresses, references).
func buildTable(rs *ir.Ruleset, fam family, plan *nftplan.Plan, lower bool, ids *uint32, fingerprint string) (*tableSpec, error) {
	t := &nftables.Table{Name: rs.Table, Family: fam.table}
	b := &builder{
		rs: rs, fam: fam, table: t, spec: &tableSpec{table: t, define: true, maps: plan.Maps, slotted: plan.Total}, lower: lower, ids: ids,
		plan:   plan,
		chains: map[string]*nftables.Chain{}, sets: map[string]*nftables.Set{},
	}
	if d := b.plan.Direct; lower && d.Lowered() {
		b.direct = d
	}
	b.addChains()
	if err := b.addSets(); err != nil {
		return nil, err
	}
	if fingerprint != "" {
		b.addFingerprint(fingerprint)
	}
	b.addFixedRules()
	b.addDirectRules()
	if err := b.addChainRules(); err != nil {
		return nil, err
	}
	return b.spec, nil
}

// checkCIDRs says whether cluster-ips-check drops by service CIDR.
func (b *builder) checkCIDRs() bool { return b.rs.DropServiceCIDRs && len(b.rs.ServiceCIDRs) > 0 }

// checkClusterIPs says whether cluster-ips-check exists.
func (b *builder) checkClusterIPs() bool { return b.rs.RejectClusterIPs || b.checkCIDRs() }

// addChains creates every chain, in the text's order, before any rule or
// map element refers to one (the kernel resolves names when it reads each
// message).
func (b *builder) addChains() {
	accept := nftables.ChainPolicyAccept
	for _, bc := range baseChains {
		c := &nftables.Chain{Name: bc.name, Table: b.table, Type: bc.typ, Hooknum: bc.hook,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(bc.priority)), Policy: &accept}
		b.addChain(c)
	}
	names := []string{markMasqChain, masqueradingChain, servicesChain, firewallCheckChain, serviceEPCheckChain, nodePortEPCheckChain}
	if b.checkClusterIPs() {
		names = append(names, clusterIPsCheckChain)
	}
	names = append(names, rejectChain)
	for _, n := range names {
		b.addChain(&nftables.Chain{Name: n, Table: b.table})
	}
	b.addDirectChains()
	for i, c := range b.rs.Chains {
		if c == nil || b.plan.DroppedAt(i) {
			continue
		}
		b.addChain(&nftables.Chain{Name: c.Name, Table: b.table})
	}
}

func (b *builder) addChain(c *nftables.Chain) {
	b.chains[c.Name] = c
	b.spec.chains = append(b.spec.chains, c)
}

// addSet creates a named set with the elements given.
func (b *builder) addSet(s *nftables.Set, elems []nftables.SetElement) *setSpec {
	s.Table = b.table
	if sizedSet(s) {
		s.Size = nftplan.SetSize(len(elems))
	}
	s.ID = b.nextID()
	b.sets[s.Name] = s
	spec := &setSpec{set: s, elems: elems}
	b.spec.sets = append(b.spec.sets, spec)
	return spec
}

// sizedSet reports whether s is a set kpc fills and sizes for its elements
// (nftplan.SetSize), as render.NFT writes them: not anonymous, not
// an interval set and not one the kernel fills.
func sizedSet(s *nftables.Set) bool {
	return !s.Anonymous && !s.Interval && !s.Dynamic && !s.HasTimeout
}

// targetVerdict spells a dispatch target as a map verdict.
func targetVerdict(t ir.Target) *expr.Verdict {
	switch {
	case t.Drop:
		return &expr.Verdict{Kind: expr.VerdictDrop}
	case t.Reject:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: rejectChain}
	}
	return &expr.Verdict{Kind: expr.VerdictGoto, Chain: t.Chain}
}

// pad4 pads a key field to the 4-byte register boundary, as concatenated
// keys are laid out.
func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// appendAddr appends an address as AsSlice spells it.
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		a4 := a.As4()
		return append(b, a4[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

func serviceKeyBytes(a netip.Addr, p ir.Protocol, port uint16) []byte {
	k := append(a.AsSlice(), pad4([]byte{protoNum(p)})...)
	return append(k, pad4(be16(port))...)
}

func nodePortKeyBytes(p ir.Protocol, port uint16) []byte {
	return append(pad4([]byte{protoNum(p)}), pad4(be16(port))...)
}

// serviceElems spells exact-match entries, the first of equal keys
// winning (as in render.NFT); with d, an entry of the direct layout goes
// to its shared chain.
func serviceElems(es []ir.ServiceEntry, d *nftdirect.Result, l nftdirect.List) []nftables.SetElement {
	type key struct {
		a netip.Addr
		p ir.Protocol
		n uint16
	}
	seen := make(map[key]bool, len(es))
	out := make([]nftables.SetElement, 0, len(es))
	for _, e := range es {
		k := key{e.Addr, e.Protocol, e.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		v := targetVerdict(e.Target)
		if d != nil {
			if de, ok := d.Lookup(l, nftdirect.Key{Kind: nftdirect.AddrKey, Addr: e.Addr, Protocol: e.Protocol, Port: e.Port}); ok {
				v = &expr.Verdict{Kind: expr.VerdictGoto, Chain: de.Chain}
			}
		}
		out = append(out, nftables.SetElement{Key: serviceKeyBytes(e.Addr, e.Protocol, e.Port),
			VerdictData: v, Comment: comment(e.Comment)})
	}
	return out
}

// nodePortElems is serviceElems for NodePort entries.
func nodePortElems(es []ir.NodePortEntry, d *nftdirect.Result) []nftables.SetElement {
	type key struct {
		p ir.Protocol
		n uint16
	}
	seen := make(map[key]bool, len(es))
	out := make([]nftables.SetElement, 0, len(es))
	for _, e := range es {
		k := key{e.Protocol, e.Port}
		if seen[k] {
			continue
		}
		seen[k] = true
		v := targetVerdict(e.Target)
		if d != nil {
			if de, ok := d.Lookup(nftdirect.NodePortsList, nftdirect.Key{Kind: nftdirect.PortKey, Protocol: e.Protocol, Port: e.Port}); ok {
				v = &expr.Verdict{Kind: expr.VerdictGoto, Chain: de.Chain}
			}
		}
		out = append(out, nftables.SetElement{Key: nodePortKeyBytes(e.Protocol, e.Port),
			VerdictData: v, Comment: comment(e.Comment)})
	}
	return out
}

// addrElems spells addresses without repeats.
func addrElems(as []netip.Addr) []nftables.SetElement {
	seen := make(map[netip.Addr]bool, len(as))
	out := make([]nftables.SetElement, 0, len(as))
	for _, a := range as {
		if !seen[a] {
			seen[a] = true
			out = append(out, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	return out
}

// addSets creates the sets and maps in the text's order.
func (b *builder) addSets() error {
	f := b.fam
	rs := b.rs
	svcKey := nftables.MustConcatSetType(f.addrType, nftables.TypeInetProto, nftables.TypeInetService)
	npKey := nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	addrSet := func(name, cmt string, elems []nftables.SetElement) {
		b.addSet(&nftables.Set{Name: name, KeyType: f.addrType, KeyByteOrder: binaryutil.BigEndian, Comment: cmt}, elems)
	}
	vmapSet := func(name, cmt string, key nftables.SetDatatype, elems []nftables.SetElement) {
		b.addSet(&nftables.Set{Name: name, IsMap: true, Concatenation: true, KeyType: key, DataType: nftables.TypeVerdict,
			Comment: cmt}, elems)
	}

	addrSet(clusterIPsSet, "live cluster IPs", addrElems(rs.ClusterIPs))
	if !rs.Node.NodePortAllLocal {
		addrSet(nodePortIPsSet, "addresses that serve NodePorts", addrElems(rs.Node.NodePortAddrs))
	}
	vmapSet(serviceIPsMap, "service address dispatch", svcKey, serviceElems(rs.Services, b.direct, nftdirect.ServicesList))
	vmapSet(serviceNodePortsMap, "NodePort dispatch", npKey, nodePortElems(rs.NodePorts, b.direct))
	vmapSet(firewallIPsMap, "load balancer source ranges", svcKey, serviceElems(rs.Firewall, b.direct, nftdirect.FirewallList))
	vmapSet(noEPServicesMap, "service addresses without endpoints", svcKey, serviceElems(rs.NoEndpoints, nil, 0))
	vmapSet(noEPNodePortsMap, "NodePorts without endpoints", npKey, nodePortElems(rs.NoEndpointNodePorts, nil))
	b.addDirectSets()

	// The numbered maps are keyed by a host-endian numgen value. nft
	// declares them "typeof numgen random mod 1", which it records in set
	// userdata that google/nftables cannot write; the key type is integer
	// and the key byte order host endian, as nft records them.
	for k, elems := range b.plan.ChoiceMaps {
		if len(elems) == 0 {
			continue // a map no Balance hashed to
		}
		es := make([]nftables.SetElement, len(elems))
		for i, e := range elems {
			es[i] = nftables.SetElement{Key: ne32(e.Key), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Chain}}
		}
		spec := b.addSet(&nftables.Set{Name: fmt.Sprintf("%s%d", nftplan.ChoiceMapPrefix, k), IsMap: true,
			KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian, DataType: nftables.TypeVerdict,
			Comment: "uniform endpoint choice"}, es)
		spec.userdata = typeofUserdata(typeofChoice, spec.set.Comment)
	}
	if b.lower {
		dataType := nftables.MustConcatSetType(f.addrType, nftables.TypeInetService)
		for k, elems := range b.plan.EndpointMaps {
			if len(elems) == 0 {
				continue // a map no Balance hashed to
			}
			es := make([]nftables.SetElement, len(elems))
			for i, e := range elems {
				es[i] = nftables.SetElement{Key: ne32(e.Key), Val: append(e.Addr.AsSlice(), pad4(be16(e.Port))...)}
			}
			spec := b.addSet(&nftables.Set{Name: fmt.Sprintf("%s%d", nftplan.EndpointsMapPrefix, k), IsMap: true,
				KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian, DataType: dataType,
				Comment: "DNAT destinations of endpoint choices without endpoint chains"}, es)
			spec.userdata = typeofUserdata(typeofEndpoints4, spec.set.Comment)
			if f.ir == ir.IPv6 {
				spec.userdata = typeofUserdata(typeofEndpoints6, spec.set.Comment)
			}
		}
		es := make([]nftables.SetElement, len(b.plan.Hairpin))
		keys := make([]byte, 0, 2*int(f.addrLen)*len(es))
		for i, e := range b.plan.Hairpin {
			k := len(keys)
			keys = appendAddr(appendAddr(keys, e.Src), e.Dst)
			es[i] = nftables.SetElement{Key: keys[k:len(keys):len(keys)]}
		}
		b.addSet(&nftables.Set{Name: nftplan.HairpinSet, Concatenation: true,
			KeyType: nftables.MustConcatSetType(f.addrType, f.addrType),
			Comment: "endpoints that reach themselves through a service: masquerade"}, es)
	}
	for _, s := range rs.AffinitySets {
		if b.lower && b.plan.DroppedSets[s.Name] {
			continue
		}
		if s.Timeout <= 0 || s.Timeout%time.Millisecond != 0 {
			return fmt.Errorf("affinity set %q: timeout %v is not a positive whole number of milliseconds", s.Name, s.Timeout)
		}
		// No size, as nft sends none: the kernel then starts the set's
		// hash table small (a size of 65535 would make it allocate and
		// clear a 1 MiB bucket array per set) and gives the set its
		// default size of 65535 when a rule's update binds it.
		b.addSet(&nftables.Set{Name: s.Name, KeyType: f.addrType, KeyByteOrder: binaryutil.BigEndian,
			HasTimeout: true, Dynamic: true, Timeout: s.Timeout, Comment: comment(s.Comment)}, nil)
	}
	return nil
}

// rule appends a rule to chain.
func (b *builder) rule(chain string, cmt string, anon []*setSpec, exprs ...[]expr.Any) {
	var all []expr.Any
	for _, e := range exprs {
		all = append(all, e...)
	}
	r := &nftables.Rule{Table: b.table, Chain: b.chains[chain], Exprs: all}
	if cmt != "" {
		r.UserData = userdata.AppendString(nil, userdata.TypeComment, comment(cmt))
	}
	b.spec.rules = append(b.spec.rules, &ruleSpec{rule: r, anon: anon})
}

func one(e ...expr.Any) []expr.Any { return e }

// nodePortDst is the NodePort destination test: "<l3> daddr
// @nodeport-ips", or "fib daddr type local <l3> daddr != loopback".
func (b *builder) nodePortDst() []expr.Any {
	if b.rs.Node.NodePortAllLocal {
		lb := b.fam.loopback
		m, _ := b.prefixesMatch(false, []netip.Prefix{lb}, true)
		return append(fibLocal(false), m...)
	}
	return one(b.fam.loadAddr(false, 1), lookup(b.sets[nodePortIPsSet], false))
}

// addFixedRules adds the rules of the base and helper chains.
func (b *builder) addFixedRules() {
	f := b.fam
	rs := b.rs
	jump := func(c string) []expr.Any { return one(verdict(expr.VerdictJump, c)) }
	newJump := func(c string) []expr.Any { return append(ctStateNewExprs(), verdict(expr.VerdictJump, c)) }

	b.rule("filter-prerouting-pre-dnat", "", nil, newJump(firewallCheckChain))
	b.rule("filter-output-pre-dnat", "", nil, newJump(firewallCheckChain))
	b.rule("nat-prerouting", "", nil, jump(servicesChain))
	b.rule("nat-output", "", nil, jump(servicesChain))
	b.rule("filter-forward", "", nil, newJump(serviceEPCheckChain))
	if b.checkClusterIPs() {
		b.rule("filter-forward", "", nil, newJump(clusterIPsCheckChain))
	}
	b.rule("filter-input", "", nil, newJump(nodePortEPCheckChain))
	b.rule("filter-input", "", nil, newJump(serviceEPCheckChain))
	b.rule("filter-output", "", nil, newJump(serviceEPCheckChain))
	if b.checkClusterIPs() {
		b.rule("filter-output", "", nil, newJump(clusterIPsCheckChain))
	}
	if b.direct != nil && b.direct.Sticky() {
		for _, c := range []string{"filter-forward", "filter-input", "filter-output"} {
			b.rule(c, "", nil, stickyJump())
		}
	}
	b.rule("nat-postrouting", "", nil, jump(masqueradingChain))

	m := rs.MasqMark
	b.rule(markMasqChain, "", nil, markSet(m, false))
	if b.lower {
		b.rule(masqueradingChain, "", nil, ctStatusDNATExprs(), f.hairpinKey(),
			one(lookup(b.sets[nftplan.HairpinSet], false)), markSet(m, false))
	}
	b.rule(masqueradingChain, "", nil, markClear(m), one(verdict(expr.VerdictReturn, "")))
	b.rule(masqueradingChain, "", nil, markSet(m, true))
	b.rule(masqueradingChain, "", nil, one(&expr.Masq{FullyRandom: true}))

	b.rule(servicesChain, "", nil, f.serviceKey(), one(vmap(b.sets[serviceIPsMap])))
	b.rule(servicesChain, "", nil, b.nodePortDst(), nodePortKey(), one(vmap(b.sets[serviceNodePortsMap])))
	b.rule(firewallCheckChain, "", nil, f.serviceKey(), one(vmap(b.sets[firewallIPsMap])))
	b.rule(serviceEPCheckChain, "", nil, f.serviceKey(), one(vmap(b.sets[noEPServicesMap])))
	b.rule(nodePortEPCheckChain, "", nil, b.nodePortDst(), nodePortKey(), one(vmap(b.sets[noEPNodePortsMap])))
	if b.checkClusterIPs() {
		if rs.RejectClusterIPs {
			b.rule(clusterIPsCheckChain, "invalid port or protocol of a cluster IP", nil,
				one(f.loadAddr(false, 1), lookup(b.sets[clusterIPsSet], false), f.reject()))
		}
		if b.checkCIDRs() {
			m, anon := b.prefixesMatch(false, rs.ServiceCIDRs, false)
			b.rule(clusterIPsCheckChain, "unallocated address in the service CIDRs", anonList(anon),
				m, one(verdict(expr.VerdictDrop, "")))
		}
	}
	b.rule(rejectChain, "", nil, one(f.reject()))
}

func anonList(s ...*setSpec) []*setSpec {
	var out []*setSpec
	for _, x := range s {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// addChainRules adds the rules of the IR's chains.
func (b *builder) addChainRules() error {
	f := b.fam
	var rbuf [3]ir.Rule
	for i, c := range b.rs.Chains {
		if c == nil || b.plan.DroppedAt(i) {
			continue
		}
		rules := c.RulesInto(rbuf[:])
		for j := range rules {
			r := &rules[j]
			m, anon := b.match(c, &r.Match)
			var act []expr.Any
			switch a := r.Action.(type) {
			case *ir.MarkMasq:
				act = one(verdict(expr.VerdictJump, markMasqChain))
			case *ir.AffinityUpdate:
				s := b.sets[a.Set]
				if s == nil {
					return fmt.Errorf("chain %q rule %d: unknown affinity set %q", c.Name, j, a.Set)
				}
				act = one(f.loadAddr(true, 1), &expr.Dynset{SrcRegKey: 1, SetName: s.Name, SetID: s.ID,
					Operation: unix.NFT_DYNSET_OP_UPDATE})
			case *ir.Goto:
				act = one(verdict(expr.VerdictGoto, a.Chain))
			case *ir.Balance:
				pb, ok := b.plan.Balances[nftplan.RuleRef{Chain: i, Rule: j}]
				if !ok {
					return fmt.Errorf("chain %q rule %d: balance without a plan", c.Name, j)
				}
				if pb.Lowered {
					s := b.sets[fmt.Sprintf("%s%d", nftplan.EndpointsMapPrefix, pb.Slot.Map)]
					act = f.loweredDNAT(pb.Protocol, len(a.Chains), pb.Slot.Offset, s)
				} else {
					s := b.sets[fmt.Sprintf("%s%d", nftplan.ChoiceMapPrefix, pb.Slot.Map)]
					act = one(numgen(len(a.Chains), pb.Slot.Offset), vmap(s))
				}
			case *ir.DNAT:
				act = f.dnat(a)
			case *ir.Drop:
				act = one(verdict(expr.VerdictDrop, ""))
			case *ir.Reject:
				act = one(f.reject())
			default:
				return fmt.Errorf("chain %q rule %d: unsupported action %T", c.Name, j, r.Action)
			}
			b.rule(c.Name, r.Comment, anon, m, act)
		}
	}
	return nil
}

// match spells a rule's conditions in the text's order.
func (b *builder) match(c *ir.Chain, m *ir.Match) ([]expr.Any, []*setSpec) {
	f := b.fam
	var out []expr.Any
	var anon []*setSpec
	if m.DstAddr.IsValid() {
		out = append(out, f.addrEq(false, m.DstAddr, expr.CmpOpEq)...)
	}
	if m.DstPort != 0 {
		out = append(out, protoEq(c.Protocol)...)
		out = append(out, loadDport(1), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(m.DstPort)})
	}
	if m.SrcAddr.IsValid() {
		out = append(out, f.addrEq(true, m.SrcAddr, expr.CmpOpEq)...)
	}
	if len(m.SrcIn) > 0 {
		e, s := b.prefixesMatch(true, m.SrcIn, false)
		out = append(out, e...)
		anon = append(anon, anonList(s)...)
	}
	if len(m.SrcNotIn) > 0 {
		e, s := b.prefixesMatch(true, m.SrcNotIn, true)
		out = append(out, e...)
		anon = append(anon, anonList(s)...)
	}
	if m.SrcLocal {
		out = append(out, fibLocal(true)...)
	}
	if m.Iface != ir.IfaceAny {
		out = append(out, ifaceTest(&b.rs.Node, m.Iface)...)
	}
	if m.Affinity != "" {
		if s := b.sets[m.Affinity]; s != nil {
			out = append(out, f.loadAddr(true, 1), lookup(s, false))
		}
	}
	return out, anon
}

// ifaceTest is nft's iifname test it of node n's local-traffic interface:
// the name with its NUL padding to IFNAMSIZ bytes, or for a prefix the
// prefix's bytes alone, as nft sends iifname "cbr0" and iifname "veth*".
func ifaceTest(n *ir.Node, it ir.IfaceTest) []expr.Any {
	data := []byte(n.LocalIface)
	if !n.LocalIfacePrefix {
		data = append(data, make([]byte, unix.IFNAMSIZ-len(data))...)
	}
	op := expr.CmpOpEq
	if it == ir.IfaceNotLocal {
		op = expr.CmpOpNeq
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data}}
}

// comment makes s what render.NFT writes for it: valid UTF-8 without
// control characters or double quotes, cut to nft's limit at a character
// boundary.
func comment(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		if r == '"' {
			return '\''
		}
		return r
	}, s)
	if len(s) > commentMax {
		n := commentMax
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}
