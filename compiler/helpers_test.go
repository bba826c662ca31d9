package compiler

import (
	"net/netip"

	"kpc/compiler/api"
)

func ptr[T any](v T) *T { return &v }

// mkSvc builds a defaulted ClusterIP Service with one TCP port named "p80"
// (80 -> 80) and applies the mutators.
func mkSvc(ns, name string, mut ...func(*api.Service)) *api.Service {
	s := &api.Service{
		APIVersion: "v1", Kind: "Service",
		Metadata: api.ObjectMeta{Namespace: ns, Name: name},
		Spec: api.ServiceSpec{
			Type:            "ClusterIP",
			Ports:           []api.ServicePort{{Name: "p80", Protocol: "TCP", Port: 80, TargetPort: api.IntOrString{IntVal: 80}}},
			SessionAffinity: "None",
		},
	}
	s.Spec.InternalTrafficPolicy = "Cluster"
	for _, m := range mut {
		m(s)
	}
	return s
}

func withClusterIP(ip string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.ClusterIP = ip; s.Spec.ClusterIPs = []string{ip} }
}

func withType(t string) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.Type = t
		if (t == "NodePort" || t == "LoadBalancer") && s.Spec.ExternalTrafficPolicy == "" {
			s.Spec.ExternalTrafficPolicy = "Cluster"
		}
		if t == "LoadBalancer" && s.Spec.AllocateLoadBalancerNodePorts == nil {
			s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
		}
	}
}

func withNodePort(i int, np int32) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Ports[i].NodePort = np }
}

func withETP(p string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.ExternalTrafficPolicy = p }
}

func withITP(p string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.InternalTrafficPolicy = p }
}

func withLB(ips ...string) func(*api.Service) {
	return func(s *api.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, api.LoadBalancerIngress{IP: ip, IPMode: ptr("VIP")})
		}
	}
}

func withExternalIPs(ips ...string) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, ips...)
		if s.Spec.ExternalTrafficPolicy == "" {
			s.Spec.ExternalTrafficPolicy = "Cluster"
		}
	}
}

func withAffinity(seconds int32) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.SessionAffinity = "ClientIP"
		s.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: ptr(seconds)}}
	}
}

func withSourceRanges(r ...string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

// epOpt mutates an endpoint.
type epOpt func(*api.Endpoint)

func onNode(n string) epOpt { return func(e *api.Endpoint) { e.NodeName = ptr(n) } }

func cond(ready, serving, terminating bool) epOpt {
	return func(e *api.Endpoint) {
		e.Conditions = api.EndpointConditions{Ready: ptr(ready), Serving: ptr(serving), Terminating: ptr(terminating)}
	}
}

func zoneHints(z ...string) epOpt {
	return func(e *api.Endpoint) {
		if e.Hints == nil {
			e.Hints = &api.EndpointHints{}
		}
		for _, n := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, api.ForZone{Name: n})
		}
	}
}

func nodeHints(z ...string) epOpt {
	return func(e *api.Endpoint) {
		if e.Hints == nil {
			e.Hints = &api.EndpointHints{}
		}
		for _, n := range z {
			e.Hints.ForNodes = append(e.Hints.ForNodes, api.ForNode{Name: n})
		}
	}
}

func mkEp(ip string, opts ...epOpt) api.Endpoint {
	e := api.Endpoint{Addresses: []string{ip}}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// mkSlice builds an EndpointSlice for Service ns/svcName with one port
// "p80" (TCP, port).
func mkSlice(ns, svcName, name, addrType string, port int32, eps ...api.Endpoint) *api.EndpointSlice {
	return &api.EndpointSlice{
		APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice",
		Metadata:    api.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{api.ServiceNameLabel: svcName}},
		AddressType: addrType,
		Ports:       []api.EndpointPort{{Name: ptr("p80"), Protocol: ptr("TCP"), Port: ptr(port)}},
		Endpoints:   eps,
	}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}
