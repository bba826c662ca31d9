package load

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// The checks in this file are the single-document rules that CUE does not
// express well: uniqueness over lists, strict IP and CIDR parsing,
// IP-family rules and the rules tied to the clusterIP → clusterIPs
// normalisation. They read the normalised document, apply the few defaults
// they depend on themselves (type ClusterIP, protocol TCP, slice port name
// ""), and skip values of the wrong type, which the schema reports.

// Annotations with rules.
const (
	// lbSourceRangesAnnotation holds CIDRs that restrict a load balancer's
	// sources (rule S31).
	lbSourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"
	// topologyModeAnnotation must equal topologyHintsAnnotation when both
	// are set (rule S38).
	topologyModeAnnotation  = "service.kubernetes.io/topology-mode"
	topologyHintsAnnotation = "service.kubernetes.io/topology-aware-hints"
)

// get returns s's field name's value, or nil.
func get(s *ast.StructLit, name string) ast.Expr {
	if f := field(s, name); f != nil {
		return f.Value
	}
	return nil
}

// asStruct returns e as a mapping, or nil.
func asStruct(e ast.Expr) *ast.StructLit {
	s, _ := e.(*ast.StructLit)
	return s
}

// elems returns the elements of a list, or nil.
func elems(e ast.Expr) []ast.Expr {
	if l, ok := e.(*ast.ListLit); ok {
		return l.Elts
	}
	return nil
}

// intLit returns the value of an integer literal that fits in 64 bits.
func intLit(e ast.Expr) (int64, bool) {
	text, ok := intText(e)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(text, 0, 64)
	return n, err == nil
}

// boolLit returns the value of a boolean literal.
func boolLit(e ast.Expr) (value, ok bool) {
	b, isLit := e.(*ast.BasicLit)
	if !isLit || b.Kind != token.TRUE && b.Kind != token.FALSE {
		return false, false
	}
	return b.Kind == token.TRUE, true
}

// strOr returns e's string value, def if e is nil, and ok false if e is
// not a string.
func strOr(e ast.Expr, def string) (string, bool) {
	if e == nil {
		return def, true
	}
	return stringLit(e)
}

