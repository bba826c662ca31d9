package load

import (
	"fmt"
	"slices"
	"strings"
)

// servedKinds are the kinds of the API versions whose kinds are known and
// fixed: those the API server serves under core v1 and discovery.k8s.io/v1,
// and kube-proxy's configuration. kubectl refuses a document of another
// kind of these versions ("no matches for kind"), where a document of a
// kind kpc does not read but that exists (a ConfigMap, a Deployment) is
// only skipped.
var servedKinds = map[string][]string{
	"v1": {"Binding", "ComponentStatus", "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace", "Node",
		"PersistentVolume", "PersistentVolumeClaim", "Pod", "PodTemplate", "ReplicationController", "ResourceQuota",
		"Secret", "Service", "ServiceAccount"},
	"discovery.k8s.io/v1":              {"EndpointSlice"},
	"kubeproxy.config.k8s.io/v1alpha1": {"KubeProxyConfiguration"},
}

// unknownKind returns the error of a document of kind whose apiVersion is
// one of servedKinds' and has no such kind, and whether it has none. A
// list kind ("...List") is not judged: kubectl reads its items.
func unknownKind(apiVersion, kind string) (string, bool) {
	known, ok := servedKinds[apiVersion]
	if !ok || slices.Contains(known, kind) || strings.HasSuffix(kind, "List") {
		return "", false
	}
	msg := fmt.Sprintf("unsupported value %q: apiVersion %s has no such kind, and kubectl refuses it (no matches for kind)", kind, apiVersion)
	if near := nearestName(kind, known); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return msg, true
}

// nearestName returns the name of known that name is a misspelling of
// (the same but for case, or at most two edits away), or "": a kind, or a
// field.
func nearestName(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(name)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two strings of bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
