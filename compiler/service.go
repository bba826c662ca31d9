package compiler

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"kpc/compiler/api"
	"kpc/compiler/ir"
)

// servicePort is one Service port in one family with everything
// syncProxyRules derives from it.
type servicePort struct {
	s         *svc
	index     int
	sp        *api.ServicePort
	proto     ir.Protocol
	port      uint16
	name      string // "ns/name:port" (kube-proxy's ServicePortName)
	base      string // hashAndTruncate("ns/name/proto/port")
	clusterIP netip.Addr

	externalIPs []addrAt
	lbIPs       []addrAt
	srcRanges   []netip.Prefix
	// fwSources are the sources the firewall lets through (the
	// Service's, shared by its ports).
	fwSources []netip.Prefix
	nodePort  uint16

	affinity bool
	timeout  time.Duration

	// cat are the endpoints, their chain and set names filled in (see
	// prepare).
	cat categorized
}

// addrAt is an address with the spec/status path it came from.
type addrAt struct {
	addr netip.Addr
	path string
}

func (p *servicePort) externallyAccessible() bool {
	return p.nodePort != 0 || len(p.lbIPs) > 0 || len(p.externalIPs) > 0
}

// servicePorts returns the ports of s that the Ruleset of family f
// programs (syncProxyRules' loop over the Service's ports), each with its
// endpoints (see servicePort.prepare). It reads no builder state, so
// Services are prepared in parallel; names and scratch are the caller's
// buffers for chain names.
func (c *compiler) servicePorts(s *svc, f ir.Family, names *nameBuf, scratch *[]byte) []*servicePort {
	sp := s.spec()
	cip := s.ips[f]

	var extIPs, lbIPs []addrAt
	for i, str := range sp.ExternalIPs {
		if ip, ok := parseIP(str); ok && familyOf(ip) == f {
			extIPs = append(extIPs, addrAt{ip, fmt.Sprintf("spec.externalIPs[%d]", i)})
		}
	}
	for i, ing := range s.api.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode == "Proxy") {
			continue
		}
		if ip, ok := parseIP(ing.IP); ok && familyOf(ip) == f {
			lbIPs = append(lbIPs, addrAt{ip, fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i)})
		}
	}
	var ranges []netip.Prefix
	for _, str := range sp.LoadBalancerSourceRanges {
		if p, ok := parseCIDR(str); ok && familyOf(p.Addr()) == f {
			ranges = append(ranges, p)
		}
	}
	// The sources a load-balancer firewall lets through: one list for
	// every port, which the renderers then see as one (a Service of
	// thousands of ports and ranges made the nft renderer spell every
	// port's copy).
	var fwSources []netip.Prefix
	if len(lbIPs) > 0 && len(ranges) > 0 {
		fwSources = ranges
		if primary, ok := c.cfg.primary[f]; ok && anyContains(ranges, primary) {
			// The LB IP may be a local address: node-to-VIP traffic
			// then arrives with the VIP as source.
			fwSources = slices.Clone(ranges)
			for _, lb := range lbIPs {
				fwSources = append(fwSources, netip.PrefixFrom(lb.addr, lb.addr.BitLen()))
			}
		}
	}
	affinity := sp.SessionAffinity == "ClientIP"
	timeout := time.Duration(defaultAffinitySecond) * time.Second
	if ac := sp.SessionAffinityConfig; ac != nil && ac.ClientIP != nil && ac.ClientIP.TimeoutSeconds != nil && *ac.ClientIP.TimeoutSeconds > 0 {
		timeout = time.Duration(*ac.ClientIP.TimeoutSeconds) * time.Second
	}

	var out []*servicePort
	seen := map[string]bool{}
	for i := range sp.Ports {
		port := &sp.Ports[i]
		proto := ir.Protocol(port.Protocol)
		if port.Protocol == "" {
			proto = ir.TCP
		}
		if proto != ir.TCP && proto != ir.UDP && proto != ir.SCTP {
			continue
		}
		if port.Port < 1 || port.Port > 65535 {
			continue
		}
		// kube-proxy keys service ports by (name, protocol); a repeat
		// (invalid input) would collide, so only the first is used.
		key := port.Name + "/" + string(proto)
		if seen[key] {
			continue
		}
		seen[key] = true
		p := &servicePort{
			s:           s,
			index:       i,
			sp:          port,
			proto:       proto,
			port:        uint16(port.Port),
			name:        servicePortName(s.id, port.Name),
			base:        servicePortChainBase(s.api.Metadata.Namespace, s.api.Metadata.Name, proto, port.Name),
			clusterIP:   cip,
			externalIPs: extIPs,
			lbIPs:       lbIPs,
			srcRanges:   ranges,
			fwSources:   fwSources,
			affinity:    affinity,
			timeout:     timeout,
		}
		if s.hasNodePorts() && s.nodePorts[i] >= 1 && s.nodePorts[i] <= 65535 {
			p.nodePort = uint16(s.nodePorts[i])
		}
		p.prepare(c, f, names, scratch)
		out = append(out, p)
	}
	return out
}

