package golden

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"kpc/compiler/ir"
	"kpc/internal/netlab"
)

var (
	diffSeed     = flag.Uint64("diff.seed", 1, "TestDifferential: seed of the first random cluster")
	diffClusters = flag.Int("diff.clusters", 6, "TestDifferential: number of random clusters replayed in the kernel")
	diffModel    = flag.Int("diff.model", 300, "TestDifferential: number of random clusters whose tracer results are checked against the model (the first -diff.clusters of them also in the kernel)")
	diffBackends = flag.String("diff.backends", "", "TestDifferential: comma-separated backends to run (default: every one whose tools are installed)")
	diffKeep     = flag.String("diff.keep", "", "TestDifferential: directory to write every disagreeing cluster to, as a golden case (input.yaml, flows.yaml)")
	diffBudget   = flag.Duration("diff.budget", 45*time.Second, "TestDifferential: stop starting new clusters in the kernel after this long")
)

// Addresses the random clusters use. Node and client addresses are from the
// documentation ranges; pods from 10.244.0.0/16 and fd00:244::/48, of which
// the node's own pods are in 10.244.0.0/24 and fd00:244::/64.
var (
	genNodeIPs = map[ir.Family][]netip.Addr{
		ir.IPv4: {netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")},
		ir.IPv6: {netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:1::2")},
	}
	// genClients are the client namespace's sources: an external client
	// outside every source range, one inside the ranges, a pod of this
	// node that is no endpoint, and a pod of another node.
	genClients = map[ir.Family]map[string]netip.Addr{
		ir.IPv4: {
			"external": netip.MustParseAddr("192.0.2.7"),
			"allowed":  netip.MustParseAddr("203.0.113.5"),
			"localpod": netip.MustParseAddr("10.244.0.250"),
			"otherpod": netip.MustParseAddr("10.244.3.250"),
		},
		ir.IPv6: {
			"external": netip.MustParseAddr("2001:db8:c::7"),
			"allowed":  netip.MustParseAddr("2001:db8:a::5"),
			"localpod": netip.MustParseAddr("fd00:244::fa"),
			"otherpod": netip.MustParseAddr("fd00:244:0:3::fa"),
		},
	}
	genAllowed = map[ir.Family][]string{
		ir.IPv4: {"203.0.113.0/28", "198.51.100.0/24"},
		ir.IPv6: {"2001:db8:a::/64", "2001:db8:1::/64"},
	}
	genClusterCIDR = map[ir.Family]string{ir.IPv4: "10.244.0.0/16", ir.IPv6: "fd00:244::/48"}
	genPodCIDR     = map[ir.Family]string{ir.IPv4: "10.244.0.0/24", ir.IPv6: "fd00:244::/64"}
)

// genEndpoint is one endpoint of a random EndpointSlice.
type genEndpoint struct {
	addr                        netip.Addr
	local                       bool
	ready, serving, terminating *bool
}

// genPort is one port of a random Service.
type genPort struct {
	name     string
	proto    ir.Protocol
	port     uint16
	target   uint16
	named    bool // targetPort given by name
	nodePort uint16
}

// genService is one random Service.
type genService struct {
	name          string
	typ           string // ClusterIP, NodePort, LoadBalancer, Headless, ExternalName
	fams          []ir.Family
	clusterIPs    map[ir.Family]netip.Addr
	externalIPs   map[ir.Family]netip.Addr
	lbIPs         map[ir.Family]netip.Addr
	sourceRanges  bool
	affinity      bool
	eTPLocal      bool
	iTPLocal      bool
	ports         []genPort
	endpoints     map[ir.Family][]genEndpoint
	missingPort   string // a port name left out of the slices
	noSlice       bool
	policyDefault bool
	// rangesNode adds a source range that holds the node's addresses
	// (kube-proxy then also allows the LB IPs as sources).
	rangesNode bool
	// proxyMode gives the LB ingress ipMode Proxy (not programmed).
	proxyMode bool
	// otherProxy labels the Service for another proxy (no rules).
	otherProxy bool
	// split spreads the endpoints over two slices that share one.
	split bool
	// mirror gives the Service no selector and a v1 Endpoints, which
	// kpc mirrors into EndpointSlices as the cluster's controller does.
	mirror bool
}

// genCluster is one random cluster and the node it is compiled for.
type genCluster struct {
	fams        []ir.Family
	node        bool
	nodeIPs     map[ir.Family][]netip.Addr
	clusterCIDR bool
	nodeCIDR    bool // detectLocalMode NodeCIDR
	// iface, when set, is the local-traffic detector by interface
	// (detectLocalMode BridgeInterface, or InterfaceNamePrefix when
	// ifacePrefix), which replaces the pod ranges.
	iface         string
	ifacePrefix   bool
	masqAll       bool
	nodePortAddrs []string
	localhostNP   *bool
	svcs          []*genService
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func boolPtr(b bool) *bool { return &b }

// genRandomCluster builds a random cluster of 1 to 6 Services.
func genRandomCluster(r *rand.Rand) *genCluster {
	c := &genCluster{nodeIPs: map[ir.Family][]netip.Addr{}}
	c.fams = pick(r, []ir.Family{ir.IPv4}, []ir.Family{ir.IPv6}, []ir.Family{ir.IPv4, ir.IPv6}, []ir.Family{ir.IPv4, ir.IPv6})
	c.node = r.IntN(5) > 0
	if c.node {
		for _, f := range c.fams {
			c.nodeIPs[f] = genNodeIPs[f][:1+r.IntN(2)]
		}
		c.clusterCIDR = r.IntN(4) > 0
		c.nodeCIDR = r.IntN(4) == 0
		c.masqAll = r.IntN(5) == 0
		switch r.IntN(4) {
		case 1:
			for _, f := range c.fams {
				c.nodePortAddrs = append(c.nodePortAddrs, netip.PrefixFrom(genNodeIPs[f][0], genNodeIPs[f][0].BitLen()).String())
			}
		case 2:
			for _, f := range c.fams {
				c.nodePortAddrs = append(c.nodePortAddrs, genAllowed[f][1])
			}
		}
		if r.IntN(3) == 0 {
			c.localhostNP = boolPtr(r.IntN(2) == 0)
		}
		if r.IntN(5) == 0 {
			// The lab's clients arrive on "toc", its endpoints on "tob".
			type detector struct {
				name   string
				prefix bool
			}
			d := pick(r, detector{"toc", false}, detector{"tob", false}, detector{"cbr0", false},
				detector{"to", true}, detector{"tob", true}, detector{"toc", true}, detector{"veth", true})
			c.iface, c.ifacePrefix = d.name, d.prefix
		}
	}
	n := 1 + r.IntN(6)
	for i := range n {
		c.svcs = append(c.svcs, genRandomService(r, c, i))
	}
	return c
}

func genRandomService(r *rand.Rand, c *genCluster, i int) *genService {
	s := &genService{
		name:        fmt.Sprintf("svc%d", i),
		typ:         pick(r, "ClusterIP", "ClusterIP", "NodePort", "LoadBalancer", "LoadBalancer", "Headless", "ExternalName"),
		clusterIPs:  map[ir.Family]netip.Addr{},
		externalIPs: map[ir.Family]netip.Addr{},
		lbIPs:       map[ir.Family]netip.Addr{},
		endpoints:   map[ir.Family][]genEndpoint{},
	}
	s.fams = c.fams
	if len(c.fams) == 2 && r.IntN(3) > 0 {
		s.fams = []ir.Family{pick(r, c.fams...)}
	}
	s.policyDefault = len(s.fams) == 1 && r.IntN(2) == 0
	for _, f := range s.fams {
		if f == ir.IPv4 {
			s.clusterIPs[f] = netip.AddrFrom4([4]byte{10, 96, 0, byte(10 + i)})
			s.externalIPs[f] = netip.AddrFrom4([4]byte{203, 0, 113, byte(200 + i)})
			s.lbIPs[f] = netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)})
		} else {
			s.clusterIPs[f] = netip.MustParseAddr(fmt.Sprintf("fd00:10:96::%x", 10+i))
			s.externalIPs[f] = netip.MustParseAddr(fmt.Sprintf("2001:db8:e::%x", 10+i))
			s.lbIPs[f] = netip.MustParseAddr(fmt.Sprintf("2001:db8:b::%x", 10+i))
		}
	}
	if s.typ == "Headless" || s.typ == "ExternalName" {
		s.clusterIPs = map[ir.Family]netip.Addr{}
	}
	if r.IntN(4) > 0 || s.typ == "ExternalName" {
		s.externalIPs = map[ir.Family]netip.Addr{}
	}
	if s.typ != "LoadBalancer" {
		s.lbIPs = map[ir.Family]netip.Addr{}
	} else {
		s.sourceRanges = r.IntN(2) == 0
	}
	s.affinity = r.IntN(4) == 0 && s.typ != "ExternalName"
	external := s.typ == "NodePort" || s.typ == "LoadBalancer" || len(s.externalIPs) > 0
	s.eTPLocal = external && r.IntN(3) == 0
	s.iTPLocal = s.typ != "ExternalName" && r.IntN(4) == 0
	nports := 1 + r.IntN(3)
	for k := range nports {
		p := genPort{
			name:   fmt.Sprintf("p%d", k),
			proto:  pick(r, ir.TCP, ir.TCP, ir.TCP, ir.UDP, ir.UDP, ir.SCTP),
			port:   uint16(80 + k),
			target: uint16(8080 + 10*k + r.IntN(2)),
			named:  r.IntN(3) == 0,
		}
		if s.typ == "NodePort" || s.typ == "LoadBalancer" {
			p.nodePort = uint16(30000 + 10*i + k)
		}
		s.ports = append(s.ports, p)
	}
	if nports > 1 && r.IntN(5) == 0 {
		s.missingPort = s.ports[r.IntN(nports)].name
	}
	s.noSlice = r.IntN(6) == 0
	for _, f := range s.fams {
		neps := r.IntN(5)
		for e := range neps {
			local := r.IntN(2) == 0
			var a netip.Addr
			third := byte(1 + r.IntN(2))
			if local {
				third = 0
			}
			if f == ir.IPv4 {
				a = netip.AddrFrom4([4]byte{10, 244, third, byte(10 + 10*i + e)})
			} else {
				a = netip.MustParseAddr(fmt.Sprintf("fd00:244:0:%x::%x", third, 10+10*i+e))
			}
			ep := genEndpoint{addr: a, local: local}
			switch r.IntN(6) {
			case 0:
				ep.ready, ep.serving, ep.terminating = boolPtr(false), boolPtr(true), boolPtr(true)
			case 1:
				ep.ready, ep.serving, ep.terminating = boolPtr(false), boolPtr(false), boolPtr(true)
			case 2:
				ep.ready = boolPtr(false)
			case 3:
				ep.ready = boolPtr(true)
			}
			s.endpoints[f] = append(s.endpoints[f], ep)
		}
	}
	s.rangesNode = s.sourceRanges && r.IntN(2) == 0
	s.proxyMode = s.typ == "LoadBalancer" && r.IntN(6) == 0
	s.otherProxy = r.IntN(10) == 0
	s.split = r.IntN(5) == 0
	s.mirror = s.typ != "ExternalName" && r.IntN(6) == 0
	if c.node && r.IntN(5) == 0 {
		// A host-network endpoint: the node's primary address (known to
		// kpc as the node's only from a Node).
		for _, f := range s.fams {
			s.endpoints[f] = append(s.endpoints[f], genEndpoint{addr: genNodeIPs[f][0], local: true})
		}
	}
	return s
}

