package load

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLenientUnknown checks what is said of the fields that kube-proxy's
// configuration and a Node hold beyond those their readers know: every
// unknown field of kube-proxy's configuration, the misspellings of what
// kpc reads of a Node (not the Node's other fields, which grow from
// release to release), as warnings, or errors with Strict.
func TestLenientUnknown(t *testing.T) {
	const proxy = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
	const ignored = `kube-proxy ignores it (and logs "Using lenient decoding as strict decoding failed")`
	node := func(rest string) string {
		return "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {a: b}, managedFields: []}\n" + rest
	}
	tests := []struct {
		name, text string
		want       []string
		// warnOnly: the wants are warnings under Strict too.
		warnOnly bool
	}{{
		name: "kubeadm's configuration",
		text: proxy + "bindAddress: 0.0.0.0\nclientConnection: {kubeconfig: /var/lib/kube-proxy/kubeconfig.conf, qps: 0}\n" +
			"conntrack: {maxPerCore: null, tcpBeLiberal: false}\nlogging: {flushFrequency: 0, options: {json: {infoBufferSize: \"0\"}}}\n" +
			"iptables: {masqueradeAll: false, localhostNodePorts: null, syncPeriod: 0s}\nwinkernel: {enableDSR: false}\nmode: \"\"\n",
	}, {
		name: "misspelt and removed fields",
		text: proxy + "clusterCIDRR: 10.244.0.0/16\niptables:\n  masqueradeAl: true\nudpIdleTimeout: 250ms\nconntrack:\n  max: 0\n  mini: 1\n",
		want: []string{
			`-:3:1: KubeProxyConfiguration: clusterCIDRR: unknown field "clusterCIDRR": ` + ignored + `; did you mean "clusterCIDR"?`,
			`-:5:3: KubeProxyConfiguration: iptables.masqueradeAl: unknown field "iptables.masqueradeAl": ` + ignored + `; did you mean "masqueradeAll"?`,
			`-:6:1: KubeProxyConfiguration: udpIdleTimeout: unknown field "udpIdleTimeout": a field of older kube-proxy configurations, since removed: ` + ignored,
			`-:8:3: KubeProxyConfiguration: conntrack.max: unknown field "conntrack.max": a field of older kube-proxy configurations, since removed: ` + ignored,
			`-:9:3: KubeProxyConfiguration: conntrack.mini: unknown field "conntrack.mini": ` + ignored + `; did you mean "min"?`,
		},
	}, {
		name: "a top-level masqueradeAll, which kpc reads",
		text: proxy + "masqueradeAll: true\n",
		want: []string{`-:3:1: warning: KubeProxyConfiguration: masqueradeAll: field "masqueradeAll" is not kube-proxy's: ` +
			`its configuration has iptables.masqueradeAll and nftables.masqueradeAll, and kube-proxy ignores a top-level one; kpc reads it as both`},
		warnOnly: true,
	}, {
		name: "a Node as kubectl prints it",
		text: node("spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24], taints: [], providerID: x}\n" +
			"status:\n  addresses: [{type: InternalIP, address: 192.0.2.11}]\n  images: []\n  nodeInfo: {}\n  newFieldOfARelease: {}\n"),
	}, {
		name: "a Node's misspellings of what kpc reads",
		text: node("spec: {podCIDRR: 10.244.1.0/24}\nstatus:\n  adresses: [{type: Hostname, address: n1}]\n  addresses:\n  - {type: InternalIP, adress: 192.0.2.11, address: 192.0.2.11}\n"),
		want: []string{
			`-:4:8: Node n1: spec.podCIDRR: unknown field "spec.podCIDRR": kpc ignores it, as the API server drops it; did you mean "podCIDR"?`,
			`-:6:3: Node n1: status.adresses: unknown field "status.adresses": kpc ignores it, as the API server drops it; did you mean "addresses"?`,
			`-:8:24: Node n1: status.addresses[0].adress: unknown field "status.addresses[0].adress": kpc ignores it, as the API server drops it; did you mean "address"?`,
		},
	}}
	for _, tt := range tests {
		for _, strict := range []bool{false, true} {
			_, diags := Load([]string{"-"}, strings.NewReader(tt.text), Options{Strict: strict})
			if strict {
				diags.Strict() // as the commands' --strict does
			}
			var got []string
			for _, d := range diags {
				got = append(got, d.Error())
			}
			want := tt.want
			if !strict && !tt.warnOnly {
				want = nil
				for _, w := range tt.want {
					file, rest, _ := strings.Cut(w, ": ")
					want = append(want, file+": warning: "+rest)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s, strict %v (-want +got):\n%s", tt.name, strict, diff)
			}
		}
	}
}
