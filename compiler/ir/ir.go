// Package ir defines kpc's intermediate representation: what the compiler
// decided about every packet, independent of any kernel backend.
//
// The IR is the contract between the compiler (which owns every semantic
// choice: which endpoints, which verdict, what is masqueraded) and the
// renderers (nft text, iptables-restore text, netlink), which only spell the
// decisions. It imports the standard library only.
//
// A Ruleset describes one IP family. Packets are processed in this order,
// which every renderer and the tracer (Trace) must preserve:
//
//  1. Firewall (before DNAT, new connections only): a packet whose
//     (destination, protocol, port) is a key of Ruleset.Firewall runs that
//     entry's chain; the chain drops sources outside the allowed ranges.
//  2. Dispatch (NAT, prerouting and output): the first of
//     Ruleset.Services keyed on (destination, protocol, port), else, when the
//     destination is a NodePort address (NodePortAddrs), Ruleset.NodePorts
//     keyed on (protocol, port). A match runs its Target. A chain that
//     falls off its end leaves the packet untouched (no DNAT).
//  3. Filter (after DNAT, new connections only; only packets not DNATed by
//     step 2 can still match, since their destination has changed): in
//     iptables mode, TCP to a local address and a HealthCheckNodePorts port
//     is accepted first (delivered as addressed); then
//     NoEndpoints, then NoEndpointNodePorts (NodePort addresses only), then
//     (when RejectClusterIPs) any other port or protocol on a live ClusterIP
//     is rejected, then (when DropServiceCIDRs) any other destination inside
//     ServiceCIDRs is dropped.
//  4. Postrouting: a packet marked for masquerade (MarkMasq) is
//     masqueraded to the node's address, with fully random source ports.
package ir

import (
	"net/netip"
	"strings"
	"time"
)

// Family is an IP family.
type Family uint8

// The IP families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Protocol is a transport protocol that a Service port can use.
type Protocol string

// The protocols of Kubernetes Service ports.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Program is the compiler's output: one Ruleset per IP family that has
// anything to program, IPv4 first. A Program with no Rulesets is valid (an
// input with only headless Services, say); renderers then emit an empty
// table for IPv4.
type Program struct {
	Rulesets []*Ruleset
	// Notes are human-readable facts about decisions the compiler made
	// offline (allocated cluster IPs and NodePorts), in a stable order.
	// Renderers print them as comments at the top of their output.
	Notes []string
	// Services is the catalog of the input's Services as the compiler
	// resolved them, sorted by namespace/name (see ServiceInfo). Dump does
	// not print it and Validate does not check it.
	Services []ServiceInfo
}

