package compiler

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

// catalog describes every Service of the input (the first definition of a
// duplicated namespace/name) as the compiler resolved it: cluster IPs and
// nodePorts after allocation, endpoints merged like the compiler merges
// them. It runs after allocation and indexSlices. See ir.ServiceInfo.
func (c *compiler) catalog() []ir.ServiceInfo {
	proxied := make(map[string]*svc, len(c.svcs))
	for _, s := range c.svcs {
		proxied[s.id] = s
	}
	seen := map[string]bool{}
	var out []ir.ServiceInfo
	for _, s := range sortedByPos(c.in.Services, func(s *api.Service) diag.Pos { return s.Pos }) {
		if seen[s.ID()] {
			continue
		}
		seen[s.ID()] = true
		out = append(out, c.serviceInfo(s, proxied[s.ID()]))
	}
	slices.SortFunc(out, func(a, b ir.ServiceInfo) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}

// serviceInfo describes one Service; p is its proxied form (nil for
// headless and ExternalName Services).
func (c *compiler) serviceInfo(s *api.Service, p *svc) ir.ServiceInfo {
	sp := &s.Spec
	view := p
	if view == nil {
		view = &svc{api: s}
	}
	info := ir.ServiceInfo{
		Namespace:                s.Metadata.Namespace,
		Name:                     s.Metadata.Name,
		Type:                     cmp.Or(sp.Type, "ClusterIP"),
		PublishNotReadyAddresses: sp.PublishNotReadyAddresses,
		SessionAffinity:          "None",
	}
	external := info.Type == "ExternalName"
	if external {
		info.ExternalName = sp.ExternalName
	} else {
		info.Headless = sp.ClusterIP == "None" || (len(sp.ClusterIPs) > 0 && sp.ClusterIPs[0] == "None")
		info.InternalTrafficPolicy = cmp.Or(sp.InternalTrafficPolicy, "Cluster")
	}
	if p != nil {
		for _, f := range c.familyOrder(p) {
			if ip, ok := p.ips[f]; ok {
				info.ClusterIPs = append(info.ClusterIPs, ip)
			}
		}
		if p.needsHealthCheck() && p.hcnp >= 1 && p.hcnp <= 65535 {
			info.HealthCheckNodePort = uint16(p.hcnp)
		}
	}
	if view.externallyAccessibleType() {
		info.ExternalTrafficPolicy = cmp.Or(sp.ExternalTrafficPolicy, "Cluster")
	}
	if sp.SessionAffinity == "ClientIP" {
		info.SessionAffinity = "ClientIP"
		info.AffinityTimeout = time.Duration(defaultAffinitySecond) * time.Second
		if a := sp.SessionAffinityConfig; a != nil && a.ClientIP != nil && a.ClientIP.TimeoutSeconds != nil && *a.ClientIP.TimeoutSeconds > 0 {
			info.AffinityTimeout = time.Duration(*a.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	for i := range sp.Ports {
		port := &sp.Ports[i]
		if port.Port < 1 || port.Port > 65535 {
			continue
		}
		pi := ir.PortInfo{
			Name:       port.Name,
			Protocol:   ir.Protocol(cmp.Or(port.Protocol, "TCP")),
			Port:       uint16(port.Port),
			TargetPort: port.TargetPort.String(),
		}
		if !port.TargetPort.IsString && port.TargetPort.IntVal == 0 {
			pi.TargetPort = strconv.Itoa(int(port.Port))
		}
		if p != nil && p.hasNodePorts() && i < len(p.nodePorts) && p.nodePorts[i] >= 1 && p.nodePorts[i] <= 65535 {
			pi.NodePort = uint16(p.nodePorts[i])
		}
		info.Ports = append(info.Ports, pi)
	}
	for _, str := range sp.ExternalIPs {
		if ip, ok := parseIP(str); ok {
			info.ExternalIPs = append(info.ExternalIPs, ip)
		}
	}
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode == "Proxy") {
			continue
		}
		if ip, ok := parseIP(ing.IP); ok {
			info.LoadBalancerIPs = append(info.LoadBalancerIPs, ip)
		}
	}
	for _, str := range sp.LoadBalancerSourceRanges {
		if pfx, ok := parseCIDR(str); ok {
			info.LoadBalancerSourceRanges = append(info.LoadBalancerSourceRanges, pfx)
		}
	}
	if !external {
		info.Endpoints = c.catalogEndpoints(s.ID(), info.Ports)
	}
	return info
}

// familyOrder returns s's families primary first: the family of its first
// explicit cluster IP, else of its first spec.ipFamilies entry, else the
// cluster's primary family.
func (c *compiler) familyOrder(s *svc) []ir.Family {
	sp := s.spec()
	ips := sp.ClusterIPs
	if len(ips) == 0 && sp.ClusterIP != "" {
		ips = []string{sp.ClusterIP}
	}
	primary := ir.Family(0)
	for _, str := range ips {
		if ip, ok := parseIP(str); ok {
			primary = familyOf(ip)
			break
		}
	}
	if primary == 0 {
		for _, name := range sp.IPFamilies {
			if f, ok := map[string]ir.Family{"IPv4": ir.IPv4, "IPv6": ir.IPv6}[name]; ok {
				primary = f
				break
			}
		}
	}
	if primary == 0 {
		primary = c.cfg.primaryFamily
	}
	if primary == ir.IPv6 {
		return []ir.Family{ir.IPv6, ir.IPv4}
	}
	return []ir.Family{ir.IPv4, ir.IPv6}
}

// catalogEntry is an endpoint being merged, with its duplicate rank.
type catalogEntry struct {
	info ir.EndpointInfo
	rank int
	// merged: info.Ports was collected from several entries and must be
	// put in spec.ports order.
	merged bool
}

// catalogEndpoints lists the endpoints of Service id's slices, one per
// first address, merged like endpointsFor merges duplicates, with their
// ports resolved per Service port.
func (c *compiler) catalogEndpoints(id string, ports []ir.PortInfo) []ir.EndpointInfo {
	n := 0
	for _, es := range c.slices[id] {
		n += len(es.Endpoints)
	}
	if n == 0 {
		return nil
	}
	entries := make([]catalogEntry, 0, n)
	byAddr := make(map[netip.Addr]int, n) // address -> index in entries
	for _, es := range c.slices[id] {
		var f ir.Family
		switch es.AddressType {
		case "IPv4":
			f = ir.IPv4
		case "IPv6":
			f = ir.IPv6
		default:
			continue
		}
		// The slice's ports, per Service port, in spec.ports order.
		var eps []ir.EndpointPort
		for _, sp := range ports {
			for _, pp := range es.Ports {
				name := ""
				if pp.Name != nil {
					name = *pp.Name
				}
				proto := "TCP"
				if pp.Protocol != nil {
					proto = *pp.Protocol
				}
				if name != sp.Name || ir.Protocol(proto) != sp.Protocol || pp.Port == nil || *pp.Port < 1 || *pp.Port > 65535 {
					continue
				}
				eps = append(eps, ir.EndpointPort{Name: sp.Name, Protocol: sp.Protocol, Port: uint16(*pp.Port)})
				break
			}
		}
		// Every endpoint of the slice gets its own copy of eps, cut from
		// one allocation.
		var portsBuf []ir.EndpointPort
		if len(eps) > 0 {
			portsBuf = make([]ir.EndpointPort, 0, len(eps)*len(es.Endpoints))
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, ok := parseIP(ep.Addresses[0])
			if !ok || familyOf(ip) != f {
				continue
			}
			var own []ir.EndpointPort
			if len(eps) > 0 {
				start := len(portsBuf)
				portsBuf = append(portsBuf, eps...)
				own = portsBuf[start:len(portsBuf):len(portsBuf)]
			}
			e := catalogEntry{info: ir.EndpointInfo{
				Addr:        ip,
				Ports:       own,
				Slice:       es.Metadata.Name,
				Hostname:    deref(ep.Hostname),
				NodeName:    deref(ep.NodeName),
				Zone:        deref(ep.Zone),
				Ready:       boolOr(ep.Conditions.Ready, true),
				Serving:     boolOr(ep.Conditions.Serving, true),
				Terminating: boolOr(ep.Conditions.Terminating, false),
			}}
			local := c.cfg.nodeName != "" && e.info.NodeName == c.cfg.nodeName
			e.rank = (&endpoint{local: local, ready: e.info.Ready, serving: e.info.Serving}).rank()
			k, dup := byAddr[ip]
			if !dup {
				byAddr[ip] = len(entries)
				entries = append(entries, e)
				continue
			}
			entries[k] = mergeCatalogEntry(&entries[k], &e)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	// order gives a port's position in spec.ports (the last of repeats).
	order := func(p ir.EndpointPort) int {
		for i := len(ports) - 1; i >= 0; i-- {
			if ports[i].Name == p.Name && ports[i].Protocol == p.Protocol {
				return i
			}
		}
		return 0
	}
	out := make([]ir.EndpointInfo, len(entries))
	for i := range entries {
		e := &entries[i]
		if e.merged {
			slices.SortFunc(e.info.Ports, func(a, b ir.EndpointPort) int { return cmp.Compare(order(a), order(b)) })
		}
		out[i] = e.info
	}
	slices.SortFunc(out, func(a, b ir.EndpointInfo) int { return a.Addr.Compare(b.Addr) })
	return out
}

// mergeCatalogEntry merges two entries of one address: the higher-ranked
// one (the earlier on a tie) gives the fields, ports are collected (the
// higher-ranked entry's port wins for a Service port both serve).
func mergeCatalogEntry(old, e *catalogEntry) catalogEntry {
	win, lose := old, e
	if e.rank > old.rank {
		win, lose = e, old
	}
	merged := catalogEntry{info: win.info, rank: win.rank, merged: true}
	merged.info.Ports = slices.Clone(win.info.Ports)
	for _, lp := range lose.info.Ports {
		if !slices.ContainsFunc(merged.info.Ports, func(p ir.EndpointPort) bool {
			return p.Name == lp.Name && p.Protocol == lp.Protocol
		}) {
			merged.info.Ports = append(merged.info.Ports, lp)
		}
	}
	return merged
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