// checkService runs the Go checks of a Service.
func checkService(doc *ast.StructLit, opts Options) []fieldError {
	var errs []fieldError
	add := func(p fpath, msg string) { errs = append(errs, fieldError{path: p, msg: msg}) }
	spec := asStruct(get(doc, "spec"))
	typ, ok := strOr(get(spec, "type"), "ClusterIP")
	if !ok {
		typ = ""
	}
	specP := fpath{"spec"}
	errs = append(errs, checkMeta(doc, true)...)
	// S14: the selector is a label map.
	errs = append(errs, checkLabelMap(asStruct(get(spec, "selector")), specP.key("selector"))...)

	// S20: the external name, after one trailing dot is trimmed, is a DNS
	// subdomain; "." alone is a missing name. (The schema checks the form.)
	if typ == "ExternalName" {
		if name, ok := stringLit(get(spec, "externalName")); ok {
			switch cname := strings.TrimSuffix(name, "."); {
			case cname == "":
				add(specP.key("externalName"), "required value")
			case len(cname) > 253:
				add(specP.key("externalName"), fmt.Sprintf("invalid value %q: %s", name, msgDNSSub))
			}
		}
	}

	// S2, S4, S9, S10, S13, S12: ports.
	type protoPort struct {
		proto string
		port  int64
	}
	names := map[string]bool{}
	seenPorts := map[protoPort]bool{}
	seenNodePorts := map[protoPort]bool{}
	var requests []nodePortRequest
	var dupNodePorts []fieldError
	ports := elems(get(spec, "ports"))
	for i, el := range ports {
		p := asStruct(el)
		if p == nil {
			continue
		}
		pp := specP.key("ports").index(i)
		if len(ports) > 1 && get(p, "name") == nil {
			add(pp.key("name"), "required value") // S2
		}
		if name, ok := stringLit(get(p, "name")); ok && name != "" {
			if names[name] {
				add(pp.key("name"), fmt.Sprintf("duplicate value %q", name))
			}
			names[name] = true
		}
		proto, protoOK := strOr(get(p, "protocol"), "TCP")
		port, portOK := intLit(get(p, "port"))
		if protoOK && portOK {
			k := protoPort{proto, port}
			if seenPorts[k] {
				add(pp, fmt.Sprintf("duplicate value {%s, %d}", proto, port))
			}
			seenPorts[k] = true
		}
		np, npOK := intLit(get(p, "nodePort"))
		if !npOK {
			np = 0
		}
		if portOK {
			requests = append(requests, nodePortRequest{index: i, port: port, nodePort: np})
		}
		if np == 0 {
			continue
		}
		// S10: one nodePort per protocol.
		if k := (protoPort{proto, np}); protoOK && seenNodePorts[k] {
			dupNodePorts = append(dupNodePorts, fieldError{path: pp.key("nodePort"), msg: fmt.Sprintf("duplicate value {%s, %d}", proto, np)})
		} else if protoOK {
			seenNodePorts[k] = true
		}
	}
	// S12, S13, S35: the allocator runs for NodePort and LoadBalancer
	// Services only, before validation, and stops at its first error.
	// The entry the allocator fails is not also a Duplicate.
	allocErr := false
	hc, hcOK := intLit(get(spec, "healthCheckNodePort"))
	if typ == "NodePort" || typ == "LoadBalancer" {
		all, ok := boolLit(get(spec, "allocateLoadBalancerNodePorts"))
		fill := typ == "NodePort" || !ok || all
		if at, msg, taken := allocateNodePorts(requests, fill, opts.NodePortRange); msg != "" {
			allocErr = true
			npp := specP.key("ports").index(at).key("nodePort")
			add(npp, msg)
			dupNodePorts = slices.DeleteFunc(dupNodePorts, func(fe fieldError) bool { return slices.Equal(fe.path, npp) })
		} else if hcOK && taken[hc] && typ == "LoadBalancer" {
			// Allocated after the nodePorts when the Service needs it. The
			// API server's InternalError ("failed to allocate requested
			// HealthCheck NodePort"), reported at the field.
			if policy, _ := stringLit(get(spec, "externalTrafficPolicy")); policy == "Local" {
				allocErr = true
				add(specP.key("healthCheckNodePort"), fmt.Sprintf("invalid value %d: provided port is already allocated", hc))
			}
		}
	}
	errs = append(errs, dupNodePorts...)
	if hcOK && hc != 0 && !allocErr {
		if msg := nodePortRangeMsg(hc, opts.NodePortRange); msg != "" {
			add(specP.key("healthCheckNodePort"), msg)
		}
	}

	errs = append(errs, checkClusterIPs(spec, typ, opts)...)

	// S28: external IPs, strictly parsed and not special.
	for i, el := range elems(get(spec, "externalIPs")) {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		if msg := endpointIPMsg(s); msg != "" {
			add(specP.key("externalIPs").index(i), fmt.Sprintf("invalid value %q: %s", s, msg))
		}
	}

	// S30: source ranges, whatever the type (on a non-LB the schema
	// forbids the field as well).
	ranges := elems(get(spec, "loadBalancerSourceRanges"))
	for i, el := range ranges {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		if msg := parseCIDR(s); msg != "" {
			add(specP.key("loadBalancerSourceRanges").index(i), fmt.Sprintf("invalid value %q: %s", s, msg))
		}
	}
	ann := asStruct(get(asStruct(get(doc, "metadata")), "annotations"))
	// S38: the topology annotations agree when both are set.
	if mode, ok := stringLit(get(ann, topologyModeAnnotation)); ok {
		if hints, ok := stringLit(get(ann, topologyHintsAnnotation)); ok && hints != mode {
			add(fpath{"metadata", "annotations", topologyModeAnnotation},
				fmt.Sprintf("invalid value %q: must match annotations[%s] when both are specified", mode, topologyHintsAnnotation))
		}
	}
	// S31: the source-ranges annotation, checked when the field is empty:
	// forbidden on a non-LB, and each of its CIDRs checked (on a non-LB too),
	// one error for each bad one, as the API server does.
	if len(ranges) == 0 {
		if v, ok := stringLit(get(ann, lbSourceRangesAnnotation)); ok {
			ap := fpath{"metadata", "annotations", lbSourceRangesAnnotation}
			if typ != "LoadBalancer" {
				add(ap, "forbidden: may only be used when `type` is 'LoadBalancer'")
			}
			if v = strings.TrimSpace(v); v != "" {
				for _, c := range strings.Split(v, ",") {
					c = strings.TrimSpace(c)
					if msg := parseCIDR(c); msg != "" {
						add(ap, fmt.Sprintf("invalid value %q: %s", c, msg))
					}
				}
			}
		}
	}
	return errs
}

