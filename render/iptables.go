package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"kpc/compiler/ir"
)

// IPTables renders the Ruleset of one IP family as iptables-restore input
// (ip6tables-restore input for IPv6), in the layout of kube-proxy's
// iptables mode.
//
// The file is meant for "iptables-restore --noflush": it declares only
// kpc's own chains, all named PREFIX-… where PREFIX is the upper-cased
// Ruleset.Table ("KPC"), which flushes them on load, and never declares or
// flushes a built-in chain, so rules of other programs survive. Loading it
// again gives the same kernel state. A Program without a Ruleset of the
// family gives a file that flushes kpc's fixed chains, which takes kpc's
// traffic handling out of service (per-Service chains of an earlier load
// are left unreferenced; see Prune).
//
// The jumps from the built-in chains into kpc's hook chains cannot be part
// of such a file: a --noflush load only inserts (-I/-A) or deletes (-D)
// rules, each of which changes the number of rules of a built-in chain by
// a fixed amount whatever the chain holds, so no file gives one jump both
// on a clean node and on a node where it is already loaded (and -D of a
// missing rule fails the whole load). Hooks lists these jumps, one per
// built-in chain; HookCommands spells them as "iptables -C … || iptables
// -I …" lines to run after each load. They never change: every rule kpc
// needs in INPUT, FORWARD, OUTPUT, PREROUTING and POSTROUTING lives in the
// hook chain the file fills (PREFIX-HOOK-INPUT, …).
//
// Layout (kube-proxy's, with KUBE- replaced by PREFIX-):
//   - nat PREFIX-SERVICES: one rule per Ruleset.Services entry
//     ("-d ADDR/32 --dport P"), then the NodePort rule (last): destination
//     type LOCAL, or one rule per NodePort address; PREFIX-NODEPORTS: one
//     rule per NodePort. Load-balancer IPs with a firewall entry go through
//     PREFIX-FW-…, which accepts the allowed source ranges; the filter
//     chain PREFIX-PROXY-FIREWALL drops what reached the load-balancer IP
//     without DNAT.
//   - nat per-IR chains PREFIX-SVC-, -SVL-, -EXT-, -FW-, -SEP- followed by
//     16 characters of base32(sha256(IR chain name)). ir.Goto is "-g"
//     (goto: a chain that falls off its end ends the dispatch, as the IR
//     says), ir.Balance the "-m statistic --probability 1/n" cascade,
//     session affinity "-m recent" lists named after the endpoint chain.
//   - nat PREFIX-MARK-MASQ sets the masquerade mark; PREFIX-POSTROUTING
//     masquerades marked packets (--random-fully).
//   - filter PREFIX-SERVICES (cluster IPs) and PREFIX-EXTERNAL-SERVICES
//     (other addresses and NodePorts) reject or drop new connections to
//     Services without endpoints; filter PREFIX-NODEPORTS accepts
//     health-check NodePorts; PREFIX-FORWARD drops conntrack-invalid
//     packets and accepts marked and established ones; PREFIX-FIREWALL
//     (IPv4 localhost NodePorts only) drops packets to 127.0.0.0/8 from
//     elsewhere. As in kube-proxy, new connections meet the cluster IPs'
//     checks in FORWARD and OUTPUT and the others' in INPUT and FORWARD
//     (a node process connecting to the remote external IP of a Service
//     without endpoints is not refused, unlike in nftables mode; see
//     ir.ModeIPTables), a NodePort's check matches every local address,
//     and a load-balancer IP's source ranges are written only for a
//     Service with endpoints.
//
// RejectClusterIPs and DropServiceCIDRs are ignored, as in kube-proxy's
// iptables mode. Intents iptables cannot spell give an *UnsupportedError:
// Drop or Reject inside an IR chain (chains live in the nat table) and
// firewall chains other than one "drop sources outside these ranges" rule.
type IPTables struct {
	// Family selects the Ruleset to render: ir.IPv4 (the zero value also
	// means IPv4) or ir.IPv6.
	Family ir.Family
	// Stream writes the rules of the IR's chains as they are generated
	// instead of building the whole output first: a Ruleset of 50,000
	// mixed Services x 10 endpoints spells 300 MB of them. An invalid
	// Program still gets nothing written, but an intent iptables cannot
	// spell in a chain (an *UnsupportedError) is found after part of the
	// output has been written: stream only to a destination that is
	// dropped on error, such as a temporary file renamed into place on
	// success.
	Stream bool
}

var _ Renderer = IPTables{}

// iptDefaultPrefix is the chain prefix when no Ruleset names a table.
const iptDefaultPrefix = "KPC"

