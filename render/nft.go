package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"kpc/compiler/ir"
	"kpc/render/internal/nftplan"
)

// NFT renders a Program as an nft -f script (nftables 1.0.6 syntax).
//
// The script starts with comment lines (a "# kpc" header, then each of
// Program.Notes), then, for IPv4 and for IPv6, "add table", "delete table"
// and the full table definition, so that loading it replaces kpc's tables
// in one atomic transaction whether or not they exist, and touches nothing
// else. A family without a Ruleset only gets "add table" and "delete table",
// which removes a stale table of that family; an empty Program defines an
// empty IPv4 table.
//
// The layout is kube-proxy's nftables mode. In each table, in this order:
// the sets cluster-ips and nodeport-ips (absent when NodePorts are served
// on every local address, where "fib daddr type local" and a loopback
// exclusion test the destination instead); the verdict maps service-ips,
// service-nodeports, firewall-ips, no-endpoint-services and
// no-endpoint-nodeports, keyed "address . protocol . port" or "protocol .
// port", their elements commented with the Kubernetes object; the
// endpoint-choice-K maps; the endpoints-K maps and the hairpin-endpoints set
// of the lowering (below); the IR's affinity sets. Then the base chains
// filter-prerouting-pre-dnat and filter-output-pre-dnat (priority -110),
// nat-prerouting and nat-output (-100), filter-forward, filter-input and
// filter-output (0) and nat-postrouting (100); the helper chains
// mark-for-masquerade, masquerading, services, firewall-check,
// service-endpoints-check, nodeport-endpoints-check, cluster-ips-check
// (only when the Ruleset rejects or drops by cluster IP or service CIDR)
// and reject-chain; then the IR's chains under their own names, in the
// IR's order, each preceded by a "#" line naming its Kubernetes object.
//
// Uniform endpoint choice (ir.Balance) never uses an anonymous map per
// Service, which makes the kernel's load super-linear: each Balance of N
// chains gets keys B..B+N-1 in a named verdict map endpoint-choice-K
// ("typeof numgen random mod 1 : verdict") and is spelled "numgen random
// mod N offset B vmap @endpoint-choice-K". Keys are given out in the order
// of the chains and rules; a map holds about the square root of all the
// Balances' elements (see nftShards).
//
// By default, endpoint chains that only mark hairpin traffic and DNAT
// (those without session affinity) are lowered: a Balance over such chains
// becomes "meta l4proto P dnat ip to numgen random mod N offset B map
// @endpoints-K" through a data map ("typeof numgen random mod 1 : ip daddr
// . th dport"), the hairpin mark moves to the first rule of masquerading,
// which marks connections that were DNATed and whose "source . destination
// . protocol . port" is in hairpin-endpoints, and endpoint chains nothing
// else references are left out. The packet fates are the same (see
// nft_lower.go for when a Balance qualifies); the table has one chain per
// Service port instead of one per endpoint, and loads about twice as fast.
// EndpointChains keeps the IR's chains exactly.
type NFT struct {
	// EndpointChains disables the lowering of plain endpoint chains: every
	// IR chain is rendered as a chain, and every Balance as a jump through
	// an endpoint-choice map.
	EndpointChains bool
}

var _ Renderer = NFT{}

// The names of the fixed objects of a kpc table. IR chains and sets must
// not use them.
const (
	nftServicesChain        = "services"
	nftFirewallCheckChain   = "firewall-check"
	nftServiceEPCheckChain  = "service-endpoints-check"
	nftNodePortEPCheckChain = "nodeport-endpoints-check"
	nftClusterIPsCheckChain = "cluster-ips-check"
	nftRejectChain          = "reject-chain"
	nftMarkMasqChain        = "mark-for-masquerade"
	nftMasqueradingChain    = "masquerading"

	nftClusterIPsSet       = "cluster-ips"
	nftNodePortIPsSet      = "nodeport-ips"
	nftServiceIPsMap       = "service-ips"
	nftServiceNodePortsMap = "service-nodeports"
	nftFirewallIPsMap      = "firewall-ips"
	nftNoEPServicesMap     = "no-endpoint-services"
	nftNoEPNodePortsMap    = "no-endpoint-nodeports"
	nftHairpinSet          = nftplan.HairpinSet
)

