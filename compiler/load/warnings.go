package load

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
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
	ip, ok := parseIPSloppy(s)
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

// parseIPSloppy parses an address as Go 1.16's net.ParseIP did: an IPv4
// part is one or more decimal digits (leading zeros allowed) up to 255,
// an IPv6 group one or more hex digits up to ffff, and an IPv6 address may
// end in such an IPv4 address. No zone.
func parseIPSloppy(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") {
		b, ok := sloppyIPv4(s)
		if !ok {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(b), true
	}
	// Rewrite the groups and the IPv4 tail in their shortest forms, which
	// netip reads.
	parts := strings.Split(s, ":")
	for i, g := range parts {
		if g == "" {
			continue
		}
		if i == len(parts)-1 && strings.Contains(g, ".") {
			b, ok := sloppyIPv4(g)
			if !ok {
				return netip.Addr{}, false
			}
			parts[i] = netip.AddrFrom4(b).String()
			continue
		}
		n, err := strconv.ParseUint(g, 16, 64)
		if err != nil || n > 0xffff || strings.ContainsAny(g, "+-_xX") {
			return netip.Addr{}, false
		}
		parts[i] = strconv.FormatUint(n, 16)
	}
	a, err := netip.ParseAddr(strings.Join(parts, ":"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// sloppyIPv4 reads four dot-separated decimal parts, each up to 255.
func sloppyIPv4(s string) ([4]byte, bool) {
	var b [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return b, false
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return b, false
		}
		p = strings.TrimLeft(p, "0")
		if len(p) > 3 {
			return b, false
		}
		n := 0
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return b, false
		}
		b[i] = byte(n)
	}
	return b, true
}
