package load

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// Labels the cross-document rules read.
const (
	// ControllerName is the EndpointSlice controller's api.ManagedByLabel
	// value.
	ControllerName = "endpointslice-controller.k8s.io"
)

// MaxControllerEndpoints is the EndpointSlice controller's default
// --max-endpoints-per-slice: it never puts more endpoints in one slice
// (the API server accepts up to 1000).
const MaxControllerEndpoints = 100

// CrossCheck runs the rules across documents (the validation notes' "X"
// rules), which the API server does not enforce but which decide what
// kube-proxy makes of the input. Every finding is a warning (kpc's --strict
// makes them errors), positioned at the EndpointSlice's (or Endpoints')
// document:
//
//   - a slice without the kubernetes.io/service-name label, or naming a
//     Service that is not in the input (X1): kube-proxy ignores it;
//   - a slice of an ExternalName Service, or an FQDN slice (X3, X7):
//     ignored;
//   - a slice whose addressType is not one of the Service's IP families,
//     when these are known from clusterIPs or ipFamilies (X3): ignored;
//   - a slice port whose name and protocol match no Service port (X2): its
//     endpoints get no traffic;
//   - an endpoint address (the first, the one kube-proxy reads) that appears
//     twice among a Service's slices for one port, with different
//     conditions or nodeName (X6): kube-proxy merges them and keeps one;
//   - a slice labelled as the EndpointSlice controller's for a Service
//     without a selector, which that controller never manages;
//   - a slice with more than MaxControllerEndpoints endpoints, unless a
//     controller's label says it made it;
//   - an Endpoints whose Service is not in the input (the mirroring
//     controller ignores it), or with a port whose name and protocol match
//     no port of its Service without a selector.
//
// Headless Services get no proxy rules (X7), so their slices are checked
// only for the label, the controller label and the size.
//
// When some documents are invalid (in.Invalid), the valid ones are
// checked as api.Invalid says: a slice or Endpoints that an invalid
// document is too is not checked, nor one against a Service that an
// invalid document is too; nor is one said to have no Service in the
// input when an invalid document is, or may be, that Service. The result
// is sorted; in is not modified.
func CrossCheck(in *api.Input) diag.List {
	var diags diag.List
	if in == nil {
		return diags
	}
	invalid := api.NewInvalidIndex(in.Invalid)
	services := map[string]*api.Service{}
	for _, s := range sortedBy(in.Services, func(s *api.Service) diag.Pos { return s.Pos }, (*api.Service).ID) {
		if _, dup := services[s.ID()]; !dup {
			services[s.ID()] = s // duplicates are the compiler's to report
		}
	}
	// The slices whose endpoints are checked for duplicates, by Service
	// (in the order of the Services' first such slice), each Service's in
	// the order of the input.
	var dupGroups [][]*api.EndpointSlice
	dupGroup := map[string]int{} // Service ID -> index in dupGroups
	slicePos := func(s *api.EndpointSlice) *diag.Pos { return &s.Pos }
	firstSlice := map[string]*api.EndpointSlice{}
	for _, es := range sortedBy(in.EndpointSlices, func(s *api.EndpointSlice) diag.Pos { return s.Pos }, (*api.EndpointSlice).ID) {
		if invalid.Is("EndpointSlice", es.Metadata.Namespace, es.Metadata.Name) || isCopy(firstSlice, es.ID(), es, slicePos) {
			continue
		}
		obj := "EndpointSlice " + es.ID()
		warn := func(path, msg string) { diags.Warn(es.Pos, obj, path, msg) }
		// A controller's slice (a dump's) holds what the cluster's
		// limits allow: the mirroring controller's default is 1000, and
		// --max-endpoints-per-slice may be raised to 1000.
		managed := es.Metadata.Labels[api.ManagedByLabel]
		if n := len(es.Endpoints); n > MaxControllerEndpoints && managed != ControllerName && managed != api.MirroringController {
			warn("endpoints", fmt.Sprintf("%d endpoints: the EndpointSlice controller puts at most %d in one slice (--max-endpoints-per-slice); kube-proxy reads them all", n, MaxControllerEndpoints))
		}
		svcName, ok := es.Metadata.Labels[api.ServiceNameLabel]
		if !ok {
			warn("metadata.labels", fmt.Sprintf("no %s label: kube-proxy ignores this slice", api.ServiceNameLabel))
			continue
		}
		svcID := es.Metadata.Namespace + "/" + svcName
		svc := services[svcID]
		if unjudged(svc, invalid, es.Metadata.Namespace, svcName) {
			continue
		}
		if svc == nil {
			warn("metadata.labels["+api.ServiceNameLabel+"]", fmt.Sprintf("Service %s is not in the input: kube-proxy ignores this slice", svcID))
			continue
		}
		if es.Metadata.Labels[api.ManagedByLabel] == ControllerName && len(svc.Spec.Selector) == 0 {
			warn("metadata.labels["+api.ManagedByLabel+"]", fmt.Sprintf("%s, but Service %s has no selector: that controller manages only the slices of Services with a selector, "+
				"and would take this one over if a selector were added; label a hand-written slice with another value", ControllerName, svcID))
		}
		if svc.Spec.Type == "ExternalName" {
			warn("metadata.labels["+api.ServiceNameLabel+"]", fmt.Sprintf("Service %s is of type ExternalName: kube-proxy ignores its slices", svcID))
			continue
		}
		if isHeadless(svc) {
			continue
		}
		if es.AddressType == "FQDN" {
			warn("addressType", "kube-proxy ignores FQDN slices")
			continue
		}
		if fams := serviceFamilies(svc); fams != nil && !slices.Contains(fams, es.AddressType) {
			warn("addressType", fmt.Sprintf("%s is not an IP family of Service %s (%s): kube-proxy ignores this slice", es.AddressType, svcID, strings.Join(fams, ", ")))
			continue
		}
		checkSlicePorts(es, svc, warn)
		g, ok := dupGroup[svcID]
		if !ok {
			g = len(dupGroups)
			dupGroup[svcID] = g
			dupGroups = append(dupGroups, nil)
		}
		dupGroups[g] = append(dupGroups[g], es)
	}
	// One map, emptied between Services, rather than one a Service: the
	// endpoints of 50,000 Services x 10 took 300 MB of maps as they grew.
	seen := map[dupKey]dupSeen{}
	for _, group := range dupGroups {
		clear(seen)
		for _, es := range group {
			obj := "EndpointSlice " + es.ID()
			checkDuplicates(es, seen, func(path, msg string) { diags.Warn(es.Pos, obj, path, msg) })
		}
	}
	endpointsPos := func(e *api.Endpoints) *diag.Pos { return &e.Pos }
	firstEndpoints := map[string]*api.Endpoints{}
	for _, e := range sortedBy(in.Endpoints, func(e *api.Endpoints) diag.Pos { return e.Pos }, (*api.Endpoints).ID) {
		svc := services[e.ID()]
		if invalid.Is("Endpoints", e.Metadata.Namespace, e.Metadata.Name) || unjudged(svc, invalid, e.Metadata.Namespace, e.Metadata.Name) ||
			isCopy(firstEndpoints, e.ID(), e, endpointsPos) {
			continue
		}
		if svc == nil {
			if !e.Mirrored() {
				continue // never mirrored: its Service does not matter
			}
			diags.Warn(e.Pos, "Endpoints "+e.ID(), "metadata.name", fmt.Sprintf("Service %s is not in the input: the EndpointSlice mirroring controller mirrors only the Endpoints of a Service without a selector, and kube-proxy reads only EndpointSlices", e.ID()))
			continue
		}
		if len(svc.Spec.Selector) > 0 || svc.Spec.Type == "ExternalName" || isHeadless(svc) {
			continue // not mirrored, or not proxied
		}
		for i, ss := range e.Subsets {
			for j, p := range ss.Ports {
				proto := cmp.Or(p.Protocol, "TCP")
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp api.ServicePort) bool { return sp.Name == p.Name && cmp.Or(sp.Protocol, "TCP") == proto }) {
					diags.Warn(e.Pos, "Endpoints "+e.ID(), fmt.Sprintf("subsets[%d].ports[%d]", i, j),
						fmt.Sprintf("port %q/%s matches no port of Service %s (ports are joined by name and protocol): its addresses get no traffic", p.Name, proto, svc.ID()))
				}
			}
		}
	}
	diags.Sort()
	return diags
}

