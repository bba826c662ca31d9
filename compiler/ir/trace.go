package ir

import (
	"cmp"
	"net/netip"
	"slices"
)

// Mode selects which kube-proxy backend's behaviour Trace models where the
// two differ.
type Mode uint8

// The trace modes.
const (
	// ModeNFT models nftables mode: traffic to a live cluster IP on an
	// unclaimed port is rejected (RejectClusterIPs) and traffic to an
	// unallocated address in the service CIDRs is dropped
	// (DropServiceCIDRs).
	ModeNFT Mode = iota
	// ModeIPTables models iptables mode: no cluster-IP reject, no
	// service-CIDR drop, NodePorts are also served on loopback to the
	// node's own processes when Node.LocalhostNodePorts is set, and TCP to
	// a local address and a health-check NodePort is accepted
	// (VerdictAccept). Its filter checks hang off the paths as kube-proxy
	// hooks them: those of cluster IPs on the forward and output paths,
	// those of other addresses and of NodePorts on the forward and input
	// paths (a packet the node sends to an external IP of a Service
	// without endpoints leaves the node); a NodePort's check matches every
	// local address, whatever addresses serve NodePorts; and the source
	// ranges of a load-balancer IP only apply when the Service has
	// endpoints (without, every source is rejected).
	ModeIPTables
)

// Packet is the first packet of a new connection.
type Packet struct {
	Src, Dst netip.Addr
	Protocol Protocol
	Port     uint16
	// FromNode says a process on the node sent the packet (the output
	// hook); its source counts as a local address. A Src in Node.IPs also
	// counts as local.
	FromNode bool
	// ToNode says the destination is an address of the node: with
	// Node.NodePortAllLocal it serves NodePorts (loopback excepted), as
	// every local address does in the kernel. A Dst in Node.IPs also
	// counts; ToNode is for the addresses the Ruleset does not list.
	ToNode bool
	// InIface is the interface the packet arrived on, for a Node's
	// local-traffic detector by interface ("": none named; a packet the
	// node sends arrives on none).
	InIface string
}

// Verdict is what happens to a packet. The names carry a Verdict prefix
// because DNAT, Drop and Reject already name Action types.
type Verdict uint8

// The verdicts.
const (
	// VerdictUntouched: no rule changed the packet's destination; it is
	// routed as addressed (possibly masqueraded, see Result.Masquerade).
	VerdictUntouched Verdict = iota
	// VerdictDNAT: the destination was rewritten to an endpoint (see
	// Result.Reaches).
	VerdictDNAT
	// VerdictReject: the packet is refused (TCP reset or ICMP
	// unreachable).
	VerdictReject
	// VerdictDrop: the packet is silently discarded.
	VerdictDrop
	// VerdictAccept (ModeIPTables only): the packet, to a local address
	// and a health-check NodePort, is accepted in the filter table, as
	// kube-proxy's iptables mode accepts it ahead of any firewall of the
	// node; it is delivered to the node as addressed.
	VerdictAccept
)

// String returns "untouched", "dnat", "reject", "drop" or "accept".
func (v Verdict) String() string {
	switch v {
	case VerdictAccept:
		return "accept"
	case VerdictDNAT:
		return "dnat"
	case VerdictReject:
		return "reject"
	case VerdictDrop:
		return "drop"
	}
	return "untouched"
}

// Reach is one endpoint a packet can be DNATed to.
type Reach struct {
	Endpoint netip.AddrPort
	// Probability is the chance of this choice for a new client (session
	// affinity is not modelled: the first packet of a client never matches
	// an affinity set).
	Probability float64
	// Masquerade says the packet is source-NATed to the node's address in
	// postrouting. An endpoint that is an address of the node (in
	// Node.IPs: a host-network endpoint) never is: the packet is
	// delivered locally, without a postrouting hook.
	Masquerade bool
	// Path lists the dispatch maps and chains traversed.
	Path []string
}

