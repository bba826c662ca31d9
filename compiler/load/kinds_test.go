package load

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUnknownKinds checks that a document of a kind its API version does
// not have is an error, with the kind it misspells if there is one, and
// that a kind kpc does not read, or of another version, is skipped.
func TestUnknownKinds(t *testing.T) {
	for _, tc := range []struct {
		apiVersion, kind string
		want             string
	}{
		{"v1", "Servce", `-:2:7: kind: unsupported value "Servce": apiVersion v1 has no such kind, and kubectl refuses it (no matches for kind); did you mean "Service"?`},
		{"v1", "service", `-:2:7: kind: unsupported value "service": apiVersion v1 has no such kind, and kubectl refuses it (no matches for kind); did you mean "Service"?`},
		{"v1", "Endpoint", `-:2:7: kind: unsupported value "Endpoint": apiVersion v1 has no such kind, and kubectl refuses it (no matches for kind); did you mean "Endpoints"?`},
		{"discovery.k8s.io/v1", "EndpointSlices", `-:2:7: kind: unsupported value "EndpointSlices": apiVersion discovery.k8s.io/v1 has no such kind, and kubectl refuses it (no matches for kind); did you mean "EndpointSlice"?`},
		{"kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfig", `-:2:7: kind: unsupported value "KubeProxyConfig": apiVersion kubeproxy.config.k8s.io/v1alpha1 has no such kind, and kubectl refuses it (no matches for kind)`},
		{"v1", "Frobnicator", `-:2:7: kind: unsupported value "Frobnicator": apiVersion v1 has no such kind, and kubectl refuses it (no matches for kind)`},
		{"v1", "ConfigMap", "-:1:1: warning: skipping ConfigMap x: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR"},
		{"v1", "PodList", "-:1:1: warning: skipping PodList x: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR"},
		{"example.com/v1", "Servce", "-:1:1: warning: skipping Servce x: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR"},
	} {
		in := "apiVersion: " + tc.apiVersion + "\nkind: " + tc.kind + "\nmetadata:\n  name: x\n"
		_, diags := Load([]string{"-"}, strings.NewReader(in), Options{})
		if diff := cmp.Diff([]string{tc.want}, diagStrings(diags)); diff != "" {
			t.Errorf("%s %s: diagnostics (-want +got):\n%s", tc.apiVersion, tc.kind, diff)
		}
	}
}

// TestEditDistance checks the distance the misspelt kinds are found by.
func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"service", "service", 0}, {"servce", "service", 1}, {"srevice", "service", 2}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
