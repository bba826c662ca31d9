//go:build linux

package netlink

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
)

// A small synthetic cluster that random changes are applied to, compiled
// through the real loader and compiler, for the Sync tests.

// clusterPort is one Service port.
type clusterPort struct {
	port, target int
	proto        string
}

// clusterService is one Service and its endpoints.
type clusterService struct {
	id       int
	typ      string // ClusterIP, NodePort, LoadBalancer
	v6       bool
	ports    []clusterPort
	eps      []int // endpoint numbers; even ones run on this node
	notReady map[int]bool
	affinity int // timeout in seconds; 0: none
	local    bool
	internal bool // internalTrafficPolicy Local
	ranges   bool // loadBalancerSourceRanges
	external bool // an external IP
}

// cluster is a set of Services.
type cluster struct {
	next     int
	services []*clusterService
}

var protos = []string{"TCP", "UDP", "SCTP"}

// newService returns a random Service with a fresh id.
func (c *cluster) newService(r *rand.Rand) *clusterService {
	c.next++
	s := &clusterService{id: c.next, typ: []string{"ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"}[r.IntN(4)],
		v6: r.IntN(5) == 0, notReady: map[int]bool{}}
	for i := 0; i < 1+r.IntN(2); i++ {
		s.addPort(r)
	}
	for i := 0; i < r.IntN(4); i++ {
		s.eps = append(s.eps, r.IntN(40))
	}
	if r.IntN(4) == 0 {
		s.affinity = []int{600, 10800}[r.IntN(2)]
	}
	s.local = s.typ != "ClusterIP" && r.IntN(2) == 0
	s.internal = r.IntN(6) == 0
	s.ranges = s.typ == "LoadBalancer" && !s.v6 && r.IntN(2) == 0
	s.external = r.IntN(8) == 0
	return s
}

func (s *clusterService) addPort(r *rand.Rand) {
	used := map[int]bool{}
	for _, p := range s.ports {
		used[p.port] = true
	}
	for {
		p := clusterPort{port: 80 + r.IntN(8), target: 8080 + r.IntN(3), proto: protos[r.IntN(len(protos))]}
		if !used[p.port] {
			s.ports = append(s.ports, p)
			return
		}
	}
}

// mutate makes one random change and describes it.
func (c *cluster) mutate(r *rand.Rand) string {
	if len(c.services) == 0 {
		s := c.newService(r)
		c.services = append(c.services, s)
		return fmt.Sprintf("add svc-%d", s.id)
	}
	s := c.services[r.IntN(len(c.services))]
	switch r.IntN(12) {
	case 0, 1:
		n := c.newService(r)
		c.services = append(c.services, n)
		return fmt.Sprintf("add svc-%d", n.id)
	case 2:
		for i, x := range c.services {
			if x == s {
				c.services = append(c.services[:i], c.services[i+1:]...)
				break
			}
		}
		return fmt.Sprintf("remove svc-%d", s.id)
	case 3:
		s.eps = append(s.eps, r.IntN(40))
		return fmt.Sprintf("svc-%d: add an endpoint", s.id)
	case 4:
		if len(s.eps) > 0 {
			i := r.IntN(len(s.eps))
			s.eps = append(s.eps[:i], s.eps[i+1:]...)
		}
		return fmt.Sprintf("svc-%d: remove an endpoint", s.id)
	case 5:
		if len(s.ports) < 3 {
			s.addPort(r)
		}
		return fmt.Sprintf("svc-%d: add a port", s.id)
	case 6:
		if len(s.ports) > 1 {
			s.ports = s.ports[1:]
		}
		return fmt.Sprintf("svc-%d: remove a port", s.id)
	case 7:
		s.local = !s.local && s.typ != "ClusterIP"
		return fmt.Sprintf("svc-%d: external policy local=%v", s.id, s.local)
	case 8:
		if s.affinity == 0 {
			s.affinity = []int{600, 10800}[r.IntN(2)]
		} else {
			s.affinity = []int{0, 300}[r.IntN(2)]
		}
		return fmt.Sprintf("svc-%d: affinity %d", s.id, s.affinity)
	case 9:
		s.internal = !s.internal
		return fmt.Sprintf("svc-%d: internal policy local=%v", s.id, s.internal)
	case 10:
		if len(s.eps) > 0 {
			e := s.eps[r.IntN(len(s.eps))]
			s.notReady[e] = !s.notReady[e]
		}
		return fmt.Sprintf("svc-%d: flip an endpoint's readiness", s.id)
	default:
		s.ports[0].target = 8080 + r.IntN(3)
		return fmt.Sprintf("svc-%d: change a target port", s.id)
	}
}