// nodePortRequest is a port entry of a Service: its index, port and
// requested nodePort (0: none).
type nodePortRequest struct {
	index          int
	port, nodePort int64
}

// allocateNodePorts replays the API server's allocation of a Service's
// nodePorts (initNodePorts) and returns its first error: the index of the
// entry it names and the message ("" for none), and the nodePorts taken.
// An entry without a nodePort (allocated when fill is true) takes the one
// requested by any entry of the same port number, even a later one, so
// that entry's error names the earlier one. Ports it would pick itself
// are not known and conflict with nothing.
func allocateNodePorts(reqs []nodePortRequest, fill bool, r PortRange) (int, string, map[int64]bool) {
	taken := map[int64]bool{}
	allocate := func(np int64) string {
		if msg := nodePortRangeMsg(np, r); msg != "" {
			return msg
		}
		if taken[np] {
			return fmt.Sprintf("invalid value %d: provided port is already allocated", np)
		}
		taken[np] = true
		return ""
	}
	byPort := map[int64]int64{} // the nodePort each port number got; -1 one the allocator picks
	for _, q := range reqs {
		if q.nodePort == 0 && !fill {
			continue
		}
		switch got := byPort[q.port]; {
		case got == 0:
			np := int64(0)
			for _, o := range reqs {
				if o.port == q.port && o.nodePort != 0 {
					np = o.nodePort
					break
				}
			}
			if np == 0 {
				byPort[q.port] = -1
				continue
			}
			if msg := allocate(np); msg != "" {
				return q.index, msg, taken
			}
			byPort[q.port] = np
		case q.nodePort != 0 && q.nodePort != got:
			if msg := allocate(q.nodePort); msg != "" {
				return q.index, msg, taken
			}
		}
	}
	return 0, "", taken
}

// nodePortRangeMsg returns the node-port allocator's error for a requested
// nodePort or healthCheckNodePort p (rule S12), or "" if the allocator can
// take it. With the range r it is the allocator's own message. With no range
// p is checked against 1-65535, which holds every range kube-apiserver
// accepts for --service-node-port-range, and the message is that of the API
// server's other port fields.
func nodePortRangeMsg(p int64, r PortRange) string {
	switch {
	case r.IsZero() && (p < 1 || p > 65535):
		return fmt.Sprintf("invalid value %d: must be between 1 and 65535, inclusive", p)
	case !r.IsZero() && (p < int64(r.Min) || p > int64(r.Max)):
		return fmt.Sprintf("invalid value %d: provided port is not in the valid range. The range of valid ports is %d-%d", p, r.Min, r.Max)
	}
	return ""
}