func famName(f ir.Family) string {
	if f == ir.IPv4 {
		return "IPv4"
	}
	return "IPv6"
}

func yamlBool(b *bool) string { return fmt.Sprint(*b) }

// manifest renders the cluster as a multi-document YAML input.
func (c *genCluster) manifest() string {
	var b strings.Builder
	if c.node {
		b.WriteString("apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\nspec:\n  podCIDRs:")
		var cidrs []string
		for _, f := range c.fams {
			cidrs = append(cidrs, fmt.Sprintf("%q", genPodCIDR[f]))
		}
		b.WriteString(" [" + strings.Join(cidrs, ", ") + "]")
		b.WriteString("\nstatus:\n  addresses:\n")
		for _, f := range c.fams {
			for k, a := range c.nodeIPs[f] {
				typ := "InternalIP"
				if k > 0 {
					typ = "ExternalIP"
				}
				fmt.Fprintf(&b, "  - type: %s\n    address: %s\n", typ, a)
			}
		}
		b.WriteString("---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n")
		if c.clusterCIDR {
			var cidrs []string
			for _, f := range c.fams {
				cidrs = append(cidrs, genClusterCIDR[f])
			}
			fmt.Fprintf(&b, "clusterCIDR: %s\n", strings.Join(cidrs, ","))
		}
		switch {
		case c.iface != "" && c.ifacePrefix:
			fmt.Fprintf(&b, "detectLocalMode: InterfaceNamePrefix\ndetectLocal:\n  interfaceNamePrefix: %s\n", c.iface)
		case c.iface != "":
			fmt.Fprintf(&b, "detectLocalMode: BridgeInterface\ndetectLocal:\n  bridgeInterface: %s\n", c.iface)
		case c.nodeCIDR:
			b.WriteString("detectLocalMode: NodeCIDR\n")
		}
		if c.masqAll {
			b.WriteString("masqueradeAll: true\n")
		}
		if len(c.nodePortAddrs) > 0 {
			fmt.Fprintf(&b, "nodePortAddresses: [%s]\n", strings.Join(c.nodePortAddrs, ", "))
		}
		if c.localhostNP != nil {
			fmt.Fprintf(&b, "iptables:\n  localhostNodePorts: %v\n", *c.localhostNP)
		}
	}
	for _, s := range c.svcs {
		b.WriteString(s.manifest())
	}
	return b.String()
}

