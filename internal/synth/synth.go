// Package synth generates deterministic synthetic clusters for benchmarks
// and for "kpc gen": Services with a realistic mix of ports, NodePorts,
// LoadBalancers with source ranges, Local traffic policies, session
// affinity (with a timeout of 600 s or the default 10800 s) and IPv6, each
// with an EndpointSlice, plus the Node and
// KubeProxyConfiguration of the node being compiled for. The same Config
// always gives the same bytes, and every size gives a valid cluster.
//
// NodePorts (and the healthCheckNodePorts of LoadBalancers with
// externalTrafficPolicy Local) are given out explicitly and in order from
// the default range 30000-32767, which holds 2,768 ports for the whole
// cluster: once it is used up (after about 8,500 Services of the mix), the
// NodePort and LoadBalancer Services of the mix become ClusterIP Services.
package synth

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Config sizes a synthetic cluster.
type Config struct {
	// Services is the number of Services.
	Services int
	// Endpoints is the number of endpoints of each Service.
	Endpoints int
	// Plain makes every Service a single-port IPv4 ClusterIP Service with
	// no affinity or policy (kube-proxy's benchmark shape).
	Plain bool
}

// NodeName is the node the generated cluster is compiled for.
const NodeName = "node-0"

// nodes is how many nodes the endpoints are spread over.
const nodes = 10

// The NodePort range (kube-apiserver's default), shared by nodePorts and
// healthCheckNodePorts.
const (
	nodePortMin = 30000
	nodePortMax = 32767
)

