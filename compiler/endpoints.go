package compiler

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/ir"
)

// endpoint is one usable (ip, port) of a Service port, as kube-proxy's
// BaseEndpointInfo sees it. Endpoints with equal ap are merged into one
// (see rank), so ap identifies an endpoint of a Service port.
type endpoint struct {
	ap    netip.AddrPort
	local bool
	// Conditions as kube-proxy reads them: nil ready and serving mean
	// true, nil terminating means false.
	ready, serving, terminating bool
	// order is the endpoint's position among its Service port's
	// endpoints, which endpointsFor sorts by "ip:port" (kube-proxy's
	// order; the strings are not kept: a million endpoints at 50,000
	// Services x 10 held 39 MB of them through the compile).
	order int32
	// hints are the topology hints; nil without any (most endpoints).
	// With the strings gone, the struct takes 80 bytes, a size class of
	// Go's allocator (112 with both maps and the string inline).
	hints *endpointHints
	// chain and set are the names of the endpoint's chain and affinity
	// set, filled in by addServicePort.
	chain, set string
}

// endpointHints are an endpoint's topology hints: the zones and the nodes
// it is for.
type endpointHints struct{ zones, nodes map[string]bool }

// zoneHints returns the zones the endpoint's hints are for (nil if none).
func (e *endpoint) zoneHints() map[string]bool {
	if e.hints == nil {
		return nil
	}
	return e.hints.zones
}

// nodeHints returns the nodes the endpoint's hints are for (nil if none).
func (e *endpoint) nodeHints() map[string]bool {
	if e.hints == nil {
		return nil
	}
	return e.hints.nodes
}