func (s *genService) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: ns\n", s.name)
	if s.otherProxy {
		b.WriteString("  labels:\n    service.kubernetes.io/service-proxy-name: other\n")
	}
	b.WriteString("spec:\n")
	switch s.typ {
	case "ExternalName":
		b.WriteString("  type: ExternalName\n  externalName: db.example.com\n")
	case "Headless":
		b.WriteString("  clusterIP: None\n")
	default:
		fmt.Fprintf(&b, "  type: %s\n", s.typ)
		var ips []string
		for _, f := range s.fams {
			ips = append(ips, s.clusterIPs[f].String())
		}
		fmt.Fprintf(&b, "  clusterIP: %s\n  clusterIPs: [%s]\n", ips[0], strings.Join(ips, ", "))
	}
	if s.typ != "ExternalName" {
		if !s.mirror {
			b.WriteString("  selector:\n    app: " + s.name + "\n")
		}
		var fams []string
		for _, f := range s.fams {
			fams = append(fams, famName(f))
		}
		if !s.policyDefault {
			policy := "SingleStack"
			if len(s.fams) == 2 {
				policy = "RequireDualStack"
			}
			fmt.Fprintf(&b, "  ipFamilyPolicy: %s\n", policy)
		}
		fmt.Fprintf(&b, "  ipFamilies: [%s]\n", strings.Join(fams, ", "))
	}
	if len(s.externalIPs) > 0 {
		var ips []string
		for _, f := range s.fams {
			ips = append(ips, s.externalIPs[f].String())
		}
		fmt.Fprintf(&b, "  externalIPs: [%s]\n", strings.Join(ips, ", "))
	}
	if s.sourceRanges {
		var rs []string
		for _, f := range s.fams {
			rs = append(rs, genAllowed[f][0])
			if s.rangesNode {
				rs = append(rs, genAllowed[f][1])
			}
		}
		fmt.Fprintf(&b, "  loadBalancerSourceRanges: [%s]\n", strings.Join(rs, ", "))
	}
	if s.affinity {
		b.WriteString("  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 600\n")
	}
	if s.eTPLocal {
		b.WriteString("  externalTrafficPolicy: Local\n")
	}
	if s.iTPLocal {
		b.WriteString("  internalTrafficPolicy: Local\n")
	}
	b.WriteString("  ports:\n")
	for _, p := range s.ports {
		fmt.Fprintf(&b, "  - name: %s\n    protocol: %s\n    port: %d\n", p.name, p.proto, p.port)
		if p.named {
			fmt.Fprintf(&b, "    targetPort: t-%s\n", p.name)
		} else {
			fmt.Fprintf(&b, "    targetPort: %d\n", p.target)
		}
		if p.nodePort != 0 {
			fmt.Fprintf(&b, "    nodePort: %d\n", p.nodePort)
		}
	}
	if len(s.lbIPs) > 0 {
		b.WriteString("status:\n  loadBalancer:\n    ingress:\n")
		for _, f := range s.fams {
			fmt.Fprintf(&b, "    - ip: %s\n", s.lbIPs[f])
			if s.proxyMode {
				b.WriteString("      ipMode: Proxy\n")
			}
		}
	}
	if s.typ == "ExternalName" || s.noSlice {
		return b.String()
	}
	if s.mirror {
		s.writeEndpoints(&b)
		return b.String()
	}
	for _, f := range s.fams {
		eps := s.endpoints[f]
		parts := [][]genEndpoint{eps}
		if s.split && len(eps) > 1 {
			parts = [][]genEndpoint{eps[:len(eps)/2+1], eps[len(eps)/2:]}
		}
		for k, part := range parts {
			s.writeSlice(&b, f, k, part)
		}
	}
	return b.String()
}