// nftBaseChain is one hooked chain of the fixed layout.
type nftBaseChain struct {
	name, typ, hook string
	priority        int
}

// nftBaseChains are the hooked chains, in the order they are written.
var nftBaseChains = []nftBaseChain{
	{"filter-prerouting-pre-dnat", "filter", "prerouting", -110},
	{"filter-output-pre-dnat", "filter", "output", -110},
	{"nat-prerouting", "nat", "prerouting", -100},
	{"nat-output", "nat", "output", -100},
	{"filter-forward", "filter", "forward", 0},
	{"filter-input", "filter", "input", 0},
	{"filter-output", "filter", "output", 0},
	{"nat-postrouting", "nat", "postrouting", 100},
}

// nftReserved holds every fixed object name of a table.
var nftReserved = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		nftServicesChain, nftFirewallCheckChain, nftServiceEPCheckChain, nftNodePortEPCheckChain,
		nftClusterIPsCheckChain, nftRejectChain, nftMarkMasqChain, nftMasqueradingChain,
		nftClusterIPsSet, nftNodePortIPsSet, nftServiceIPsMap, nftServiceNodePortsMap, nftFirewallIPsMap,
		nftNoEPServicesMap, nftNoEPNodePortsMap, nftHairpinSet,
	} {
		m[n] = true
	}
	for _, b := range nftBaseChains {
		m[b.name] = true
	}
	return m
}()

// nftFamily holds the spellings that differ between IPv4 and IPv6.
type nftFamily struct {
	family   ir.Family
	table    string // table family: "ip", "ip6"
	l3       string // payload protocol: "ip", "ip6"
	addrType string // "ipv4_addr", "ipv6_addr"
	loopback string // destinations never served as NodePorts
}

var (
	nftIPv4 = nftFamily{ir.IPv4, "ip", "ip", "ipv4_addr", "127.0.0.0/8"}
	nftIPv6 = nftFamily{ir.IPv6, "ip6", "ip6", "ipv6_addr", "::1"}
)

// nftDefaultTable names the table of a family without a Ruleset when no
// Ruleset says otherwise.
const nftDefaultTable = "kpc"

// Render implements Renderer. It returns an error, and writes nothing, when
// p is nil, a Ruleset is invalid, or an intent cannot be spelled in nft
// (an *UnsupportedError).
func (r NFT) Render(w io.Writer, p *ir.Program) error {
	if p == nil {
		return errors.New("nft: nil program")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("nft: invalid program: %w", err)
	}
	var byFamily [2]*ir.Ruleset
	tableName := ""
	for i, rs := range p.Rulesets {
		if rs == nil {
			return fmt.Errorf("nft: ruleset %d is nil", i)
		}
		var slot int
		switch rs.Family {
		case ir.IPv4:
			slot = 0
		case ir.IPv6:
			slot = 1
		default:
			return fmt.Errorf("nft: ruleset %d: unknown IP family %d", i, rs.Family)
		}
		if byFamily[slot] != nil {
			return fmt.Errorf("nft: two %v rulesets", rs.Family)
		}
		byFamily[slot] = rs
		if tableName == "" {
			tableName = rs.Table
		}
	}
	if tableName == "" {
		tableName = nftDefaultTable
	}

	var buf bytes.Buffer
	nftHeader(&buf, p)
	for slot, fam := range []nftFamily{nftIPv4, nftIPv6} {
		rs := byFamily[slot]
		if rs == nil {
			define := slot == 0 && byFamily[1] == nil
			if err := nftCheckName("table", tableName); err != nil {
				return err
			}
			fmt.Fprintf(&buf, "add table %s %s\ndelete table %s %s\n", fam.table, tableName, fam.table, tableName)
			if define {
				fmt.Fprintf(&buf, "table %s %s {\n}\n", fam.table, tableName)
			}
			continue
		}
		t, err := nftPlan(rs, fam, !r.EndpointChains)
		if err != nil {
			return fmt.Errorf("nft: %v ruleset: %w", rs.Family, err)
		}
		t.write(&buf)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("nft: writing: %w", err)
	}
	return nil
}