// iptMaxChainLen is the longest iptables chain name (XT_EXTENSION_MAXNAMELEN
// - 1).
const iptMaxChainLen = 28

// iptMaxComment is the longest rule comment (XT_MAX_COMMENT_LEN - 1).
const iptMaxComment = 255

// The fixed chains, as suffixes of the prefix.
const (
	iptServices         = "SERVICES"
	iptExternalServices = "EXTERNAL-SERVICES"
	iptNodePorts        = "NODEPORTS"
	iptForward          = "FORWARD"
	iptProxyFirewall    = "PROXY-FIREWALL"
	iptFirewall         = "FIREWALL"
	iptPostrouting      = "POSTROUTING"
	iptMarkMasq         = "MARK-MASQ"
	iptHookPrefix       = "HOOK-"
)

// iptHookPoints are the built-in chains kpc hooks, by table, in file order.
var iptHookPoints = []struct{ table, builtIn string }{
	{"filter", "INPUT"},
	{"filter", "FORWARD"},
	{"filter", "OUTPUT"},
	{"nat", "PREROUTING"},
	{"nat", "OUTPUT"},
	{"nat", "POSTROUTING"},
}

// iptChainKind gives the chain-name infix of each IR chain kind
// (kube-proxy's KUBE-SVC-, KUBE-SVL-, …).
var iptChainKind = map[ir.ChainKind]string{
	ir.ServiceChain:  "SVC",
	ir.LocalChain:    "SVL",
	ir.ExternalChain: "EXT",
	ir.FirewallChain: "FW",
	ir.EndpointChain: "SEP",
}

// iptFamily holds what differs between iptables and ip6tables.
type iptFamily struct {
	family   ir.Family
	command  string // "iptables", "ip6tables"
	hostBits string // "/32", "/128"
}

var (
	iptIPv4 = iptFamily{ir.IPv4, "iptables", "/32"}
	iptIPv6 = iptFamily{ir.IPv6, "ip6tables", "/128"}
)

func (r IPTables) family() (iptFamily, error) {
	switch r.Family {
	case 0, ir.IPv4:
		return iptIPv4, nil
	case ir.IPv6:
		return iptIPv6, nil
	}
	return iptFamily{}, fmt.Errorf("iptables: unknown IP family %d", r.Family)
}

// Command returns the name of the tool for the renderer's family:
// "iptables" or "ip6tables" (append "-restore" for the loader).
func (r IPTables) Command() string {
	f, err := r.family()
	if err != nil {
		return iptIPv4.command
	}
	return f.command
}

// Render implements Renderer. It writes nothing and returns an error when
// p is nil or invalid (ir.Program.Validate), when the family is unknown,
// when Ruleset.Table does not give a usable chain prefix (letters, digits,
// "-" and "_", at most 7 characters), or when an intent cannot be spelled
// (an *UnsupportedError).
func (r IPTables) Render(w io.Writer, p *ir.Program) error {
	fam, err := r.family()
	if err != nil {
		return err
	}
	if p == nil {
		return errors.New("iptables: nil program")
	}
	// Validation runs alongside the generation, which writes nothing out
	// before it is done; a validation error wins. Both use the same index
	// of each Ruleset's chains.
	chains := chainIndexes(p)
	invalid := make(chan error, 1)
	go func() { invalid <- p.ValidateWith(chains) }()
	g, err := iptGenerate(p, fam, chains, r.Stream)
	if err != nil {
		if verr := <-invalid; verr != nil {
			return fmt.Errorf("iptables: invalid program: %w", verr)
		}
		return err
	}
	// The header, the filter table and the nat table's declarations, then
	// the nat table's rules (the bulk of a large file): those of its fixed
	// chains, which iptGenerate wrote, then those of the IR's chains.
	head := func() []byte {
		var buf bytes.Buffer
		buf.Grow(g.filter.rules.Len() + 64*(len(g.filter.chains)+len(g.nat.chains)) + 4096)
		g.header(&buf, p)
		g.filter.writeTo(&buf)
		g.nat.writeHead(&buf)
		return buf.Bytes()
	}
	write := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("iptables: writing: %w", err)
		}
		return nil
	}
	if !r.Stream {
		err := g.chains(nil)
		if verr := <-invalid; verr != nil {
			return fmt.Errorf("iptables: invalid program: %w", verr)
		}
		if err != nil {
			return err
		}
		for _, b := range [][]byte{head(), g.nat.rules.Bytes(), []byte("COMMIT\n")} {
			if err := write(b); err != nil {
				return err
			}
		}
		return nil
	}
	// Streaming: the chains' rules are written out a part at a time once
	// the validation has passed (until then they pile up).
	var verr error
	validated := false
	flush := func(force bool) error {
		if !validated {
			if !force {
				select {
				case verr = <-invalid:
				default:
					return nil
				}
			} else {
				verr = <-invalid
			}
			validated = true
			if verr != nil {
				return fmt.Errorf("iptables: invalid program: %w", verr)
			}
			if err := write(head()); err != nil {
				return err
			}
		}
		if g.nat.rules.Len() < iptStreamPart && !force {
			return nil
		}
		err := write(g.nat.rules.Bytes())
		g.nat.rules.Reset()
		return err
	}
	if err := g.chains(func() error { return flush(false) }); err != nil {
		if !validated {
			if verr := <-invalid; verr != nil {
				return fmt.Errorf("iptables: invalid program: %w", verr)
			}
		}
		return err
	}
	if err := flush(true); err != nil {
		return err
	}
	return write([]byte("COMMIT\n"))
}

