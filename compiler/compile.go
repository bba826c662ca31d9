// Package compiler turns validated Kubernetes objects into kpc's IR: it owns
// every semantic decision (which endpoints, which verdict, what is
// masqueraded), reproducing kube-proxy's nftables mode for one node.
//
// Compile is the entry point. Its input has been validated and defaulted by
// package load; Compile still never panics on arbitrary input, and its output
// is deterministic whatever the order of the input documents.
//
// Choices made where kube-proxy depends on cluster state (documented here so
// that golden files can be reviewed against them):
//
//   - Cluster IPs missing from spec (not "None", not ExternalName) are
//     allocated offline from the first Service CIDR of each needed family:
//     offset = SHA-256("ns/name") mod the usable size, skipping the network
//     address, the first host address (the API server gives it to
//     default/kubernetes) and, for IPv4, the broadcast address. Explicit IPs
//     are reserved first; requesters are served in (hash, ns/name) order and
//     a taken address is resolved by probing upwards (wrapping). Missing
//     nodePorts (NodePort, and LoadBalancer with allocateLoadBalancerNodePorts)
//     and healthCheckNodePorts (LoadBalancer with externalTrafficPolicy Local)
//     are allocated the same way from the NodePort range, keyed by
//     "ns/name:port" and "ns/name:healthCheckNodePort"; ports with the same
//     port number share one nodePort. Every allocation is written to
//     Program.Notes.
//   - Topology: like kube-proxy 1.33+, zone hints (and forNodes hints) are
//     used whenever every ready endpoint carries them and one names this
//     node's zone (node); the Service's trafficDistribution and topology
//     annotations are not consulted (the EndpointSlice controller only sets
//     hints when they ask for it).
//   - publishNotReadyAddresses is ignored, as kube-proxy ignores it (the
//     EndpointSlice controller reports such endpoints as ready).
//   - Duplicate endpoints (same ip:port) are merged preferring a local
//     endpoint, then a ready, then a serving one.
//   - The Endpoints of a Service without a selector become EndpointSlices
//     as the EndpointSlice mirroring controller makes them (see
//     mirrorEndpoints).
package compiler

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

// Compile compiles in for the node and proxy settings of opts (merged with
// the input's Node and KubeProxyConfiguration documents) into one Ruleset
// per IP family that has a proxied Service, IPv4 first. It always returns a
// non-nil Program; the diagnostics (sorted) say whether it is usable: any
// error-severity entry (duplicate cluster IPs or nodePorts across Services,
// a dispatch key claimed by two Services, an exhausted range, ...) means the
// input is invalid. A nil in is an empty input.
//
// An input with invalid documents (in.Invalid, which Load gives with its
// errors) is only checked: its Program is not a ruleset of the input. Its
// diagnostics are those that the invalid documents, once fixed, cannot
// take away (see api.Invalid): a Service, EndpointSlice or Endpoints that
// an invalid document is too is left out; cluster IPs and nodePorts are still allocated, but a range
// that runs out is not reported, nor is an allocated cluster IP checked
// against the other Services' addresses; when an invalid document is, or
// may be, a Node or KubeProxyConfiguration, the configuration's findings
// are not reported, and when it is, or may be, a ServiceCIDR, neither are
// a Service's families against the ranges of the ServiceCIDR documents
// (those of Options.ServiceCIDRs are known).
func Compile(in *api.Input, opts Options) (*ir.Program, diag.List) {
	if in == nil {
		in = &api.Input{}
	}
	c := &compiler{in: in, opts: opts, invalid: api.NewInvalidIndex(in.Invalid)}
	if c.invalid != nil {
		c.in = judged(in, c.invalid)
	}
	c.resolveConfig()
	if c.invalid.MayBe("Node", "", "") || c.invalid.MayBe("KubeProxyConfiguration", "", "") {
		c.diags = nil // resolveConfig's, the only ones so far
	}
	c.rangesUnsure = c.invalid.MayBe("ServiceCIDR", "", "") && !c.cfg.rangesGiven
	c.collectServices()
	c.allocateClusterIPs()
	c.checkDefaultServiceCIDRs()
	c.allocateNodePorts()
	c.indexSlices()
	c.reportCopies()
	c.noteNoEndpoints()

	prog := &ir.Program{}
	// The catalog only reads what the steps above resolved: it is built
	// while the rulesets' endpoint work is done.
	var wg sync.WaitGroup
	if !opts.SkipServices {
		wg.Go(func() { prog.Services = c.catalog() })
	}
	// The endpoint work of every family is done first, and the catalog
	// finished: then nothing reads the EndpointSlices any more, and they
	// are garbage before the Rulesets' arrays are made (at 50,000
	// Services x 10 endpoints, about 100 MB less at the compile's peak,
	// with the catalog or without).
	type familyWork struct {
		f     ir.Family
		svcs  []*svc
		ports [][]*servicePort
	}
	work := make([]familyWork, 0, len(families))
	for _, f := range families {
		svcs := c.proxiedIn(f)
		work = append(work, familyWork{f, svcs, c.prepareServices(svcs, f)})
	}
	wg.Wait()
	c.in, c.slices = nil, nil
	for i := range work {
		w := work[i]
		work[i] = familyWork{} // a family's prepared ports are garbage once built
		if rs := c.buildRuleset(w.f, w.svcs, w.ports); rs != nil {
			if opts.SkipSelfCheck {
				prog.Rulesets = append(prog.Rulesets, rs)
				continue
			}
			if err := rs.Validate(); err != nil {
				c.diags.Add(diag.Pos{}, "", "", fmt.Sprintf("internal error: invalid IR: %v", err))
			}
			prog.Rulesets = append(prog.Rulesets, rs)
		}
	}
	prog.Notes = c.sortedNotes()
	c.diags.Sort()
	return prog, c.diags
}