// writeEndpoints writes the Service's endpoints as one v1 Endpoints
// subset: ready addresses, and the others as not ready.
func (s *genService) writeEndpoints(b *strings.Builder) {
	fmt.Fprintf(b, "---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: %s\n  namespace: ns\nsubsets:", s.name)
	var ready, notReady []string
	for _, f := range s.fams {
		for _, e := range s.endpoints[f] {
			node := "node-b"
			if e.local {
				node = "node-a"
			}
			line := fmt.Sprintf("  - ip: %q\n    nodeName: %s\n", e.addr, node)
			if e.ready == nil || *e.ready {
				ready = append(ready, line)
			} else {
				notReady = append(notReady, line)
			}
		}
	}
	if len(ready)+len(notReady) == 0 {
		b.WriteString(" []\n")
		return
	}
	b.WriteString("\n- addresses:")
	if len(ready) == 0 {
		b.WriteString(" []")
	}
	b.WriteString("\n" + strings.Join(ready, ""))
	if len(notReady) > 0 {
		b.WriteString("  notReadyAddresses:\n" + strings.Join(notReady, ""))
	}
	b.WriteString("  ports:\n")
	for _, p := range s.ports {
		if p.name == s.missingPort {
			continue
		}
		fmt.Fprintf(b, "  - name: %s\n    protocol: %s\n    port: %d\n", p.name, p.proto, p.target)
	}
}