// iptStreamPart is how many bytes of rules a streaming Render collects
// before writing them.
const iptStreamPart = 1 << 20

// iptGenerate generates the tables of family fam of p. A panic (p may not
// have been validated yet) is returned as an error.
func iptGenerate(p *ir.Program, fam iptFamily, chains []map[string]int, stream bool) (g *iptGen, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("iptables: internal error: %v", v)
		}
	}()
	prefix, err := iptPrefixOf(p)
	if err != nil {
		return nil, err
	}
	var rs *ir.Ruleset
	var index map[string]int
	for i, s := range p.Rulesets {
		if s != nil && s.Family == fam.family {
			rs, index = s, nil
			if i < len(chains) {
				index = chains[i]
			}
		}
	}
	g = &iptGen{fam: fam, prefix: prefix, rs: rs, index: index, stream: stream}
	if rs != nil {
		n := 0
		for _, c := range rs.Chains {
			if c != nil && c.Kind == ir.EndpointChain {
				n++
			}
		}
		g.large = n > iptLargeClusterEndpoints
	}
	g.filter.name, g.nat.name = "filter", "nat"
	if err := g.generate(); err != nil {
		return nil, fmt.Errorf("iptables: %v ruleset: %w", fam.family, err)
	}
	return g, nil
}

// chains writes the rules of the IR's chains into the nat table, calling
// part, when not nil, after each chain (a streaming Render writes them out
// there). A panic is returned as an error.
func (g *iptGen) chains(part func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("iptables: internal error: %v", v)
		}
	}()
	if g.rs == nil {
		return nil
	}
	for i := range g.rs.Chains {
		if err := g.chain(i); err != nil {
			return fmt.Errorf("iptables: %v ruleset: %w", g.fam.family, err)
		}
		if part != nil {
			if err := part(); err != nil {
				return err
			}
		}
	}
	return nil
}

// iptPrefixOf returns the chain prefix: the upper-cased Table of the
// Program's first Ruleset (both families share it), or "KPC".
func iptPrefixOf(p *ir.Program) (string, error) {
	prefix := iptDefaultPrefix
	if p != nil && len(p.Rulesets) > 0 && p.Rulesets[0] != nil {
		prefix = strings.ToUpper(p.Rulesets[0].Table)
	}
	// The longest names are PREFIX-SVC-<16> and PREFIX-HOOK-POSTROUTING.
	if max := iptMaxChainLen - len("-SVC-") - 16; prefix == "" || len(prefix) > max {
		return "", fmt.Errorf("iptables: chain prefix %q (from the table name) must have 1 to %d characters", prefix, max)
	}
	for _, c := range prefix {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("iptables: chain prefix %q (from the table name) may only hold letters, digits, '-' and '_'", prefix)
		}
	}
	return prefix, nil
}

// iptTable collects one table's chain declarations and rules.
type iptTable struct {
	name   string
	chains []string
	rules  bytes.Buffer
}

func (t *iptTable) declare(chain string) { t.chains = append(t.chains, chain) }

// add appends "-A chain args…", skipping empty arguments.
func (t *iptTable) add(chain string, args ...string) {
	t.begin(chain)
	t.args(args...)
	t.end()
}

// begin starts a rule: "-A chain".
func (t *iptTable) begin(chain string) {
	t.rules.WriteString("-A ")
	t.rules.WriteString(chain)
}

// args appends the non-empty arguments, each after a space.
func (t *iptTable) args(args ...string) {
	for _, a := range args {
		if a == "" {
			continue
		}
		t.rules.WriteByte(' ')
		t.rules.WriteString(a)
	}
}

