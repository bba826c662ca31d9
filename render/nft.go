package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
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
// The layout is kube-proxy's nftables mode, with the Services spelled by
// data rather than by chains. In each table, in this order: the sets
// cluster-ips and nodeport-ips (absent when NodePorts are served on every
// local address, where "fib daddr type local" and a loopback exclusion
// test the destination instead); the verdict maps service-ips,
// service-nodeports, firewall-ips, no-endpoint-services and
// no-endpoint-nodeports, keyed "address . protocol . port" or "protocol .
// port", their elements commented with the Kubernetes object; the map
// service-endpoints, the map sticky-clients and the verdict map
// sticky-timeouts of the direct layout (below, with their variants
// service-endpoints-1 and nodeport-endpoints, -1, ...); the
// endpoint-choice-K maps; the endpoints-K maps and the hairpin-endpoints
// set of the lowering (below);
// the IR's affinity sets that are still used; the set fingerprint. Then
// the base chains filter-prerouting-pre-dnat and filter-output-pre-dnat
// (priority -110), nat-prerouting and nat-output (-100), filter-forward,
// filter-input and filter-output (0) and nat-postrouting (100); the helper
// chains mark-for-masquerade, masquerading, services, firewall-check,
// service-endpoints-check, nodeport-endpoints-check, cluster-ips-check
// (only when the Ruleset rejects or drops by cluster IP or service CIDR)
// and reject-chain; sticky-update, its sticky-update-T chains (shortest
// timeout first) and the shared chains of the direct layout, by name;
// then the IR's chains that are still used, under their own names, in
// the IR's order, each preceded by a "#" line naming its Kubernetes
// object.
//
// The direct layout (package nftdirect) spells most of the IR's chains as
// data. Each element of service-ips, service-nodeports and firewall-ips
// reaches a tree of chains; that tree is specialized to the element's key
// (a rule that tests another destination address or port is left out, one
// that tests the element's own loses the test) and each uniform choice in
// it among plain endpoint chains becomes "dnat ip to ip daddr . meta
// l4proto . th dport . numgen random mod N map @service-endpoints" (for
// NodePorts "dnat ip to meta l4proto . th dport . numgen random mod N map
// @nodeport-endpoints"): the map holds, for the element's key and each
// bucket 0..N-1, the endpoint's address and port. The specialized chains
// name nothing of their Service, so every element whose tree comes out the
// same goes to one set of shared chains: "dnat-N" or "dnat-N-HASH" (marks
// for masquerade, whose source conditions HASH names, then the choice),
// "sticky-N-HASH" (with affinity, below) and "shared-KIND-HASH" (an
// external, local, service or firewall chain of any other shape). A second
// choice reached from one element (a Local policy's node-local endpoints)
// uses the maps service-endpoints-1 and nodeport-endpoints-1, and so on. A
// plain ClusterIP Service thus has no chain at all, only elements. In
// IPv4 tables, a ClusterIP Service with ClientIP affinity goes to
// "sticky-N-HASH", which first DNATs to the endpoint that sticky-clients (a
// dynamic map) holds for the client and the element's key; after DNAT, the
// filter chains jump to sticky-update on each new connection, which looks
// the connection's original destination up in sticky-timeouts: its
// element sends the key to the chain sticky-update-T of the Service's
// timeout T, which records or refreshes the client's endpoint there. These
// chains have a rule for each protocol, used or not, so that they are the
// same whatever else the input holds. A client thus keeps its endpoint
// until the timeout since its last new connection; kpc apply removes the
// clients of endpoints that are gone, and a full load starts with none.
// Chains and affinity sets that only such elements used are left out;
// anything the specialization cannot express keeps its IR chains.
//
// Uniform endpoint choice (ir.Balance) elsewhere never uses an anonymous
// map per Service, which makes the kernel's load super-linear: each
// Balance of N chains gets keys B..B+N-1 in a named verdict map
// endpoint-choice-K ("typeof numgen random mod 1 : verdict") and is spelled
// "numgen random mod N offset B vmap @endpoint-choice-K". A Balance's map
// and first key are a hash of its chain's name and rule, so that they do
// not depend on the other Services; there are about as many maps as the
// square root of all the Balances' elements (see package nftplan).
//
// By default, endpoint chains that only mark hairpin traffic and DNAT
// (those without session affinity) are lowered: a Balance over such chains
// becomes "meta l4proto P dnat ip to numgen random mod N offset B map
// @endpoints-K" through a data map ("typeof numgen random mod 1 : ip daddr
// . th dport"), the hairpin mark moves to the first rule of masquerading,
// which marks connections that were DNATed and whose "source . destination"
// is in hairpin-endpoints, and endpoint chains nothing else references are
// left out. The packet fates are the same (see package nftplan for when a
// Balance qualifies). EndpointChains keeps the IR's chains exactly.
//
// The set fingerprint holds one element whose comment is "sha256:" and the
// SHA-256 of the table's definition in the script without that set; kpc
// apply compares it with the one it cached to know that the kernel's table
// is the one it applied last.
type NFT struct {
	// EndpointChains disables the direct layout and the lowering of plain
	// endpoint chains: every IR chain is rendered as a chain, and every
	// Balance as a jump through an endpoint-choice map (the IR spelled one
	// to one, for review).
	EndpointChains bool
	// NumberedMaps, where not zero, is the number of numbered maps of each
	// kind in the IPv4 (0) and the IPv6 (1) table, instead of the number
	// their Balances choose (see package nftplan): a Program compiled from
	// part of the input then gets the layout that part has in the whole.
	NumberedMaps [2]int
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

// nftReservedMaxLen is the length of the longest name in nftReserved.
var nftReservedMaxLen = func() int {
	n := 0
	for name := range nftReserved {
		n = max(n, len(name))
	}
	return n
}()

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
	parts, _, err := r.parts(p)
	if err != nil {
		return err
	}
	for _, b := range parts {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("nft: writing: %w", err)
		}
	}
	return nil
}