// yaml writes the cluster's manifests.
func (c *cluster) yaml() string {
	var b strings.Builder
	b.WriteString(clusterHeader)
	for _, s := range c.services {
		b.WriteString(s.yaml())
	}
	return b.String()
}

// clusterHeader is the node's Node and KubeProxyConfiguration, and the
// cluster's Service ranges of both families: a family without a Service
// keeps its table.
const clusterHeader = `apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata:
  name: kubernetes
spec:
  cidrs: [10.96.0.0/16, "fd00:10:96::/112"]
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
status:
  addresses:
    - type: InternalIP
      address: 192.0.2.1
    - type: InternalIP
      address: 2001:db8::1
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.244.0.0/16,2001:db8:244::/48
`

// yaml writes the Service's manifests: the Service and its EndpointSlice,
// each starting with "---".
func (s *clusterService) yaml() string {
	var b strings.Builder
	fam, vip, ext, lb := "IPv4", fmt.Sprintf("10.96.0.%d", s.id), fmt.Sprintf("203.0.113.%d", s.id),
		fmt.Sprintf("198.51.100.%d", s.id)
	if s.v6 {
		fam, vip, ext, lb = "IPv6", fmt.Sprintf("fd00:10:96::%x", s.id), fmt.Sprintf("2001:db8:e::%x", s.id),
			fmt.Sprintf("2001:db8:b::%x", s.id)
	}
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%d\nspec:\n  type: %s\n  clusterIP: %s\n  ipFamilies: [%s]\n",
		s.id, s.typ, vip, fam)
	if s.local {
		b.WriteString("  externalTrafficPolicy: Local\n")
		if s.typ == "LoadBalancer" {
			fmt.Fprintf(&b, "  healthCheckNodePort: %d\n", 32000+s.id)
		}
	}
	if s.internal {
		b.WriteString("  internalTrafficPolicy: Local\n")
	}
	if s.affinity > 0 {
		fmt.Fprintf(&b, "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: %d\n", s.affinity)
	}
	if s.ranges {
		b.WriteString("  loadBalancerSourceRanges: [203.0.113.0/25, 192.0.2.128/25]\n")
	}
	if s.external {
		fmt.Fprintf(&b, "  externalIPs: [%s]\n", ext)
	}
	b.WriteString("  ports:\n")
	for i, p := range s.ports {
		fmt.Fprintf(&b, "  - name: p%d\n    port: %d\n    protocol: %s\n    targetPort: %d\n", p.port, p.port, p.proto, p.target)
		if s.typ != "ClusterIP" {
			fmt.Fprintf(&b, "    nodePort: %d\n", 30000+s.id*4+i)
		}
	}
	if s.typ == "LoadBalancer" {
		fmt.Fprintf(&b, "status:\n  loadBalancer:\n    ingress:\n    - ip: %s\n", lb)
	}
	fmt.Fprintf(&b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-%d-1\n  labels:\n    kubernetes.io/service-name: svc-%d\naddressType: %s\nports:\n",
		s.id, s.id, fam)
	for _, p := range s.ports {
		fmt.Fprintf(&b, "- name: p%d\n  port: %d\n  protocol: %s\n", p.port, p.target, p.proto)
	}
	eps := append([]int(nil), s.eps...)
	sort.Ints(eps)
	if len(eps) > 0 {
		b.WriteString("endpoints:\n")
	}
	seen := map[int]bool{}
	for _, e := range eps {
		if seen[e] {
			continue
		}
		seen[e] = true
		addr := fmt.Sprintf("10.244.%d.%d", s.id%250, e+1)
		if s.v6 {
			addr = fmt.Sprintf("2001:db8:244:%x::%x", s.id, e+1)
		}
		node := "node-a"
		if e%2 == 1 {
			node = "node-b"
		}
		fmt.Fprintf(&b, "- addresses: [\"%s\"]\n  nodeName: %s\n  conditions: {ready: %v}\n", addr, node, !s.notReady[e])
	}
	return b.String()
}

// compile loads and compiles the cluster's manifests.
func (c *cluster) compile(t *testing.T) *ir.Program {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	input, diags := load.Load([]string{file}, nil, load.Options{})
	if err := diags.Err(); err != nil {
		t.Fatalf("load: %v\n%s", err, c.yaml())
	}
	p, diags := compiler.Compile(input, compiler.Options{})
	if err := diags.Err(); err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}