// writeSlice writes the k-th EndpointSlice of a family.
func (s *genService) writeSlice(b *strings.Builder, f ir.Family, k int, eps []genEndpoint) {
	fmt.Fprintf(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-%s-%d\n  namespace: ns\n  labels:\n    kubernetes.io/service-name: %s\naddressType: %s\nports:\n",
		s.name, strings.ToLower(famName(f)), k, s.name, famName(f))
	for _, p := range s.ports {
		if p.name == s.missingPort {
			continue
		}
		fmt.Fprintf(b, "- name: %s\n  protocol: %s\n  port: %d\n", p.name, p.proto, p.target)
	}
	b.WriteString("endpoints:")
	if len(eps) == 0 {
		b.WriteString(" []")
	}
	b.WriteString("\n")
	for _, e := range eps {
		node := "node-b"
		if e.local {
			node = "node-a"
		}
		fmt.Fprintf(b, "- addresses: [%q]\n  nodeName: %s\n", e.addr, node)
		if e.ready != nil {
			b.WriteString("  conditions:\n    ready: " + yamlBool(e.ready) + "\n")
			if e.serving != nil {
				b.WriteString("    serving: " + yamlBool(e.serving) + "\n")
			}
			if e.terminating != nil {
				b.WriteString("    terminating: " + yamlBool(e.terminating) + "\n")
			}
		}
	}
}

