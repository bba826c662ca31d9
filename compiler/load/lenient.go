package load

import (
	"fmt"
	"slices"

	"cuelang.org/go/cue/ast"
)

// The node context kinds are read leniently, as kube-proxy reads them: the
// schema declares only the fields kpc reads and leaves the rest open. So
// that a misspelt field is not lost without a word, lenientUnknown finds
// what kube-proxy would not know in them.

// proxyFields are the fields of kube-proxy's v1alpha1 configuration
// (k8s.io/kube-proxy/config/v1alpha1), by the mapping that holds them
// ("" for the top level). logging and featureGates are open.
var proxyFields = map[string][]string{
	"": {"apiVersion", "kind", "featureGates", "clientConnection", "logging", "hostnameOverride", "bindAddress",
		"healthzBindAddress", "metricsBindAddress", "bindAddressHardFail", "enableProfiling",
		"showHiddenMetricsForVersion", "mode", "iptables", "ipvs", "nftables", "winkernel", "detectLocalMode",
		"detectLocal", "clusterCIDR", "nodePortAddresses", "oomScoreAdj", "conntrack", "configSyncPeriod",
		"portRange", "windowsRunAsService"},
	"clientConnection": {"kubeconfig", "acceptContentTypes", "contentType", "qps", "burst"},
	"iptables":         {"masqueradeBit", "masqueradeAll", "localhostNodePorts", "snatNodeInternalIP", "syncPeriod", "minSyncPeriod"},
	"ipvs": {"syncPeriod", "minSyncPeriod", "scheduler", "excludeCIDRs", "strictARP", "tcpTimeout", "tcpFinTimeout",
		"udpTimeout"},
	"nftables":    {"masqueradeBit", "masqueradeAll", "syncPeriod", "minSyncPeriod"},
	"winkernel":   {"networkName", "sourceVip", "enableDSR", "rootHnsEndpointName", "forwardHealthCheckVip"},
	"detectLocal": {"bridgeInterface", "interfaceNamePrefix"},
	"conntrack": {"maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout", "tcpBeLiberal", "udpTimeout",
		"udpStreamTimeout"},
}

// removedProxyFields are fields of older v1alpha1 configurations, since
// removed (kube-proxy ignores them), by the mapping that held them: dumps
// of long-lived clusters carry them. They get no "did you mean" (conntrack
// max is not a misspelling of min).
var removedProxyFields = map[string][]string{
	"":          {"resourceContainer", "udpIdleTimeout"},
	"conntrack": {"max"},
}

// nodeFields are the fields of a v1 Node's mappings that hold what kpc
// reads, and nodeRead those kpc reads. A Node is an API object whose
// status grows new fields from release to release, so only a field a
// misspelling of one kpc reads (and not a field itself) is reported.
var (
	nodeFields = map[string][]string{
		"":                   {"apiVersion", "kind", "metadata", "spec", "status"},
		"spec":               {"podCIDR", "podCIDRs", "providerID", "unschedulable", "taints", "configSource", "externalID"},
		"status":             {"capacity", "allocatable", "phase", "conditions", "addresses", "daemonEndpoints", "nodeInfo", "images", "volumesInUse", "volumesAttached", "config", "runtimeHandlers", "features", "declaredFeatures"},
		"status.addresses[]": {"type", "address"},
	}
	nodeRead = map[string][]string{
		"":                   {"metadata", "spec", "status"},
		"spec":               {"podCIDR", "podCIDRs"},
		"status":             {"addresses"},
		"status.addresses[]": {"type", "address"},
	}
)

// lenientField is a field of a node context document that its reader does
// not know; warn says it stays a warning under Strict (kpc reads it).
type lenientField struct {
	path fpath
	msg  string
	warn bool
}

// legacyMasqueradeAll is said of a top-level masqueradeAll, which kpc
// reads though kube-proxy's configuration has none.
const legacyMasqueradeAll = `field "masqueradeAll" is not kube-proxy's: its configuration has iptables.masqueradeAll ` +
	`and nftables.masqueradeAll, and kube-proxy ignores a top-level one; kpc reads it as both`

// lenientUnknown returns the unknown fields of a KubeProxyConfiguration
// (every field kube-proxy's strict decoding refuses) or a Node (the
// misspellings of the fields kpc reads), in document order.
func lenientUnknown(kind string, doc *ast.StructLit) []lenientField {
	var out []lenientField
	check := func(s *ast.StructLit, at fpath, known, read []string, onlyNear bool) {
		for _, f := range structFields(s) {
			if slices.Contains(known, f.name) {
				continue
			}
			if kind == "KubeProxyConfiguration" && slices.Contains(removedProxyFields[at.String()], f.name) {
				p := at.key(f.name)
				out = append(out, lenientField{path: p, msg: unknownFieldMsg(p) + `: a field of older kube-proxy configurations, since removed: kube-proxy ignores it (and logs "Using lenient decoding as strict decoding failed")`})
				continue
			}
			if kind == "KubeProxyConfiguration" && at == nil && f.name == "masqueradeAll" {
				out = append(out, lenientField{path: fpath{f.name}, msg: legacyMasqueradeAll, warn: true})
				continue
			}
			near := nearestName(f.name, read)
			if onlyNear && near == "" {
				continue
			}
			p := at.key(f.name)
			msg := unknownFieldMsg(p)
			if kind == "KubeProxyConfiguration" {
				msg += `: kube-proxy ignores it (and logs "Using lenient decoding as strict decoding failed")`
			} else {
				msg += ": kpc ignores it, as the API server drops it"
			}
			if near != "" {
				msg += fmt.Sprintf(`; did you mean %q?`, near)
			}
			out = append(out, lenientField{path: p, msg: msg})
		}
	}
	switch kind {
	case "KubeProxyConfiguration":
		check(doc, nil, proxyFields[""], proxyFields[""], false)
		for _, f := range structFields(doc) {
			if known, ok := proxyFields[f.name]; ok && f.name != "" {
				check(asStruct(f.value), fpath{f.name}, known, known, false)
			}
		}
	case "Node":
		check(doc, nil, nodeFields[""], nodeRead[""], true)
		check(asStruct(get(doc, "spec")), fpath{"spec"}, nodeFields["spec"], nodeRead["spec"], true)
		status := asStruct(get(doc, "status"))
		check(status, fpath{"status"}, nodeFields["status"], nodeRead["status"], true)
		for i, a := range elems(get(status, "addresses")) {
			check(asStruct(a), fpath{"status", "addresses", i}, nodeFields["status.addresses[]"], nodeRead["status.addresses[]"], true)
		}
	}
	return out
}
