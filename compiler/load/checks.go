package load

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
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

// intLit returns the value of an integer literal.
func intLit(e ast.Expr) (int64, bool) {
	neg := false
	if u, ok := e.(*ast.UnaryExpr); ok {
		neg, e = true, u.X
	}
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Value == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(b.Value, "_", ""), 0, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
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

	// S2, S4, S9, S10, S13, S12: ports.
	type protoPort struct {
		proto string
		port  int64
	}
	names := map[string]bool{}
	seenPorts := map[protoPort]bool{}
	seenNodePorts := map[protoPort]bool{}
	nodePortOwner := map[int64]int64{}
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
		if !npOK || np == 0 {
			continue
		}
		npp := pp.key("nodePort")
		k := protoPort{proto, np}
		switch owner, taken := nodePortOwner[np]; {
		case protoOK && seenNodePorts[k]:
			add(npp, fmt.Sprintf("duplicate value {%s, %d}", proto, np))
		case taken && portOK && owner != port:
			add(npp, fmt.Sprintf("invalid value %d: provided port is already allocated", np))
		case !opts.NodePortRange.IsZero() && typ != "ExternalName" && !opts.NodePortRange.Contains(int(np)):
			add(npp, nodePortRangeMsg(np, opts.NodePortRange))
		}
		if protoOK {
			seenNodePorts[k] = true
		}
		if _, taken := nodePortOwner[np]; !taken && portOK {
			nodePortOwner[np] = port
		}
	}
	if hc, ok := intLit(get(spec, "healthCheckNodePort")); ok && hc != 0 && !opts.NodePortRange.IsZero() && !opts.NodePortRange.Contains(int(hc)) {
		add(specP.key("healthCheckNodePort"), nodePortRangeMsg(hc, opts.NodePortRange))
	}

	errs = append(errs, checkClusterIPs(spec, typ, opts)...)

	// S28: external IPs, strictly parsed and not special.
	for i, el := range elems(get(spec, "externalIPs")) {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		a, msg := parseIP(s)
		if msg == "" {
			msg = specialIP(a)
		}
		if msg != "" {
			add(specP.key("externalIPs").index(i), fmt.Sprintf("invalid value %q: %s", s, msg))
		}
	}

	// S30: source ranges (on a non-LB the schema forbids the field).
	ranges := elems(get(spec, "loadBalancerSourceRanges"))
	if typ == "LoadBalancer" {
		for i, el := range ranges {
			s, ok := stringLit(el)
			if !ok {
				continue
			}
			if msg := parseCIDR(s); msg != "" {
				add(specP.key("loadBalancerSourceRanges").index(i), fmt.Sprintf("invalid value %q: %s", s, msg))
			}
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
	// S31: the source-ranges annotation, checked when the field is empty.
	if len(ranges) == 0 {
		if v, ok := stringLit(get(ann, lbSourceRangesAnnotation)); ok {
			ap := fpath{"metadata", "annotations", lbSourceRangesAnnotation}
			if typ != "LoadBalancer" {
				add(ap, "forbidden: may only be used when `type` is 'LoadBalancer'")
			} else if strings.TrimSpace(v) != "" {
				for _, c := range strings.Split(v, ",") {
					if msg := parseCIDR(c); msg != "" {
						add(ap, fmt.Sprintf("invalid value %q: %s", v, msg))
						break
					}
				}
			}
		}
	}
	return errs
}

func nodePortRangeMsg(p int64, r PortRange) string {
	return fmt.Sprintf("invalid value %d: provided port is not in the valid range. The range of valid ports is %d-%d", p, r.Min, r.Max)
}

// checkClusterIPs checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy (S19-S22, S24, S25, S27), after the API server's
// normalisation: a clusterIP with no clusterIPs is clusterIPs[0]. Errors on
// such a clusterIPs[0] are positioned at clusterIP.
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
		if len(ips) == 2 && family(addrs[0]) == family(addrs[1]) {
			add(ipsP, ipsAt, fmt.Sprintf("invalid value %s: may specify no more than one IP for each IP family", list))
		}
		if !headless {
			for i := 0; i < len(ips) && i < len(fams); i++ {
				if (fams[i] == "IPv4" || fams[i] == "IPv6") && family(addrs[i]) != fams[i] {
					add(ipsP.index(i), at(i), fmt.Sprintf("invalid value %q: expected an %s value as indicated by `ipFamilies[%d]`", ips[i], fams[i], i))
				}
			}
		}
		// S27 (only with Options.ServiceCIDRs).
		if len(opts.ServiceCIDRs) > 0 && !headless {
			for i, a := range addrs {
				if !a.IsValid() || inAny(a, opts.ServiceCIDRs) {
					continue
				}
				add(ipsP.index(i), at(i), fmt.Sprintf("invalid value %q: failed to allocate IP %s: not in any service CIDR (%s)", ips[i], ips[i], prefixList(opts.ServiceCIDRs)))
			}
		}
	}

	// S19: NodePort and LoadBalancer Services cannot be headless.
	if headless && (typ == "NodePort" || typ == "LoadBalancer") {
		add(ipsP.index(0), at(0), fmt.Sprintf("invalid value \"None\": may not be set to 'None' for %s services", typ))
	}

	// S25: SingleStack with two IPs or two families (explicit policy only:
	// a missing policy is inferred as RequireDualStack in that case).
	if policy, ok := stringLit(get(spec, "ipFamilyPolicy")); ok && policy == "SingleStack" {
		switch {
		case len(ips) == 2:
			add(fpath{"spec", "ipFamilyPolicy"}, nil, "invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified")
		case len(fams) == 2:
			add(fpath{"spec", "ipFamilyPolicy"}, nil, "invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified")
		}
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

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
		epP := fpath{"endpoints", i}
		// E3. The schema requires addresses too, but CUE reports a missing
		// field only when the document has no other error.
		if get(ep, "addresses") == nil {
			add(epP.key("addresses"), "required value")
		}
		tooMany(&errs, epP.key("addresses"), len(elems(get(ep, "addresses"))), 100)
		// E4, E5: families on the list path, the rest per address.
		if addrType == "IPv4" || addrType == "IPv6" {
			for j, ael := range elems(get(ep, "addresses")) {
				s, ok := stringLit(ael)
				if !ok {
					continue
				}
				ap := epP.key("addresses").index(j)
				a, msg := parseIP(s)
				switch {
				case msg != "":
					add(ap, fmt.Sprintf("invalid value %q: %s", s, msg))
				case family(a) != addrType:
					errs = append(errs, fieldError{path: epP.key("addresses"), at: ap,
						msg: fmt.Sprintf("invalid value %q: must be an %s address", s, addrType)})
				case specialIP(a) != "":
					add(ap, fmt.Sprintf("invalid value %q: %s", s, specialIP(a)))
				case addrType == "IPv6" && a.String() != s:
					add(ap, fmt.Sprintf("invalid value %q: must be in canonical form (%q)", s, a.String()))
				}
			}
		}
		// E10, E11: unique hint names.
		hints := asStruct(get(ep, "hints"))
		for _, h := range []string{"forZones", "forNodes"} {
			hl := elems(get(hints, h))
			if tooMany(&errs, epP.key("hints").key(h), len(hl), 8) {
				continue
			}
			seen := map[string]bool{}
			for k, hel := range hl {
				name, ok := stringLit(get(asStruct(hel), "name"))
				if !ok {
					continue
				}
				if seen[name] {
					add(epP.key("hints").key(h).index(k).key("name"), fmt.Sprintf("duplicate value %q", name))
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

// tooMany adds a TooMany error if n > max and reports whether it did.
func tooMany(errs *[]fieldError, p fpath, n, max int) bool {
	if n <= max {
		return false
	}
	*errs = append(*errs, fieldError{path: p, msg: fmt.Sprintf("too many: %d: must have at most %d items", n, max)})
	return true
}
