package load

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKubeProxyReading checks what a create is refused for but kube-proxy
// reads: refused when a create is judged (kpc validate), and read as
// kube-proxy reads it, with a warning each, under Options.KubeProxy (the
// commands that compile) and in an object the API server stored.
func TestKubeProxyReading(t *testing.T) {
	const in = `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: svc1}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.041
  ports: [{name: p80, port: 80, nodePort: 3001}]
  externalIPs: [192.168.099.022, '::ffff:192.0.2.7']
  loadBalancerSourceRanges: [203.0.113.000/025, 198.51.100.1/24]
  healthCheckNodePort: 30000
status: {loadBalancer: {ingress: [{ip: 1.2.3.004}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns1, name: svc1-1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
ports: [{name: p80, port: 80}]
endpoints: [{addresses: [10.180.00.001]}]
---
apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: ext}
spec: {type: ExternalName, externalName: db.example.com, clusterIP: 10.96.0.9}
---
apiVersion: v1
kind: Endpoints
metadata: {namespace: ns1, name: ext}
subsets: [{addresses: [{ip: 192.0.2.010}], notReadyAddresses: [{ip: 192.0.2.011}], ports: [{port: 5432}]}]
`
	const why = " (a create is refused); kube-proxy reads it so (kpc validate, which judges a create, refuses it)"
	const ignores = " (a create is refused); kube-proxy ignores it (kpc validate, which judges a create, refuses it)"
	wantWarnings := []string{
		`-:6:14: spec.clusterIP: non-standard IP address "172.30.0.041" read as "172.30.0.41"` + why,
		`-:8:17: spec.externalIPs[0]: non-standard IP address "192.168.099.022" read as "192.168.99.22"` + why,
		`-:8:34: spec.externalIPs[1]: non-standard IP address "::ffff:192.0.2.7" read as "192.0.2.7"` + why,
		`-:9:30: spec.LoadBalancerSourceRanges[0]: non-standard CIDR "203.0.113.000/025" read as "203.0.113.0/25"` + why,
		`-:9:49: spec.LoadBalancerSourceRanges[1]: non-standard CIDR "198.51.100.1/24" read as "198.51.100.0/24"` + why,
		"-:10:24: spec.healthCheckNodePort: ignored: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'" + ignores,
		`-:11:40: status.loadBalancer.ingress[0].ip: non-standard IP address "1.2.3.004" read as "1.2.3.4"` + why,
		`-:18:26: endpoints[0].addresses[0]: non-standard IP address "10.180.00.001" read as "10.180.0.1"` + why,
		"-:23:69: spec.clusterIP: ignored: may not be set for ExternalName services" + ignores,
		`-:28:29: subsets[0].addresses[0].ip: non-standard IP address "192.0.2.010" read as "192.0.2.10"` + why,
		`-:28:69: subsets[0].notReadyAddresses[0].ip: non-standard IP address "192.0.2.011" read as "192.0.2.11"` + why,
	}
	for _, kubeProxy := range []bool{false, true} {
		input, diags := Load([]string{"-"}, strings.NewReader(in), Options{KubeProxy: kubeProxy})
		if !kubeProxy {
			// A create of each object is refused, at each field.
			if n := len(diags.Errors()); n < len(wantWarnings)-1 {
				t.Errorf("judging a create: %d errors, want one for each field:\n%v", n, diags)
			}
			continue
		}
		var got []string
		for _, d := range diags {
			if strings.Contains(d.Msg, "a create is refused") {
				got = append(got, d.Pos.String()+": "+d.Path+": "+d.Msg)
			}
		}
		if diff := cmp.Diff(wantWarnings, got); diff != "" {
			t.Errorf("read as kube-proxy reads it (-want +got):\n%s", diff)
		}
		if err := diags.Err(); err != nil {
			t.Fatalf("read as kube-proxy reads it: %v", err)
		}
		svc := input.Services[0]
		if got := svc.Spec.ClusterIPs; len(got) != 1 || got[0] != "172.30.0.41" || svc.Spec.HealthCheckNodePort != 0 ||
			svc.Spec.ExternalIPs[1] != "192.0.2.7" || svc.Spec.LoadBalancerSourceRanges[1] != "198.51.100.0/24" ||
			svc.Status.LoadBalancer.Ingress[0].IP != "1.2.3.4" || input.EndpointSlices[0].Endpoints[0].Addresses[0] != "10.180.0.1" {
			t.Errorf("read as kube-proxy reads it: %+v %+v", svc.Spec, input.EndpointSlices[0].Endpoints)
		}
	}
	// A stored object is read so when a create is judged too.
	storedIn := strings.Replace(in, "{namespace: ns1, name: svc1}", `{namespace: ns1, name: svc1, uid: 08c55f35-7572-4c29-8ed4-07e956bf41c3, resourceVersion: "7"}`, 1)
	_, diags := Load([]string{"-"}, strings.NewReader(storedIn), Options{})
	for _, d := range diags.Errors() {
		if d.Object == "Service ns1/svc1" {
			t.Errorf("stored Service: %v", d)
		}
	}
}

// TestKubeProxyReadingEndpoints checks an IPv6 slice's addresses not in
// their canonical form (read as kube-proxy reads them), an IPv4-mapped
// address in it (refused as it is written), and a source range with
// spaces (trimmed, as the API server and kube-proxy trim it).
func TestKubeProxyReadingEndpoints(t *testing.T) {
	const in = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v6-1, labels: {kubernetes.io/service-name: v6}}
addressType: IPv6
ports: [{port: 80}]
endpoints: [{addresses: ["FD00::1"]}, {addresses: ["::ffff:10.180.0.1"]}]
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec: {type: LoadBalancer, loadBalancerSourceRanges: [" 10.0.0.1/8", " 10.1.0.0/16"], ports: [{port: 80, nodePort: 30080}]}
`
	_, diags := Load([]string{"-"}, strings.NewReader(in), Options{KubeProxy: true})
	var got []string
	for _, d := range diags {
		got = append(got, d.Error())
	}
	const why = " (a create is refused); kube-proxy reads it so (kpc validate, which judges a create, refuses it)"
	want := []string{
		`-:6:26: warning: EndpointSlice default/v6-1: endpoints[0].addresses[0]: non-standard IP address "FD00::1" read as "fd00::1"` + why,
		`-:6:52: EndpointSlice default/v6-1: endpoints[1].addresses[0]: invalid value "::ffff:10.180.0.1": must not be an IPv4-mapped IPv6 address`,
		`-:11:55: warning: Service default/lb: spec.LoadBalancerSourceRanges[0]: non-standard CIDR " 10.0.0.1/8" read as "10.0.0.0/8"` + why,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