// addrPort appends a space and netip.AddrPortFrom(a, port).String().
func (t *iptTable) addrPort(a netip.Addr, port uint16) {
	t.rules.WriteByte(' ')
	t.rules.Write(netip.AddrPortFrom(a, port).AppendTo(t.rules.AvailableBuffer()))
}

// comment appends a space and iptComment(c.String()) unless that is empty.
func (t *iptTable) comment(c iptText) {
	n := len(c.a) + len(c.b) + len(c.c)
	if n == 0 {
		return
	}
	if n > iptMaxComment || !iptPlain(c.a) || !iptPlain(c.b) || !iptPlain(c.c) {
		if s := iptComment(c.String()); s != "" {
			t.rules.WriteByte(' ')
			t.rules.WriteString(s)
		}
		return
	}
	t.rules.WriteString(` -m comment --comment "`)
	t.rules.WriteString(c.a)
	t.rules.WriteString(c.b)
	t.rules.WriteString(c.c)
	t.rules.WriteByte('"')
}

// end ends a rule.
func (t *iptTable) end() { t.rules.WriteByte('\n') }

// iptText is the text of a rule comment: the concatenation of its parts,
// kept apart so that the common comments are written without building a
// string.
type iptText struct{ a, b, c string }

// String returns the text.
func (x iptText) String() string { return x.a + x.b + x.c }

// iptPlain reports whether s is printable ASCII without a double quote or
// backslash: text iptSanitize leaves as it is.
func iptPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func (t *iptTable) writeTo(buf *bytes.Buffer) {
	t.writeHead(buf)
	buf.Write(t.rules.Bytes())
	buf.WriteString("COMMIT\n")
}

// writeHead writes the table's name and chain declarations.
func (t *iptTable) writeHead(buf *bytes.Buffer) {
	buf.WriteString("*" + t.name + "\n")
	for _, c := range t.chains {
		buf.WriteString(":")
		buf.WriteString(c)
		buf.WriteString(" - [0:0]\n")
	}
}

// iptGen generates the two tables of one family.
type iptGen struct {
	fam    iptFamily
	prefix string
	rs     *ir.Ruleset // nil: only the fixed chains, empty

	filter, nat iptTable

	index     map[string]int    // IR chain name -> index in infos
	infos     []iptChainInfo    // per IR chain, in the Ruleset's order
	recent    map[string]string // affinity set -> recent list name
	seconds   map[string]string // affinity set -> timeout in seconds
	clusterIP map[netip.Addr]bool
	fwTarget  map[string]string // IR firewall chain -> iptables chain its allowed sources go to
	fwComment map[string]string // IR firewall chain -> Service comment
	probs     []string          // probs[n] is 1/n, spelled
	npDsts    []string          // destination matches of NodePort addresses
	// stream: the nat table's rules are written out a part at a time
	// (IPTables.Stream), so their buffer is not sized for all of them.
	stream bool
	// large is kube-proxy's large cluster mode (more than
	// iptLargeClusterEndpoints endpoints): the rules of the endpoint
	// chains and the endpoint choices of the Service chains carry no
	// comment, which makes the file and the kernel's table about a third
	// smaller.
	large bool
	// rules holds the rules of a compact endpoint chain while it is
	// written (ir.Chain.RulesInto).
	rules [3]ir.Rule
}

// iptLargeClusterEndpoints is kube-proxy's largeClusterEndpointsThreshold:
// with more endpoints than this (endpoint chains here), the per-endpoint
// rules go without comments.
const iptLargeClusterEndpoints = 1000

// fixed returns the name of a fixed chain.
func (g *iptGen) fixed(suffix string) string { return g.prefix + "-" + suffix }

func (g *iptGen) header(buf *bytes.Buffer, p *ir.Program) {
	fmt.Fprintf(buf, "# kpc: Kubernetes Services as %s-restore input (%v). Load with\n", g.fam.command, g.fam.family)
	fmt.Fprintf(buf, "# kpc: \"%s-restore --noflush FILE\", then hook kpc's chains in (idempotent):\n", g.fam.command)
	for _, h := range iptHookPoints {
		hook := IPTablesHook{Table: h.table, BuiltIn: h.builtIn, Target: g.fixed(iptHookPrefix + h.builtIn)}
		fmt.Fprintf(buf, "# kpc:   %s\n", hook.shell(g.fam.command))
	}
	for _, n := range p.Notes {
		for line := range strings.Lines(n) {
			buf.WriteString("# ")
			buf.WriteString(iptSanitize(strings.TrimRight(line, "\r\n")))
			buf.WriteByte('\n')
		}
	}
}