// checkClusterIPs checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy (S19-S22, S24, S25, and S26, S27 with Service CIDRs),
// after the API server's normalisation: a clusterIP with no clusterIPs is
// clusterIPs[0]. Errors on such a clusterIPs[0] are positioned at
// clusterIP.
func checkClusterIPs(spec *ast.StructLit, typ string, opts Options) []fieldError {
	var errs []fieldError
	ipsP := fpath{"spec", "clusterIPs"}
	clusterIP, hasIP := stringLit(get(spec, "clusterIP"))
	var ips []string
	ipsAt := ipsP
	for _, el := range elems(get(spec, "clusterIPs")) {
		s, ok := stringLit(el)
		if !ok {
			return nil // the schema reports the type
		}
		ips = append(ips, s)
	}
	if hasIP && len(ips) == 0 {
		ips = []string{clusterIP}
		ipsAt = fpath{"spec", "clusterIP"}
	}
	at := func(i int) fpath {
		if ipsAt[1] == "clusterIP" {
			return ipsAt
		}
		return ipsAt.index(i)
	}
	add := func(p, pos fpath, msg string) { errs = append(errs, fieldError{path: p, msg: msg, at: pos}) }
	list := "[" + strings.Join(quoteAll(ips), ", ") + "]"

	if typ == "ExternalName" {
		// S20; the other clusterIPs rules are skipped for ExternalName.
		if len(ips) > 0 {
			add(ipsP, ipsAt, "forbidden: may not be set for ExternalName services")
		}
		return errs
	}

	// S21.
	if !hasIP && len(ips) > 0 {
		add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: must be empty when `clusterIP` is not specified", list))
	} else if hasIP && ips[0] != clusterIP {
		add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: first value must match `clusterIP`", list))
	}

	// S22: the schema checks the values, here their uniqueness.
	var fams []string
	seenFam := map[string]bool{}
	for i, el := range elems(get(spec, "ipFamilies")) {
		f, ok := stringLit(el)
		if !ok {
			continue
		}
		fams = append(fams, f)
		if seenFam[f] {
			add(fpath{"spec", "ipFamilies", i}, nil, fmt.Sprintf("duplicate value %q", f))
		}
		seenFam[f] = true
	}

	// S24.
	bad := false
	addrs := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		if i == 0 && ip == "None" {
			if len(ips) > 1 {
				bad = true
				add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: 'None' must be the first and only value", list))
			}
			continue
		}
		a, msg := parseIP(ip)
		if msg != "" {
			bad = true
			add(ipsP.index(i), at(i), fmt.Sprintf("invalid value %q: %s", ip, msg))
			continue
		}
		addrs[i] = a
	}
	if len(ips) > 2 {
		add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: may only hold up to 2 values", list))
	}
	headless := len(ips) > 0 && ips[0] == "None"
	if !bad {
		// More than one IP must include both families (any number of
		// IPs, as the API server checks it; the limit of 2 is above).
		if len(ips) > 1 {
			fs := map[string]bool{}
			for _, a := range addrs {
				fs[family(a)] = true
			}
			if len(fs) < 2 {
				add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: may specify no more than one IP for each IP family", list))
			}
		}
		if !headless {
			for i := 0; i < len(ips) && i < len(fams); i++ {
				if (fams[i] == "IPv4" || fams[i] == "IPv6") && family(addrs[i]) != fams[i] {
					add(ipsP.index(i), at(i), fmt.Sprintf("invalid value %q: expected an %s value as indicated by `ipFamilies[%d]`", ips[i], fams[i], i))
				}
			}
		}
	}

	// The allocator runs ValidateServiceClusterIPsRelatedFields first and
	// stops at its errors: S25-S27 apply only to Services without them.
	related := len(errs) > 0
	for _, f := range fams {
		related = related || (f != "IPv4" && f != "IPv6")
	}

	// S19: NodePort and LoadBalancer Services cannot be headless.
	if headless && (typ == "NodePort" || typ == "LoadBalancer") {
		add(ipsP.index(0), at(0), fmt.Sprintf("invalid value \"None\": may not be set to 'None' for %s services", typ))
	}

	// S25: SingleStack with two IPs or two families. A missing policy is
	// SingleStack (D12, the allocator's default), except on a headless
	// Service without a selector, which defaults to RequireDualStack; the
	// error is then positioned at the list that has two values.
	policyP := fpath{"spec", "ipFamilyPolicy"}
	policy, explicit := stringLit(get(spec, "ipFamilyPolicy"))
	selectorless := len(structFields(asStruct(get(spec, "selector")))) == 0
	switch {
	case !explicit:
		policy = "SingleStack"
		if headless && selectorless {
			policy = "RequireDualStack"
		}
	case policy != "SingleStack" && policy != "PreferDualStack" && policy != "RequireDualStack":
		related = true // the schema reports the value
	}
	if related {
		return errs
	}
	// The allocator checks both lists and reports each.
	policyErr := false
	if policy == "SingleStack" {
		if len(ips) == 2 {
			pos := fpath(nil)
			if !explicit {
				pos = ipsAt
			}
			policyErr = true
			add(policyP, pos, "invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified")
		}
		if len(fams) == 2 {
			pos := fpath(nil)
			if !explicit {
				pos = fpath{"spec", "ipFamilies"}
			}
			policyErr = true
			add(policyP, pos, "invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified")
		}
	}

	// S26, S27 (only with Options.ServiceCIDRs): the families and IPs the
	// cluster's Service CIDRs allow, in the allocator's order.
	if len(opts.ServiceCIDRs) > 0 {
		errs = append(errs, checkAllocation(ips, ipsAt, addrs, fams, policy, policyErr, headless && selectorless, opts.ServiceCIDRs)...)
	}
	return errs
}