// Script returns what Render writes, and the layout plan of the IPv4 and
// of the IPv6 table (nil for a family without a Ruleset), from which the
// netlink renderer builds the same objects without planning them again.
func (r NFT) Script(p *ir.Program) ([]byte, [2]*nftplan.Plan, error) {
	parts, plans, err := r.parts(p)
	if err != nil {
		return nil, plans, err
	}
	n := 0
	for _, b := range parts {
		n += len(b)
	}
	script := make([]byte, 0, n)
	for _, b := range parts {
		script = append(script, b...)
	}
	return script, plans, nil
}

// Plans checks p as Script does and returns the plans of its IPv4 and
// IPv6 tables (nil for a family without a Ruleset), without writing the
// text.
func (r NFT) Plans(p *ir.Program) ([2]*nftplan.Plan, error) {
	var plans [2]*nftplan.Plan
	tables, _, err := r.checkAndPlan(p)
	if err != nil {
		return plans, err
	}
	for slot, t := range tables {
		if t != nil {
			plans[slot] = t.plan
		}
	}
	return plans, nil
}

// checkAndPlan validates p and plans its tables (see plan).
func (r NFT) checkAndPlan(p *ir.Program) (tables [2]*nftTable, tableName string, err error) {
	if p == nil {
		return tables, "", errors.New("nft: nil program")
	}
	// Validation runs alongside the planning, which checks what it relies
	// on itself; a validation error wins. Both use the same index of each
	// Ruleset's chains.
	chains := chainIndexes(p)
	invalid := make(chan error, 1)
	go func() { invalid <- p.ValidateWith(chains) }()
	tables, tableName, err = r.plan(p, chains)
	if verr := <-invalid; verr != nil {
		return tables, tableName, fmt.Errorf("nft: invalid program: %w", verr)
	}
	return tables, tableName, err
}

// parts returns the script in parts, to be written in order: Render writes
// them one by one rather than joining them first (at 50,000 Services the
// script is about 90 MB). It also returns the plans (see Script).
func (r NFT) parts(p *ir.Program) ([][]byte, [2]*nftplan.Plan, error) {
	var plans [2]*nftplan.Plan
	tables, tableName, err := r.checkAndPlan(p)
	if err != nil {
		return nil, plans, err
	}

	var head bytes.Buffer
	nftHeader(&head, p)
	parts := [][]byte{head.Bytes()}
	for slot, fam := range []nftFamily{nftIPv4, nftIPv6} {
		t := tables[slot]
		if t == nil {
			b := fmt.Appendf(nil, "add table %s %s\ndelete table %s %s\n", fam.table, tableName, fam.table, tableName)
			if slot == 0 && tables[1] == nil {
				b = fmt.Appendf(b, "table %s %s {\n}\n", fam.table, tableName)
			}
			parts = append(parts, b)
			continue
		}
		parts = append(parts, t.write()...)
		plans[slot] = t.plan
	}
	return parts, plans, nil
}

