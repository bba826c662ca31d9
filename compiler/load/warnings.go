package load

import (
	"fmt"
	"net/netip"

	"cuelang.org/go/cue/ast"

	"kpc/internal/netparse"
)

// The API server answers the create of a valid Service with warnings
// (GetWarningsForService, which kubectl prints as "Warning: ..."): the
// create succeeds, and so does kpc's validation. serviceWarnings gives
// them, each at the field it is about.

// serviceWarnings returns the API server's warnings for a valid Service,
// read from its normalised document.
func serviceWarnings(doc *ast.StructLit) []fieldError {
	var out []fieldError
	warn := func(p fpath, msg string) { out = append(out, fieldError{path: p, msg: msg}) }
	specP := fpath{"spec"}
	spec := asStruct(get(doc, "spec"))
	str := func(name string) string {
		s, _ := stringLit(get(spec, name))
		return s
	}
	typ, _ := strOr(get(spec, "type"), "ClusterIP")

	ann := asStruct(get(asStruct(get(doc, "metadata")), "annotations"))
	if get(ann, topologyHintsAnnotation) != nil {
		warn(fpath{"metadata", "annotations", topologyHintsAnnotation},
			fmt.Sprintf("annotation %s is deprecated, please use %s instead", topologyHintsAnnotation, topologyModeAnnotation))
	}

	// The cluster IPs (clusterIP alone stands for clusterIPs, as the API
	// server normalises it), unless the Service is headless or has none.
	ips := elems(get(spec, "clusterIPs"))
	if len(ips) == 0 && get(spec, "clusterIP") != nil {
		ips = []ast.Expr{get(spec, "clusterIP")}
	}
	if first, _ := stringLit(ips0(ips)); first != "" && first != "None" {
		for i, el := range ips {
			if s, ok := stringLit(el); ok {
				if msg := ipWarning(s); msg != "" {
					at := specP.key("clusterIPs").index(i)
					if get(spec, "clusterIPs") == nil {
						out = append(out, fieldError{path: at, msg: msg, at: specP.key("clusterIP")})
						continue
					}
					warn(at, msg)
				}
			}
		}
	}

	externalIPs := elems(get(spec, "externalIPs"))
	headless := typ == "ClusterIP" && str("clusterIP") == "None"
	if headless {
		if str("loadBalancerIP") != "" {
			warn(specP.key("loadBalancerIP"), "ignored for headless services")
		}
		if len(externalIPs) > 0 {
			warn(specP.key("externalIPs"), "ignored for headless services")
		}
		if affinity, _ := strOr(get(spec, "sessionAffinity"), "None"); affinity != "None" {
			warn(specP.key("sessionAffinity"), "ignored for headless services")
		}
	}
	for i, el := range externalIPs {
		if s, ok := stringLit(el); ok {
			if msg := ipWarning(s); msg != "" {
				warn(specP.key("externalIPs").index(i), msg)
			}
		}
	}
	if len(externalIPs) > 0 && !headless && typ != "ExternalName" {
		warn(specP.key("externalIPs"), "deprecated, and may no longer be implemented in some clusters")
	}
	if s := str("loadBalancerIP"); s != "" {
		if msg := ipWarning(s); msg != "" {
			warn(specP.key("loadBalancerIP"), msg)
		}
	}
	for i, el := range elems(get(spec, "loadBalancerSourceRanges")) {
		if s, ok := stringLit(el); ok {
			if msg := cidrWarning(s); msg != "" {
				warn(specP.key("loadBalancerSourceRanges").index(i), msg)
			}
		}
	}
	if typ == "ExternalName" && len(externalIPs) > 0 {
		warn(specP.key("externalIPs"), `ignored when spec.type is "ExternalName"`)
	}
	if typ != "ExternalName" && str("externalName") != "" {
		warn(specP.key("externalName"), `ignored when spec.type is not "ExternalName"`)
	}
	if str("trafficDistribution") == "PreferClose" {
		warn(specP.key("trafficDistribution"), `"PreferClose" is deprecated; use "PreferSameZone"`)
	}
	return out
}

// ips0 returns the first of es, or nil.
func ips0(es []ast.Expr) ast.Expr {
	if len(es) == 0 {
		return nil
	}
	return es[0]
}

// ipWarning returns the API server's warning for an IP address in a
// non-standard form (GetWarningsForIP), or "". The API server reads the
// address as Go's old net.ParseIP did (ParseIPSloppy: an IPv4 part may
// have leading zeros, read as decimal), and warns of nothing it cannot
// read.
func ipWarning(s string) string {
	ip, ok := netparse.IP(s)
	if !ok {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return fmt.Sprintf("non-standard IP address %q will be considered invalid in a future Kubernetes release: use %q", s, ip.Unmap())
	}
	if a.Is6() && a.String() != s {
		return fmt.Sprintf("IPv6 address %q should be in RFC 5952 canonical format (%q)", s, a)
	}
	return ""
}

// cidrWarning returns the API server's warning for a CIDR in a
// non-standard form (GetWarningsForCIDR), for a value that passed strict
// validation, or "": only an IPv6 prefix that is not written canonically
// remains. A value with surrounding white space (which validation trims)
// draws none, as in the API server, whose parser refuses it.
func cidrWarning(s string) string {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" || !p.Addr().Is6() || p.Addr().Is4In6() || p.Masked() != p {
		return ""
	}
	if p.String() != s {
		return fmt.Sprintf("IPv6 CIDR value %q should be in RFC 5952 canonical format (%q)", s, p)
	}
	return ""
}
