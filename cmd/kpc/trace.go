package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kpc/compiler/ir"
)

func runTrace(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("trace", "kpc trace -f MANIFESTS --from SRC --to DST:PORT[/PROTO] [flags]", stderr)
	var in inputFlags
	var nf nodeFlags
	in.register(fs)
	nf.register(fs)
	from := fs.String("from", "", "source address of the packet (required)")
	to := fs.String("to", "", "destination ADDR:PORT[/tcp|udp|sctp], e.g. 10.96.0.10:53/udp or [2001:db8::1]:80 (required)")
	fromNode := fs.Bool("from-node", false, "the packet is sent by a process on the node itself (output hook); implied by a loopback or node address in --from, unless --iif names the interface it arrives on")
	toNode := fs.Bool("to-node", false, "the destination is an address of the node: it serves NodePorts on every local address when no --nodeport-addresses restrict them (needed only for addresses that neither --node-ip nor a Node document gives)")
	iif := fs.String("iif", "", "the interface the packet arrives on, for a local-traffic detector by interface (detectLocalMode BridgeInterface or InterfaceNamePrefix): a local pod's packets arrive on the pods' bridge or their own interfaces")
	mode := fs.String("mode", "nft", "whose semantics to trace: nft or iptables (they differ for stray ports on cluster IPs, NodePorts on localhost, health-check ports, and where Services without endpoints are refused)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	pkt, err := parsePacket(*from, *to)
	if err != nil {
		fmt.Fprintf(stderr, "kpc trace: %v\n", err)
		return exitUsage
	}
	pkt.FromNode = *fromNode
	pkt.ToNode = *toNode
	if *iif != "" {
		if *fromNode {
			fmt.Fprintf(stderr, "kpc trace: --iif with --from-node: a packet the node sends arrives on no interface\n")
			return exitUsage
		}
		if why := ir.IfaceNameProblem(*iif, false); why != "" {
			fmt.Fprintf(stderr, "kpc trace: --iif %q: %s\n", *iif, why)
			return exitUsage
		}
		pkt.InIface = *iif
	}
	var m ir.Mode
	switch *mode {
	case "nft":
		m = ir.ModeNFT
	case "iptables":
		m = ir.ModeIPTables
	default:
		fmt.Fprintf(stderr, "kpc trace: --mode %q: want nft or iptables\n", *mode)
		return exitUsage
	}
	prog, code := build(fs, &in, &nf, uses{}, nil, stdin, stderr)
	if prog == nil {
		return code
	}
	if !fs.Changed("from-node") && pkt.InIface == "" && fromNodeAddr(prog, pkt.Src) {
		// Only the node sends from its own or a loopback address.
		pkt.FromNode = true
	}
	res := ir.Trace(prog, pkt, m)
	printTrace(stdout, pkt, res, untouchedWhy(prog, pkt))
	for _, hint := range []string{nodePortHint(prog, pkt, res, m), ifaceHint(prog, pkt)} {
		if hint != "" {
			fmt.Fprintf(stdout, "hint:    %s\n", hint)
		}
	}
	return exitOK
}

// fromNodeAddr reports whether a is a loopback address or one of the
// node's (of prog's Rulesets): a packet from it is the node's own.
func fromNodeAddr(prog *ir.Program, a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	return slices.ContainsFunc(prog.Rulesets, func(rs *ir.Ruleset) bool { return rs != nil && slices.Contains(rs.Node.IPs, a) })
}

// ifaceHint says how the packet was traced when the node tells a local
// pod's packets by the interface they arrive on and --iif did not name
// one, or that --iif is not read when it does not.
func ifaceHint(prog *ir.Program, pkt ir.Packet) string {
	if pkt.FromNode {
		return ""
	}
	for _, rs := range prog.Rulesets {
		if rs == nil || (rs.Family == ir.IPv4) != pkt.Src.Is4() {
			continue
		}
		if pkt.InIface != "" {
			if rs.Node.LocalIface == "" {
				return "--iif is not read: the node does not tell its pods by the interface they arrive on (detectLocalMode BridgeInterface or InterfaceNamePrefix)"
			}
			return ""
		}
		if rs.Node.LocalIface == "" {
			return ""
		}
		if slices.Contains(rs.Node.IPs, pkt.Src) || pkt.Src.IsLoopback() {
			return "" // the node's own packet
		}
		return fmt.Sprintf("the node tells a local pod's packets by the interface they arrive on (%s): this one was traced as arriving on another; give --iif to trace a pod's",
			rs.Node.LocalIfacePattern())
	}
	return ""
}

// nodePortHint explains an untouched packet to a NodePort's port at an
// address the Ruleset does not list as the node's, when the rules serve
// NodePorts on every local address: the tracer cannot tell a local
// address from others without --to-node.
func nodePortHint(prog *ir.Program, pkt ir.Packet, res ir.Result, mode ir.Mode) string {
	if res.Verdict != ir.VerdictUntouched || pkt.ToNode || pkt.Dst.IsLoopback() {
		return ""
	}
	fam := ir.IPv6
	if pkt.Dst.Unmap().Is4() {
		fam = ir.IPv4
	}
	for _, rs := range prog.Rulesets {
		allLocal := rs != nil && (rs.Node.NodePortAllLocal || mode == ir.ModeIPTables && rs.Node.NodePortDefault)
		if !allLocal || rs.Family != fam || slices.Contains(rs.Node.IPs, pkt.Dst.Unmap()) {
			continue
		}
		for _, list := range [][]ir.NodePortEntry{rs.NodePorts, rs.NoEndpointNodePorts} {
			for _, e := range list {
				if e.Protocol == pkt.Protocol && e.Port == pkt.Port {
					known := "no address of the node is known (--node-ip or a Node document)"
					if len(rs.Node.IPs) > 0 {
						known = fmt.Sprintf("%s is not one of the node's known addresses", pkt.Dst)
					}
					return fmt.Sprintf("%s, and the rules serve NodePorts on every local address: if %s is one, NodePort %d/%s (%s) applies; trace again with --to-node",
						known, pkt.Dst, e.Port, e.Protocol, e.Comment)
				}
			}
		}
	}
	return ""
}

// parsePacket parses --from and --to.
func parsePacket(from, to string) (ir.Packet, error) {
	var p ir.Packet
	if from == "" || to == "" {
		return p, fmt.Errorf("--from and --to are required")
	}
	src, err := netip.ParseAddr(from)
	if err != nil {
		return p, fmt.Errorf("--from %q: not an IP address", from)
	}
	proto := ir.TCP
	if dst, pr, ok := strings.Cut(to, "/"); ok {
		switch strings.ToUpper(pr) {
		case "TCP":
		case "UDP":
			proto = ir.UDP
		case "SCTP":
			proto = ir.SCTP
		default:
			return p, fmt.Errorf("--to %q: protocol must be tcp, udp or sctp", to)
		}
		to = dst
	}
	ap, err := netip.ParseAddrPort(to)
	if err != nil {
		// A port beyond 16 bits is a range error, not a form error.
		if i := strings.LastIndexByte(to, ':'); i > 0 {
			if _, aerr := netip.ParseAddrPort(to[:i+1] + "1"); aerr == nil {
				if n, nerr := strconv.ParseUint(to[i+1:], 10, 64); nerr == nil && n > 65535 || errors.Is(nerr, strconv.ErrRange) {
					return p, fmt.Errorf("--to %q: port must be between 1 and 65535", to)
				}
			}
		}
		return p, fmt.Errorf("--to %q: want ADDR:PORT (IPv6 as [ADDR]:PORT)", to)
	}
	if ap.Port() == 0 {
		return p, fmt.Errorf("--to %q: port must be between 1 and 65535", to)
	}
	p.Src, p.Dst, p.Port, p.Protocol = src.Unmap(), ap.Addr().Unmap(), ap.Port(), proto
	if p.Src.Is4() != p.Dst.Is4() {
		return p, fmt.Errorf("--from %s and --to %s are of different IP families", from, to)
	}
	return p, nil
}

func printTrace(w io.Writer, pkt ir.Packet, res ir.Result, untouched string) {
	origin := ""
	if pkt.FromNode {
		origin = " (from the node)"
	}
	if pkt.ToNode {
		origin += " (to the node)"
	}
	if pkt.InIface != "" {
		origin += " (in on " + pkt.InIface + ")"
	}
	fmt.Fprintf(w, "packet:  %s -> %s %s%s\n", pkt.Src, netip.AddrPortFrom(pkt.Dst, pkt.Port), pkt.Protocol, origin)
	fmt.Fprintf(w, "verdict: %s\n", verdictName(res.Verdict, untouched))
	paths := len(res.Path) > 0
	if paths {
		fmt.Fprintf(w, "path:    %s\n", strings.Join(res.Path, " -> "))
	}
	if res.Verdict != ir.VerdictDNAT {
		fmt.Fprintf(w, "masquerade: %s\n", yesNo(res.Masquerade))
	} else {
		fmt.Fprintln(w, "endpoints:")
		for _, r := range res.Reaches {
			fmt.Fprintf(w, "  %-24s p=%s  masquerade=%s\n", r.Endpoint, strconv.FormatFloat(r.Probability, 'f', 4, 64), yesNo(r.Masquerade))
			if len(r.Path) > 0 {
				paths = true
				fmt.Fprintf(w, "    via %s\n", strings.Join(r.Path, " -> "))
			}
		}
	}
	if paths {
		fmt.Fprintln(w, chainsNote)
	}
}

// chainsNote says where a trace's chains are found.
const chainsNote = "chains:  the IR's, as kpc compile --format ir prints them (the nft and iptables outputs share and rename them)"

// verdictName names a verdict; untouched says why a packet is.
func verdictName(v ir.Verdict, untouched string) string {
	switch v {
	case ir.VerdictDNAT:
		return "DNAT to an endpoint"
	case ir.VerdictReject:
		return "reject"
	case ir.VerdictDrop:
		return "drop"
	case ir.VerdictAccept:
		return "accept (a health-check NodePort: accepted in the filter table, delivered to the node)"
	}
	return "untouched (" + untouched + ")"
}

// untouchedWhy says why a packet that no rule changes is untouched.
func untouchedWhy(prog *ir.Program, pkt ir.Packet) string {
	dst := pkt.Dst.Unmap()
	for _, rs := range prog.Rulesets {
		if rs != nil && slices.ContainsFunc(rs.NoEndpoints, func(e ir.ServiceEntry) bool {
			return e.Addr == dst && e.Protocol == pkt.Protocol && e.Port == pkt.Port
		}) {
			// Only iptables mode leaves such a packet alone.
			return "a Service without endpoints, but iptables mode checks this address on other paths than this packet's"
		}
	}
	if serviceAddr(prog, dst) {
		return "a Service address, but no Service port matches"
	}
	return "not a Service address"
}

// serviceAddr reports whether a is an address some Service of prog is
// reached at: a cluster IP, external IP or load-balancer IP.
func serviceAddr(prog *ir.Program, a netip.Addr) bool {
	a = a.Unmap()
	for _, rs := range prog.Rulesets {
		if rs == nil {
			continue
		}
		if slices.Contains(rs.ClusterIPs, a) {
			return true
		}
		for _, list := range [][]ir.ServiceEntry{rs.Services, rs.NoEndpoints, rs.Firewall} {
			if slices.ContainsFunc(list, func(e ir.ServiceEntry) bool { return e.Addr == a }) {
				return true
			}
		}
	}
	return false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