// nftHeader writes the leading comment lines.
func nftHeader(buf *bytes.Buffer, p *ir.Program) {
	buf.WriteString("# kpc: Kubernetes Services as an nftables ruleset. Load with \"nft -f FILE\":\n")
	buf.WriteString("# kpc: it replaces kpc's tables in one transaction and touches nothing else.\n")
	for _, n := range p.Notes {
		buf.WriteString("# ")
		buf.WriteString(nftLineText(n))
		buf.WriteByte('\n')
	}
}

// nftTable is a Ruleset checked and prepared for writing.
type nftTable struct {
	rs   *ir.Ruleset
	fam  nftFamily
	name string

	chains map[string]*ir.Chain
	sets   map[string]bool

	// Deduplicated dispatch entries (the first of equal keys wins, as in
	// the IR's processing order).
	services, firewall, noEndpoints []ir.ServiceEntry
	nodePorts, noEPNodePorts        []ir.NodePortEntry
	clusterIPs, nodePortIPs         []netip.Addr
	serviceCIDRs                    []netip.Prefix

	// plan places the Balances and says what is lowered; lowering is
	// whether the lowering (and its objects) is enabled.
	plan     *nftplan.Plan
	lowering bool
}

// write writes the table's add/delete commands and definition.
func (t *nftTable) write(buf *bytes.Buffer) {
	f := t.fam
	fmt.Fprintf(buf, "add table %s %s\ndelete table %s %s\n", f.table, t.name, f.table, t.name)
	fmt.Fprintf(buf, "table %s %s {\n", f.table, t.name)
	t.writeSets(buf)
	t.writeFixedChains(buf)
	t.writeChains(buf)
	buf.WriteString("}\n")
}

// writeSets writes the fixed sets and maps, the lowering's maps, and the
// affinity sets.
func (t *nftTable) writeSets(buf *bytes.Buffer) {
	f := t.fam
	svcKey := f.addrType + " . inet_proto . inet_service : verdict"
	npKey := "inet_proto . inet_service : verdict"

	nftSetHead(buf, "set", nftClusterIPsSet, "type "+f.addrType, "live cluster IPs")
	nftAddrElems(buf, t.clusterIPs)
	buf.WriteString("\t}\n")
	if !t.rs.Node.NodePortAllLocal {
		nftSetHead(buf, "set", nftNodePortIPsSet, "type "+f.addrType, "addresses that serve NodePorts")
		nftAddrElems(buf, t.nodePortIPs)
		buf.WriteString("\t}\n")
	}
	nftSetHead(buf, "map", nftServiceIPsMap, "type "+svcKey, "service address dispatch")
	nftServiceElems(buf, t.services)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftServiceNodePortsMap, "type "+npKey, "NodePort dispatch")
	nftNodePortElems(buf, t.nodePorts)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftFirewallIPsMap, "type "+svcKey, "load balancer source ranges")
	nftServiceElems(buf, t.firewall)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftNoEPServicesMap, "type "+svcKey, "service addresses without endpoints")
	nftServiceElems(buf, t.noEndpoints)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftNoEPNodePortsMap, "type "+npKey, "NodePorts without endpoints")
	nftNodePortElems(buf, t.noEPNodePorts)
	buf.WriteString("\t}\n")
	for k, elems := range t.plan.ChoiceMaps {
		nftSetHead(buf, "map", fmt.Sprintf("%s%d", nftplan.ChoiceMapPrefix, k), "typeof numgen random mod 1 : verdict",
			"uniform endpoint choice")
		buf.WriteString("\t\telements = {\n")
		for _, e := range elems {
			fmt.Fprintf(buf, "\t\t\t%d : goto %s,\n", e.Key, e.Chain)
		}
		buf.WriteString("\t\t}\n\t}\n")
	}
	if t.lowering {
		for k, elems := range t.plan.EndpointMaps {
			nftSetHead(buf, "map", fmt.Sprintf("%s%d", nftplan.EndpointsMapPrefix, k),
				"typeof numgen random mod 1 : "+f.l3+" daddr . th dport", "DNAT destinations of endpoint choices without endpoint chains")
			buf.WriteString("\t\telements = {\n")
			for _, e := range elems {
				fmt.Fprintf(buf, "\t\t\t%d : %s . %d,\n", e.Key, e.Addr, e.Port)
			}
			buf.WriteString("\t\t}\n\t}\n")
		}
		nftSetHead(buf, "set", nftHairpinSet, "type "+f.addrType+" . "+f.addrType+" . inet_proto . inet_service",
			"endpoints that reach themselves through a service: masquerade")
		if len(t.plan.Hairpin) > 0 {
			buf.WriteString("\t\telements = {\n")
			for _, e := range t.plan.Hairpin {
				fmt.Fprintf(buf, "\t\t\t%s . %s . %s . %d,\n", e.Src, e.Dst, nftProto(e.Protocol), e.Port)
			}
			buf.WriteString("\t\t}\n")
		}
		buf.WriteString("\t}\n")
	}
	for _, s := range t.rs.AffinitySets {
		fmt.Fprintf(buf, "\tset %s {\n\t\ttype %s\n\t\tflags dynamic,timeout\n\t\ttimeout %s\n", s.Name, f.addrType, nftDuration(s.Timeout))
		if s.Comment != "" {
			fmt.Fprintf(buf, "\t\tcomment %s\n", nftQuote(s.Comment))
		}
		buf.WriteString("\t}\n")
	}
}

