package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// The node's interfaces that the client and the backend namespace's
// packets arrive on (see the topology below): a local-traffic detector by
// interface that names one takes that namespace's packets for a local
// pod's.
const (
	ClientIface  = "toc"
	BackendIface = "tob"
)

// Topology (interface names are inside the lab's own namespaces):
//
//	client ns                  node ns                         backend ns
//	eth0 ────────────────────── toc          tob ────────────── eth0
//	fe80::2                     169.254.1.1 and fe80::1          fe80::3
//	client addresses /32 /128   on toc, tob, tou                 endpoint addresses /32 /128
//	                            node IPs /32 /128 on toc
//	                                 tou
//	                                  │
//	                            eth0 (upstream ns): 169.254.1.2, fe80::4, 2001:2::1
//
// The node routes every client address to toc, every backend endpoint address
// to tob, and everything else (its default route) to the upstream namespace,
// which plays the node's default gateway: it answers every unicast packet
// from the node with ICMP host (IPv4) or address (IPv6) unreachable (see
// upstreamRuleset). A packet the ruleset neither DNATs nor delivers therefore
// still crosses the node's forward or output and postrouting hooks, as on a
// real node, and then the sender gets EHOSTUNREACH. The upstream owns no lab
// address, so it can answer packets from any of them.
//
// The client and backend namespaces route everything to the node (gateway
// 169.254.1.1 on-link, fe80::1). Policy routing (policyRules) sends their
// locally generated traffic through the node even when the destination is
// one of their own addresses. In the backend namespace, which holds all
// endpoint addresses, that is traffic between two pods (traffic from an
// address to itself stays inside, as inside one pod). In the client
// namespace it includes traffic from an address to itself: a client may use
// a Service address as its source (a cloud load balancer that hairpins a
// packet back to the node with the load balancer IP as source), and such a
// packet must meet the node's ruleset, not the client's own socket.
const (
	nodeClientIf   = ClientIface  // node end of the client veth
	nodeBackendIf  = BackendIface // node end of the backend veth
	nodeUpstreamIf = "tou"        // node end of the upstream veth
	peerIf         = "eth0"       // client, backend and upstream end of their veth

	nodeGW4     = "169.254.1.1" // node, link scope: gateway of the other namespaces
	upstreamGW4 = "169.254.1.2" // upstream, link scope: the node's default gateway
	nodeGW6     = "fe80::1"
	clientLL6   = "fe80::2"
	backendLL6  = "fe80::3"
	upstreamGW6 = "fe80::4"
	// upstreamSrc6 is the upstream's global address, the source of its
	// ICMPv6 errors (an error from a link-local source cannot be forwarded
	// to a client). From the benchmarking range, reserved by Config checks.
	upstreamSrc6 = "2001:2::1"

	podTable = "100" // client and backend ns: everything via the node
)

// hostPrefix is a as a single-host prefix ("a/32" or "a/128").
func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}

// addrLine assigns a host address to dev (IPv6 without duplicate address
// detection, so that it is usable at once).
func addrLine(a netip.Addr, dev string) string {
	if a.Is6() {
		return fmt.Sprintf("address add %s dev %s nodad", hostPrefix(a), dev)
	}
	return fmt.Sprintf("address add %s dev %s", hostPrefix(a), dev)
}

// rootScript creates the veth pairs directly inside the lab namespaces
// (they never appear in the calling namespace).
func rootScript(names [numRoles]string) string {
	var b strings.Builder
	for _, v := range []struct {
		nodeIf string
		peer   role
	}{{nodeClientIf, roleClient}, {nodeBackendIf, roleBackend}, {nodeUpstreamIf, roleUpstream}} {
		fmt.Fprintf(&b, "link add name %s netns %s type veth peer name %s netns %s\n", v.nodeIf, names[roleNode], peerIf, names[v.peer])
	}
	return b.String()
}

// leafScript is the common part of the client, backend and upstream
// namespaces: interfaces up, a link-local IPv6 address, the given host
// addresses, and default routes towards the node in table (empty: main).
func leafScript(ll6 string, addrs []netip.Addr, table string) []string {
	lines := []string{
		"link set lo up",
		"link set " + peerIf + " up",
		fmt.Sprintf("address add %s/64 dev %s nodad", ll6, peerIf),
	}
	for _, a := range addrs {
		lines = append(lines, addrLine(a, peerIf))
	}
	suffix := ""
	if table != "" {
		suffix = " table " + table
	}
	return append(lines,
		fmt.Sprintf("route add 0.0.0.0/0 via %s dev %s onlink%s", nodeGW4, peerIf, suffix),
		fmt.Sprintf("route add ::/0 via %s dev %s%s", nodeGW6, peerIf, suffix),
	)
}

// clientScript configures the client namespace (all client addresses;
// default routes in podTable, selected by policyRules).
func clientScript(p plan) string {
	return strings.Join(leafScript(clientLL6, p.clients, podTable), "\n") + "\n"
}

// upstreamScript configures the upstream namespace.
func upstreamScript() string {
	lines := leafScript(upstreamGW6, nil, "")
	lines = append(lines,
		fmt.Sprintf("address add %s/32 dev %s scope link", upstreamGW4, peerIf),
		fmt.Sprintf("address add %s/128 dev %s nodad", upstreamSrc6, peerIf),
	)
	return strings.Join(lines, "\n") + "\n"
}

// upstreamRuleset makes the upstream namespace answer every unicast packet
// not addressed to itself with ICMP host (IPv4) / address (IPv6)
// unreachable. It is a netfilter reject rather than an "unreachable" route
// because the kernel rate-limits the ICMP errors of routes per source
// (net.ipv4.route.error_burst, a global sysctl a lab must not touch): after
// five, probes would turn into timeouts.
const upstreamRuleset = `table inet netlab-upstream {
	chain prerouting {
		type filter hook prerouting priority 0; policy accept;
		meta iifname "` + peerIf + `" fib daddr type unicast reject with icmpx host-unreachable
	}
}
`