// generate fills the filter table and declares the nat table's chains,
// with the rules of its fixed chains (see chains for the others).
func (g *iptGen) generate() error {
	f, n := &g.filter, &g.nat
	for _, h := range iptHookPoints {
		t := f
		if h.table == "nat" {
			t = n
		}
		t.declare(g.fixed(iptHookPrefix + h.builtIn))
	}
	for _, c := range []string{iptServices, iptExternalServices, iptNodePorts, iptForward, iptProxyFirewall, iptFirewall} {
		f.declare(g.fixed(c))
	}
	for _, c := range []string{iptServices, iptNodePorts, iptPostrouting, iptMarkMasq} {
		n.declare(g.fixed(c))
	}
	if g.rs == nil {
		return nil
	}
	g.fixedRules()
	if err := g.prepare(); err != nil {
		return err
	}
	if err := g.dispatch(); err != nil {
		return err
	}
	g.noEndpoints()
	for _, p := range g.rs.HealthCheckNodePorts {
		f.add(g.fixed(iptNodePorts), iptComment("health check node port"), "-m tcp -p tcp --dport", strconv.Itoa(int(p)), "-j ACCEPT")
	}
	// The IR's chains are declared now, their rules written by chains:
	// the nat table's head is then complete before any of them.
	for i := range g.infos {
		ci := &g.infos[i]
		if ci.c.Kind == ir.FirewallChain {
			if _, ok := g.fwTarget[ci.c.Name]; !ok {
				continue // not used in front of a chain: rendered in filter
			}
		}
		n.declare(ci.name)
	}
	return nil
}