// Write writes the cluster as multi-document YAML.
func Write(w io.Writer, c Config) error {
	var b strings.Builder
	b.Grow(600 * (c.Services + 1))
	fmt.Fprintf(&b, `apiVersion: v1
kind: Node
metadata:
  name: %s
  labels:
    topology.kubernetes.io/zone: zone-0
status:
  addresses:
  - type: InternalIP
    address: 192.0.2.1
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.128.0.0/9
`, NodeName)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	next := nodePortMin // the next free nodePort
	for i := range c.Services {
		b.Reset()
		writeService(&b, c, i, &next)
		if _, err := io.WriteString(w, b.String()); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// kind of Service i in the mix.
type shape struct {
	typ       string // ClusterIP, NodePort, LoadBalancer
	ports     int
	local     bool // externalTrafficPolicy Local
	affinity  bool
	ipv6      bool
	lbRanges  bool
	internalL bool // internalTrafficPolicy Local
}

func shapeOf(c Config, i int) shape {
	if c.Plain {
		return shape{typ: "ClusterIP", ports: 1}
	}
	s := shape{typ: "ClusterIP", ports: 1 + i%3}
	switch {
	case i%20 == 1:
		s.typ, s.lbRanges = "LoadBalancer", true
	case i%10 == 0:
		s.typ = "NodePort"
	}
	s.local = s.typ != "ClusterIP" && i%7 == 2
	s.affinity = i%11 == 3
	s.ipv6 = i%13 == 4
	s.internalL = i%17 == 5
	return s
}

// clusterIP returns Service i's address: sequential in 10.96.0.0/12 or
// fd00:10:96::/108, skipping the network address and .1.
func clusterIP(i int, v6 bool) netip.Addr {
	n := uint32(i + 2)
	if v6 {
		a := netip.MustParseAddr("fd00:10:96::").As16()
		a[13], a[14], a[15] = byte(n>>16), byte(n>>8), byte(n)
		return netip.AddrFrom16(a)
	}
	base := netip.MustParseAddr("10.96.0.0").As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// endpointIP returns endpoint j of Service i: pod addresses in 10.128.0.0/9
// (or 2001:db8:244::/48).
func endpointIP(c Config, i, j int, v6 bool) netip.Addr {
	n := uint32(i*c.Endpoints + j + 1)
	if v6 {
		a := netip.MustParseAddr("2001:db8:244::").As16()
		a[12], a[13], a[14], a[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{10, 128 | byte(n>>16)&0x7f, byte(n >> 8), byte(n)})
}

// takePorts returns the first of the n ports (nodePorts, then the
// healthCheckNodePort) that Service shape s needs from the NodePort range,
// advancing *next, or 0 when the range has no room left (or s needs none).
func takePorts(s shape, next *int) int {
	n := 0
	if s.typ != "ClusterIP" {
		n = s.ports
		if s.typ == "LoadBalancer" && s.local {
			n++
		}
	}
	if n == 0 || *next+n-1 > nodePortMax {
		return 0
	}
	first := *next
	*next += n
	return first
}

func writeService(b *strings.Builder, c Config, i int, nextNodePort *int) {
	s := shapeOf(c, i)
	nodePort := takePorts(s, nextNodePort)
	if nodePort == 0 && s.typ != "ClusterIP" {
		// The NodePort range is used up.
		s.typ, s.local, s.lbRanges = "ClusterIP", false, false
	}
	name := fmt.Sprintf("svc-%d", i)
	ns := fmt.Sprintf("ns-%d", i%50)
	family := "IPv4"
	if s.ipv6 {
		family = "IPv6"
	}
	fmt.Fprintf(b, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  type: %s\n  clusterIP: %s\n  ipFamilies: [%s]\n  selector:\n    app: %s\n",
		name, ns, s.typ, clusterIP(i, s.ipv6), family, name)
	if s.local {
		b.WriteString("  externalTrafficPolicy: Local\n")
		if s.typ == "LoadBalancer" {
			fmt.Fprintf(b, "  healthCheckNodePort: %d\n", nodePort+s.ports)
		}
	}
	if s.internalL {
		b.WriteString("  internalTrafficPolicy: Local\n")
	}
	switch {
	case s.affinity && i%2 == 0:
		// The API server's default timeout, 10800 s.
		b.WriteString("  sessionAffinity: ClientIP\n")
	case s.affinity:
		b.WriteString("  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 600\n")
	}
	if s.lbRanges && !s.ipv6 {
		b.WriteString("  loadBalancerSourceRanges: [203.0.113.0/24, 198.51.100.0/24]\n")
	}
	b.WriteString("  ports:\n")
	for p := range s.ports {
		fmt.Fprintf(b, "  - name: p%d\n    port: %d\n    targetPort: %d\n", p, 80+p, 8080+p)
		if s.typ != "ClusterIP" {
			fmt.Fprintf(b, "    nodePort: %d\n", nodePort+p)
		}
	}
	if s.typ == "LoadBalancer" {
		lb := clusterIP(i, s.ipv6).As16()
		if s.ipv6 {
			lb[2] = 0xb8 // fd00:b8..: a distinct range for load balancers
			fmt.Fprintf(b, "status:\n  loadBalancer:\n    ingress:\n    - ip: %s\n", netip.AddrFrom16(lb))
		} else {
			v4 := clusterIP(i, false).As4()
			fmt.Fprintf(b, "status:\n  loadBalancer:\n    ingress:\n    - ip: 172.16.%d.%d\n", v4[2], v4[3])
		}
	}
	addrType := "IPv4"
	if s.ipv6 {
		addrType = "IPv6"
	}
	fmt.Fprintf(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n  namespace: %s\n  labels:\n    kubernetes.io/service-name: %s\naddressType: %s\nports:\n", name, ns, name, addrType)
	for p := range s.ports {
		fmt.Fprintf(b, "- name: p%d\n  port: %d\n", p, 8080+p)
	}
	b.WriteString("endpoints:\n")
	for j := range c.Endpoints {
		fmt.Fprintf(b, "- addresses: [\"%s\"]\n  nodeName: node-%d\n  conditions: {ready: true}\n", endpointIP(c, i, j, s.ipv6), (i+j)%nodes)
	}
}