// plan checks p's Rulesets and prepares the table of each family (nil for
// a family without a Ruleset), and returns the name of the tables of the
// missing families. A panic (p may not have been validated yet) is
// returned as an error.
func (r NFT) plan(p *ir.Program, chains []map[string]int) (tables [2]*nftTable, tableName string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("nft: internal error: %v", v)
		}
	}()
	var byFamily [2]*ir.Ruleset
	var index [2]map[string]int
	for i, rs := range p.Rulesets {
		if rs == nil {
			return tables, "", fmt.Errorf("nft: ruleset %d is nil", i)
		}
		var slot int
		switch rs.Family {
		case ir.IPv4:
			slot = 0
		case ir.IPv6:
			slot = 1
		default:
			return tables, "", fmt.Errorf("nft: ruleset %d: unknown IP family %d", i, rs.Family)
		}
		if byFamily[slot] != nil {
			return tables, "", fmt.Errorf("nft: two %v rulesets", rs.Family)
		}
		byFamily[slot] = rs
		if i < len(chains) {
			index[slot] = chains[i]
		}
		if tableName == "" {
			tableName = rs.Table
		}
	}
	if tableName == "" {
		tableName = nftDefaultTable
	}
	for slot, fam := range []nftFamily{nftIPv4, nftIPv6} {
		rs := byFamily[slot]
		if rs == nil {
			if err := nftCheckName("table", tableName); err != nil {
				return tables, "", err
			}
			continue
		}
		t, err := nftPlan(rs, fam, !r.EndpointChains, index[slot], r.NumberedMaps[slot])
		if err != nil {
			return tables, "", fmt.Errorf("nft: %v ruleset: %w", rs.Family, err)
		}
		tables[slot] = t
	}
	return tables, tableName, nil
}

// setsSizeHint estimates the size of the table's sets and maps. An IPv6
// address is spelt in up to 24 more bytes than an IPv4 one; a dozen more is
// typical.
func (t *nftTable) setsSizeHint() int {
	rs := t.rs
	a := 0 // extra bytes per address
	if t.fam.family == ir.IPv6 {
		a = 12
	}
	n := 2048 + (88+a)*(len(t.services)+len(t.firewall)+len(t.noEndpoints)) + 88*(len(t.nodePorts)+len(t.noEPNodePorts)) +
		(24+a)*len(t.clusterIPs) + 256*len(rs.AffinitySets) + (40+2*a)*len(t.plan.Hairpin)
	for _, m := range t.plan.ChoiceMaps {
		n += 100 * len(m)
	}
	for _, m := range t.plan.EndpointMaps {
		n += (40 + a) * len(m)
	}
	if d := t.direct(); d != nil {
		for i := range d.Entries {
			for _, c := range d.Entries[i].Choices {
				n += (56 + a) * len(c)
			}
		}
	}
	return n
}