// Result is a packet's fate.
type Result struct {
	Verdict Verdict
	// Reaches are the possible endpoints when Verdict is VerdictDNAT,
	// sorted by endpoint then Masquerade; their probabilities sum to 1
	// unless some random choices fall through without DNAT.
	Reaches []Reach
	// Masquerade, for verdicts other than VerdictDNAT, says the packet
	// was marked for masquerade (it matters for VerdictUntouched).
	Masquerade bool
	// Path, for verdicts other than VerdictDNAT, lists the maps and chains
	// traversed.
	Path []string
}

// Step names that Trace puts in paths besides chain names (they are
// kube-proxy's nftables map and chain names).
const (
	StepFirewall            = "firewall-ips"
	StepServices            = "service-ips"
	StepNodePorts           = "service-nodeports"
	StepNoEndpoints         = "no-endpoint-services"
	StepNoEndpointNodePorts = "no-endpoint-nodeports"
	StepClusterIPs          = "cluster-ips"
	StepServiceCIDRs        = "service-cidrs"
	// StepHealthCheck is the iptables filter chain that accepts
	// health-check NodePorts (kube-proxy's KUBE-NODEPORTS).
	StepHealthCheck = "health-check-nodeports"
)

// maxTraceDepth bounds chain nesting so that a looping IR (which Validate
// rejects) cannot hang the tracer.
const maxTraceDepth = 64

// Trace interprets p for pkt, following the processing order documented in
// this package's overview: firewall, dispatch, filter, postrouting. It uses
// the Ruleset of the destination's family; with none the packet is
// untouched. Balance splits the probability uniformly among its chains and
// affinity matches never succeed (the first packet of a client). A chain
// that falls off its end leaves the packet to the filter stage. A packet's
// destination is a NodePort address when it is in Node.IPs (with
// NodePortAllLocal, or NodePortDefault in ModeIPTables, loopback excluded)
// or in NodePortAddrs, and in
// ModeIPTables also loopback from the node when LocalhostNodePorts is
// set (127.0.0.0/8 when every local address serves NodePorts, else
// 127.0.0.1). If some branches DNAT and others do not (an IR the compiler never
// produces), the verdict is VerdictDNAT and the others are ignored.
//
// Trace indexes p for the one packet; to trace many, use a Tracer.
func Trace(p *Program, pkt Packet, mode Mode) Result {
	return NewTracer(p).Trace(pkt, mode)
}

// Tracer traces packets through one Program as Trace does, with the
// Program's chains and dispatch lists indexed once: a trace then costs
// the rules it meets, not the size of the Program. The Program must not
// change while the Tracer is used. A Tracer is safe for concurrent use.
type Tracer struct {
	// SkipPaths leaves every Path of the results empty, for callers that
	// want only the fates of many packets (kpc diff: it saves the paths'
	// allocations, a seventh of BenchmarkCompare's).
	SkipPaths bool

	rulesets []*traceIndex
}

// traceIndex is one Ruleset's lookups. Where a dispatch list holds a key
// twice (an IR that Validate rejects), its first entry wins, as in a
// scan; of two chains of a name, the last.
type traceIndex struct {
	rs                  *Ruleset
	chains              map[string]*Chain
	firewall            map[serviceKey]ServiceEntry
	services            map[serviceKey]ServiceEntry
	noEndpoints         map[serviceKey]ServiceEntry
	nodePorts           map[nodePortKey]NodePortEntry
	noEndpointNodePorts map[nodePortKey]NodePortEntry
	clusterIPs          map[netip.Addr]bool
}

// serviceKey and nodePortKey are the keys of the dispatch lists.
type (
	serviceKey struct {
		addr  netip.Addr
		proto Protocol
		port  uint16
	}
	nodePortKey struct {
		proto Protocol
		port  uint16
	}
)

// NewTracer indexes p (nil traces every packet as untouched).
func NewTracer(p *Program) *Tracer {
	t := &Tracer{}
	if p == nil {
		return t
	}
	for _, rs := range p.Rulesets {
		if rs == nil {
			continue
		}
		x := &traceIndex{rs: rs, chains: make(map[string]*Chain, len(rs.Chains)), clusterIPs: make(map[netip.Addr]bool, len(rs.ClusterIPs))}
		for _, c := range rs.Chains {
			if c != nil {
				x.chains[c.Name] = c
			}
		}
		x.firewall = serviceIndex(rs.Firewall)
		x.services = serviceIndex(rs.Services)
		x.noEndpoints = serviceIndex(rs.NoEndpoints)
		x.nodePorts = nodePortIndex(rs.NodePorts)
		x.noEndpointNodePorts = nodePortIndex(rs.NoEndpointNodePorts)
		for _, a := range rs.ClusterIPs {
			x.clusterIPs[a] = true
		}
		t.rulesets = append(t.rulesets, x)
	}
	return t
}

