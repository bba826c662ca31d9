package load

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"

	"kpc/compiler/diag"
	"kpc/internal/netparse"
)

// An object the API server stored under an older version may hold fields
// that a create is now refused for, and that the API server keeps until
// the object is written again: validation runs on writes, not on reads.
// kube-proxy reads them as it reads any: it ignores the fields it does not
// use, and parses addresses loosely. In a dump of a cluster (an object
// with the uid and resourceVersion only the API server sets), and in
// whatever the commands that compile read (Options.KubeProxy), they are
// read as kube-proxy reads them, with a warning, so that the input
// compiles as the cluster serves it; kpc validate, which judges a create,
// refuses them in a manifest.

// stored reports whether s is an object the API server stored.
func stored(s *ast.StructLit) bool {
	meta := structAt(s, "metadata")
	uid, _ := stringLit(get(meta, "uid"))
	version, _ := stringLit(get(meta, "resourceVersion"))
	return uid != "" && version != ""
}

// dropLegacy removes from a Service s, stored (isStored) or read under
// Options.KubeProxy, the externalTrafficPolicy of a Service that is not
// externally accessible (rule S34), the healthCheckNodePort of one that is
// not a LoadBalancer with the Local policy (S35) and the cluster IPs of an
// ExternalName Service, with a warning each on diags.
func (d *decoder) dropLegacy(s *ast.StructLit, isStored bool, object string, diags *diag.List) {
	spec := structAt(s, "spec")
	if spec == nil || !isStored && !d.opts.KubeProxy {
		return
	}
	typ, _ := stringLit(get(spec, "type"))
	if typ == "" {
		typ = "ClusterIP"
	}
	policy, _ := stringLit(get(spec, "externalTrafficPolicy"))
	accessible := typ == "LoadBalancer" || typ == "NodePort" || typ == "ClusterIP" && len(elems(get(spec, "externalIPs"))) > 0
	spec.Elts = slices.DeleteFunc(spec.Elts, func(el ast.Decl) bool {
		f, ok := el.(*ast.Field)
		if !ok {
			return false
		}
		name, _, err := labelName(f.Label)
		var why string
		switch {
		case err != nil:
			return false
		case name == "externalTrafficPolicy" && !accessible:
			why = "may only be set for externally-accessible services"
		case name == "healthCheckNodePort" && (typ != "LoadBalancer" || policy != "Local"):
			why = "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
		case (name == "clusterIP" || name == "clusterIPs") && typ == "ExternalName":
			why = "may not be set for ExternalName services"
		default:
			return false
		}
		diags.Warn(d.pos(f.Value), object, "spec."+name, "ignored: "+why+" (a create is refused); "+legacyWhy(isStored, "ignores it"))
		return true
	})
}

// legacyWhy says why a value a create is refused for is read: the object
// was stored by the API server, or is read as kube-proxy reads it, which
// does what verb says ("ignores it", "reads it so").
func legacyWhy(isStored bool, verb string) string {
	if isStored {
		return "this object, stored by the API server (it has a uid), kept it from an older version, and kube-proxy " + verb
	}
	return "kube-proxy " + verb + " (kpc validate, which judges a create, refuses it)"
}

// rewriteLegacyIPs rewrites the addresses and CIDRs of s that a create is
// refused for but kube-proxy parses (ParseIPSloppy, ParseCIDRSloppy:
// leading zeros, an IPv4-mapped IPv6 address, bits beyond a prefix, an
// endpoint's IPv6 address not in its canonical form) into
// the canonical form kube-proxy reads them as, with a warning each, for a
// stored object or under Options.KubeProxy (see above).
func (d *decoder) rewriteLegacyIPs(kind string, s *ast.StructLit, isStored bool, object string, diags *diag.List) {
	if !isStored && !d.opts.KubeProxy {
		return
	}
	// canonical: an endpoint's address, which a create wants in its
	// canonical form (E4); v6only: one of an IPv6 slice, where an
	// IPv4-mapped address stays an error of its own.
	var canonical, v6only bool
	// fix rewrites e when a create refuses it and kube-proxy reads it;
	// at gives its path, built only then (the usual value is fine, and
	// needs none).
	fix := func(e ast.Expr, cidr bool, at func() fpath) {
		b, ok := e.(*ast.BasicLit)
		v, isStr := stringLit(e)
		if !ok || !isStr {
			return
		}
		var canon, what string
		if cidr {
			if strictCIDR(v) {
				return
			}
			// The API server trims a source range's spaces, and so does
			// kube-proxy.
			pr, ok := netparse.CIDR(strings.TrimSpace(v))
			if !ok {
				return
			}
			a := pr.Addr()
			bits := pr.Bits()
			if a.Is4In6() && bits >= 96 {
				a, bits = a.Unmap(), bits-96
			}
			canon, what = netip.PrefixFrom(a, bits).Masked().String(), "CIDR"
		} else {
			if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" && !a.Is4In6() && (!canonical || a.String() == v) {
				return
			}
			a, ok := netparse.IP(v)
			if !ok || v6only && a.Is4In6() {
				return
			}
			canon, what = a.Unmap().String(), "IP address"
		}
		b.Value = strconv.Quote(canon)
		diags.Warn(d.pos(e), object, at().String(), fmt.Sprintf("non-standard %s %q read as %q (a create is refused); %s", what, v, canon, legacyWhy(isStored, "reads it so")))
	}
	list := func(e ast.Expr, cidr bool, at func() fpath) {
		for i, el := range elems(e) {
			fix(el, cidr, func() fpath { return at().index(i) })
		}
	}
	switch kind {
	case "Service":
		spec := structAt(s, "spec")
		specAt := func(name string) func() fpath { return func() fpath { return fpath{"spec", name} } }
		if v := get(spec, "clusterIP"); v != nil {
			fix(v, false, specAt("clusterIP"))
		}
		list(get(spec, "clusterIPs"), false, specAt("clusterIPs"))
		list(get(spec, "externalIPs"), false, specAt("externalIPs"))
		list(get(spec, "loadBalancerSourceRanges"), true, specAt("loadBalancerSourceRanges"))
		for i, in := range elems(get(structAt(structAt(s, "status"), "loadBalancer"), "ingress")) {
			if v := get(asStruct(in), "ip"); v != nil {
				fix(v, false, func() fpath { return fpath{"status", "loadBalancer", "ingress", i, "ip"} })
			}
		}
	case "EndpointSlice":
		t, _ := stringLit(get(s, "addressType"))
		if t != "IPv4" && t != "IPv6" {
			return
		}
		canonical, v6only = true, t == "IPv6"
		for i, ep := range elems(get(s, "endpoints")) {
			list(get(asStruct(ep), "addresses"), false, func() fpath { return fpath{"endpoints", i, "addresses"} })
		}
	case "Endpoints":
		canonical = true
		for i, sub := range elems(get(s, "subsets")) {
			for _, key := range []string{"addresses", "notReadyAddresses"} {
				for j, a := range elems(get(asStruct(sub), key)) {
					if v := get(asStruct(a), "ip"); v != nil {
						fix(v, false, func() fpath { return fpath{"subsets", i, key, j, "ip"} })
					}
				}
			}
		}
	}
}

// strictCIDR reports whether s is a CIDR a create takes (parseCIDR).
func strictCIDR(s string) bool { return parseCIDR(s) == "" }