// probeFlows lists the packets sent to a cluster: from every kind of
// source to every Service address and port, to a port no Service uses,
// and to NodePorts on every node address.
func (c *genCluster) probeFlows(nodeIPs []netip.Addr) ([]Flow, []probeMeta) {
	var flows []Flow
	var metas []probeMeta
	var meta probeMeta
	add := func(name, from string, dst netip.Addr, port uint16, proto ir.Protocol) {
		to := netip.AddrPortFrom(dst, port).String() + "/" + strings.ToLower(string(proto))
		flows = append(flows, Flow{Name: name, From: from, To: to})
		metas = append(metas, meta)
	}
	sources := func(f ir.Family) []string {
		out := []string{"node"}
		for _, k := range []string{"external", "allowed", "localpod", "otherpod"} {
			out = append(out, genClients[f][k].String())
		}
		return out
	}
	for _, s := range c.svcs {
		for _, f := range s.fams {
			for _, p := range s.ports {
				for _, src := range sources(f) {
					meta = probeMeta{svc: s, port: p, fam: f}
					if a, ok := s.clusterIPs[f]; ok {
						meta.kind = "cluster"
						add(s.name+"/"+p.name+" cluster IP from "+src, src, a, p.port, p.proto)
					}
					if a, ok := s.externalIPs[f]; ok {
						meta.kind = "external"
						add(s.name+"/"+p.name+" external IP from "+src, src, a, p.port, p.proto)
					}
					if a, ok := s.lbIPs[f]; ok {
						meta.kind = "lb"
						add(s.name+"/"+p.name+" LB IP from "+src, src, a, p.port, p.proto)
					}
					meta.kind = "nodeport"
					if p.nodePort != 0 {
						for _, n := range nodeIPs {
							if n.Is4() == (f == ir.IPv4) {
								add(s.name+"/"+p.name+" NodePort on "+n.String()+" from "+src, src, n, p.nodePort, p.proto)
							}
						}
					}
				}
				if a, ok := s.lbIPs[f]; ok && s.sourceRanges {
					meta = probeMeta{svc: s, port: p, fam: f, kind: "lb"}
					add(s.name+"/"+p.name+" LB IP from itself", a.String(), a, p.port, p.proto)
				}
				meta = probeMeta{svc: s, port: p, fam: f, kind: "nodeport"}
				if p.nodePort != 0 && f == ir.IPv4 {
					add(s.name+"/"+p.name+" NodePort on localhost", "127.0.0.1", netip.MustParseAddr("127.0.0.1"), p.nodePort, p.proto)
				}
				// An endpoint reaching its own Service (hairpin).
				meta = probeMeta{svc: s, port: p, fam: f, kind: "hairpin"}
				if eps := s.endpoints[f]; len(eps) > 0 && !s.noSlice {
					if a, ok := s.clusterIPs[f]; ok {
						add(s.name+"/"+p.name+" cluster IP from endpoint", eps[0].addr.String(), a, p.port, p.proto)
					}
				}
			}
			// A port no Service uses, and the other protocol.
			meta = probeMeta{svc: s, fam: f, kind: "cluster-unused"}
			if a, ok := s.clusterIPs[f]; ok {
				add(s.name+" cluster IP, unused port", genClients[f]["otherpod"].String(), a, 9, ir.TCP)
			}
			meta.kind = "external-unused"
			if a, ok := s.externalIPs[f]; ok {
				add(s.name+" external IP, unused port", genClients[f]["external"].String(), a, 9, ir.UDP)
			}
		}
	}
	for _, f := range c.fams {
		// An unallocated address of the Service range.
		meta = probeMeta{fam: f, kind: "unallocated"}
		a := netip.MustParseAddr("10.96.0.200")
		if f == ir.IPv6 {
			a = netip.MustParseAddr("fd00:10:96::200")
		}
		add("unallocated cluster IP", genClients[f]["otherpod"].String(), a, 80, ir.TCP)
	}
	return flows, metas
}

// traceFlows fills every flow's expectation from the tracer, in both
// modes, and returns the tracer's own inconsistencies. kernel says which
// flows the kernel replays: not those from a client or endpoint that are
// masqueraded to some endpoints only (a hairpin to the sender's own, or
// none to a host-network endpoint), as the lab tells masquerade per
// source, not per endpoint.
func traceFlows(prog *ir.Program, c *genCluster, flows []Flow, metas []probeMeta, nodeIPs []netip.Addr) (problems []string, kernel []bool) {
	kernel = make([]bool, len(flows))
	affinity := map[string]bool{}
	for _, s := range c.svcs {
		if s.affinity {
			affinity[s.name] = true
		}
	}
	epAddrs := EndpointAddrs(prog)
	for i := range flows {
		f := &flows[i]
		pkt, err := f.Resolve(nodeIPs)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		pkt.Arrive(epAddrs)
		pkt.ToNode = slices.Contains(nodeIPs, pkt.Dst) || pkt.Dst.IsLoopback()
		svc, _, _ := strings.Cut(f.Name, "/")
		kernel[i] = true
		var exp [2]Expect
		for m, mode := range []ir.Mode{ir.ModeNFT, ir.ModeIPTables} {
			res := ir.Trace(prog, pkt.Packet, mode)
			e := Expect{Verdict: res.Verdict.String()}
			total := 0.0
			seen := map[string]bool{}
			for _, r := range res.Reaches {
				total += r.Probability
				if !seen[r.Endpoint.String()] {
					seen[r.Endpoint.String()] = true
					e.Endpoints = append(e.Endpoints, r.Endpoint.String())
				}
				if r.Masquerade {
					e.Masquerade = true
				}
			}
			if res.Verdict == ir.VerdictDNAT {
				if total < 0.999 || total > 1.001 {
					problems = append(problems, fmt.Sprintf("flow %q: tracer probabilities sum to %.4f", f.Name, total))
				}
				masq := res.Reaches[0].Masquerade
				hostEP := slices.ContainsFunc(res.Reaches, func(r ir.Reach) bool { return slices.Contains(nodeIPs, r.Endpoint.Addr()) })
				for _, r := range res.Reaches {
					if r.Masquerade != masq && (metas[i].kind == "hairpin" || pkt.FromNode || hostEP) {
						// Only the endpoint that is the sender is
						// masqueraded (hairpin; a node address is a
						// host-network endpoint's), or a host-network
						// endpoint is not (local delivery). The lab
						// tells masquerade per source, not per
						// endpoint: the flow is left out.
						kernel[i] = pkt.FromNode
						break
					}
					if r.Masquerade != masq {
						problems = append(problems, fmt.Sprintf("flow %q: tracer masquerades to some endpoints only", f.Name))
						break
					}
				}
				e.Affinity = affinity[svc]
			}
			slices.Sort(e.Endpoints)
			exp[m] = e
		}
		f.Expect = exp[0]
		if !expectEqual(exp[0], exp[1]) {
			ipt := exp[1]
			f.IPTables = &ipt
		}
	}
	return problems, kernel
}

