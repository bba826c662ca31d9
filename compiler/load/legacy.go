package load

import (
	"slices"

	"cuelang.org/go/cue/ast"

	"kpc/compiler/diag"
)

// A Service the API server stored under an older version may hold fields
// that a create is now refused for, and that the API server keeps until
// the object is written again: validation runs on writes, not on reads.
// kube-proxy ignores them. In a dump of a cluster (an object with the uid
// and resourceVersion only the API server sets) they are dropped with a
// warning, so that the dump compiles as the cluster serves it; in a
// manifest to be created they stay errors.

// stored reports whether s is an object the API server stored.
func stored(s *ast.StructLit) bool {
	meta := structAt(s, "metadata")
	uid, _ := stringLit(get(meta, "uid"))
	version, _ := stringLit(get(meta, "resourceVersion"))
	return uid != "" && version != ""
}

// dropLegacy removes from a stored Service s the externalTrafficPolicy of
// a Service that is not externally accessible (rule S34) and the
// healthCheckNodePort of one that is not a LoadBalancer with the Local
// policy (S35), with a warning each on diags.
func (d *decoder) dropLegacy(s *ast.StructLit, object string, diags *diag.List) {
	spec := structAt(s, "spec")
	if spec == nil || !stored(s) {
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
		default:
			return false
		}
		diags.Warn(d.pos(f.Value), object, "spec."+name, "ignored: "+why+" (a create is refused); this object, stored by the "+
			"API server (it has a uid), kept it from an older version, and kube-proxy ignores it")
		return true
	})
}