// Ruleset is everything kpc programs for one IP family. All slices are
// sorted by the compiler so that output is deterministic; renderers must
// not depend on map iteration.
type Ruleset struct {
	Family Family
	// Table is the name of kpc's private table ("kpc"); for iptables it is
	// the chain-name prefix ("KPC").
	Table string
	// ConntrackTCPLiberal (iptables mode only): conntrack is liberal with
	// TCP windows (KubeProxyConfiguration conntrack.tcpBeLiberal), so
	// packets it finds INVALID are not dropped in forwarding.
	ConntrackTCPLiberal bool
	// MasqMark is the packet-mark bit that MarkMasq sets and postrouting
	// tests (kube-proxy's default is 0x4000).
	MasqMark uint32

	Node Node

	// Services dispatches on exact (address, protocol, port): cluster IPs,
	// external IPs and load-balancer ingress IPs.
	Services []ServiceEntry
	// NodePorts dispatches on (protocol, port) for destinations that are
	// NodePort addresses (see Node).
	NodePorts []NodePortEntry
	// Firewall holds load-balancer IPs with source ranges; Target is a
	// chain of kind FirewallChain.
	Firewall []ServiceEntry
	// NoEndpoints rejects or drops traffic to Service addresses whose
	// ports have no usable endpoint. Targets are Reject or Drop only.
	NoEndpoints []ServiceEntry
	// NoEndpointNodePorts is NoEndpoints for NodePorts.
	NoEndpointNodePorts []NodePortEntry
	// ClusterIPs lists every live cluster IP of this family (Services that
	// are not headless), sorted.
	ClusterIPs []netip.Addr
	// RejectClusterIPs: traffic to a live cluster IP on a port or protocol
	// that no Service port claims is rejected (nftables mode). The
	// iptables renderer ignores it, as kube-proxy's iptables mode does.
	RejectClusterIPs bool
	// ServiceCIDRs are the cluster's Service ranges of this family.
	ServiceCIDRs []netip.Prefix
	// DropServiceCIDRs: traffic to an unallocated address inside
	// ServiceCIDRs is dropped (nftables mode; ignored by iptables).
	DropServiceCIDRs bool
	// HealthCheckNodePorts are the healthCheckNodePorts of Services with
	// externalTrafficPolicy Local; kube-proxy's iptables mode accepts them
	// in the filter table. Sorted.
	HealthCheckNodePorts []uint16

	// Chains are the per-Service and per-endpoint chains, sorted by name.
	Chains []*Chain
	// AffinitySets are the session-affinity sets referenced by chains,
	// sorted by name.
	AffinitySets []AffinitySet
}

// HoldsServices reports whether rs holds a Service. A Ruleset without one
// is kept for its family's Service ranges, whose unallocated addresses it
// drops.
func (rs *Ruleset) HoldsServices() bool { return len(rs.ClusterIPs) > 0 }

// Settings returns a Ruleset with rs's settings only: its family, table,
// node, masquerade mark and conntrack setting, and its Service ranges and
// what is done with them, without chains, dispatch entries, cluster IPs,
// health-check ports or affinity sets.
func (rs *Ruleset) Settings() *Ruleset {
	return &Ruleset{
		Family:              rs.Family,
		Table:               rs.Table,
		MasqMark:            rs.MasqMark,
		ConntrackTCPLiberal: rs.ConntrackTCPLiberal,
		Node:                rs.Node,
		RejectClusterIPs:    rs.RejectClusterIPs,
		ServiceCIDRs:        rs.ServiceCIDRs,
		DropServiceCIDRs:    rs.DropServiceCIDRs,
	}
}

// Node is the node context a Ruleset was compiled for.
type Node struct {
	// Name is the node's name; endpoints with this nodeName are local.
	// Empty means a node that owns no endpoints.
	Name string
	// IPs are the node's addresses of this family.
	IPs []netip.Addr
	// Zone is the node's topology zone (for hints); may be empty.
	Zone string
	// PodCIDRs are the cluster's pod ranges of this family (kube-proxy's
	// --cluster-cidr); traffic from outside them is "off-cluster". Empty
	// with an empty LocalIface means the local-traffic detector is not
	// configured.
	PodCIDRs []netip.Prefix
	// LocalIface, when not empty, is kube-proxy's local-traffic detector
	// by interface (detectLocalMode BridgeInterface): a packet from a
	// local pod is one that arrives on this interface; with
	// LocalIfacePrefix (InterfaceNamePrefix), on any interface whose name
	// starts with it. Matches test it with Match.Iface. A Node has either
	// PodCIDRs or LocalIface.
	LocalIface       string
	LocalIfacePrefix bool
	// NodePortAddrs are the destination addresses on which NodePorts are
	// served. When NodePortAllLocal is true, every local address of the
	// node serves NodePorts and NodePortAddrs is informational.
	NodePortAddrs    []netip.Addr
	NodePortAllLocal bool
	// NodePortDefault says no NodePort addresses were configured, and the
	// two modes differ: nftables mode serves NodePorts on the node's
	// primary IP (NodePortAddrs), iptables mode on every local address,
	// as when NodePortAllLocal is set.
	NodePortDefault bool
	// LocalhostNodePorts (iptables mode only, IPv4 only): NodePorts are
	// also served on loopback from the node itself: on 127.0.0.0/8 when
	// every local address serves them (NodePortAllLocal or
	// NodePortDefault), else on the loopback interface's 127.0.0.1, the
	// one local address kube-proxy finds inside nodePortAddresses.
	LocalhostNodePorts bool
}