func expectEqual(a, b Expect) bool {
	return a.Verdict == b.Verdict && a.Masquerade == b.Masquerade && a.Affinity == b.Affinity && slices.Equal(a.Endpoints, b.Endpoints)
}

// runDiffCluster compiles a cluster, traces its probes and replays them on
// every backend. It returns the disagreements, one line each.
func runDiffCluster(t *testing.T, seed uint64, c *genCluster, bes []backend) (disagree []string, flowsRun int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.yaml"), []byte(c.manifest()), 0o644); err != nil {
		t.Fatal(err)
	}
	gc := goldenCase{name: "random", dir: dir}
	res := compileCase(t, gc)
	if res.prog == nil {
		return []string{"invalid input: " + res.err}, 0
	}
	for name, data := range res.files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nodeIPs := NodeIPs(res.prog)
	flows, metas := c.probeFlows(nodeIPs)
	problems, kernel := traceFlows(res.prog, c, flows, metas, nodeIPs)
	disagree = append(disagree, problems...)
	disagree = append(disagree, c.checkModel(flows, metas, nodeIPs, EndpointAddrs(res.prog))...)
	var replay []Flow
	for i, f := range flows {
		if kernel[i] {
			replay = append(replay, f)
		}
	}
	flows = replay
	for _, b := range bes {
		d, n := runBackend(t, b, gc, res, flows, nodeIPs)
		disagree = append(disagree, d...)
		flowsRun += n
	}
	if len(disagree) > 0 && *diffKeep != "" {
		keep := filepath.Join(*diffKeep, fmt.Sprintf("seed-%d", seed))
		if err := os.MkdirAll(keep, 0o755); err == nil {
			data, _ := yaml.Marshal(flows)
			_ = os.WriteFile(filepath.Join(keep, "input.yaml"), []byte(c.manifest()), 0o644)
			_ = os.WriteFile(filepath.Join(keep, "flows.yaml"), data, 0o644)
			_ = os.WriteFile(filepath.Join(keep, "disagreements.txt"), []byte(strings.Join(disagree, "\n")+"\n"), 0o644)
			t.Logf("kept in %s", keep)
		}
	}
	return disagree, flowsRun
}

