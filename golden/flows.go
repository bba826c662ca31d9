// Package golden is kpc's end-to-end specification: testdata/<case>/ holds
// manifests (input.yaml), the expected IR and rulesets (want.ir, want.nft,
// want.iptables, want.ip6tables) or the expected error (want.err), and the
// expected fate of packets (flows.yaml). The tests in this package check
// every case with the IR tracer and, as root, with real packets in a real
// kernel for every renderer. Run "go test ./golden -update" to rewrite the
// want files, then review the diff.
package golden

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"kpc/compiler/ir"
	"kpc/internal/netlab"
)

// Flow is one expected packet fate from flows.yaml.
type Flow struct {
	// Name describes the flow.
	Name string `yaml:"name"`
	// From is the source address, or "node" for a process on the node
	// (the node's first address of the destination's family). A node
	// address or a loopback address (127.0.0.1, ::1) is also a process on
	// the node.
	From string `yaml:"from"`
	// To is "ADDR:PORT[/tcp|udp|sctp]"; IPv6 as "[ADDR]:PORT".
	To string `yaml:"to"`
	// Expect is the expected fate in nftables mode (and in iptables mode
	// unless IPTables overrides it).
	Expect Expect `yaml:",inline"`
	// IPTables, when set, is the expected fate in iptables mode where
	// kube-proxy's iptables mode differs.
	IPTables *Expect `yaml:"iptables,omitempty"`
}

// Expect is an expected fate.
type Expect struct {
	// Verdict is dnat (the default when Endpoints is set), reject, drop,
	// untouched or accept (iptables mode: a health-check NodePort, which
	// the kernel delivers to the node as it does an untouched packet).
	Verdict string `yaml:"verdict,omitempty"`
	// Endpoints is the exact set of "ip:port" endpoints that can be reached.
	Endpoints []string `yaml:"endpoints,omitempty"`
	// Masquerade says whether the endpoint sees the node's address instead
	// of the client's.
	Masquerade bool `yaml:"masquerade,omitempty"`
	// Affinity says that repeated connections from the client reach the
	// same endpoint (checked in the kernel; the tracer sees first packets).
	Affinity bool `yaml:"affinity,omitempty"`
}

// Packet is a parsed flow.
type Packet struct {
	ir.Packet
	// Node is true when From was "node".
	Node bool
}

// ParseFlows parses a flows.yaml file strictly (unknown fields are errors).
func ParseFlows(data []byte) ([]Flow, error) {
	var flows []Flow
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&flows); err != nil {
		return nil, fmt.Errorf("flows.yaml: %w", err)
	}
	for i, f := range flows {
		if f.Name == "" {
			return nil, fmt.Errorf("flows.yaml: flow %d: name is required", i)
		}
		for _, e := range []*Expect{&flows[i].Expect, flows[i].IPTables} {
			if e == nil {
				continue
			}
			if e.Verdict == "" && len(e.Endpoints) > 0 {
				e.Verdict = "dnat"
			}
			switch e.Verdict {
			case "dnat", "reject", "drop", "untouched", "accept":
			default:
				return nil, fmt.Errorf("flows.yaml: flow %q: verdict %q: want dnat, reject, drop, untouched or accept", f.Name, e.Verdict)
			}
			if (e.Verdict == "dnat") != (len(e.Endpoints) > 0) {
				return nil, fmt.Errorf("flows.yaml: flow %q: endpoints go with verdict dnat", f.Name)
			}
			slices.Sort(e.Endpoints)
		}
	}
	return flows, nil
}

// DefaultNodeIP is the node address used when a case names none.
var DefaultNodeIP = map[ir.Family]netip.Addr{
	ir.IPv4: netip.MustParseAddr("198.51.100.1"),
	ir.IPv6: netip.MustParseAddr("2001:db8:1::1"),
}

// NodeIPs returns the node addresses of a program (every Ruleset's
// Node.IPs), or the defaults when it has none of a family.
func NodeIPs(p *ir.Program) []netip.Addr {
	var out []netip.Addr
	have := map[ir.Family]bool{}
	for _, rs := range p.Rulesets {
		for _, a := range rs.Node.IPs {
			out = append(out, a)
			have[familyOf(a)] = true
		}
	}
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		if !have[f] {
			out = append(out, DefaultNodeIP[f])
		}
	}
	return out
}

func familyOf(a netip.Addr) ir.Family {
	if a.Is4() {
		return ir.IPv4
	}
	return ir.IPv6
}