// policies returns whether the internal and the external traffic policy
// of p's Service are Local, and which of p's chains kube-proxy uses: the
// cluster chain (usesCluster) and the local one (usesLocal).
func (p *servicePort) policies() (iTPLocal, eTPLocal, usesCluster, usesLocal bool) {
	iTPLocal = p.s.spec().InternalTrafficPolicy == "Local"
	eTPLocal = p.s.externalPolicyLocal()
	extAccessible := p.externallyAccessible()
	return iTPLocal, eTPLocal, !iTPLocal || extAccessible, iTPLocal || (eTPLocal && extAccessible)
}

// prepare finds p's endpoints in family f, categorizes them and names
// their chains and affinity sets (which share their base).
func (p *servicePort) prepare(c *compiler, f ir.Family, names *nameBuf, scratch *[]byte) {
	_, _, usesCluster, usesLocal := p.policies()
	eps := c.endpointsFor(p.s, p.sp, p.proto, f)
	p.cat = categorize(eps, usesCluster, usesLocal, c.cfg.nodeName, c.cfg.zone)
	ns, name := p.s.api.Metadata.Namespace, p.s.api.Metadata.Name
	for _, e := range p.cat.reachable {
		buf := names.endpointChain(append((*scratch)[:0], prefixEndpoint...), ns, name, p.proto, p.sp.Name, e.ap)
		e.chain = string(buf)
		if p.affinity {
			e.set = prefixAffinity + e.chain[len(prefixEndpoint):]
		}
		*scratch = buf
	}
}

// addService adds the ports of s (from servicePorts) to the ruleset.
func (b *builder) addService(s *svc, ports []*servicePort) {
	for _, p := range ports {
		b.addServicePort(p)
	}
	if len(ports) > 0 && s.needsHealthCheck() && s.hcnp >= 1 && s.hcnp <= 65535 && !b.hcPorts[uint16(s.hcnp)] {
		b.hcPorts[uint16(s.hcnp)] = true
		b.rs.HealthCheckNodePorts = append(b.rs.HealthCheckNodePorts, uint16(s.hcnp))
	}
}