// backendScript configures the backend namespace (all endpoint addresses;
// default routes in podTable, selected by policyRules).
func backendScript(p plan) string {
	return strings.Join(leafScript(backendLL6, p.backendAddrs, podTable), "\n") + "\n"
}

// policyRules is the policy routing of the client or backend namespace for
// one family (run with `ip -4` or `ip -6`: rules take no family from
// "all"): received packets and loopback traffic are delivered locally, the
// addresses of selfLocal talking to themselves stay inside (the endpoint
// addresses of the backend namespace: one pod), and everything else leaves
// through the node.
func policyRules(selfLocal []netip.Addr, loopback string) string {
	lines := []string{
		// Received packets: local delivery as usual.
		"rule add iif " + peerIf + " lookup local pref 100",
		"rule add to " + loopback + " lookup local pref 110",
	}
	// An address talking to itself stays inside (one pod).
	for _, a := range selfLocal {
		lines = append(lines, fmt.Sprintf("rule add from %s to %s lookup local pref 120", hostPrefix(a), hostPrefix(a)))
	}
	// Everything else leaves through the node (pod to pod, pod to service,
	// a client to its own address).
	lines = append(lines,
		"rule add lookup "+podTable+" pref 200",
		"rule add lookup local pref 300",
		"rule del pref 0",
	)
	return strings.Join(lines, "\n") + "\n"
}

// nodeScript configures the node namespace.
func nodeScript(p plan) string {
	lines := []string{"link set lo up"}
	for _, dev := range []string{nodeClientIf, nodeBackendIf, nodeUpstreamIf} {
		lines = append(lines,
			"link set "+dev+" up",
			fmt.Sprintf("address add %s/32 dev %s scope link", nodeGW4, dev),
			fmt.Sprintf("address add %s/64 dev %s nodad", nodeGW6, dev),
		)
	}
	for _, a := range p.nodeIPs {
		lines = append(lines, addrLine(a, nodeClientIf))
	}
	for _, a := range p.clients {
		lines = append(lines, fmt.Sprintf("route add %s dev %s", hostPrefix(a), nodeClientIf))
	}
	for _, a := range p.backendAddrs {
		lines = append(lines, fmt.Sprintf("route add %s dev %s", hostPrefix(a), nodeBackendIf))
	}
	lines = append(lines,
		fmt.Sprintf("route add 0.0.0.0/0 via %s dev %s onlink", upstreamGW4, nodeUpstreamIf),
		fmt.Sprintf("route add ::/0 via %s dev %s", upstreamGW6, nodeUpstreamIf),
	)
	return strings.Join(lines, "\n") + "\n"
}

// commonSysctls apply to every lab namespace. They are written before any
// interface exists, so the "default" values reach the veths.
var commonSysctls = []sysctl{
	{"net/ipv4/conf/all/rp_filter", "0"},
	{"net/ipv4/conf/default/rp_filter", "0"},
	{"net/ipv4/conf/all/accept_redirects", "0"},
	{"net/ipv4/conf/default/accept_redirects", "0"},
	{"net/ipv6/conf/all/accept_redirects", "0"},
	{"net/ipv6/conf/default/accept_redirects", "0"},
	{"net/ipv6/conf/all/accept_dad", "0"},
	{"net/ipv6/conf/default/accept_dad", "0"},
	// ICMP errors are the signal of "unreachable" and "rejected": never
	// rate-limit them, or bursts of probes would turn into timeouts.
	{"net/ipv4/icmp_ratelimit", "0"},
	{"net/ipv4/icmp_ratemask", "0"},
	{"net/ipv6/icmp/ratelimit", "0"},
	{"net/ipv6/icmp/ratemask", ""},
}

// routerSysctls make the node forward.
var routerSysctls = []sysctl{
	{"net/ipv4/ip_forward", "1"},
	{"net/ipv6/conf/all/forwarding", "1"},
	{"net/ipv4/conf/all/send_redirects", "0"},
	{"net/ipv4/conf/default/send_redirects", "0"},
}

// backendSysctls accept packets whose source is a local address: a pod
// reaching another pod (or itself through a Service) without masquerade.
var backendSysctls = []sysctl{
	{"net/ipv4/conf/all/accept_local", "1"},
	{"net/ipv4/conf/default/accept_local", "1"},
}

// sysctlsFor returns the sysctls of a role.
func sysctlsFor(r role) []sysctl {
	s := append([]sysctl(nil), commonSysctls...)
	switch r {
	case roleNode:
		s = append(s, routerSysctls...)
	case roleBackend:
		s = append(s, backendSysctls...)
	}
	return s
}

// runIP runs `ip [-n ns] [opts...] -batch -` with script on stdin.
func runIP(ctx context.Context, ipPath, ns, script string, opts ...string) error {
	args := append(opts, "-batch", "-")
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, ipPath, args...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitRunning polls until every named interface of the namespace open as
// nsFD is operationally up (a veth drops packets until then), or the
// deadline passes.
func waitRunning(nsFD int, deadline time.Time, ifNames ...string) error {
	return runInNS(nsFD, func() error {
		for _, name := range ifNames {
			for {
				ifc, err := net.InterfaceByName(name)
				if err != nil {
					return fmt.Errorf("interface %s: %w", name, err)
				}
				if ifc.Flags&net.FlagRunning != 0 {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("interface %s is not running after setup", name)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		return nil
	})
}