func serviceIndex(es []ServiceEntry) map[serviceKey]ServiceEntry {
	m := make(map[serviceKey]ServiceEntry, len(es))
	for _, e := range es {
		k := serviceKey{e.Addr, e.Protocol, e.Port}
		if _, dup := m[k]; !dup {
			m[k] = e
		}
	}
	return m
}

func nodePortIndex(es []NodePortEntry) map[nodePortKey]NodePortEntry {
	m := make(map[nodePortKey]NodePortEntry, len(es))
	for _, e := range es {
		k := nodePortKey{e.Protocol, e.Port}
		if _, dup := m[k]; !dup {
			m[k] = e
		}
	}
	return m
}

// Trace is the package's Trace of the Tracer's Program.
func (tr *Tracer) Trace(pkt Packet, mode Mode) Result {
	pkt.Src = pkt.Src.Unmap()
	pkt.Dst = pkt.Dst.Unmap()
	if !pkt.Dst.IsValid() {
		return Result{}
	}
	fam := familyOfAddr(pkt.Dst)
	for _, x := range tr.rulesets {
		if x.rs.Family == fam {
			t := &tracer{traceIndex: x, pkt: pkt, mode: mode, skipPaths: tr.SkipPaths}
			return t.run()
		}
	}
	return Result{}
}

type status uint8

const (
	fallThrough status = iota
	dnatted
	dropped
	rejected
	accepted
)

type branch struct {
	prob   float64
	masq   bool
	path   []string
	status status
	ep     netip.AddrPort
}

// with returns b with step added to its path (unless the Tracer skips
// paths).
func (t *tracer) with(b branch, step string) branch {
	if t.skipPaths {
		return b
	}
	b.path = append(slices.Clip(b.path), step)
	return b
}

type tracer struct {
	*traceIndex
	pkt       Packet
	mode      Mode
	skipPaths bool
	// scratch holds the rules of the compact endpoint chain being
	// followed (see Chain.RulesInto). One serves every depth: such a
	// chain's rules go to no other chain.
	scratch [3]Rule
}

func (t *tracer) run() Result {
	branches := []branch{{prob: 1}}
	// 1. Firewall.
	branches = t.stage(branches, func(b branch) []branch {
		if e, ok := t.firewall[t.serviceKey()]; ok {
			if _, dispatched := t.services[t.serviceKey()]; t.mode == ModeIPTables && !dispatched {
				return []branch{b}
			}
			return t.runTarget(e.Target, t.with(b, StepFirewall), 0)
		}
		return []branch{b}
	})
	// 2. Dispatch.
	branches = t.stage(branches, func(b branch) []branch {
		if e, ok := t.services[t.serviceKey()]; ok {
			return t.runTarget(e.Target, t.with(b, StepServices), 0)
		}
		if t.nodePortDst() {
			if e, ok := t.nodePorts[t.nodePortKey()]; ok {
				return t.runTarget(e.Target, t.with(b, StepNodePorts), 0)
			}
		}
		return []branch{b}
	})
	// 3. Filter.
	branches = t.stage(branches, func(b branch) []branch {
		return []branch{t.filter(b)}
	})
	return t.result(branches)
}

// stage applies f to every branch still falling through and keeps the
// others.
func (t *tracer) stage(in []branch, f func(branch) []branch) []branch {
	if len(in) == 1 && in[0].status == fallThrough {
		return f(in[0]) // the first stages' one branch
	}
	var out []branch
	for _, b := range in {
		if b.status != fallThrough {
			out = append(out, b)
			continue
		}
		out = append(out, f(b)...)
	}
	return out
}