// nftSetHead opens a set or map definition.
func nftSetHead(buf *bytes.Buffer, kind, name, typ, comment string) {
	fmt.Fprintf(buf, "\t%s %s {\n\t\t%s\n\t\tcomment %s\n", kind, name, typ, nftQuote(comment))
}

func nftAddrElems(buf *bytes.Buffer, addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, a := range addrs {
		fmt.Fprintf(buf, "\t\t\t%s,\n", a)
	}
	buf.WriteString("\t\t}\n")
}

func nftServiceElems(buf *bytes.Buffer, es []ir.ServiceEntry) {
	if len(es) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, e := range es {
		fmt.Fprintf(buf, "\t\t\t%s . %s . %d%s : %s,\n", e.Addr, nftProto(e.Protocol), e.Port, nftElemComment(e.Comment), nftVerdict(e.Target))
	}
	buf.WriteString("\t\t}\n")
}

func nftNodePortElems(buf *bytes.Buffer, es []ir.NodePortEntry) {
	if len(es) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, e := range es {
		fmt.Fprintf(buf, "\t\t\t%s . %d%s : %s,\n", nftProto(e.Protocol), e.Port, nftElemComment(e.Comment), nftVerdict(e.Target))
	}
	buf.WriteString("\t\t}\n")
}

func nftElemComment(c string) string {
	if c == "" {
		return ""
	}
	return " comment " + nftQuote(c)
}

// nftVerdict spells a dispatch Target as a map verdict. Reject cannot be a
// map verdict, so it goes to reject-chain.
func nftVerdict(t ir.Target) string {
	switch {
	case t.Drop:
		return "drop"
	case t.Reject:
		return "goto " + nftRejectChain
	}
	return "goto " + t.Chain
}