type compiler struct {
	in    *api.Input
	opts  Options
	cfg   *config
	diags diag.List
	notes []note
	// copies are the documents left out as copies of others (duplicate),
	// reported by reportCopies.
	copies []sameCopy
	// invalid indexes the input's invalid documents (nil when there are
	// none); rangesUnsure says that the Service ranges come from the
	// ServiceCIDR documents, and one of those may be invalid.
	invalid      *api.InvalidIndex
	rangesUnsure bool

	// svcs are the proxied Services in processing order (by position,
	// then namespace/name).
	svcs []*svc
	// slices indexes EndpointSlices by "ns/serviceName".
	slices map[string][]*api.EndpointSlice
}

type note struct {
	key  string // namespace/name of the Service, "" for global notes
	seq  int
	text string
}

func (c *compiler) addNote(key, text string) {
	c.notes = append(c.notes, note{key: key, seq: len(c.notes), text: text})
}

func (c *compiler) sortedNotes() []string {
	ns := slices.Clone(c.notes)
	slices.SortStableFunc(ns, func(a, b note) int {
		return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.seq, b.seq))
	})
	var out []string
	for _, n := range ns {
		out = append(out, n.text)
	}
	return out
}

// judged returns in without the Services, EndpointSlices and Endpoints
// that an invalid document is too: which of the two is the object depends
// on the invalid one.
func judged(in *api.Input, invalid *api.InvalidIndex) *api.Input {
	out := *in
	out.Services = slices.DeleteFunc(slices.Clone(in.Services), func(s *api.Service) bool {
		return s != nil && invalid.Is("Service", s.Metadata.Namespace, s.Metadata.Name)
	})
	out.EndpointSlices = slices.DeleteFunc(slices.Clone(in.EndpointSlices), func(s *api.EndpointSlice) bool {
		return s != nil && invalid.Is("EndpointSlice", s.Metadata.Namespace, s.Metadata.Name)
	})
	out.Endpoints = slices.DeleteFunc(slices.Clone(in.Endpoints), func(e *api.Endpoints) bool {
		return e != nil && invalid.Is("Endpoints", e.Metadata.Namespace, e.Metadata.Name)
	})
	return &out
}

// whole reports whether the input has no invalid documents, so that what
// depends on all of it (the allocation) can be judged.
func (c *compiler) whole() bool { return c.invalid == nil }

// svc is a proxied Service with its resolved cluster IPs and nodePorts.
type svc struct {
	api *api.Service
	id  string // "ns/name"
	obj string // "Service ns/name"
	pos diag.Pos
	// ips are the cluster IPs per family; a family absent here is not
	// proxied.
	ips map[ir.Family]netip.Addr
	// explicit marks the families whose IP came from spec.
	explicit map[ir.Family]bool
	// want lists families to allocate, with the path to blame; fams the
	// Service's families, in the order of its cluster IPs (the primary
	// first).
	want, fams []ir.Family
	// nodePorts is per spec.ports index (0: none).
	nodePorts []int
	// npConflict marks ports whose explicit nodePort clashed (not
	// allocated again).
	npConflict []bool
	hcnp       int
	// otherProxy: the Service carries the service-proxy-name label, and
	// kube-proxy leaves it to that proxy, or the headless label, which
	// kube-proxy does not watch either (no rules). Its addresses are
	// still allocated and catalogued.
	otherProxy bool
}

func (s *svc) spec() *api.ServiceSpec { return &s.api.Spec }