func (t *tracer) filter(b branch) branch {
	if t.mode == ModeIPTables && t.pkt.Protocol == TCP && slices.Contains(t.rs.HealthCheckNodePorts, t.pkt.Port) && t.localDst() {
		b = t.with(b, StepHealthCheck)
		b.status = accepted
		return b
	}
	if e, ok := t.noEndpoints[t.serviceKey()]; ok && t.checked(e.IsClusterIP(t.clusterIPs)) {
		return verdictBranch(e.Target, t.with(b, StepNoEndpoints))
	}
	if t.mode == ModeNFT && t.nodePortDst() || t.mode == ModeIPTables && t.localDst() {
		if e, ok := t.noEndpointNodePorts[t.nodePortKey()]; ok {
			return verdictBranch(e.Target, t.with(b, StepNoEndpointNodePorts))
		}
	}
	if t.mode == ModeNFT {
		if t.rs.RejectClusterIPs && t.clusterIPs[t.pkt.Dst] {
			b = t.with(b, StepClusterIPs)
			b.status = rejected
			return b
		}
		if t.rs.DropServiceCIDRs {
			for _, p := range t.rs.ServiceCIDRs {
				if p.Contains(t.pkt.Dst) {
					b = t.with(b, StepServiceCIDRs)
					b.status = dropped
					return b
				}
			}
		}
	}
	return b
}

// checked reports whether the packet meets the filter check of a
// NoEndpoints entry of a cluster IP (clusterIP) or of another address. In
// ModeNFT it meets every one. In ModeIPTables kube-proxy's filter table
// checks cluster IPs on the forward and output paths and the other
// addresses on the forward and input paths: a packet from the node meets
// the latter only when it is addressed to the node itself (it comes back
// in), and one from elsewhere to a local address meets the former never.
func (t *tracer) checked(clusterIP bool) bool {
	if t.mode == ModeNFT {
		return true
	}
	switch {
	case t.srcLocal():
		return clusterIP || t.localDst()
	case t.localDst():
		return !clusterIP
	}
	return true
}

// verdictBranch applies a NoEndpoints target (drop or reject).
func verdictBranch(tg Target, b branch) branch {
	switch {
	case tg.Reject:
		b.status = rejected
	case tg.Drop:
		b.status = dropped
	}
	return b
}

func (t *tracer) runTarget(tg Target, b branch, depth int) []branch {
	switch {
	case tg.Chain != "":
		return t.runChain(tg.Chain, b, depth)
	case tg.Drop:
		b.status = dropped
	case tg.Reject:
		b.status = rejected
	}
	return []branch{b}
}

func (t *tracer) runChain(name string, b branch, depth int) []branch {
	b = t.with(b, name)
	c, ok := t.chains[name]
	if !ok || depth > maxTraceDepth {
		// A missing chain or a loop (both rejected by Validate) drops.
		b.status = dropped
		return []branch{b}
	}
	for _, r := range c.RulesInto(t.scratch[:0]) {
		if !t.matches(&r.Match) {
			continue
		}
		switch a := r.Action.(type) {
		case *MarkMasq:
			b.masq = true
		case *AffinityUpdate:
			// Records the client; no effect on this packet.
		case *Goto:
			if a != nil {
				return t.runChain(a.Chain, b, depth+1)
			}
		case *Balance:
			if a == nil || len(a.Chains) == 0 {
				continue
			}
			out := make([]branch, 0, len(a.Chains))
			for _, next := range a.Chains {
				nb := b
				nb.prob = b.prob / float64(len(a.Chains))
				out = append(out, t.runChain(next, nb, depth+1)...)
			}
			return out
		case *DNAT:
			if a == nil || a.Protocol != t.pkt.Protocol {
				continue
			}
			b.status = dnatted
			b.ep = netip.AddrPortFrom(a.Addr, a.Port)
			return []branch{b}
		case *Drop:
			b.status = dropped
			return []branch{b}
		case *Reject:
			b.status = rejected
			return []branch{b}
		}
	}
	return []branch{b}
}

