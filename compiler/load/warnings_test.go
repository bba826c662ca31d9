package load

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestServiceWarnings checks the API server's warnings for a valid
// Service (GetWarningsForService): each at its field, warnings under
// Strict too, and none for a Service the API server refuses.
func TestServiceWarnings(t *testing.T) {
	svc := func(spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n" + spec
	}
	tests := []struct {
		name, in string
		want     []string
	}{{
		name: "none for a plain Service",
		in:   svc("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, 2001:db8::a]\n  ipFamilyPolicy: PreferDualStack\n  ports: [{port: 80}]\n"),
	}, {
		name: "the deprecated topology annotation",
		in: "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations: {service.kubernetes.io/topology-aware-hints: Auto}\n" +
			"spec: {ports: [{port: 80}]}\n",
		want: []string{"-:5:61: metadata.annotations[service.kubernetes.io/topology-aware-hints]: " +
			"annotation service.kubernetes.io/topology-aware-hints is deprecated, please use service.kubernetes.io/topology-mode instead"},
	}, {
		name: "an IPv6 cluster IP not written canonically, given as clusterIP",
		in:   svc("  clusterIP: 2001:DB8::A\n  ports: [{port: 80}]\n"),
		want: []string{`-:5:14: spec.clusterIPs[0]: IPv6 address "2001:DB8::A" should be in RFC 5952 canonical format ("2001:db8::a")`},
	}, {
		name: "the second of two cluster IPs",
		in:   svc("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, '2001:db8:0:0::a']\n  ipFamilyPolicy: RequireDualStack\n  ports: [{port: 80}]\n"),
		want: []string{`-:6:28: spec.clusterIPs[1]: IPv6 address "2001:db8:0:0::a" should be in RFC 5952 canonical format ("2001:db8::a")`},
	}, {
		name: "external IPs: deprecated, and one not canonical",
		in:   svc("  externalIPs: [192.0.2.7, 2001:0db8::7]\n  ports: [{port: 80}]\n"),
		want: []string{
			"-:5:16: spec.externalIPs: deprecated, and may no longer be implemented in some clusters",
			`-:5:28: spec.externalIPs[1]: IPv6 address "2001:0db8::7" should be in RFC 5952 canonical format ("2001:db8::7")`,
		},
	}, {
		name: "loadBalancerIP as the API server reads it (sloppily)",
		in: svc("  type: LoadBalancer\n  loadBalancerIP: 192.0.2.09\n  ports: [{port: 80, nodePort: 30080}]\n---\n") +
			strings.Replace(svc("  type: LoadBalancer\n  loadBalancerIP: '::ffff:192.0.2.9'\n  ports: [{port: 80, nodePort: 30081}]\n---\n"), "name: s", "name: t", 1) +
			strings.Replace(svc("  type: LoadBalancer\n  loadBalancerIP: not-an-address\n  ports: [{port: 80, nodePort: 30082}]\n"), "name: s", "name: u", 1),
		want: []string{
			`-:6:19: spec.loadBalancerIP: non-standard IP address "192.0.2.09" will be considered invalid in a future Kubernetes release: use "192.0.2.9"`,
			`-:14:19: spec.loadBalancerIP: non-standard IP address "::ffff:192.0.2.9" will be considered invalid in a future Kubernetes release: use "192.0.2.9"`,
		},
	}, {
		name: "an IPv6 source range not written canonically",
		in:   svc("  type: LoadBalancer\n  loadBalancerSourceRanges: [203.0.113.0/24, '2001:DB8::/32']\n  ports: [{port: 80, nodePort: 30080}]\n"),
		want: []string{`-:6:46: spec.loadBalancerSourceRanges[1]: IPv6 CIDR value "2001:DB8::/32" should be in RFC 5952 canonical format ("2001:db8::/32")`},
	}, {
		name: "what a headless Service ignores",
		in:   svc("  clusterIP: None\n  loadBalancerIP: 192.0.2.9\n  externalIPs: [192.0.2.7]\n  sessionAffinity: ClientIP\n  ports: [{port: 80}]\n"),
		want: []string{
			"-:6:19: spec.loadBalancerIP: ignored for headless services",
			"-:7:16: spec.externalIPs: ignored for headless services",
			"-:8:20: spec.sessionAffinity: ignored for headless services",
		},
	}, {
		name: "what an ExternalName Service ignores",
		in:   svc("  type: ExternalName\n  externalName: db.example.com\n  externalIPs: [192.0.2.7]\n"),
		want: []string{`-:7:16: spec.externalIPs: ignored when spec.type is "ExternalName"`},
	}, {
		name: "externalName on another type",
		in:   svc("  externalName: db.example.com\n  ports: [{port: 80}]\n"),
		want: []string{`-:5:17: spec.externalName: ignored when spec.type is not "ExternalName"`},
	}, {
		name: "trafficDistribution PreferClose",
		in:   svc("  trafficDistribution: PreferClose\n  ports: [{port: 80}]\n"),
		want: []string{`-:5:24: spec.trafficDistribution: "PreferClose" is deprecated; use "PreferSameZone"`},
	}, {
		name: "none for a Service the API server refuses",
		in:   svc("  externalIPs: [192.0.2.7]\n  trafficDistribution: PreferClose\n  ports: [{port: 0}]\n"),
		want: []string{"error"},
	}}
	for _, tt := range tests {
		for _, strict := range []bool{false, true} {
			_, diags := Load([]string{"-"}, strings.NewReader(tt.in), Options{Strict: strict})
			if strict {
				diags.Strict() // as the commands' --strict does
			}
			var got []string
			for _, d := range diags {
				got = append(got, d.Pos.String()+": "+d.Path+": "+d.Msg)
			}
			if len(diags.Errors()) > 0 {
				got = []string{"error"}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, strict %v (-want +got):\n%s", tt.name, strict, diff)
			}
			for _, d := range diags.Warnings() {
				if !d.Lasting {
					t.Errorf("%s: %v is not a lasting warning", tt.name, d)
				}
			}
		}
	}
}
