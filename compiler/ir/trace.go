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
	// service-CIDR drop, NodePorts are also served on 127.0.0.0/8 to the
	// node's own processes when Node.LocalhostNodePorts is set, and TCP to
	// a local address and a health-check NodePort is accepted
	// (VerdictAccept).
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
	// postrouting.
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
// ModeIPTables also 127.0.0.0/8 from the node when LocalhostNodePorts is
// set. If some branches DNAT and others do not (an IR the compiler never
// produces), the verdict is VerdictDNAT and the others are ignored.
func Trace(p *Program, pkt Packet, mode Mode) Result {
	pkt.Src = pkt.Src.Unmap()
	pkt.Dst = pkt.Dst.Unmap()
	if p == nil || !pkt.Dst.IsValid() {
		return Result{}
	}
	fam := familyOfAddr(pkt.Dst)
	var rs *Ruleset
	for _, r := range p.Rulesets {
		if r != nil && r.Family == fam {
			rs = r
			break
		}
	}
	if rs == nil {
		return Result{}
	}
	t := &tracer{rs: rs, pkt: pkt, mode: mode, chains: make(map[string]*Chain, len(rs.Chains))}
	for _, c := range rs.Chains {
		if c != nil {
			t.chains[c.Name] = c
		}
	}
	return t.run()
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

func (b branch) with(step string) branch {
	b.path = append(slices.Clip(b.path), step)
	return b
}

type tracer struct {
	rs     *Ruleset
	pkt    Packet
	mode   Mode
	chains map[string]*Chain
}

func (t *tracer) run() Result {
	branches := []branch{{prob: 1}}
	// 1. Firewall.
	branches = t.stage(branches, func(b branch) []branch {
		if e, ok := findService(t.rs.Firewall, t.pkt); ok {
			return t.runTarget(e.Target, b.with(StepFirewall), 0)
		}
		return []branch{b}
	})
	// 2. Dispatch.
	branches = t.stage(branches, func(b branch) []branch {
		if e, ok := findService(t.rs.Services, t.pkt); ok {
			return t.runTarget(e.Target, b.with(StepServices), 0)
		}
		if t.nodePortDst() {
			if e, ok := findNodePort(t.rs.NodePorts, t.pkt); ok {
				return t.runTarget(e.Target, b.with(StepNodePorts), 0)
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
		b = b.with(StepHealthCheck)
		b.status = accepted
		return b
	}
	if e, ok := findService(t.rs.NoEndpoints, t.pkt); ok {
		return verdictBranch(e.Target, b.with(StepNoEndpoints))
	}
	if t.nodePortDst() {
		if e, ok := findNodePort(t.rs.NoEndpointNodePorts, t.pkt); ok {
			return verdictBranch(e.Target, b.with(StepNoEndpointNodePorts))
		}
	}
	if t.mode == ModeNFT {
		if t.rs.RejectClusterIPs && slices.Contains(t.rs.ClusterIPs, t.pkt.Dst) {
			b = b.with(StepClusterIPs)
			b.status = rejected
			return b
		}
		if t.rs.DropServiceCIDRs {
			for _, p := range t.rs.ServiceCIDRs {
				if p.Contains(t.pkt.Dst) {
					b = b.with(StepServiceCIDRs)
					b.status = dropped
					return b
				}
			}
		}
	}
	return b
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
	b = b.with(name)
	c, ok := t.chains[name]
	if !ok || depth > maxTraceDepth {
		// A missing chain or a loop (both rejected by Validate) drops.
		b.status = dropped
		return []branch{b}
	}
	for _, r := range c.RuleList() {
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
			var out []branch
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
		return true
	}
	if n.NodePortAllLocal || t.mode == ModeIPTables && n.NodePortDefault {
		return !d.IsLoopback() && (t.pkt.ToNode || slices.Contains(n.IPs, d))
	}
	return slices.Contains(n.NodePortAddrs, d)
}

func findService(es []ServiceEntry, p Packet) (ServiceEntry, bool) {
	for _, e := range es {
		if e.Addr == p.Dst && e.Protocol == p.Protocol && e.Port == p.Port {
			return e, true
		}
	}
	return ServiceEntry{}, false
}

func findNodePort(es []NodePortEntry, p Packet) (NodePortEntry, bool) {
	for _, e := range es {
		if e.Protocol == p.Protocol && e.Port == p.Port {
			return e, true
		}
	}
	return NodePortEntry{}, false
}

func (t *tracer) result(branches []branch) Result {
	var reaches []Reach
	var other *branch
	for i := range branches {
		b := &branches[i]
		if b.status == dnatted {
			reaches = append(reaches, Reach{Endpoint: b.ep, Probability: b.prob, Masquerade: b.masq, Path: b.path})
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