func (t *tracer) matches(m *Match) bool {
	p := &t.pkt
	if m.DstAddr.IsValid() && m.DstAddr != p.Dst {
		return false
	}
	if m.DstPort != 0 && m.DstPort != p.Port {
		return false
	}
	if m.SrcAddr.IsValid() && m.SrcAddr != p.Src {
		return false
	}
	if len(m.SrcIn) > 0 && !anyContains(m.SrcIn, p.Src) {
		return false
	}
	if len(m.SrcNotIn) > 0 && anyContains(m.SrcNotIn, p.Src) {
		return false
	}
	if m.SrcLocal && !t.srcLocal() {
		return false
	}
	if m.Iface != IfaceAny && (m.Iface == IfaceLocal) != t.fromPodIface() {
		return false
	}
	if m.Affinity != "" {
		// The first packet of a client is never in an affinity set.
		return false
	}
	return true
}

func anyContains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fromPodIface reports whether the packet arrived on the node's
// local-traffic interface (one the node sends arrived on none).
func (t *tracer) fromPodIface() bool {
	return !t.pkt.FromNode && t.rs.Node.LocalIfaceHas(t.pkt.InIface)
}

func (t *tracer) srcLocal() bool {
	return t.pkt.FromNode || t.pkt.Src.IsLoopback() || slices.Contains(t.rs.Node.IPs, t.pkt.Src)
}

// nodePortDst reports whether the destination serves NodePorts.
// localDst reports whether the packet's destination is a local address
// of the node (the filter table's input hook): a node address, --to-node,
// or loopback from the node.
func (t *tracer) localDst() bool {
	d := t.pkt.Dst
	return t.pkt.ToNode || slices.Contains(t.rs.Node.IPs, d) || t.pkt.FromNode && d.IsLoopback()
}

func (t *tracer) nodePortDst() bool {
	n := &t.rs.Node
	d := t.pkt.Dst
	if t.mode == ModeIPTables && n.LocalhostNodePorts && t.pkt.FromNode && d.Is4() && d.IsLoopback() {
		return n.NodePortAllLocal || n.NodePortDefault || d == netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if n.NodePortAllLocal || t.mode == ModeIPTables && n.NodePortDefault {
		return !d.IsLoopback() && (t.pkt.ToNode || slices.Contains(n.IPs, d))
	}
	return slices.Contains(n.NodePortAddrs, d)
}

// serviceKey is the packet's key in the Services, Firewall and
// NoEndpoints lists.
func (t *tracer) serviceKey() serviceKey {
	return serviceKey{t.pkt.Dst, t.pkt.Protocol, t.pkt.Port}
}

// nodePortKey is the packet's key in the NodePort lists.
func (t *tracer) nodePortKey() nodePortKey {
	return nodePortKey{t.pkt.Protocol, t.pkt.Port}
}

func (t *tracer) result(branches []branch) Result {
	var reaches []Reach
	var other *branch
	for i := range branches {
		b := &branches[i]
		if b.status == dnatted {
			// A packet DNATed to an address of the node (a host-network
			// endpoint) is delivered locally: it takes no postrouting
			// hook, where the masquerade is.
			masq := b.masq && !slices.Contains(t.rs.Node.IPs, b.ep.Addr())
			reaches = append(reaches, Reach{Endpoint: b.ep, Probability: b.prob, Masquerade: masq, Path: b.path})
		} else if other == nil {
			other = b
		}
	}
	if len(reaches) > 0 {
		slices.SortStableFunc(reaches, func(a, b Reach) int {
			return cmp.Or(a.Endpoint.Compare(b.Endpoint), boolCompare(a.Masquerade, b.Masquerade))
		})
		merged := reaches[:1]
		for _, r := range reaches[1:] {
			last := &merged[len(merged)-1]
			if r.Endpoint == last.Endpoint && r.Masquerade == last.Masquerade {
				last.Probability += r.Probability
				continue
			}
			merged = append(merged, r)
		}
		return Result{Verdict: VerdictDNAT, Reaches: merged}
	}
	if other == nil {
		return Result{}
	}
	res := Result{Masquerade: other.masq, Path: other.path}
	switch other.status {
	case dropped:
		res.Verdict = VerdictDrop
	case rejected:
		res.Verdict = VerdictReject
	case accepted:
		res.Verdict = VerdictAccept
	default:
		res.Verdict = VerdictUntouched
	}
	return res
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
