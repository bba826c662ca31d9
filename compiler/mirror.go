package compiler

import (
	"fmt"
	"net/netip"
	"strconv"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// The EndpointSlice mirroring controller's labels and limit
// (pkg/controller/endpointslicemirroring).
const (
	// skipMirrorLabel set to "true" on an Endpoints keeps it from being
	// mirrored.
	skipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror"
	// managedByLabel names the controller of an EndpointSlice.
	managedByLabel = "endpointslice.kubernetes.io/managed-by"
	// mirroringController is the mirroring controller's managedByLabel
	// value.
	mirroringController = "endpointslicemirroring-controller.k8s.io"
	// maxMirroredPerSubset is how many addresses of one subset the
	// controller mirrors (ready ones first); it skips the rest.
	maxMirroredPerSubset = 1000
)

// mirrorEndpoints adds to c.slices the EndpointSlices that the mirroring
// controller makes from the input's Endpoints: those of a Service of the
// input without a selector, not labelled skip-mirror, when the input holds
// no slice that controller already made for the Service (a dump of a
// cluster holds both). As the controller does, each subset gives a slice
// per address family, with the subset's ports; an address becomes an
// endpoint whose only condition is ready (true for addresses, false for
// notReadyAddresses), a repeated address of a subset is kept once, and at
// most 1,000 addresses of a subset are mirrored. A second Endpoints of the
// same name is an error.
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
			c.diags.Add(e.Pos, "Endpoints "+id, "metadata.name", fmt.Sprintf("duplicate Endpoints (first defined at %s)", first.Pos))
			continue
		}
		seen[id] = e
		svc := services[id]
		if svc == nil || len(svc.Spec.Selector) > 0 || e.Metadata.Labels[skipMirrorLabel] == "true" || c.mirrored(id) {
			continue
		}
		for i, ss := range e.Subsets {
			c.slices[id] = append(c.slices[id], mirrorSubset(e, i, ss)...)
		}
	}
}

// mirrored reports whether the input holds a slice the mirroring
// controller made for the Service id.
func (c *compiler) mirrored(id string) bool {
	for _, es := range c.slices[id] {
		if es.Metadata.Labels[managedByLabel] == mirroringController {
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
	dup := map[string]bool{}
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
		node := ""
		if a.NodeName != nil {
			node = *a.NodeName
		}
		key := fmt.Sprintf("%s %t %s %s", a.IP, ready, a.Hostname, node)
		if dup[key] {
			return
		}
		dup[key] = true
		n++
		es := byFamily[fam]
		if es == nil {
			es = &api.EndpointSlice{
				Pos: e.Pos, APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice",
				Metadata: api.ObjectMeta{
					Name:      e.Metadata.Name + "-mirror-" + strconv.Itoa(i) + "-" + fam,
					Namespace: e.Metadata.Namespace,
					Labels:    map[string]string{api.ServiceNameLabel: e.Metadata.Name, managedByLabel: mirroringController},
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