// chainsSizeHint estimates the size of the table's chains.
func (t *nftTable) chainsSizeHint() int {
	n := 4096
	for i, c := range t.rs.Chains {
		if !t.plan.DroppedAt(i) {
			comment := len(c.Comment)
			if c.Endpoint != nil {
				// Describe's "<Service> -> <ip:port>": at most 47 bytes
				// of IPv6 address and port.
				comment = max(comment, len(c.Service)+4+len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"))
			}
			n += 2*len(c.Name) + comment + 16 + 100*c.NumRules()
		}
	}
	return n
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

	chains map[string]int // chain name -> index in rs.Chains, while checking
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

// write returns the table's add/delete commands and definition in parts,
// in order: the commands, the table's first line, the sets, the
// fingerprint and the chains. The sets and the chains are written at the
// same time, each to a buffer of its own.
func (t *nftTable) write() [][]byte {
	var chains bytes.Buffer
	chains.Grow(t.chainsSizeHint())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.writeFixedChains(&chains)
		t.writeChains(&chains)
		chains.WriteString("}\n")
	}()
	f := t.fam
	replace := fmt.Appendf(nil, "add table %s %s\ndelete table %s %s\n", f.table, t.name, f.table, t.name)
	head := fmt.Appendf(nil, "table %s %s {\n", f.table, t.name)
	var sets bytes.Buffer
	sets.Grow(t.setsSizeHint())
	t.writeSets(&sets)
	<-done
	var fp bytes.Buffer
	writeFingerprint(&fp, head, sets.Bytes(), chains.Bytes())
	return [][]byte{replace, head, sets.Bytes(), fp.Bytes(), chains.Bytes()}
}

// writeSets writes the fixed sets and maps, the lowering's maps, and the
// affinity sets.
func (t *nftTable) writeSets(buf *bytes.Buffer) {
	f := t.fam
	svcKey := f.addrType + " . inet_proto . inet_service : verdict"
	npKey := "inet_proto . inet_service : verdict"

	nftSetHead(buf, "set", nftClusterIPsSet, "type "+f.addrType, "live cluster IPs", len(t.clusterIPs))
	nftAddrElems(buf, t.clusterIPs)
	buf.WriteString("\t}\n")
	if !t.rs.Node.NodePortAllLocal {
		nftSetHead(buf, "set", nftNodePortIPsSet, "type "+f.addrType, "addresses that serve NodePorts", len(t.nodePortIPs))
		nftAddrElems(buf, t.nodePortIPs)
		buf.WriteString("\t}\n")
	}
	nftSetHead(buf, "map", nftServiceIPsMap, "type "+svcKey, "service address dispatch", len(t.services))
	t.writeDispatchElems(buf, nftdirect.ServicesList, t.services)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftServiceNodePortsMap, "type "+npKey, "NodePort dispatch", len(t.nodePorts))
	t.writeNodePortElems(buf)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftFirewallIPsMap, "type "+svcKey, "load balancer source ranges", len(t.firewall))
	t.writeDispatchElems(buf, nftdirect.FirewallList, t.firewall)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftNoEPServicesMap, "type "+svcKey, "service addresses without endpoints", len(t.noEndpoints))
	nftServiceElems(buf, t.noEndpoints, nil)
	buf.WriteString("\t}\n")
	nftSetHead(buf, "map", nftNoEPNodePortsMap, "type "+npKey, "NodePorts without endpoints", len(t.noEPNodePorts))
	nftNodePortElems(buf, t.noEPNodePorts, nil)
	buf.WriteString("\t}\n")
	t.writeDirectSets(buf)
	for k, elems := range t.plan.ChoiceMaps {
		if len(elems) == 0 {
			continue // a map no Balance hashed to
		}
		nftSetHead(buf, "map", fmt.Sprintf("%s%d", nftplan.ChoiceMapPrefix, k), "typeof numgen random mod 1 : verdict",
			"uniform endpoint choice", len(elems))
		buf.WriteString("\t\telements = {\n")
		for _, e := range elems {
			buf.WriteString("\t\t\t")
			nftWriteUint(buf, uint64(e.Key))
			buf.WriteString(" : goto ")
			buf.WriteString(e.Chain)
			buf.WriteString(",\n")
		}
		buf.WriteString("\t\t}\n\t}\n")
	}
	if t.lowering {
		for k, elems := range t.plan.EndpointMaps {
			if len(elems) == 0 {
				continue // a map no Balance hashed to
			}
			nftSetHead(buf, "map", fmt.Sprintf("%s%d", nftplan.EndpointsMapPrefix, k),
				"typeof numgen random mod 1 : "+f.l3+" daddr . th dport", "DNAT destinations of endpoint choices without endpoint chains", len(elems))
			buf.WriteString("\t\telements = {\n")
			for _, e := range elems {
				buf.WriteString("\t\t\t")
				nftWriteUint(buf, uint64(e.Key))
				buf.WriteString(" : ")
				nftWriteDest(buf, e.Addr, e.Port)
				buf.WriteString(",\n")
			}
			buf.WriteString("\t\t}\n\t}\n")
		}
		nftSetHead(buf, "set", nftHairpinSet, "type "+f.addrType+" . "+f.addrType,
			"endpoints that reach themselves through a service: masquerade", len(t.plan.Hairpin))
		if len(t.plan.Hairpin) > 0 {
			buf.WriteString("\t\telements = {\n")
			for _, e := range t.plan.Hairpin {
				buf.WriteString("\t\t\t")
				nftWriteAddr(buf, e.Src)
				buf.WriteString(" . ")
				nftWriteAddr(buf, e.Dst)
				buf.WriteString(",\n")
			}
			buf.WriteString("\t\t}\n")
		}
		buf.WriteString("\t}\n")
	}
	for _, s := range t.rs.AffinitySets {
		if t.lowering && t.plan.DroppedSets[s.Name] {
			continue
		}
		buf.WriteString("\tset ")
		buf.WriteString(s.Name)
		buf.WriteString(" {\n\t\ttype ")
		buf.WriteString(f.addrType)
		buf.WriteString("\n\t\tflags dynamic,timeout\n\t\ttimeout ")
		buf.WriteString(nftDuration(s.Timeout))
		buf.WriteString("\n")
		if s.Comment != "" {
			buf.WriteString("\t\tcomment ")
			nftWriteQuoted(buf, s.Comment)
			buf.WriteString("\n")
		}
		buf.WriteString("\t}\n")
	}
}