// ServiceEntry is one element of an exact-match dispatch map.
type ServiceEntry struct {
	Addr     netip.Addr
	Protocol Protocol
	Port     uint16
	Target   Target
	// Comment names the Kubernetes object: "ns/name:port".
	Comment string
	// Kind says what the address is: "cluster IP" (ClusterIPKind),
	// "external IP", "load balancer IP". Comments name it, and iptables
	// mode checks a NoEndpoints entry of a cluster IP on other paths than
	// the others' (see IsClusterIP).
	Kind string
}

// ClusterIPKind is the Kind of a ServiceEntry of a cluster IP.
const ClusterIPKind = "cluster IP"

// IsClusterIP reports whether e is the entry of a cluster IP: by its
// Kind, or, for an entry without one, by whether clusterIPs holds its
// address. An external IP that is also another Service's cluster IP is
// not one.
func (e ServiceEntry) IsClusterIP(clusterIPs map[netip.Addr]bool) bool {
	if e.Kind != "" {
		return e.Kind == ClusterIPKind
	}
	return clusterIPs[e.Addr]
}

// NodePortEntry is one element of the NodePort dispatch map.
type NodePortEntry struct {
	Protocol Protocol
	Port     uint16
	Target   Target
	Comment  string
}

// Target is a dispatch verdict: exactly one of Chain (go to that chain),
// Drop or Reject is set.
type Target struct {
	Chain  string
	Drop   bool
	Reject bool
}

// ChainKind says what a chain is for. Renderers use it to name chains
// (kube-proxy's prefixes) and the tracer to report paths.
type ChainKind uint8

// The chain kinds.
const (
	// ServiceChain chooses among cluster-policy endpoints ("service-").
	ServiceChain ChainKind = iota + 1
	// LocalChain chooses among node-local endpoints ("local-").
	LocalChain
	// ExternalChain handles external destinations ("external-").
	ExternalChain
	// FirewallChain enforces loadBalancerSourceRanges ("firewall-").
	FirewallChain
	// EndpointChain DNATs to one endpoint ("endpoint-").
	EndpointChain
)

// String returns the kube-proxy chain-name prefix of the kind.
func (k ChainKind) String() string {
	switch k {
	case ServiceChain:
		return "service"
	case LocalChain:
		return "local"
	case ExternalChain:
		return "external"
	case FirewallChain:
		return "firewall"
	case EndpointChain:
		return "endpoint"
	}
	return "unknown"
}

// Chain is a named list of rules evaluated in order. A packet that matches
// no terminal rule falls off the end and returns to dispatch untouched.
type Chain struct {
	// Name is unique in the Ruleset and derived from identity:
	// "<kind>-<HASH>-ns/svc/proto/port" or, for endpoint chains,
	// "...__ip/port" (kube-proxy's scheme). Renderers with shorter name
	// limits derive their own names from it.
	Name string
	Kind ChainKind
	// Service is "ns/name:portName" of the Service port the chain serves.
	Service string
	// Protocol is the Service port's protocol.
	Protocol Protocol
	// Comment is a human-readable description; a compact endpoint
	// chain's is usually empty, and Describe derives it.
	Comment string
	// Rules are the chain's rules, in order; empty when Endpoint is set.
	// Read them through RuleList, which also expands an Endpoint.
	Rules []Rule
	// Endpoint, when non-nil, makes this a compact endpoint chain (of kind
	// EndpointChain, with no Rules): it stands for the rules
	// Endpoint.AppendRules gives. The compiler builds every endpoint chain
	// so: a large Ruleset holds one per endpoint of every Service port,
	// and three rules take three times the memory of this form.
	Endpoint *EndpointTarget
}