// fixedRules writes the hook chains and the helper chains whose rules do not
// depend on Services.
func (g *iptGen) fixedRules() {
	f, n := &g.filter, &g.nat
	mark := fmt.Sprintf("%#x", g.rs.MasqMark)
	localnet := g.fam.family == ir.IPv4 && g.rs.Node.LocalhostNodePorts
	ctNew := "-m conntrack --ctstate NEW"
	hook := func(b string) string { return g.fixed(iptHookPrefix + b) }

	// kube-proxy's jumps: the cluster IPs' checks (SERVICES) on the paths
	// of forwarded and locally sent packets, the other addresses' and the
	// NodePorts' (EXTERNAL-SERVICES) on those of forwarded and locally
	// delivered ones. A packet the node sends to an external IP of a
	// Service without endpoints leaves the node, as under kube-proxy.
	for _, b := range []string{"INPUT", "FORWARD", "OUTPUT"} {
		f.add(hook(b), ctNew, iptComment("kpc load balancer firewall"), "-j", g.fixed(iptProxyFirewall))
		switch b {
		case "INPUT":
			f.add(hook(b), iptComment("kpc health check service ports"), "-j", g.fixed(iptNodePorts))
		case "FORWARD":
			f.add(hook(b), iptComment("kpc forwarding rules"), "-j", g.fixed(iptForward))
		}
		if b != "INPUT" {
			f.add(hook(b), ctNew, iptComment("kpc service portals"), "-j", g.fixed(iptServices))
		}
		if b != "OUTPUT" {
			f.add(hook(b), ctNew, iptComment("kpc externally-visible service portals"), "-j", g.fixed(iptExternalServices))
		}
		if localnet && b != "FORWARD" {
			f.add(hook(b), "-j", g.fixed(iptFirewall))
		}
	}
	n.add(hook("PREROUTING"), iptComment("kpc service portals"), "-j", g.fixed(iptServices))
	n.add(hook("OUTPUT"), iptComment("kpc service portals"), "-j", g.fixed(iptServices))
	n.add(hook("POSTROUTING"), iptComment("kpc postrouting rules"), "-j", g.fixed(iptPostrouting))

	n.add(g.fixed(iptPostrouting), "-m mark ! --mark", mark+"/"+mark, "-j RETURN")
	n.add(g.fixed(iptPostrouting), "-j MARK --xor-mark", mark)
	n.add(g.fixed(iptPostrouting), iptComment("kpc service traffic requiring SNAT"), "-j MASQUERADE --random-fully")
	n.add(g.fixed(iptMarkMasq), "-j MARK --or-mark", mark)

	if !g.rs.ConntrackTCPLiberal {
		f.add(g.fixed(iptForward), "-m conntrack --ctstate INVALID -j DROP")
	}
	f.add(g.fixed(iptForward), iptComment("kpc forwarding rules"), "-m mark --mark", mark+"/"+mark, "-j ACCEPT")
	f.add(g.fixed(iptForward), iptComment("kpc forwarding conntrack rule"), "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	if localnet {
		f.add(g.fixed(iptFirewall), iptComment("block incoming localnet connections"),
			"-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
	}
}

// iptChainInfo is an IR chain as the file spells it.
type iptChainInfo struct {
	c    *ir.Chain
	name string // the iptables chain
	// endpoint is "ip:port" of the first DNAT of an endpoint chain ("" for
	// other chains), computed by endpointOf.
	endpoint string
	epDone   bool
}

// chainInfo returns the IR chain called name, or nil.
func (g *iptGen) chainInfo(name string) *iptChainInfo {
	if i, ok := g.index[name]; ok {
		return &g.infos[i]
	}
	return nil
}

// nameOf returns the iptables chain of the IR chain called name ("" when
// there is none).
func (g *iptGen) nameOf(name string) string {
	if ci := g.chainInfo(name); ci != nil {
		return ci.name
	}
	return ""
}

// endpointOf returns "ip:port" of the DNAT of the endpoint chain called
// name ("" when it is not an endpoint chain or has no DNAT).
func (g *iptGen) endpointOf(name string) string {
	ci := g.chainInfo(name)
	if ci == nil {
		return ""
	}
	if !ci.epDone {
		ci.epDone = true
		if e := ci.c.Endpoint; e != nil {
			ci.endpoint = netip.AddrPortFrom(e.DNAT.Addr, e.DNAT.Port).String()
		} else if ci.c.Kind == ir.EndpointChain {
			for j := range ci.c.Rules {
				if d, ok := ci.c.Rules[j].Action.(*ir.DNAT); ok && d != nil {
					ci.endpoint = netip.AddrPortFrom(d.Addr, d.Port).String()
					break
				}
			}
		}
	}
	return ci.endpoint
}

// iptHashName appends the first 16 characters of the standard base32
// encoding of the SHA-256 of name (the encoding of its first 10 bytes) to
// dst, and returns them with the 10 bytes.
func iptHashName(dst []byte, name string) ([]byte, [10]byte) {
	// The name is hashed from the spare room of dst, which is then
	// overwritten with the encoding.
	start := len(dst)
	dst = append(dst, name...)
	sum := sha256.Sum256(dst[start:])
	var enc [16]byte
	base32.StdEncoding.Encode(enc[:], sum[:10])
	return append(dst[:start], enc[:]...), [10]byte(sum[:10])
}

// prepare names the IR chains and indexes what rules refer to.
func (g *iptGen) prepare() error {
	rs := g.rs
	// The index, when chainIndexes could make it, is made already.
	indexed := g.index != nil
	if !indexed {
		g.index = make(map[string]int, len(rs.Chains))
	}
	g.infos = make([]iptChainInfo, len(rs.Chains))
	// owner finds two IR chains with one iptables name: the name is
	// determined by the kind and the hashed bytes.
	type key struct {
		kind ir.ChainKind
		hash [10]byte
	}
	owner := make(map[key]string, len(rs.Chains))
	var buf []byte
	// About 200 bytes per nat rule (one per IR rule, one per chain a
	// Balance picks from), and about 100 without the endpoints' comments
	// of large cluster mode (101 measured at 10,000 Services): a buffer
	// twice too large counts against the collector's memory limit.
	perRule := 200
	if g.large {
		perRule = 110
	}
	rules := 0
	for _, c := range rs.Chains {
		rules += c.NumRules()
		// A compact endpoint chain (no Rules) has no Balance.
		for j := range c.Rules {
			if b, ok := c.Rules[j].Action.(*ir.Balance); ok && b != nil {
				rules += len(b.Chains)
			}
		}
	}
	if g.stream {
		rules = min(rules, 2*iptStreamPart/perRule)
	}
	g.nat.rules.Grow(perRule * rules)
	for i, c := range rs.Chains {
		kind, ok := iptChainKind[c.Kind]
		if !ok {
			return fmt.Errorf("chain %q: unknown kind %d", c.Name, c.Kind)
		}
		buf = append(append(append(buf[:0], g.prefix...), '-'), kind...)
		buf = append(buf, '-')
		var hash [10]byte
		buf, hash = iptHashName(buf, c.Name)
		name := string(buf)
		if prev, dup := owner[key{c.Kind, hash}]; dup {
			return fmt.Errorf("chains %q and %q both map to iptables chain %s", prev, c.Name, name)
		}
		owner[key{c.Kind, hash}] = c.Name
		if !indexed {
			g.index[c.Name] = i
		}
		g.infos[i] = iptChainInfo{c: c, name: name}
	}

	// A recent list is named after the endpoint chain that records its
	// clients (kube-proxy's scheme), else after the set.
	updaters := map[string][]string{}
	if len(rs.AffinitySets) > 0 {
		for _, c := range rs.Chains {
			rules := c.RulesInto(g.rules[:])
			for j := range rules {
				if u, ok := rules[j].Action.(*ir.AffinityUpdate); ok && u != nil && !slices.Contains(updaters[u.Set], c.Name) {
					updaters[u.Set] = append(updaters[u.Set], c.Name)
				}
			}
		}
	}
	g.recent = make(map[string]string, len(rs.AffinitySets))
	g.seconds = make(map[string]string, len(rs.AffinitySets))
	for _, s := range rs.AffinitySets {
		if u := updaters[s.Name]; len(u) == 1 {
			g.recent[s.Name] = g.nameOf(u[0])
		} else {
			sum := sha256.Sum256([]byte(s.Name))
			g.recent[s.Name] = g.prefix + "-AFF-" + base32.StdEncoding.EncodeToString(sum[:])[:16]
		}
		secs := s.Timeout / time.Second // whole seconds, rounded up
		if s.Timeout%time.Second != 0 {
			secs++
		}
		g.seconds[s.Name] = strconv.FormatInt(int64(secs), 10)
	}

	g.clusterIP = make(map[netip.Addr]bool, len(rs.ClusterIPs))
	for _, a := range rs.ClusterIPs {
		g.clusterIP[a] = true
	}
	g.npDsts = g.nodePortDsts()
	return nil
}

// target returns the iptables chain a dispatch entry, Goto or Balance goes
// to. Firewall chains only stand in front of load-balancer IPs (Firewall).
func (g *iptGen) target(chain string) (string, error) {
	ci := g.chainInfo(chain)
	if ci == nil || ci.c.Kind == ir.FirewallChain {
		return "", &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("jump to firewall chain %q outside the firewall step", chain)}
	}
	return ci.name, nil
}