// writeFixedChains writes the base chains and helper chains.
func (t *nftTable) writeFixedChains(buf *bytes.Buffer) {
	f := t.fam
	rs := t.rs
	checkCIDRs := rs.DropServiceCIDRs && len(rs.ServiceCIDRs) > 0
	checkClusterIPs := rs.RejectClusterIPs || checkCIDRs
	body := map[string][]string{
		"filter-prerouting-pre-dnat": {"ct state new jump " + nftFirewallCheckChain},
		"filter-output-pre-dnat":     {"ct state new jump " + nftFirewallCheckChain},
		"nat-prerouting":             {"jump " + nftServicesChain},
		"nat-output":                 {"jump " + nftServicesChain},
		"filter-forward":             {"ct state new jump " + nftServiceEPCheckChain},
		"filter-input": {
			"ct state new jump " + nftNodePortEPCheckChain,
			"ct state new jump " + nftServiceEPCheckChain,
		},
		"filter-output":   {"ct state new jump " + nftServiceEPCheckChain},
		"nat-postrouting": {"jump " + nftMasqueradingChain},
	}
	if checkClusterIPs {
		for _, c := range []string{"filter-forward", "filter-output"} {
			body[c] = append(body[c], "ct state new jump "+nftClusterIPsCheckChain)
		}
	}
	for _, b := range nftBaseChains {
		fmt.Fprintf(buf, "\tchain %s {\n\t\ttype %s hook %s priority %d; policy accept;\n", b.name, b.typ, b.hook, b.priority)
		for _, r := range body[b.name] {
			fmt.Fprintf(buf, "\t\t%s\n", r)
		}
		buf.WriteString("\t}\n")
	}

	mark := fmt.Sprintf("0x%08x", rs.MasqMark)
	fmt.Fprintf(buf, "\tchain %s {\n\t\tmeta mark set meta mark | %s\n\t}\n", nftMarkMasqChain, mark)
	fmt.Fprintf(buf, "\tchain %s {\n", nftMasqueradingChain)
	if t.lowering {
		fmt.Fprintf(buf, "\t\tct status dnat %s saddr . %s daddr . meta l4proto . th dport @%s meta mark set meta mark | %s\n",
			f.l3, f.l3, nftHairpinSet, mark)
	}
	fmt.Fprintf(buf, "\t\tmeta mark & %s == 0x00000000 return\n", mark)
	fmt.Fprintf(buf, "\t\tmeta mark set meta mark ^ %s\n", mark)
	buf.WriteString("\t\tmasquerade fully-random\n\t}\n")

	dispatch := f.l3 + " daddr . meta l4proto . th dport vmap @"
	nodePortDst := f.l3 + " daddr @" + nftNodePortIPsSet
	if rs.Node.NodePortAllLocal {
		nodePortDst = "fib daddr type local " + f.l3 + " daddr != " + f.loopback
	}
	fmt.Fprintf(buf, "\tchain %s {\n\t\t%s%s\n\t\t%s meta l4proto . th dport vmap @%s\n\t}\n",
		nftServicesChain, dispatch, nftServiceIPsMap, nodePortDst, nftServiceNodePortsMap)
	fmt.Fprintf(buf, "\tchain %s {\n\t\t%s%s\n\t}\n", nftFirewallCheckChain, dispatch, nftFirewallIPsMap)
	fmt.Fprintf(buf, "\tchain %s {\n\t\t%s%s\n\t}\n", nftServiceEPCheckChain, dispatch, nftNoEPServicesMap)
	fmt.Fprintf(buf, "\tchain %s {\n\t\t%s meta l4proto . th dport vmap @%s\n\t}\n", nftNodePortEPCheckChain, nodePortDst, nftNoEPNodePortsMap)
	if checkClusterIPs {
		fmt.Fprintf(buf, "\tchain %s {\n", nftClusterIPsCheckChain)
		if rs.RejectClusterIPs {
			fmt.Fprintf(buf, "\t\t%s daddr @%s reject comment %s\n", f.l3, nftClusterIPsSet, nftQuote("invalid port or protocol of a cluster IP"))
		}
		if checkCIDRs {
			fmt.Fprintf(buf, "\t\t%s daddr %s drop comment %s\n", f.l3, nftPrefixes(t.serviceCIDRs), nftQuote("unallocated address in the service CIDRs"))
		}
		buf.WriteString("\t}\n")
	}
	fmt.Fprintf(buf, "\tchain %s {\n\t\treject\n\t}\n", nftRejectChain)
}