// externallyAccessibleType is apiservice.ExternallyAccessible: the type
// (or externalIPs on a ClusterIP Service) makes the Service reachable from
// outside.
func (s *svc) externallyAccessibleType() bool {
	sp := s.spec()
	return sp.Type == "LoadBalancer" || sp.Type == "NodePort" ||
		((sp.Type == "ClusterIP" || sp.Type == "") && len(sp.ExternalIPs) > 0)
}

// externalPolicyLocal is apiservice.ExternalPolicyLocal.
func (s *svc) externalPolicyLocal() bool {
	return s.externallyAccessibleType() && s.spec().ExternalTrafficPolicy == "Local"
}

// needsHealthCheck is apiservice.NeedsHealthCheck.
func (s *svc) needsHealthCheck() bool {
	return s.spec().Type == "LoadBalancer" && s.externalPolicyLocal()
}

// hasNodePorts says whether the Service's type serves nodePorts.
func (s *svc) hasNodePorts() bool {
	t := s.spec().Type
	return t == "NodePort" || t == "LoadBalancer"
}

// allocatesNodePorts says whether missing nodePorts are allocated.
func (s *svc) allocatesNodePorts() bool {
	sp := s.spec()
	switch sp.Type {
	case "NodePort":
		return true
	case "LoadBalancer":
		return sp.AllocateLoadBalancerNodePorts == nil || *sp.AllocateLoadBalancerNodePorts
	}
	return false
}

// proxiedIn returns the Services proxied in family f, in processing order.
func (c *compiler) proxiedIn(f ir.Family) []*svc {
	var out []*svc
	for _, s := range c.svcs {
		if _, ok := s.ips[f]; ok && !s.otherProxy {
			out = append(out, s)
		}
	}
	return out
}

// collectServices keeps the Services kube-proxy proxies (not ExternalName,
// not headless), in position order, reporting duplicate names.
func (c *compiler) collectServices() {
	all := sortedByPos(c.in.Services, func(s *api.Service) diag.Pos { return s.Pos })
	slices.SortStableFunc(all, func(a, b *api.Service) int {
		if c := a.Pos.Compare(b.Pos); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID()) // spelt only for a tie
	})
	seen := make(map[string]*api.Service, len(all))
	c.svcs = make([]*svc, 0, len(all))
	svcs := make([]svc, 0, len(all)) // never grown: c.svcs points into it
	for _, s := range all {
		id := s.ID()
		if first, dup := seen[id]; dup {
			c.duplicate(s.Pos, first.Pos, "Service", id, api.SameObject(s, first, func(s *api.Service) *diag.Pos { return &s.Pos }))
			continue
		}
		seen[id] = s
		if s.Spec.Type == "ExternalName" {
			continue
		}
		if s.Spec.ClusterIP == "None" || (len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIPs[0] == "None") {
			continue
		}
		// kube-proxy's informers select neither Services labelled for
		// another proxy nor those labelled headless (api.Unwatched).
		proxy, other := s.Metadata.Labels[api.ServiceProxyNameLabel]
		_, headless := s.Metadata.Labels[api.HeadlessLabel]
		switch {
		case other:
			c.addNote(id, fmt.Sprintf("Service %s is labelled %s=%q: kube-proxy leaves it to that proxy, and kpc writes no rules for it", id, api.ServiceProxyNameLabel, proxy))
		case headless:
			c.addNote(id, fmt.Sprintf("Service %s is labelled %s: kube-proxy does not watch objects with that label (it marks a headless Service's), and kpc writes no rules for it", id, api.HeadlessLabel))
		}
		other = other || headless
		if s.Spec.Type == "LoadBalancer" && s.Spec.LoadBalancerIP != "" && !other &&
			!slices.ContainsFunc(s.Status.LoadBalancer.Ingress, func(in api.LoadBalancerIngress) bool { return in.IP == s.Spec.LoadBalancerIP }) {
			given := "which the input does not give (its cloud provider sets it)"
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				given = "which holds other addresses in the input"
			}
			c.addNote(id, fmt.Sprintf("Service %s asks its cloud provider for load balancer IP %s (spec.loadBalancerIP); kube-proxy serves the addresses of status.loadBalancer.ingress, "+
				"%s: that IP gets no rules", id, s.Spec.LoadBalancerIP, given))
		}
		svcs = append(svcs, svc{
			otherProxy: other,
			api:        s,
			id:         id,
			obj:        "Service " + id,
			pos:        s.Pos,
			ips:        map[ir.Family]netip.Addr{},
			explicit:   map[ir.Family]bool{},
			nodePorts:  make([]int, len(s.Spec.Ports)),
			npConflict: make([]bool, len(s.Spec.Ports)),
		})
		c.svcs = append(c.svcs, &svcs[len(svcs)-1])
	}
}