// Resolve parses a flow's addresses; nodeIPs are used for From "node".
func (f Flow) Resolve(nodeIPs []netip.Addr) (Packet, error) {
	var p Packet
	to, proto := f.To, ir.TCP
	if dst, pr, ok := strings.Cut(to, "/"); ok {
		switch strings.ToLower(pr) {
		case "tcp":
		case "udp":
			proto = ir.UDP
		case "sctp":
			proto = ir.SCTP
		default:
			return p, fmt.Errorf("flow %q: to %q: protocol must be tcp, udp or sctp", f.Name, f.To)
		}
		to = dst
	}
	ap, err := netip.ParseAddrPort(to)
	if err != nil {
		return p, fmt.Errorf("flow %q: to %q: %w", f.Name, f.To, err)
	}
	p.Dst, p.Port, p.Protocol = ap.Addr(), ap.Port(), proto
	if f.From == "node" {
		p.Node, p.FromNode = true, true
		for _, a := range nodeIPs {
			if a.Is4() == p.Dst.Is4() {
				p.Src = a
				break
			}
		}
		return p, nil
	}
	if p.Src, err = netip.ParseAddr(f.From); err != nil {
		return p, fmt.Errorf("flow %q: from %q: %w", f.Name, f.From, err)
	}
	if p.Src.Is4() != p.Dst.Is4() {
		return p, fmt.Errorf("flow %q: from and to are of different families", f.Name)
	}
	p.FromNode = slices.Contains(nodeIPs, p.Src) || p.Src.IsLoopback()
	return p, nil
}

// Arrive sets the interface at which the kernel tests' packet arrives at
// the node (for a local-traffic detector by interface): the backend
// namespace's from an endpoint's address (epAddrs, see EndpointAddrs), the
// client namespace's from another; none from the node.
func (p *Packet) Arrive(epAddrs map[netip.Addr]bool) {
	switch {
	case p.FromNode:
		p.InIface = ""
	case epAddrs[p.Src]:
		p.InIface = netlab.BackendIface
	default:
		p.InIface = netlab.ClientIface
	}
}

// EndpointAddrs returns the addresses prog's rules DNAT to, but for SCTP
// ports: the kernel tests' backend namespace holds them (it serves no
// SCTP, and a source that is only an SCTP endpoint's sends from the client
// namespace).
func EndpointAddrs(prog *ir.Program) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, rs := range prog.Rulesets {
		if rs == nil {
			continue
		}
		for _, ch := range rs.Chains {
			if ch == nil {
				continue
			}
			for _, r := range ch.RuleList() {
				if d, ok := r.Action.(*ir.DNAT); ok && d != nil && d.Protocol != ir.SCTP {
					out[d.Addr] = true
				}
			}
		}
	}
	return out
}

// For returns the expectation for a mode.
func (f Flow) For(mode ir.Mode) Expect {
	if mode == ir.ModeIPTables && f.IPTables != nil {
		return *f.IPTables
	}
	return f.Expect
}

// CheckTrace compares a tracer result with an expectation and returns a
// description of every difference (nil when they agree).
func CheckTrace(want Expect, got ir.Result) []string {
	var diffs []string
	verdict := map[ir.Verdict]string{
		ir.VerdictDNAT: "dnat", ir.VerdictReject: "reject", ir.VerdictDrop: "drop", ir.VerdictUntouched: "untouched",
		ir.VerdictAccept: "accept",
	}[got.Verdict]
	if verdict != want.Verdict {
		diffs = append(diffs, fmt.Sprintf("verdict %s, want %s", verdict, want.Verdict))
	}
	if want.Verdict != "dnat" {
		return diffs
	}
	var eps []string
	total := 0.0
	for _, r := range got.Reaches {
		eps = append(eps, r.Endpoint.String())
		total += r.Probability
		if r.Masquerade != want.Masquerade {
			diffs = append(diffs, fmt.Sprintf("endpoint %s: masquerade %v, want %v", r.Endpoint, r.Masquerade, want.Masquerade))
		}
	}
	slices.Sort(eps)
	if !slices.Equal(eps, want.Endpoints) {
		diffs = append(diffs, fmt.Sprintf("endpoints %v, want %v", eps, want.Endpoints))
	}
	if len(got.Reaches) > 0 && (total < 0.999 || total > 1.001) {
		diffs = append(diffs, fmt.Sprintf("probabilities sum to %.4f, want 1", total))
	}
	return diffs
}
