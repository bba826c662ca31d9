package compiler

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// The EndpointSlice mirroring controller's labels and limit
// (pkg/controller/endpointslicemirroring).
const (
	// mirroringController is the mirroring controller's api.ManagedByLabel
	// value.
	mirroringController = api.MirroringController
	// maxMirroredPerSubset is how many addresses of one subset the
	// controller mirrors (ready ones first); it skips the rest.
	maxMirroredPerSubset = 1000
)

// mirrorEndpoints adds to c.slices the EndpointSlices that the mirroring
// controller makes from the input's Endpoints: those of a Service of the
// input without a selector (see api.Endpoints.Mirrored), when the input holds no
// slice that controller already made for the Service (a dump of a cluster
// holds both). The subsets are first repacked as the API server stores
// them (repackSubsets); then, as the controller does, each subset gives a
// slice per address family, with the subset's ports; an address becomes an
// endpoint whose only condition is ready (true for addresses, false for
// notReadyAddresses), and at most 1,000 addresses of a subset are
// mirrored. A second Endpoints of the same name is an error.
func (c *compiler) mirrorEndpoints() {
	if len(c.in.Endpoints) == 0 {
		return
	}
	services := make(map[string]*api.Service, len(c.in.Services))
	for _, s := range c.in.Services {
		if s != nil {
			services[s.ID()] = s
		}
	}
	seen := map[string]*api.Endpoints{}
	for _, e := range sortedByPos(c.in.Endpoints, func(e *api.Endpoints) diag.Pos { return e.Pos }) {
		id := e.ID()
		if first, dup := seen[id]; dup {
			c.duplicate(e.Pos, first.Pos, "Endpoints", id, api.SameObject(e, first, func(e *api.Endpoints) *diag.Pos { return &e.Pos }))
			continue
		}
		seen[id] = e
		svc := services[id]
		if svc != nil && len(svc.Spec.Selector) > 0 {
			c.ignoredEndpoints(e, svc)
			continue
		}
		if svc == nil || c.mirrored(id) {
			continue
		}
		if !e.Mirrored() {
			c.unmirrored(e, svc)
			continue
		}
		for i, ss := range repackSubsets(e.Subsets) {
			c.slices[id] = append(c.slices[id], mirrorSubset(e, i, ss)...)
		}
	}
}

// ignoredEndpoints warns about Endpoints e of Service svc, which has a
// selector, when the input holds EndpointSlices but none of svc: the
// cluster's endpoints controller manages such Endpoints, the mirroring
// controller makes no slice of them and kube-proxy reads only slices, so
// they serve nothing. (Without any slice, noteNoEndpoints says so once;
// a dump of a cluster holds the controller's slices of every Service
// with a selector.)
func (c *compiler) ignoredEndpoints(e *api.Endpoints, svc *api.Service) {
	if len(c.in.EndpointSlices) == 0 || len(c.slices[e.ID()]) > 0 || svc.Spec.Type == "ExternalName" {
		return
	}
	c.diags.Warn(e.Pos, "Endpoints "+e.ID(), "", "ignored: Service "+svc.ID()+" has a selector, so its endpoints come from "+
		"its EndpointSlices, of which the input holds none (the endpoints controller owns these Endpoints, and nothing "+
		"mirrors them): remove spec.selector to serve these addresses, or add the Service's EndpointSlices")
}

// unmirrored notes the Endpoints e of Service svc, which has no selector,
// that the mirroring controller leaves alone (labelled skip-mirror, a
// leader-election lock or another proxy's), when the input holds no slice
// of svc: svc then has no endpoint. default/kubernetes is the common
// case: the API server writes its Endpoints, labelled skip-mirror, and its
// slice, and a dump of Services and Endpoints alone leaves the slice out.
func (c *compiler) unmirrored(e *api.Endpoints, svc *api.Service) {
	if api.Unwatched(svc.Metadata.Labels) || len(c.slices[e.ID()]) > 0 || svc.Spec.Type == "ExternalName" {
		return
	}
	c.addNote(e.ID(), "Service "+svc.ID()+" has no endpoint: its Endpoints are not mirrored (the mirroring controller "+
		"leaves them alone), and the input holds no EndpointSlice of it; kube-proxy reads only slices "+
		"(kubectl get endpointslices -A -o yaml)")
}