// rank orders duplicate endpoints: a local one first (kube-proxy), then a
// ready one, then a serving one.
func (e *endpoint) rank() int {
	r := 0
	if e.local {
		r += 4
	}
	if e.ready {
		r += 2
	}
	if e.serving {
		r++
	}
	return r
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// endpointsFor returns the endpoints of Service port sp in family f, sorted
// by "ip:port": slices of s labelled kubernetes.io/service-name with the
// family's addressType, slice ports matched by name and protocol with a
// non-nil port in 1-65535, the first address of each endpoint only
// (kube-proxy ignores the others), duplicates merged (see rank).
func (c *compiler) endpointsFor(s *svc, sp *api.ServicePort, proto ir.Protocol, f ir.Family) []*endpoint {
	addrType := "IPv4"
	if f == ir.IPv6 {
		addrType = "IPv6"
	}
	// All candidates, in input order, allocated together.
	var all []endpoint
	for _, es := range c.slices[s.id] {
		if es.AddressType != addrType || api.Unwatched(es.Metadata.Labels) {
			continue
		}
		for _, pp := range es.Ports {
			name := ""
			if pp.Name != nil {
				name = *pp.Name
			}
			pproto := "TCP"
			if pp.Protocol != nil {
				pproto = *pp.Protocol
			}
			if name != sp.Name || ir.Protocol(pproto) != proto {
				continue
			}
			if pp.Port == nil || *pp.Port < 1 || *pp.Port > 65535 {
				continue
			}
			port := uint16(*pp.Port)
			if all == nil {
				all = make([]endpoint, 0, len(es.Endpoints))
			}
			for i := range es.Endpoints {
				if e, ok := c.newEndpoint(&es.Endpoints[i], port, f); ok {
					all = append(all, e)
				}
			}
		}
	}
	if len(all) == 0 {
		return []*endpoint{}
	}
	// Sort by "ip:port", then by input order; of duplicates the first of
	// the highest rank is kept.
	type keyed struct {
		key string // "ip:port" ("[ip]:port" for IPv6)
		e   *endpoint
	}
	byKey := make([]keyed, len(all))
	for i := range all {
		byKey[i] = keyed{all[i].ap.String(), &all[i]}
	}
	slices.SortStableFunc(byKey, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	kept := make([]*endpoint, 0, len(all))
	for _, k := range byKey {
		e := k.e
		if n := len(kept); n > 0 && kept[n-1].ap == e.ap {
			if e.rank() > kept[n-1].rank() {
				kept[n-1] = e
			}
			continue
		}
		kept = append(kept, e)
	}
	for i, e := range kept {
		e.order = int32(i)
	}
	return kept
}

// newEndpoint returns the endpoint ep of the slice port port, if its first
// address is of family f.
func (c *compiler) newEndpoint(ep *api.Endpoint, port uint16, f ir.Family) (endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return endpoint{}, false
	}
	ip, ok := parseIP(ep.Addresses[0])
	if !ok || familyOf(ip) != f {
		return endpoint{}, false
	}
	e := endpoint{
		ap:          netip.AddrPortFrom(ip, port),
		local:       c.cfg.nodeName != "" && ep.NodeName != nil && *ep.NodeName == c.cfg.nodeName,
		ready:       boolOr(ep.Conditions.Ready, true),
		serving:     boolOr(ep.Conditions.Serving, true),
		terminating: boolOr(ep.Conditions.Terminating, false),
	}
	if h := ep.Hints; h != nil && (len(h.ForZones) > 0 || len(h.ForNodes) > 0) {
		e.hints = &endpointHints{}
		if len(h.ForZones) > 0 {
			e.hints.zones = map[string]bool{}
			for _, z := range h.ForZones {
				e.hints.zones[z.Name] = true
			}
		}
		if len(h.ForNodes) > 0 {
			e.hints.nodes = map[string]bool{}
			for _, n := range h.ForNodes {
				e.hints.nodes[n.Name] = true
			}
		}
	}
	return e, true
}

// Topology modes (topologyModeFromHints).
const (
	topoNone = iota
	topoSameZone
	topoSameNode
)

// categorized is the result of kube-proxy's CategorizeEndpoints.
type categorized struct {
	cluster, local []*endpoint
	// reachable is the union of cluster and local, sorted.
	reachable []*endpoint
	// hasAny: some endpoint is usable anywhere in the cluster.
	hasAny bool
}

// categorize is kube-proxy's CategorizeEndpoints: cluster endpoints are the
// ready ones (filtered by topology hints), else the serving terminating
// ones; local endpoints are the local ready ones, else the local serving
// terminating ones.
func categorize(eps []*endpoint, usesCluster, usesLocal bool, nodeName, zone string) categorized {
	var r categorized
	if len(eps) == 0 {
		return r
	}
	if usesCluster {
		mode := topologyMode(eps, nodeName, zone)
		r.cluster = filter(eps, func(e *endpoint) bool {
			if !e.ready {
				return false
			}
			switch mode {
			case topoSameNode:
				return e.nodeHints()[nodeName]
			case topoSameZone:
				return e.zoneHints()[zone]
			}
			return true
		})
		if len(r.cluster) == 0 {
			r.cluster = filter(eps, func(e *endpoint) bool { return e.serving && e.terminating })
		}
		r.hasAny = len(r.cluster) > 0
	}
	if usesLocal {
		var localReady, localST bool
		for _, e := range eps {
			switch {
			case e.ready:
				r.hasAny = true
				localReady = localReady || e.local
			case e.serving && e.terminating:
				r.hasAny = true
				localST = localST || e.local
			}
		}
		switch {
		case localReady:
			r.local = filter(eps, func(e *endpoint) bool { return e.local && e.ready })
		case localST:
			r.local = filter(eps, func(e *endpoint) bool { return e.local && e.serving && e.terminating })
		}
	}
	r.reachable = union(r.cluster, r.local)
	return r
}

// topologyMode is kube-proxy's topologyModeFromHints: same-node when every
// ready endpoint has node hints and one names this node, else same-zone
// when every ready endpoint has zone hints and one names this zone, else
// none.
func topologyMode(eps []*endpoint, nodeName, zone string) int {
	hasReady, forNode, allNode, forZone, allZone := false, false, true, false, true
	for _, e := range eps {
		if !e.ready {
			continue
		}
		hasReady = true
		if len(e.nodeHints()) == 0 {
			allNode = false
		} else if e.nodeHints()[nodeName] {
			forNode = true
		}
		if len(e.zoneHints()) == 0 {
			allZone = false
		} else if e.zoneHints()[zone] {
			forZone = true
		}
	}
	switch {
	case !hasReady:
		return topoNone
	case allNode && forNode:
		return topoSameNode
	case allZone && forZone:
		return topoSameZone
	}
	return topoNone
}

func filter(eps []*endpoint, keep func(*endpoint) bool) []*endpoint {
	var out []*endpoint
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// union merges two lists of one Service port's endpoints, each in the
// endpoints' order, without repeats.
func union(a, b []*endpoint) []*endpoint {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]*endpoint, 0, max(len(a), len(b)))
	for len(a) > 0 && len(b) > 0 {
		switch c := cmp.Compare(a[0].order, b[0].order); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}