// isCopy reports whether o, of id, is a copy of the first document of
// that id (first records them), which the compiler leaves out with a
// warning of its own: its findings would repeat the first's.
func isCopy[T any](first map[string]*T, id string, o *T, pos func(*T) *diag.Pos) bool {
	f, ok := first[id]
	if !ok {
		first[id] = o
		return false
	}
	return api.SameObject(f, o, pos)
}

// unjudged reports whether the objects of Service ns/name, svc in the
// input (nil if none), cannot be checked against it: an invalid document
// is that Service too, or, when the input holds none, may be.
func unjudged(svc *api.Service, invalid *api.InvalidIndex, ns, name string) bool {
	if svc == nil {
		return invalid.MayBe("Service", ns, name)
	}
	return invalid.Is("Service", ns, name)
}

// sortedBy returns a copy of xs sorted by position, then ID.
func sortedBy[T any](xs []T, pos func(T) diag.Pos, id func(T) string) []T {
	out := slices.Clone(xs)
	slices.SortStableFunc(out, func(a, b T) int {
		return cmp.Or(pos(a).Compare(pos(b)), strings.Compare(id(a), id(b)))
	})
	return out
}

// isHeadless reports whether s is headless (clusterIPs ["None"], after
// normalisation).
func isHeadless(s *api.Service) bool {
	return s.Spec.ClusterIP == "None" || (len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIPs[0] == "None")
}