// EndpointTarget is what a compact endpoint chain does, in kube-proxy's
// order: traffic from the endpoint itself (hairpin) is marked for
// masquerade, the client is recorded for ClientIP affinity when Update
// names a set, and the packet is DNATed.
type EndpointTarget struct {
	// DNAT is the endpoint; its Addr is also the hairpin source.
	DNAT DNAT
	// Update records the client in Update.Set; Set is "" without
	// affinity.
	Update AffinityUpdate
}

// HairpinComment is the comment of a compact endpoint chain's hairpin rule.
const HairpinComment = "hairpin"

// AppendRules appends the rules e stands for to rules and returns the
// extended slice: the hairpin mark (source e.DNAT.Addr), the affinity
// update when e.Update.Set is set, and the DNAT. The actions point into
// e: the rules allocate nothing beyond rules' own growth.
func (e *EndpointTarget) AppendRules(rules []Rule) []Rule {
	rules = append(rules, Rule{Match: Match{SrcAddr: e.DNAT.Addr}, Action: &MarkMasq{}, Comment: HairpinComment})
	if e.Update.Set != "" {
		rules = append(rules, Rule{Action: &e.Update})
	}
	return append(rules, Rule{Action: &e.DNAT})
}

// Describe returns the chain's Comment, or for a compact endpoint chain
// without one, "<Service> -> <ip:port>".
func (c *Chain) Describe() string {
	if c.Comment != "" || c.Endpoint == nil {
		return c.Comment
	}
	d := &c.Endpoint.DNAT
	return EndpointDescription(c.Service, netip.AddrPortFrom(d.Addr, d.Port))
}

// EndpointDescription describes endpoint ap of the Service port service
// ("ns/name:port"), as the comments of its endpoint chain, of its affinity
// set and of the rule that picks it by affinity read: "<service> ->
// <ip:port>".
func EndpointDescription(service string, ap netip.AddrPort) string {
	return service + " -> " + ap.String()
}

// NumRules returns len(RuleList()) without building a compact endpoint
// chain's rules.
func (c *Chain) NumRules() int {
	if c.Endpoint == nil {
		return len(c.Rules)
	}
	if c.Endpoint.Update.Set != "" {
		return 3
	}
	return 2
}

// RuleList returns the chain's rules: Rules, or the rules of a compact
// endpoint chain, built anew (see EndpointTarget.AppendRules).
func (c *Chain) RuleList() []Rule {
	return c.RulesInto(nil)
}

// RulesInto returns the chain's rules as RuleList does, but builds a
// compact endpoint chain's in buf[:0]: a loop over many chains that
// passes one buffer of capacity 3 allocates nothing. The result is valid
// until buf is used again.
func (c *Chain) RulesInto(buf []Rule) []Rule {
	if c.Endpoint == nil {
		return c.Rules
	}
	return c.Endpoint.AppendRules(buf[:0])
}

// Rule is a match and an action. A zero Match matches every packet.
type Rule struct {
	Match   Match
	Action  Action
	Comment string
}

// Match is a conjunction of conditions; unset fields do not constrain.
//
// The small fields come last, where they share one word: a large Ruleset
// holds millions of rules.
type Match struct {
	// DstAddr, when valid, requires this destination address (before
	// DNAT).
	DstAddr netip.Addr
	// SrcAddr, when valid, requires this source address (hairpin).
	SrcAddr netip.Addr
	// SrcIn requires the source to lie in one of these prefixes.
	SrcIn []netip.Prefix
	// SrcNotIn requires the source to lie outside all of these prefixes.
	SrcNotIn []netip.Prefix
	// Affinity, when non-empty, requires the source address to be in this
	// AffinitySet (a recent client of the endpoint, within the timeout).
	Affinity string
	// DstPort, when non-zero, requires this destination port.
	DstPort uint16
	// SrcLocal requires the source to be a local address of the node
	// (nft "fib saddr type local"; iptables "-m addrtype --src-type LOCAL").
	SrcLocal bool
	// Iface tests the interface the packet arrived on against the node's
	// local-traffic interface (Node.LocalIface): kube-proxy's detectors
	// by interface. A packet the node sends arrived on none.
	Iface IfaceTest
}