// runBackend loads a compiled cluster into a fresh lab with one backend and
// sends every flow's probes.
func runBackend(t *testing.T, b backend, gc goldenCase, res result, flows []Flow, nodeIPs []netip.Addr) (disagree []string, flowsRun int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := labConfig(t, res.prog, flows)
	// A source that is an endpoint of SCTP ports only has no server in
	// the lab: it sends from the client namespace.
	hosts := map[netip.Addr]bool{}
	for _, e := range cfg.Endpoints {
		hosts[e.Addr] = true
	}
	for _, a := range cfg.Clients {
		hosts[a] = true
	}
	for _, f := range flows {
		if pkt, err := f.Resolve(nodeIPs); err == nil && !pkt.FromNode && !hosts[pkt.Src] {
			hosts[pkt.Src] = true
			cfg.Clients = append(cfg.Clients, pkt.Src)
		}
	}
	lab, err := netlab.New(cfg)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	defer func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := b.load(ctx, lab, gc, res); err != nil {
		return []string{fmt.Sprintf("%s: load: %v", b.name, err)}, 0
	}
	// The flows of one Service from one source run in order (a ClientIP
	// affinity record of one flow is in place for the next); the groups
	// run side by side, so that expected drops wait out their timeouts
	// together.
	groups := map[string][]int{}
	var keys []string
	for i, f := range flows {
		k, _, _ := strings.Cut(f.Name, "/")
		k, _, _ = strings.Cut(k, " ")
		k += " from " + f.From
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	results := make([]string, len(flows))
	ran := make([]bool, len(flows))
	errs := make([]error, len(flows))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, i := range groups[k] {
				results[i], ran[i], errs[i] = sendFlow(ctx, lab, b, flows[i], nodeIPs)
				if errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range flows {
		if errs[i] != nil {
			t.Fatalf("%s: %v", b.name, errs[i])
		}
		if results[i] != "" {
			disagree = append(disagree, results[i])
		}
		if ran[i] {
			flowsRun++
		}
	}
	return disagree, flowsRun
}

// sendFlow sends a flow's probes through a lab and returns the
// disagreement with the tracer's expectation ("" when none), and whether
// the flow ran (SCTP flows do not).
func sendFlow(ctx context.Context, lab *netlab.Lab, b backend, f Flow, nodeIPs []netip.Addr) (string, bool, error) {
	pkt, err := f.Resolve(nodeIPs)
	if err != nil {
		return "", false, err
	}
	if pkt.Protocol == ir.SCTP {
		return "", false, nil
	}
	want := f.For(b.mode)
	n := probeCount(want)
	probe := netlab.Probe{Src: pkt.Src, Dst: pkt.Dst, Port: pkt.Port, Protocol: string(pkt.Protocol), Count: n, Timeout: probeTimeout(want), FirstAlone: want.Affinity}
	out, err := lab.SendContext(ctx, probe)
	if err != nil {
		return "", false, fmt.Errorf("flow %q: %w", f.Name, err)
	}
	if missedOnly(want, out, n) {
		more, err := lab.SendContext(ctx, probe)
		if err != nil {
			return "", false, fmt.Errorf("flow %q: %w", f.Name, err)
		}
		out, n = merge(out, more), 2*n
	}
	if d := checkOutcome(want, pkt, out, n); len(d) > 0 {
		return fmt.Sprintf("%s: flow %q (%s -> %s): tracer %s; kernel: %s", b.name, f.Name, f.From, f.To, describeExpect(want), strings.Join(d, "; ")), true, nil
	}
	return "", true, nil
}

func describeExpect(e Expect) string {
	s := e.Verdict
	if e.Verdict == "dnat" {
		s += fmt.Sprintf(" %v masquerade=%v", e.Endpoints, e.Masquerade)
	}
	return s
}

// diffBackendList is the backends TestDifferential runs: those named by
// -diff.backends, or every one whose tools are installed (under CI every
// one, so that a missing tool fails).
func diffBackendList(t *testing.T) []backend {
	var want []string
	if *diffBackends != "" {
		want = strings.Split(*diffBackends, ",")
	}
	var out []backend
	for _, b := range backends() {
		if want != nil && !slices.Contains(want, b.name) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// TestDifferential compiles random clusters (seeded, so that every run
// checks the same ones), traces probe packets from every kind of source to
// every Service address with the IR tracer, checks the tracer against an
// independent model of kube-proxy's endpoint selection, and replays the
// packets as real connections through each backend's ruleset in a lab of
// network namespaces it creates and deletes. Every disagreement fails the
// test. -diff.clusters, -diff.model, -diff.seed and -diff.budget widen the
// search; -diff.keep writes the disagreeing clusters out as golden cases.
func TestDifferential(t *testing.T) {
	bes := diffBackendList(t)
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Log("not root: the tracer is checked against the model only, no packets are sent")
		bes = nil
	}
	for _, b := range bes {
		requireKernel(t, b.tools...)
	}
	start := time.Now()
	clusters, kernel, flows := 0, 0, 0
	for i := range max(*diffClusters, *diffModel) {
		replay := bes
		if i >= *diffClusters {
			replay = nil
		} else if time.Since(start) > *diffBudget {
			if i == kernel {
				t.Logf("budget of %v spent after %d clusters in the kernel", *diffBudget, kernel)
			}
			replay = nil
		}
		seed := *diffSeed + uint64(i)
		c := genRandomCluster(rand.New(rand.NewPCG(seed, 0x6b7063)))
		d, n := runDiffCluster(t, seed, c, replay)
		clusters++
		if replay != nil {
			kernel++
		}
		flows += n
		if len(d) > 0 {
			t.Errorf("seed %d: %d disagreements:\n  %s\ninput:\n%s", seed, len(d), strings.Join(d, "\n  "), c.manifest())
		}
	}
	t.Logf("%d clusters checked against the model, %d of them replayed in the kernel: %d flows over %d backends, in %v",
		clusters, kernel, flows, len(bes), time.Since(start).Round(time.Millisecond))
}