// noteNoEndpoints notes an input with Services that have a selector but
// no EndpointSlice or Endpoints at all (nor an invalid document that may
// be one): a project's manifests, say, without the cluster's slices. Each such Service has no endpoint, and kube-proxy
// rejects its traffic.
func (c *compiler) noteNoEndpoints() {
	if len(c.in.EndpointSlices) > 0 || c.invalid.MayBe("EndpointSlice", "", "") ||
		!slices.ContainsFunc(c.svcs, func(s *svc) bool { return !s.otherProxy && len(s.api.Spec.Selector) > 0 }) {
		return
	}
	text := "the input holds no EndpointSlice: every Service with a selector has no endpoint, and its traffic is rejected, " +
		"as kube-proxy rejects it; to compile what a cluster serves, add its EndpointSlices (kubectl get endpointslices -A -o yaml)"
	if c.selectorEndpoints() {
		text += "; the Endpoints of a Service with a selector are the endpoints controller's, and kube-proxy reads none"
	}
	c.addNote("", text)
}

// selectorEndpoints reports whether the input holds Endpoints of a
// Service with a selector, which serve nothing (see ignoredEndpoints).
func (c *compiler) selectorEndpoints() bool {
	if len(c.in.Endpoints) == 0 {
		return false
	}
	selected := make(map[string]bool, len(c.svcs))
	for _, s := range c.svcs {
		if len(s.api.Spec.Selector) > 0 {
			selected[s.api.ID()] = true
		}
	}
	return slices.ContainsFunc(c.in.Endpoints, func(e *api.Endpoints) bool { return e != nil && selected[e.ID()] })
}

// duplicate reports a second document at pos of the object kind id, first
// defined at first: an error, or, when both are the same object (same),
// a warning, as kubectl applies the second unchanged. The second is left
// out either way.
func (c *compiler) duplicate(pos, first diag.Pos, kind, id string, same bool) {
	if same {
		c.copies = append(c.copies, sameCopy{pos, first, kind, id})
		return
	}
	c.diags.Add(pos, kind+" "+id, "metadata.name", fmt.Sprintf("duplicate %s (first defined at %s)", kind, first))
}

// sameCopy is a document left out as a copy of the one at first.
type sameCopy struct {
	pos, first diag.Pos
	kind, id   string
}

// reportCopies warns of the copies left out: one warning for each pair of
// files (the copies' and the originals'), at the first copy, counting the
// others, so that a dump saved twice in a directory draws one line, not
// one for every object.
func (c *compiler) reportCopies() {
	type files struct{ copy, first string }
	groups := map[files][]sameCopy{}
	var order []files
	for _, cp := range c.copies {
		k := files{cp.pos.File, cp.first.File}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], cp)
	}
	for _, k := range order {
		g := groups[k]
		cp := slices.MinFunc(g, func(a, b sameCopy) int { return a.pos.Compare(b.pos) })
		msg := fmt.Sprintf("the same %s as at %s: this copy is left out", cp.kind, cp.first)
		switch n := len(g) - 1; {
		case n == 1:
			msg += fmt.Sprintf("; so is 1 more copy in %s of an object of %s", k.copy, k.first)
		case n > 1:
			msg += fmt.Sprintf("; so are %d more copies in %s of objects of %s", n, k.copy, k.first)
		}
		path := "metadata.name"
		if cp.id == "" {
			path = "" // a KubeProxyConfiguration, which has no name
		}
		c.diags.Warn(cp.pos, strings.TrimSpace(cp.kind+" "+cp.id), path, msg)
	}
	c.copies = nil
}

// indexSlices groups EndpointSlices by the Service they name (label
// kubernetes.io/service-name, same namespace), each group sorted by name.
func (c *compiler) indexSlices() {
	c.slices = make(map[string][]*api.EndpointSlice, len(c.in.EndpointSlices))
	seen := make(map[string]*api.EndpointSlice, len(c.in.EndpointSlices))
	for _, es := range sortedByPos(c.in.EndpointSlices, func(e *api.EndpointSlice) diag.Pos { return e.Pos }) {
		id := es.ID()
		if first, dup := seen[id]; dup && es.Metadata.Name != "" {
			c.duplicate(es.Pos, first.Pos, "EndpointSlice", id, api.SameObject(es, first, func(s *api.EndpointSlice) *diag.Pos { return &s.Pos }))
			continue
		}
		seen[id] = es
		name := es.Metadata.Labels[api.ServiceNameLabel]
		if name == "" {
			continue
		}
		key := es.Metadata.Namespace + "/" + name
		c.slices[key] = append(c.slices[key], es)
	}
	c.mirrorEndpoints()
	for _, list := range c.slices {
		slices.SortStableFunc(list, func(a, b *api.EndpointSlice) int {
			return cmp.Or(strings.Compare(a.Metadata.Name, b.Metadata.Name), a.Pos.Compare(b.Pos))
		})
	}
}