// dst spells an exact destination match.
func (g *iptGen) dst(a netip.Addr, proto ir.Protocol, port uint16) string {
	p := iptProto(proto)
	return "-m " + p + " -p " + p + " -d " + a.String() + g.fam.hostBits + " --dport " + strconv.Itoa(int(port))
}

// nodePortDsts returns the destination matches of NodePort addresses, one
// per rule: local addresses (without loopback unless localhost NodePorts
// are on), or each NodePort address (and, with localhost NodePorts, the
// address of the node's loopback interface, 127.0.0.1, as kube-proxy
// matches the node IPs inside nodePortAddresses one by one).
func (g *iptGen) nodePortDsts() []string {
	node := &g.rs.Node
	localhost := g.fam.family == ir.IPv4 && node.LocalhostNodePorts
	if node.NodePortAllLocal || node.NodePortDefault {
		switch {
		case g.fam.family == ir.IPv6:
			return []string{"-m addrtype --dst-type LOCAL ! -d ::1/128"}
		case !localhost:
			return []string{"-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8"}
		}
		return []string{"-m addrtype --dst-type LOCAL"}
	}
	var out []string
	for _, a := range node.NodePortAddrs {
		if localhost && a.IsLoopback() {
			continue // 127.0.0.1 below
		}
		d := "-d " + a.String() + g.fam.hostBits
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if localhost {
		out = append(out, "-d 127.0.0.1"+g.fam.hostBits)
	}
	return out
}

// dispatch writes nat PREFIX-SERVICES, PREFIX-NODEPORTS, the firewall
// chains and filter PREFIX-PROXY-FIREWALL, and the filter rules of dispatch
// entries whose target is a verdict.
func (g *iptGen) dispatch() error {
	rs := g.rs
	n, f := &g.nat, &g.filter
	services, nodePorts := g.fixed(iptServices), g.fixed(iptNodePorts)

	type key struct {
		addr  netip.Addr
		proto ir.Protocol
		port  uint16
	}
	chainTarget := map[key]string{}
	for _, e := range rs.Services {
		chainTarget[key{e.Addr, e.Protocol, e.Port}] = e.Target.Chain
	}
	g.fwTarget, g.fwComment = map[string]string{}, map[string]string{}
	fwDispatch := map[key]string{}
	for _, e := range rs.Firewall {
		var c *ir.Chain
		if ci := g.chainInfo(e.Target.Chain); ci != nil {
			c = ci.c
		}
		if c == nil || c.Kind != ir.FirewallChain {
			return &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("firewall entry %s %s %d: target %q is not a firewall chain", e.Addr, e.Protocol, e.Port, e.Target.Chain)}
		}
		allowAll, _, err := iptFirewallRanges(c)
		if err != nil {
			return err
		}
		k := key{e.Addr, e.Protocol, e.Port}
		t := chainTarget[k]
		if allowAll || t == "" {
			// Nothing DNATs a destination of no Service entry: the
			// Service has no endpoints, and kube-proxy's iptables mode
			// writes no firewall for it (usesFWChain needs endpoints):
			// EXTERNAL-SERVICES rejects every source.
			continue
		}
		// Allowed sources are DNATed by the nat firewall chain; what
		// reaches filter with this destination was not allowed.
		svc := iptEntryComment(e.Comment, "")
		if prev, ok := g.fwTarget[c.Name]; ok && prev != t {
			return &UnsupportedError{Backend: "iptables", Feature: fmt.Sprintf("firewall chain %q in front of two different chains", c.Name)}
		}
		g.fwTarget[c.Name] = t
		if _, ok := g.fwComment[c.Name]; !ok {
			g.fwComment[c.Name] = svc
		}
		fwDispatch[k] = g.nameOf(c.Name)
		f.add(g.fixed(iptProxyFirewall), iptComment(svc+" traffic not accepted by "+g.nameOf(c.Name)), g.dst(e.Addr, e.Protocol, e.Port), "-j DROP")
	}

	for _, e := range rs.Services {
		d := g.dst(e.Addr, e.Protocol, e.Port)
		c := iptComment(iptEntryComment(e.Comment, e.Kind))
		switch {
		case fwDispatch[key{e.Addr, e.Protocol, e.Port}] != "":
			n.add(services, c, d, "-g", fwDispatch[key{e.Addr, e.Protocol, e.Port}])
		case e.Target.Chain != "":
			t, err := g.target(e.Target.Chain)
			if err != nil {
				return err
			}
			n.add(services, c, d, "-g", t)
		default:
			// A verdict at dispatch: stop dispatching, then the filter
			// table refuses the connection.
			n.add(services, c, d, "-j RETURN")
			g.addVerdict(g.verdictChain(e), c, d, e.Target)
		}
	}
	for _, d := range g.npDsts {
		n.add(services, iptComment("kpc service nodeports; NOTE: this must be the last rule in this chain"), d, "-g", nodePorts)
	}
	for _, e := range rs.NodePorts {
		p := iptProto(e.Protocol)
		d := "-m " + p + " -p " + p + " --dport " + strconv.Itoa(int(e.Port))
		c := iptComment(iptEntryComment(e.Comment, ""))
		if e.Target.Chain != "" {
			t, err := g.target(e.Target.Chain)
			if err != nil {
				return err
			}
			n.add(nodePorts, c, d, "-g", t)
			continue
		}
		n.add(nodePorts, c, d, "-j RETURN")
		for _, nd := range g.npDsts {
			g.addVerdict(g.fixed(iptExternalServices), c, nd+" "+d, e.Target)
		}
	}
	return nil
}