// checkAllocation applies the allocator's checks of cluster IPs and
// families against the configured Service CIDRs (rules S26, S27). ips are
// the normalised clusterIPs (ipsAt is where they are written), addrs their
// parsed values, fams the ipFamilies and policy the defaulted
// ipFamilyPolicy; policyErr says that rule S25 failed, after which the
// allocator stops where it stops for its own first errors.
func checkAllocation(ips []string, ipsAt fpath, addrs []netip.Addr, fams []string, policy string, policyErr, headlessSelectorless bool, cidrs []netip.Prefix) []fieldError {
	var errs []fieldError
	configured := map[string]bool{}
	for _, p := range cidrs {
		configured[family(p.Addr())] = true
	}
	ipsP := fpath{"spec", "clusterIPs"}
	at := func(i int) fpath {
		if ipsAt[1] == "clusterIP" {
			return ipsAt
		}
		return ipsAt.index(i)
	}
	list := "[" + strings.Join(quoteAll(ips), ", ") + "]"
	// S26: the family of each IP beyond the given ipFamilies, inferred.
	for i, a := range addrs {
		if !a.IsValid() {
			break // "None"
		}
		if i >= len(fams) && !configured[family(a)] {
			errs = append(errs, fieldError{path: ipsP.index(i), at: at(i), msg: fmt.Sprintf("invalid value %s: %s is not configured on this cluster", list, family(a))})
		}
	}
	if len(errs) > 0 || policyErr || headlessSelectorless {
		// The allocator stops here; a headless Service without a selector
		// may have any families.
		return errs
	}
	if policy == "RequireDualStack" && len(configured) < 2 {
		errs = append(errs, fieldError{path: fpath{"spec", "ipFamilyPolicy"}, msg: "invalid value \"RequireDualStack\": this cluster is not configured for dual-stack services"})
	}
	for i, f := range fams {
		if (f == "IPv4" || f == "IPv6") && !configured[f] {
			errs = append(errs, fieldError{path: fpath{"spec", "ipFamilies", i}, msg: fmt.Sprintf("invalid value %q: not configured on this cluster", f)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// S27: a given IP lies in a Service CIDR, neither its network address
	// nor (IPv4) its broadcast address. The API server reports the list.
	for i, a := range addrs {
		if !a.IsValid() || inRange(a, cidrs) {
			continue
		}
		why := fmt.Sprintf("not in any service CIDR (%s)", prefixList(cidrs))
		for _, p := range cidrs {
			if p.Contains(a) {
				why = fmt.Sprintf("the network and broadcast addresses of service CIDR %s are reserved", p)
				break
			}
		}
		errs = append(errs, fieldError{path: ipsP, at: at(i), msg: fmt.Sprintf("invalid value %s: failed to allocate IP %s: %s", list, ips[i], why)})
	}
	return errs
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// inRange reports whether a is an allocatable address of one of ps: inside
// it, and neither its network address nor (IPv4) its broadcast address.
func inRange(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if !p.Contains(a) {
			continue
		}
		if p.Bits() < a.BitLen()-1 && (a == p.Masked().Addr() || (a.Is4() && a == lastAddr(p))) {
			continue
		}
		return true
	}
	return false
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := p.Addr().BitLen() - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// checkEndpointSlice runs the Go checks of an EndpointSlice.
func checkEndpointSlice(doc *ast.StructLit) []fieldError {
	var errs []fieldError
	add := func(p fpath, msg string) { errs = append(errs, fieldError{path: p, msg: msg}) }
	errs = append(errs, checkMeta(doc, false)...)
	addrType, _ := stringLit(get(doc, "addressType"))
	endpoints := elems(get(doc, "endpoints"))
	if tooMany(&errs, fpath{"endpoints"}, len(endpoints), 1000) { // E2
		endpoints = nil // the per-endpoint checks are skipped
	}
	tooMany(&errs, fpath{"ports"}, len(elems(get(doc, "ports"))), 20000) // E12
	for i, el := range endpoints {
		ep := asStruct(el)
		if ep == nil {
			continue
		}
		// The paths are spelled only for an error: a large slice has
		// thousands of endpoints.
		addrsP := func() fpath { return fpath{"endpoints", i, "addresses"} }
		// E3. The schema requires addresses too, but CUE reports a missing
		// field only when the document has no other error.
		if get(ep, "addresses") == nil {
			add(addrsP(), "required value")
		}
		addrs := elems(get(ep, "addresses"))
		if len(addrs) > 100 {
			tooMany(&errs, addrsP(), len(addrs), 100)
		}
		// E4, E5: families on the list path, the rest per address.
		// E6: an empty FQDN is missing; the schema checks the form, here the
		// length once a trailing dot is trimmed.
		for j, ael := range addrs {
			s, ok := stringLit(ael)
			if !ok {
				continue
			}
			ap := func() fpath { return addrsP().index(j) }
			switch addrType {
			case "IPv4", "IPv6":
				a, msg := parseIP(s)
				if msg != "" {
					add(ap(), fmt.Sprintf("invalid value %q: %s", s, msg))
					continue
				}
				if family(a) != addrType {
					errs = append(errs, fieldError{path: addrsP(), at: ap(),
						msg: fmt.Sprintf("invalid value %q: must be an %s address", s, addrType)})
				}
				switch {
				case specialIP(a) != "":
					add(ap(), fmt.Sprintf("invalid value %q: %s", s, specialIP(a)))
				case addrType == "IPv6" && a.Is6() && a.String() != s:
					add(ap(), fmt.Sprintf("invalid value %q: must be in canonical form (%q)", s, a.String()))
				}
			case "FQDN":
				switch name := strings.TrimSuffix(s, "."); {
				case s == "":
					add(ap(), "required value")
				case len(name) > 253:
					add(ap(), fmt.Sprintf("invalid value %q: %s", s, msgDNSSub))
				}
			}
		}
		// E10, E11: unique hint names.
		hints := asStruct(get(ep, "hints"))
		for _, h := range []string{"forZones", "forNodes"} {
			hl := elems(get(hints, h))
			if len(hl) == 0 {
				continue
			}
			hintsP := fpath{"endpoints", i, "hints", h}
			if tooMany(&errs, hintsP, len(hl), 8) {
				continue
			}
			seen := map[string]bool{}
			for k, hel := range hl {
				name, ok := stringLit(get(asStruct(hel), "name"))
				if !ok {
					continue
				}
				if seen[name] {
					add(hintsP.index(k).key("name"), fmt.Sprintf("duplicate value %q", name))
				}
				seen[name] = true
			}
		}
	}
	// E13: unique port names, "" included.
	seen := map[string]bool{}
	for i, el := range elems(get(doc, "ports")) {
		p := asStruct(el)
		if p == nil {
			continue
		}
		name, ok := strOr(get(p, "name"), "")
		if !ok {
			continue
		}
		if seen[name] {
			add(fpath{"ports", i, "name"}, fmt.Sprintf("duplicate value %q", name))
		}
		seen[name] = true
	}
	return errs
}

// checkEndpoints runs the Go checks of a v1 Endpoints (ValidateEndpoints).
func checkEndpoints(doc *ast.StructLit) []fieldError {
	var errs []fieldError
	add := func(p fpath, msg string) { errs = append(errs, fieldError{path: p, msg: msg}) }
	errs = append(errs, checkMeta(doc, false)...)
	for i, el := range elems(get(doc, "subsets")) {
		ss := asStruct(el)
		if ss == nil {
			continue
		}
		if len(elems(get(ss, "addresses"))) == 0 && len(elems(get(ss, "notReadyAddresses"))) == 0 {
			add(fpath{"subsets", i}, "required value: must specify addresses or notReadyAddresses")
		}
		for _, list := range []string{"addresses", "notReadyAddresses"} {
			for j, ael := range elems(get(ss, list)) {
				addr := asStruct(ael)
				if addr == nil {
					continue
				}
				ipP := fpath{"subsets", i, list, j, "ip"}
				ipE := get(addr, "ip")
				if ipE == nil {
					add(ipP, "required value")
					continue
				}
				str, ok := stringLit(ipE)
				if !ok {
					continue
				}
				if msg := endpointIPMsg(str); msg != "" {
					add(ipP, fmt.Sprintf("invalid value %q: %s", str, msg))
				}
			}
		}
		ports := elems(get(ss, "ports"))
		for j, pel := range ports {
			p := asStruct(pel)
			if p == nil {
				continue
			}
			if get(p, "port") == nil {
				add(fpath{"subsets", i, "ports", j, "port"}, "required value")
			}
			if name, ok := strOr(get(p, "name"), ""); ok && name == "" && len(ports) > 1 {
				add(fpath{"subsets", i, "ports", j, "name"}, "required value")
			}
		}
	}
	return errs
}

// checkServiceCIDR runs the Go checks of a ServiceCIDR (ValidateServiceCIDR):
// one or two CIDRs in canonical form, of different families.
func checkServiceCIDR(doc *ast.StructLit) []fieldError {
	var errs []fieldError
	cidrs := elems(get(asStruct(get(doc, "spec")), "cidrs"))
	if len(cidrs) == 0 {
		return append(errs, fieldError{path: fpath{"spec", "cidrs"}, msg: "required value: at least one CIDR required"})
	}
	if tooMany(&errs, fpath{"spec", "cidrs"}, len(cidrs), 2) {
		return errs
	}
	fams := map[string]bool{}
	for i, el := range cidrs {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		p := fpath{"spec", "cidrs", i}
		pfx, err := netip.ParsePrefix(s)
		switch {
		case err != nil || pfx.Addr().Is4In6() || pfx.Addr().Zone() != "":
			errs = append(errs, fieldError{path: p, msg: fmt.Sprintf("invalid value %q: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)", s)})
		case pfx.Masked() != pfx || pfx.String() != s:
			errs = append(errs, fieldError{path: p, msg: fmt.Sprintf("invalid value %q: must be in canonical form (%q)", s, pfx.Masked().String())})
		case fams[family(pfx.Addr())]:
			errs = append(errs, fieldError{path: p, msg: fmt.Sprintf("invalid value %q: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64", s)})
		default:
			fams[family(pfx.Addr())] = true
		}
	}
	return errs
}

// tooMany adds a TooMany error if n > max and reports whether it did.
func tooMany(errs *[]fieldError, p fpath, n, max int) bool {
	if n <= max {
		return false
	}
	*errs = append(*errs, fieldError{path: p, msg: fmt.Sprintf("too many: %d: must have at most %d items", n, max)})
	return true
}