// nftSetHead opens the definition of a set or map of n elements (sized as
// nftplan.SetSize says).
func nftSetHead(buf *bytes.Buffer, kind, name, typ, comment string, n int) {
	fmt.Fprintf(buf, "\t%s %s {\n\t\t%s\n", kind, name, typ)
	if size := nftplan.SetSize(n); size > 0 {
		fmt.Fprintf(buf, "\t\tsize %d\n", size)
	}
	fmt.Fprintf(buf, "\t\tcomment %s\n", nftQuote(comment))
}

func nftAddrElems(buf *bytes.Buffer, addrs []netip.Addr) {
	if len(addrs) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, a := range addrs {
		buf.WriteString("\t\t\t")
		nftWriteAddr(buf, a)
		buf.WriteString(",\n")
	}
	buf.WriteString("\t\t}\n")
}

// nftChainFor says which shared chain a dispatch entry goes to instead of
// its own target ("", false: its own target).
type nftChainFor func(nftdirect.Key) (string, bool)

// nftServiceElems writes the elements of a map keyed by address, protocol
// and port; redirect (nil: none) replaces the targets of some of them.
func nftServiceElems(buf *bytes.Buffer, es []ir.ServiceEntry, redirect nftChainFor) {
	if len(es) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, e := range es {
		buf.WriteString("\t\t\t")
		nftWriteKey(buf, e.Addr, e.Protocol, e.Port)
		nftWriteElemComment(buf, e.Comment)
		buf.WriteString(" : ")
		nftWriteTarget(buf, e.Target, redirect, nftdirect.Key{Kind: nftdirect.AddrKey, Addr: e.Addr, Protocol: e.Protocol, Port: e.Port})
		buf.WriteString(",\n")
	}
	buf.WriteString("\t\t}\n")
}

// nftNodePortElems writes the elements of a map keyed by protocol and
// port; redirect (nil: none) replaces the targets of some of them.
func nftNodePortElems(buf *bytes.Buffer, es []ir.NodePortEntry, redirect nftChainFor) {
	if len(es) == 0 {
		return
	}
	buf.WriteString("\t\telements = {\n")
	for _, e := range es {
		buf.WriteString("\t\t\t")
		nftWriteKey(buf, netip.Addr{}, e.Protocol, e.Port)
		nftWriteElemComment(buf, e.Comment)
		buf.WriteString(" : ")
		nftWriteTarget(buf, e.Target, redirect, nftdirect.Key{Kind: nftdirect.PortKey, Protocol: e.Protocol, Port: e.Port})
		buf.WriteString(",\n")
	}
	buf.WriteString("\t\t}\n")
}

// nftWriteTarget writes "goto CHAIN" when redirect names a chain for k,
// and v otherwise.
func nftWriteTarget(buf *bytes.Buffer, v ir.Target, redirect nftChainFor, k nftdirect.Key) {
	if redirect != nil {
		if chain, ok := redirect(k); ok {
			buf.WriteString("goto ")
			buf.WriteString(chain)
			return
		}
	}
	nftWriteVerdict(buf, v)
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
	if t.sticky() {
		for _, c := range []string{"filter-forward", "filter-input", "filter-output"} {
			body[c] = append(body[c], nftStickyJump)
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
		fmt.Fprintf(buf, "\t\tct status dnat %s saddr . %s daddr @%s meta mark set meta mark | %s\n",
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
	t.writeDirectChains(buf)
}