// repackSubsets regroups subsets as the API server stores them
// (RepackSubsets): each address once per port, not ready if it is not
// ready in any subset with that port, and one subset per set of ports
// that the same addresses, equally ready, serve. Addresses are sorted by
// IP, as are subsets by their first address.
func repackSubsets(subsets []api.EndpointSubset) []api.EndpointSubset {
	type portState struct {
		port  api.EndpointsPort
		ready map[string]bool // IP -> ready
	}
	addrs := map[string]api.EndpointAddress{} // by IP, the first seen
	var ports []*portState
	byPort := map[string]*portState{}
	mark := func(key string, port api.EndpointsPort, a api.EndpointAddress, ready bool) {
		if _, ok := addrs[a.IP]; !ok {
			addrs[a.IP] = a
		}
		ps := byPort[key]
		if ps == nil {
			ps = &portState{port: port, ready: map[string]bool{}}
			byPort[key] = ps
			ports = append(ports, ps)
		}
		if was, seen := ps.ready[a.IP]; !seen || was {
			ps.ready[a.IP] = ready // not ready trumps ready
		}
	}
	for _, ss := range subsets {
		sp := ss.Ports
		if len(sp) == 0 {
			sp = []api.EndpointsPort{{Port: -1}} // no ports: a sentinel
		}
		for _, p := range sp {
			app := ""
			if p.AppProtocol != nil {
				app = *p.AppProtocol
			}
			key := fmt.Sprintf("%s|%s|%d|%t|%s", p.Name, p.Protocol, p.Port, p.AppProtocol != nil, app)
			for _, a := range ss.Addresses {
				mark(key, p, a, true)
			}
			for _, a := range ss.NotReadyAddresses {
				mark(key, p, a, false)
			}
		}
	}
	type group struct {
		ips   []string
		ready map[string]bool
		ports []api.EndpointsPort
	}
	var groups []*group
	bySet := map[string]*group{}
	for _, ps := range ports {
		ips := slices.Sorted(maps.Keys(ps.ready))
		var b strings.Builder
		for _, ip := range ips {
			fmt.Fprintf(&b, "%s=%t,", ip, ps.ready[ip])
		}
		g := bySet[b.String()]
		if g == nil {
			g = &group{ips: ips, ready: ps.ready}
			bySet[b.String()] = g
			groups = append(groups, g)
		}
		if ps.port.Port > 0 {
			g.ports = append(g.ports, ps.port)
		}
	}
	out := make([]api.EndpointSubset, 0, len(groups))
	for _, g := range groups {
		ss := api.EndpointSubset{Ports: g.ports}
		for _, ip := range g.ips {
			if g.ready[ip] {
				ss.Addresses = append(ss.Addresses, addrs[ip])
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, addrs[ip])
			}
		}
		out = append(out, ss)
	}
	slices.SortStableFunc(out, func(a, b api.EndpointSubset) int {
		return strings.Compare(firstIP(a), firstIP(b))
	})
	return out
}

// firstIP is the first address of a repacked subset.
func firstIP(ss api.EndpointSubset) string {
	switch {
	case len(ss.Addresses) > 0 && len(ss.NotReadyAddresses) > 0:
		return min(ss.Addresses[0].IP, ss.NotReadyAddresses[0].IP)
	case len(ss.Addresses) > 0:
		return ss.Addresses[0].IP
	case len(ss.NotReadyAddresses) > 0:
		return ss.NotReadyAddresses[0].IP
	}
	return ""
}

// mirrored reports whether the input holds a slice the mirroring
// controller made for the Service id.
func (c *compiler) mirrored(id string) bool {
	for _, es := range c.slices[id] {
		if es.Metadata.Labels[api.ManagedByLabel] == mirroringController {
			return true
		}
	}
	return false
}

// mirrorSubset returns the slices of subset i of e, IPv4 first.
func mirrorSubset(e *api.Endpoints, i int, ss api.EndpointSubset) []*api.EndpointSlice {
	ports := make([]api.EndpointPort, len(ss.Ports))
	for j, p := range ss.Ports {
		ports[j] = api.EndpointPort{Name: &p.Name, Protocol: &p.Protocol, Port: &p.Port, AppProtocol: p.AppProtocol}
	}
	byFamily := map[string]*api.EndpointSlice{}
	n := 0
	add := func(a api.EndpointAddress, ready bool) {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil || n >= maxMirroredPerSubset {
			return // the loader has checked the addresses
		}
		fam := "IPv4"
		if !ip.Is4() {
			fam = "IPv6"
		}
		n++
		es := byFamily[fam]
		if es == nil {
			es = &api.EndpointSlice{
				Pos: e.Pos, APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice",
				Metadata: api.ObjectMeta{
					Name:      e.Metadata.Name + "-mirror-" + strconv.Itoa(i) + "-" + fam,
					Namespace: e.Metadata.Namespace,
					Labels:    map[string]string{api.ServiceNameLabel: e.Metadata.Name, api.ManagedByLabel: mirroringController},
				},
				AddressType: fam,
				Ports:       ports,
			}
			byFamily[fam] = es
		}
		ep := api.Endpoint{Addresses: []string{a.IP}, Conditions: api.EndpointConditions{Ready: &ready}, NodeName: a.NodeName}
		if a.Hostname != "" {
			ep.Hostname = &a.Hostname
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	for _, a := range ss.Addresses {
		add(a, true)
	}
	for _, a := range ss.NotReadyAddresses {
		add(a, false)
	}
	var out []*api.EndpointSlice
	for _, fam := range []string{"IPv4", "IPv6"} {
		if es := byFamily[fam]; es != nil {
			out = append(out, es)
		}
	}
	return out
}
