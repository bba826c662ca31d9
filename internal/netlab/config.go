package netlab

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Config describes the hosts of a lab. Addresses of both families may be
// mixed freely; IPv4-mapped IPv6 addresses are treated as IPv4.
type Config struct {
	// NodeIPs are the addresses of the node (the namespace the ruleset is
	// loaded into). They are assigned to the node's client-facing interface;
	// a masquerade picks one of them (IPv4: the first; IPv6: by source
	// address selection). Empty means DefaultNodeIPs. Give one of every
	// family that is masqueraded.
	NodeIPs []netip.Addr
	// Endpoints are the backend servers to run. An endpoint whose address is
	// a node IP is served from the node namespace itself (a host-network
	// endpoint); every other endpoint address lives in the backend namespace.
	// Protocol "SCTP" entries are ignored (no SCTP sockets on the test kernel).
	Endpoints []Endpoint
	// Clients are the source addresses of external clients and of pods that
	// are not endpoints. They live in the client namespace and must not be
	// node or endpoint addresses. A client address may also be a probe's
	// destination (a load balancer IP that comes back as the source of a
	// hairpinned packet): the client namespace sends everything, even to
	// its own addresses, through the node.
	Clients []netip.Addr
}

// Endpoint is one backend server: an address, a port and a protocol ("TCP",
// "UDP" or "SCTP"; case-insensitive, empty means "TCP").
type Endpoint struct {
	Addr     netip.Addr
	Port     uint16
	Protocol string
}

// DefaultNodeIPs are the node addresses used when Config.NodeIPs is empty.
var DefaultNodeIPs = []netip.Addr{
	netip.MustParseAddr("198.51.100.1"),
	netip.MustParseAddr("2001:db8:1::1"),
}

// maxHosts bounds the number of addresses and endpoints of a lab.
const maxHosts = 4096

// plan is a validated, normalised Config.
type plan struct {
	nodeIPs   []netip.Addr // in the caller's order, unique
	clients   []netip.Addr // sorted, unique
	endpoints []Endpoint   // TCP and UDP only, sorted, unique, protocol upper case
	// backendAddrs are the endpoint addresses served from the backend
	// namespace (not node IPs), sorted and unique.
	backendAddrs []netip.Addr
}

// checkHostAddr rejects addresses the lab cannot give to a host.
func checkHostAddr(what string, a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return a, fmt.Errorf("%s: invalid address", what)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return a, fmt.Errorf("%s %s: unspecified, loopback, multicast and link-local addresses cannot be lab hosts", what, a)
	case a.Zone() != "":
		return a, fmt.Errorf("%s %s: zoned addresses are not supported", what, a)
	case a == netip.MustParseAddr(upstreamSrc6):
		return a, fmt.Errorf("%s %s: reserved for the lab's upstream router", what, a)
	}
	return a, nil
}

// normalizeProtocol maps a protocol name to "TCP", "UDP" or "SCTP".
func normalizeProtocol(p string) (string, error) {
	switch u := strings.ToUpper(p); u {
	case "":
		return "TCP", nil
	case "TCP", "UDP", "SCTP":
		return u, nil
	default:
		return "", fmt.Errorf("unknown protocol %q (want TCP, UDP or SCTP)", p)
	}
}

// newPlan validates and normalises cfg.
func newPlan(cfg Config) (plan, error) {
	var p plan
	if len(cfg.NodeIPs)+len(cfg.Clients)+len(cfg.Endpoints) > maxHosts {
		return p, fmt.Errorf("too many addresses and endpoints (limit %d)", maxHosts)
	}
	nodeIPs := cfg.NodeIPs
	if len(nodeIPs) == 0 {
		nodeIPs = DefaultNodeIPs
	}
	isNode := map[netip.Addr]bool{}
	for _, a := range nodeIPs {
		a, err := checkHostAddr("node IP", a)
		if err != nil {
			return p, err
		}
		if !isNode[a] {
			isNode[a] = true
			p.nodeIPs = append(p.nodeIPs, a)
		}
	}
	type epKey struct {
		ap    netip.AddrPort
		proto string
	}
	seenEP := map[epKey]bool{}
	isBackend := map[netip.Addr]bool{}
	for _, e := range cfg.Endpoints {
		a, err := checkHostAddr("endpoint", e.Addr)
		if err != nil {
			return p, err
		}
		proto, err := normalizeProtocol(e.Protocol)
		if err != nil {
			return p, fmt.Errorf("endpoint %s: %w", netip.AddrPortFrom(a, e.Port), err)
		}
		if e.Port == 0 {
			return p, fmt.Errorf("endpoint %s %s: port 0", a, proto)
		}
		if !isNode[a] && !isBackend[a] {
			isBackend[a] = true
			p.backendAddrs = append(p.backendAddrs, a)
		}
		k := epKey{netip.AddrPortFrom(a, e.Port), proto}
		if proto == "SCTP" || seenEP[k] {
			continue
		}
		seenEP[k] = true
		p.endpoints = append(p.endpoints, Endpoint{Addr: a, Port: e.Port, Protocol: proto})
	}
	seenClient := map[netip.Addr]bool{}
	for _, a := range cfg.Clients {
		a, err := checkHostAddr("client", a)
		if err != nil {
			return p, err
		}
		switch {
		case isNode[a]:
			return p, fmt.Errorf("client %s is also a node IP", a)
		case isBackend[a]:
			return p, fmt.Errorf("client %s is also an endpoint address", a)
		}
		if !seenClient[a] {
			seenClient[a] = true
			p.clients = append(p.clients, a)
		}
	}
	slices.SortFunc(p.clients, netip.Addr.Compare)
	slices.SortFunc(p.backendAddrs, netip.Addr.Compare)
	slices.SortFunc(p.endpoints, func(a, b Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
	return p, nil
}