// addServicePort is kube-proxy's per-service-port body of syncProxyRules
// (nftables mode) followed by writeServiceToEndpointRules and the endpoint
// chains, for a prepared port.
func (b *builder) addServicePort(p *servicePort) {
	s, cfg, rs := p.s, b.c.cfg, b.rs

	iTPLocal, eTPLocal, usesCluster, usesLocal := p.policies()
	extAccessible := p.externallyAccessible()
	cat := &p.cat
	hasEndpoints := cat.hasAny

	clusterChain := prefixService + p.base
	localChain := prefixLocal + p.base
	extChain := prefixExternal + p.base
	fwChain := prefixFirewall + p.base

	usesClusterChain := len(cat.cluster) > 0 && usesCluster
	usesLocalChain := len(cat.local) > 0 && usesLocal

	internalChain, hasInternal := clusterChain, hasEndpoints
	if iTPLocal {
		internalChain = localChain
		if len(cat.local) == 0 {
			hasInternal = false
		}
	}
	externalPolicyChain, hasExternal := clusterChain, hasEndpoints
	if eTPLocal {
		externalPolicyChain = localChain
		if len(cat.local) == 0 {
			hasExternal = false
		}
	}
	usesExtChain := hasEndpoints && extAccessible

	var internalVerdict, externalVerdict ir.Target
	switch {
	case !hasEndpoints:
		internalVerdict, externalVerdict = ir.Target{Reject: true}, ir.Target{Reject: true}
	default:
		internalVerdict, externalVerdict = ir.Target{Drop: true}, ir.Target{Drop: true}
	}

	// Dispatch entries.
	if !b.clusterIPs[p.clusterIP] {
		b.clusterIPs[p.clusterIP] = true
		rs.ClusterIPs = append(rs.ClusterIPs, p.clusterIP)
	}
	// An allocated cluster IP of an input with invalid documents may not
	// be the one the whole input gives it: it claims nothing.
	cipKey := svcKey{p.clusterIP, p.proto, p.port}
	if (b.c.whole() || s.explicit[b.f]) && b.claim(s, cipKey, func() string { return clusterIPPath(s, b.f) }) {
		if hasInternal {
			b.addServiceEntry(b.services, &rs.Services, p.entry(p.clusterIP, ir.ClusterIPKind, ir.Target{Chain: internalChain}))
		} else {
			b.addServiceEntry(b.noEndpoint, &rs.NoEndpoints, p.entry(p.clusterIP, ir.ClusterIPKind, internalVerdict))
		}
	}
	for _, ext := range p.externalIPs {
		if !b.claim(s, svcKey{ext.addr, p.proto, p.port}, func() string { return ext.path }) {
			continue
		}
		if hasEndpoints {
			b.addServiceEntry(b.services, &rs.Services, p.entry(ext.addr, "external IP", ir.Target{Chain: extChain}))
		}
		if !hasExternal {
			b.addServiceEntry(b.noEndpoint, &rs.NoEndpoints, p.entry(ext.addr, "external IP", externalVerdict))
		}
	}
	usesFW := len(p.lbIPs) > 0 && len(p.srcRanges) > 0
	for _, lb := range p.lbIPs {
		if !b.claim(s, svcKey{lb.addr, p.proto, p.port}, func() string { return lb.path }) {
			continue
		}
		if hasEndpoints {
			b.addServiceEntry(b.services, &rs.Services, p.entry(lb.addr, "load balancer IP", ir.Target{Chain: extChain}))
		}
		if usesFW {
			b.addServiceEntry(b.firewall, &rs.Firewall, p.entry(lb.addr, "load balancer IP", ir.Target{Chain: fwChain}))
		}
		if !hasExternal {
			b.addServiceEntry(b.noEndpoint, &rs.NoEndpoints, p.entry(lb.addr, "load balancer IP", externalVerdict))
		}
	}
	nodePortPath := func() string { return fmt.Sprintf("spec.ports[%d].nodePort", p.index) }
	if p.nodePort != 0 && b.claimNodePort(s, npKey{p.proto, p.nodePort}, nodePortPath) {
		if hasEndpoints {
			b.addNodePortEntry(b.nodePorts, &rs.NodePorts, ir.NodePortEntry{Protocol: p.proto, Port: p.nodePort, Target: ir.Target{Chain: extChain}, Comment: p.name})
		}
		if !hasExternal {
			b.addNodePortEntry(b.noEndpNP, &rs.NoEndpointNodePorts, ir.NodePortEntry{Protocol: p.proto, Port: p.nodePort, Target: externalVerdict, Comment: p.name})
		}
	}

	// Chains. Rules are collected per chain in kube-proxy's order: the
	// internal chain (the cluster or the local chain) starts with the
	// masquerade rule of cluster IP traffic.
	var internalRules []ir.Rule
	if hasInternal {
		// All of it, or what the local-traffic detector does not take for
		// a pod's; nothing without one.
		m, masq := ir.Match{DstAddr: p.clusterIP, DstPort: p.port}, true
		switch {
		case cfg.masqueradeAll:
		case cfg.podCIDR[b.f].IsValid():
			m.SrcNotIn = []netip.Prefix{cfg.podCIDR[b.f]}
		case cfg.localIface != "":
			m.Iface = ir.IfaceNotLocal
		default:
			masq = false
		}
		if masq {
			internalRules = []ir.Rule{{Match: m, Action: &ir.MarkMasq{}, Comment: p.name + " cluster IP"}}
		}
	}
	rulesOf := func(chain string) []ir.Rule {
		if chain == internalChain {
			return internalRules
		}
		return nil
	}
	if usesExtChain {
		var r []ir.Rule
		if !eTPLocal {
			r = append(r, ir.Rule{Action: &ir.MarkMasq{}, Comment: "masquerade traffic for " + p.name + " external destinations"})
		} else {
			if pc := cfg.podCIDR[b.f]; pc.IsValid() {
				r = append(r, ir.Rule{Match: ir.Match{SrcIn: []netip.Prefix{pc}}, Action: &ir.Goto{Chain: clusterChain}, Comment: "short-circuit pod traffic"})
			} else if cfg.localIface != "" {
				r = append(r, ir.Rule{Match: ir.Match{Iface: ir.IfaceLocal}, Action: &ir.Goto{Chain: clusterChain}, Comment: "short-circuit pod traffic"})
			}
			r = append(r,
				ir.Rule{Match: ir.Match{SrcLocal: true}, Action: &ir.MarkMasq{}, Comment: "masquerade local traffic"},
				ir.Rule{Match: ir.Match{SrcLocal: true}, Action: &ir.Goto{Chain: clusterChain}, Comment: "short-circuit local traffic"},
			)
		}
		if hasExternal {
			r = append(r, ir.Rule{Action: &ir.Goto{Chain: externalPolicyChain}})
		}
		b.addChain(p.chain(extChain, ir.ExternalChain, p.name+" external destinations", r))
	}
	if usesFW {
		r := []ir.Rule{{Match: ir.Match{SrcNotIn: p.fwSources}, Action: &ir.Drop{}, Comment: "other traffic to " + p.name + " load balancer IPs"}}
		b.addChain(p.chain(fwChain, ir.FirewallChain, p.name+" loadBalancerSourceRanges", r))
	}
	if p.affinity {
		for _, e := range cat.reachable {
			b.addAffinitySet(e.set, p.timeout, ir.EndpointDescription(p.name, e.ap))
		}
	}
	if usesClusterChain {
		r := slices.Concat(rulesOf(clusterChain), p.endpointRules(cat.cluster))
		b.addChain(p.chain(clusterChain, ir.ServiceChain, p.name+" cluster endpoints", r))
	}
	if usesLocalChain {
		r := slices.Concat(rulesOf(localChain), p.endpointRules(cat.local))
		b.addChain(p.chain(localChain, ir.LocalChain, p.name+" node-local endpoints", r))
	}
	b.addEndpointChains(p, cat.reachable)
}