// IfaceTest is a Match's test of the input interface.
type IfaceTest uint8

// The interface tests.
const (
	// IfaceAny does not test the interface.
	IfaceAny IfaceTest = iota
	// IfaceLocal requires a packet from a local pod: one that arrived on
	// the node's local-traffic interface (nft iifname "cbr0"; iptables
	// "-i cbr0").
	IfaceLocal
	// IfaceNotLocal requires any other packet (nft iifname != "cbr0";
	// iptables "! -i cbr0").
	IfaceNotLocal
)

// Action is what a rule does. It is a closed set; the members are
// *MarkMasq, *AffinityUpdate (both continue with the next rule), and
// *Goto, *Balance, *DNAT, *Drop, *Reject (all terminal).
type Action interface{ isAction() }

// MarkMasq marks the packet for masquerade in postrouting and continues.
type MarkMasq struct{}

// AffinityUpdate records the packet's source address in Set (refreshing its
// timeout) and continues.
type AffinityUpdate struct{ Set string }

// Goto continues in Chain and does not come back.
type Goto struct{ Chain string }

// Balance chooses one of Chains uniformly at random and goes to it. Chains
// is non-empty and sorted by endpoint "ip:port" (kube-proxy's order).
type Balance struct{ Chains []string }

// DNAT rewrites the destination to Addr:Port and ends processing. Protocol
// is the Service port's protocol (the rule matches only it).
type DNAT struct {
	Addr     netip.Addr
	Port     uint16
	Protocol Protocol
}

// Drop silently discards the packet.
type Drop struct{}

// Reject refuses the packet (TCP reset or ICMP port unreachable).
type Reject struct{}

func (*MarkMasq) isAction()       {}
func (*AffinityUpdate) isAction() {}
func (*Goto) isAction()           {}
func (*Balance) isAction()        {}
func (*DNAT) isAction()           {}
func (*Drop) isAction()           {}
func (*Reject) isAction()         {}

var (
	_ Action = (*MarkMasq)(nil)
	_ Action = (*AffinityUpdate)(nil)
	_ Action = (*Goto)(nil)
	_ Action = (*Balance)(nil)
	_ Action = (*DNAT)(nil)
	_ Action = (*Drop)(nil)
	_ Action = (*Reject)(nil)
)

// AffinitySet is a set of client addresses with a per-element timeout,
// used for ClientIP session affinity (one set per Service port endpoint).
type AffinitySet struct {
	Name    string
	Timeout time.Duration
	// Comment names the endpoint: "ns/name:port -> ip:port".
	Comment string
}

// LocalIfacePattern is n's local-traffic interface as nft's iifname
// matches it: the name, or the prefix followed by "*" ("" when n has
// none).
func (n *Node) LocalIfacePattern() string {
	if n.LocalIface != "" && n.LocalIfacePrefix {
		return n.LocalIface + "*"
	}
	return n.LocalIface
}

// LocalIfaceHas reports whether a packet that arrived on the interface
// named iface is from a local pod by n's LocalIface ("" is no interface:
// a packet the node sent).
func (n *Node) LocalIfaceHas(iface string) bool {
	switch {
	case n.LocalIface == "" || iface == "":
		return false
	case n.LocalIfacePrefix:
		return strings.HasPrefix(iface, n.LocalIface)
	}
	return iface == n.LocalIface
}