// verdictChain is the filter chain that refuses new connections to the
// address of e: PREFIX-SERVICES for a cluster IP, PREFIX-EXTERNAL-SERVICES
// for the others (an external IP that is another Service's cluster IP
// too), as kube-proxy places them.
func (g *iptGen) verdictChain(e ir.ServiceEntry) string {
	if e.IsClusterIP(g.clusterIP) {
		return g.fixed(iptServices)
	}
	return g.fixed(iptExternalServices)
}

// addVerdict adds a filter rule that drops or rejects.
func (g *iptGen) addVerdict(chain, comment, match string, t ir.Target) {
	v := "-j REJECT"
	if t.Drop {
		v = "-j DROP"
	}
	g.filter.add(chain, comment, match, v)
}

// noEndpoints writes the filter rules of NoEndpoints and
// NoEndpointNodePorts, with kube-proxy's comments.
func (g *iptGen) noEndpoints() {
	comment := func(svc string, t ir.Target) string {
		if t.Drop {
			return iptComment(iptEntryComment(svc, "") + " has no local endpoints")
		}
		return iptComment(iptEntryComment(svc, "") + " has no endpoints")
	}
	for _, e := range g.rs.NoEndpoints {
		g.addVerdict(g.verdictChain(e), comment(e.Comment, e.Target), g.dst(e.Addr, e.Protocol, e.Port), e.Target)
	}
	// The NodePorts' checks match every local address, as kube-proxy's
	// do, whatever addresses serve NodePorts.
	for _, e := range g.rs.NoEndpointNodePorts {
		p := iptProto(e.Protocol)
		g.addVerdict(g.fixed(iptExternalServices), comment(e.Comment, e.Target),
			"-m addrtype --dst-type LOCAL -m "+p+" -p "+p+" --dport "+strconv.Itoa(int(e.Port)), e.Target)
	}
}
