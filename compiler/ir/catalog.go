package ir

import (
	"net/netip"
	"time"
)

// ServiceInfo is one Service of the input as the compiler resolved it: the
// catalog that review tools (DNS zone, pod environment, semantic diff) read
// instead of the manifests. Program.Services lists every Service of the
// input once (the first definition of a duplicated namespace/name), proxied
// or not (headless and ExternalName Services too), sorted by namespace then
// name. The catalog is informational: Dump does not print it, Validate does
// not check it and renderers of kernel rulesets ignore it.
type ServiceInfo struct {
	Namespace string
	Name      string
	// Type is the Service type, defaulted: "ClusterIP", "NodePort",
	// "LoadBalancer" or "ExternalName".
	Type string
	// Headless is true for a Service with clusterIP "None".
	Headless bool
	// ExternalName is the DNS name of an ExternalName Service, as given.
	ExternalName string
	// ClusterIPs are the Service's cluster IPs after offline allocation,
	// primary family first (the order of spec.clusterIPs). Empty for
	// headless and ExternalName Services, and for a family whose address
	// was refused (duplicate) or could not be allocated.
	ClusterIPs []netip.Addr
	// Ports are spec.ports in spec order (the first port is special for
	// the pod environment), with protocol and targetPort defaulted and
	// nodePorts after allocation.
	Ports []PortInfo
	// ExternalIPs are spec.externalIPs, in spec order.
	ExternalIPs []netip.Addr
	// LoadBalancerIPs are the status.loadBalancer.ingress IPs that
	// kube-proxy programs (ipMode VIP or unset), in status order.
	LoadBalancerIPs []netip.Addr
	// LoadBalancerSourceRanges are spec.loadBalancerSourceRanges, masked,
	// in spec order.
	LoadBalancerSourceRanges []netip.Prefix
	// SessionAffinity is "None" or "ClientIP".
	SessionAffinity string
	// AffinityTimeout is the ClientIP affinity timeout; zero when
	// SessionAffinity is "None".
	AffinityTimeout time.Duration
	// ExternalTrafficPolicy is "Cluster" or "Local" for externally
	// accessible Services (NodePort, LoadBalancer, or with externalIPs),
	// else empty.
	ExternalTrafficPolicy string
	// InternalTrafficPolicy is "Cluster" or "Local"; empty for
	// ExternalName Services.
	InternalTrafficPolicy string
	// HealthCheckNodePort is the healthCheckNodePort after allocation
	// (LoadBalancer with externalTrafficPolicy Local), else 0.
	HealthCheckNodePort uint16
	// PublishNotReadyAddresses is spec.publishNotReadyAddresses, by which
	// the EndpointSlice controller marks every endpoint ready; kube-proxy
	// and CoreDNS read only the slices' conditions (a diff reports it).
	PublishNotReadyAddresses bool
	// Endpoints are the endpoints of the Service's EndpointSlices (none
	// for ExternalName Services), one per address, sorted by address.
	Endpoints []EndpointInfo
}

// ID returns "namespace/name".
func (s *ServiceInfo) ID() string { return s.Namespace + "/" + s.Name }

// PortInfo is one entry of a Service's spec.ports.
type PortInfo struct {
	// Name is the port's name; empty only for a single unnamed port.
	Name     string
	Protocol Protocol
	Port     uint16
	// TargetPort is the target port as text: a number or a container
	// port name; it defaults to Port.
	TargetPort string
	// NodePort is the nodePort after allocation, 0 when the Service type
	// serves none.
	NodePort uint16
}

// EndpointInfo is one endpoint of a Service: the first address of an
// EndpointSlice endpoint (the one kube-proxy uses). An address listed by
// several slices (or several times) is merged the way the compiler merges
// duplicates: the entry on this node wins, then a ready one, then a
// serving one; the ports of all its entries are collected.
type EndpointInfo struct {
	Addr netip.Addr
	// Ports are the endpoint's ports resolved per Service port (slice
	// ports matched by name and protocol), in spec.ports order; a Service
	// port the endpoint does not serve is absent.
	Ports []EndpointPort
	// Slice names the EndpointSlice the endpoint comes from (of an
	// address in several, the one whose endpoint wins); DNS shares SRV
	// weights out per slice, as CoreDNS does.
	Slice string
	// Hostname, NodeName and Zone are the endpoint's fields ("" when
	// unset).
	Hostname string
	NodeName string
	Zone     string
	// Conditions as kube-proxy reads them: unset ready and serving mean
	// true, unset terminating means false.
	Ready       bool
	Serving     bool
	Terminating bool
}

// EndpointPort is the port an endpoint serves for one Service port,
// identified by the Service port's name and protocol.
type EndpointPort struct {
	Name     string
	Protocol Protocol
	Port     uint16
}