// serviceFamilies returns the IP families of s as far as the input decides
// them (its clusterIPs and ipFamilies), in "IPv4" < "IPv6" order, or nil if
// they depend on the cluster (no explicit IP or family, or a dual-stack
// policy that may add the other family).
func serviceFamilies(s *api.Service) []string {
	sp := &s.Spec
	if sp.IPFamilyPolicy == "PreferDualStack" || sp.IPFamilyPolicy == "RequireDualStack" {
		return nil
	}
	set := map[string]bool{}
	for _, ip := range sp.ClusterIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			set[family(a)] = true
		}
	}
	for _, f := range sp.IPFamilies {
		set[f] = true
	}
	if len(set) == 0 {
		return nil
	}
	var out []string
	for _, f := range []string{"IPv4", "IPv6"} {
		if set[f] {
			out = append(out, f)
		}
	}
	return out
}

// slicePort returns a slice port's name and protocol with their defaults.
func slicePort(p api.EndpointPort) (name, proto string) {
	name, proto = "", "TCP"
	if p.Name != nil {
		name = *p.Name
	}
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	return name, proto
}

// checkSlicePorts warns about slice ports that match no Service port by
// name and protocol (X2).
func checkSlicePorts(es *api.EndpointSlice, svc *api.Service, warn func(path, msg string)) {
	for j, p := range es.Ports {
		name, proto := slicePort(p)
		matched := slices.ContainsFunc(svc.Spec.Ports, func(sp api.ServicePort) bool {
			return sp.Name == name && cmp.Or(sp.Protocol, "TCP") == proto
		})
		if !matched {
			warn(fmt.Sprintf("ports[%d]", j), fmt.Sprintf("port %q/%s matches no port of Service %s (ports are joined by name and protocol): its endpoints get no traffic", name, proto, svc.ID()))
		}
	}
}

// dupKey identifies an endpoint of a Service port as kube-proxy merges them:
// address, port name, protocol and port number.
type dupKey struct {
	addr, name, proto string
	port              int32
}

// dupSeen is where an endpoint was first seen and its state.
type dupSeen struct {
	slice *api.EndpointSlice
	index int
	state endpointState
}

// endpointState is what kube-proxy reads of an endpoint besides its
// address: the conditions (nil ready and serving mean true, nil
// terminating false) and the node (hasNode false for none).
type endpointState struct {
	ready, serving, terminating, hasNode bool
	node                                 string
}

func stateOf(ep *api.Endpoint) endpointState {
	b := func(p *bool, def bool) bool {
		if p != nil {
			return *p
		}
		return def
	}
	s := endpointState{ready: b(ep.Conditions.Ready, true), serving: b(ep.Conditions.Serving, true),
		terminating: b(ep.Conditions.Terminating, false)}
	if ep.NodeName != nil {
		s.hasNode, s.node = true, *ep.NodeName
	}
	return s
}

// pairs returns the state as "name=value" pairs in a fixed order.
func (s endpointState) pairs() [4]string {
	node := "nodeName=<none>"
	if s.hasNode {
		node = "nodeName=" + s.node
	}
	return [4]string{"ready=" + strconv.FormatBool(s.ready), "serving=" + strconv.FormatBool(s.serving),
		"terminating=" + strconv.FormatBool(s.terminating), node}
}

// diff returns the pairs of s and o that differ.
func (s endpointState) diff(o endpointState) (here, there string) {
	var a, b []string
	sp, op := s.pairs(), o.pairs()
	for i := range sp {
		if sp[i] != op[i] {
			a, b = append(a, sp[i]), append(b, op[i])
		}
	}
	return strings.Join(a, " "), strings.Join(b, " ")
}

// checkDuplicates warns about an endpoint that another endpoint of the
// Service's slices (seen so far) already gave for the same port, with a
// different state (X6). One warning per endpoint.
func checkDuplicates(es *api.EndpointSlice, seen map[dupKey]dupSeen, warn func(path, msg string)) {
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if len(ep.Addresses) == 0 {
			continue
		}
		state := stateOf(ep)
		warned := false
		for _, p := range es.Ports {
			if p.Port == nil {
				continue
			}
			name, proto := slicePort(p)
			k := dupKey{ep.Addresses[0], name, proto, *p.Port}
			first, dup := seen[k]
			if !dup {
				seen[k] = dupSeen{es, i, state}
				continue
			}
			if warned || first.state == state {
				continue
			}
			warned = true
			where := fmt.Sprintf("EndpointSlice %s (%s) endpoints[%d]", first.slice.ID(), first.slice.Pos, first.index)
			if first.slice == es {
				where = fmt.Sprintf("endpoints[%d]", first.index)
			}
			here, there := state.diff(first.state)
			warn(fmt.Sprintf("endpoints[%d].addresses[0]", i), fmt.Sprintf("%s (port %q/%s %d) is also in %s, with %s there but %s here: kube-proxy merges the two and keeps one",
				ep.Addresses[0], name, proto, *p.Port, where, there, here))
		}
	}
}