// addEndpointChains adds the chain of every endpoint of eps (built by
// builder.materialize).
func (b *builder) addEndpointChains(p *servicePort, eps []*endpoint) {
	for _, e := range eps {
		b.addEndpointChain(p, e)
	}
}

// endpointRules is writeServiceToEndpointRules: one affinity rule per
// endpoint (ClientIP affinity), then a uniform choice among them.
func (p *servicePort) endpointRules(eps []*endpoint) []ir.Rule {
	var r []ir.Rule
	if p.affinity {
		r = make([]ir.Rule, 0, len(eps)+1)
		for _, e := range eps {
			r = append(r, ir.Rule{Match: ir.Match{Affinity: e.set}, Action: &ir.Goto{Chain: e.chain}, Comment: ir.EndpointDescription(p.name, e.ap)})
		}
	}
	names := make([]string, len(eps))
	for i, e := range eps {
		names[i] = e.chain
	}
	return append(r, ir.Rule{Action: &ir.Balance{Chains: names}})
}

func (p *servicePort) entry(addr netip.Addr, kind string, t ir.Target) ir.ServiceEntry {
	return ir.ServiceEntry{Addr: addr, Protocol: p.proto, Port: p.port, Target: t, Comment: p.name, Kind: kind}
}

func (p *servicePort) chain(name string, kind ir.ChainKind, comment string, rules []ir.Rule) *ir.Chain {
	return &ir.Chain{Name: name, Kind: kind, Service: p.name, Protocol: p.proto, Comment: strings.TrimSpace(comment), Rules: rules}
}
