package load

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// svc returns a Service named s whose spec is the given YAML (written at
// column 1; it is indented under spec:, which is on line 5).
func svc(spec string) string {
	return "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n" + indent(spec)
}

// slice returns an EndpointSlice named e whose body (after metadata,
// from line 5) is the given YAML.
func slice(body string) string {
	return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: e\n" + body
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "\n" {
			b.WriteString("  ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// repeat returns n YAML list lines "<prefix><i>".
func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte('\n')
	}
	return b.String()
}

var invalidCases = []struct {
	name string
	in   string
	opts Options
	want []string
}{
	// ObjectMeta.
	{name: "M1 name missing", in: "apiVersion: v1\nkind: Service\nmetadata:\n  labels: {a: b}\nspec:\n  ports: [{port: 80}]\n",
		want: []string{
			"-:3:1: Service default/(no name): metadata.name: required value",
		}},
	{name: "M2 service name not a DNS label", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: My_Svc", 1),
		want: []string{
			"-:4:9: Service default/My_Svc: metadata.name: invalid value \"My_Svc\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
		}},
	{name: "M2 service name too long", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: "+strings.Repeat("a", 64), 1),
		want: []string{
			"-:4:9: Service default/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: metadata.name: invalid value \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
		}},
	{name: "M3 slice name not a subdomain", in: strings.Replace(slice("addressType: IPv4\n"), "name: e", "name: Bad_Slice", 1),
		want: []string{
			"-:4:9: EndpointSlice default/Bad_Slice: metadata.name: invalid value \"Bad_Slice\": must be a lowercase RFC 1123 subdomain: at most 253 characters, a-z, 0-9, '-' and '.', each part starting and ending with a letter or digit",
		}},
	{name: "M5 namespace not a DNS label", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  namespace: Bad.NS", 1),
		want: []string{
			"-:5:14: Service Bad.NS/s: metadata.namespace: invalid value \"Bad.NS\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
		}},
	{name: "M6 label key", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  labels: {\"a/b/c\": x}", 1),
		want: []string{
			"-:5:21: Service default/s: metadata.labels: invalid value \"a/b/c\": must be a qualified name: an optional DNS subdomain prefix (at most 253 characters) and '/', then at most 63 characters of [A-Za-z0-9-_.] starting and ending with a letter or digit",
		}},
	{name: "M6 label value", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  labels: {app: \"-web\"}", 1),
		want: []string{
			"-:5:17: Service default/s: metadata.labels: invalid value \"-web\": must be a valid label value: empty or at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit",
		}},
	{name: "M6 label value not a string", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  labels: {version: 1.0}", 1),
		want: []string{
			"-:5:21: Service default/s: metadata.labels[version]: invalid value 1: must be a string",
		}},
	{name: "M7 annotation value not a string", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  annotations: {replicas: 3}", 1),
		want: []string{
			"-:5:27: Service default/s: metadata.annotations[replicas]: invalid value 3: must be a string",
		}},

	// Service ports.
	{name: "S1 no ports", in: svc("type: ClusterIP\n"),
		want: []string{
			"-:5:1: Service default/s: spec.ports: required value",
		}},
	{name: "S1 empty ports", in: svc("ports: []\n"),
		want: []string{
			"-:5:1: Service default/s: spec.ports: required value",
		}},
	{name: "S2 unnamed port among two", in: svc("ports:\n- {name: a, port: 80}\n- {port: 81}\n"),
		want: []string{
			"-:8:5: Service default/s: spec.ports[1].name: required value",
		}},
	{name: "S3 port name", in: svc("ports: [{name: HTTP, port: 80}]\n"),
		want: []string{
			"-:6:18: Service default/s: spec.ports[0].name: invalid value \"HTTP\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
		}},
	{name: "S4 duplicate port name", in: svc("ports:\n- {name: web, port: 80}\n- {name: web, port: 81}\n"),
		want: []string{
			"-:8:12: Service default/s: spec.ports[1].name: duplicate value \"web\"",
		}},
	{name: "S5 port zero", in: svc("ports: [{port: 0}]\n"),
		want: []string{
			"-:6:18: Service default/s: spec.ports[0].port: invalid value 0: must be between 1 and 65535, inclusive",
		}},
	{name: "S5 port too large", in: svc("ports: [{port: 70000}]\n"),
		want: []string{
			"-:6:18: Service default/s: spec.ports[0].port: invalid value 70000: must be between 1 and 65535, inclusive",
		}},
	{name: "S5 port quoted", in: svc("ports: [{port: \"80\"}]\n"),
		want: []string{
			"-:6:18: Service default/s: spec.ports[0].port: invalid value \"80\": must be an integer",
		}},
	{name: "S5 port missing", in: svc("ports: [{name: web}]\n"),
		want: []string{
			"-:6:11: Service default/s: spec.ports[0].port: required value",
		}},
	{name: "S6 protocol", in: svc("ports: [{port: 80, protocol: FOO}]\n"),
		want: []string{
			"-:6:32: Service default/s: spec.ports[0].protocol: unsupported value \"FOO\": must be one of \"TCP\", \"UDP\", \"SCTP\"",
		}},
	{name: "S6 protocol is case-sensitive", in: svc("ports: [{port: 80, protocol: tcp}]\n"),
		want: []string{
			"-:6:32: Service default/s: spec.ports[0].protocol: unsupported value \"tcp\": must be one of \"TCP\", \"UDP\", \"SCTP\"",
		}},
	{name: "S7 targetPort too large", in: svc("ports: [{port: 80, targetPort: 70000}]\n"),
		want: []string{
			"-:6:34: Service default/s: spec.ports[0].targetPort: invalid value 70000: must be a port number between 1 and 65535, inclusive, or an IANA_SVC_NAME (at most 15 characters, a-z, 0-9 and '-', at least one letter, no leading, trailing or double '-')",
		}},
	{name: "S7 targetPort quoted number", in: svc("ports: [{port: 80, targetPort: \"8080\"}]\n"),
		want: []string{
			"-:6:34: Service default/s: spec.ports[0].targetPort: invalid value \"8080\": must be a port number between 1 and 65535, inclusive, or an IANA_SVC_NAME (at most 15 characters, a-z, 0-9 and '-', at least one letter, no leading, trailing or double '-')",
		}},
	{name: "S7 targetPort name with leading dash", in: svc("ports: [{port: 80, targetPort: -http}]\n"),
		want: []string{
			"-:6:34: Service default/s: spec.ports[0].targetPort: invalid value \"-http\": must be a port number between 1 and 65535, inclusive, or an IANA_SVC_NAME (at most 15 characters, a-z, 0-9 and '-', at least one letter, no leading, trailing or double '-')",
		}},
	{name: "S7 targetPort boolean", in: svc("ports: [{port: 80, targetPort: true}]\n"),
		want: []string{
			"-:6:34: Service default/s: spec.ports[0].targetPort: invalid value true: must be an integer or a string",
		}},
	{name: "S8 appProtocol", in: svc("ports: [{port: 80, appProtocol: \"a b\"}]\n"),
		want: []string{
			"-:6:35: Service default/s: spec.ports[0].appProtocol: invalid value \"a b\": must be a qualified name: an optional DNS subdomain prefix (at most 253 characters) and '/', then at most 63 characters of [A-Za-z0-9-_.] starting and ending with a letter or digit",
		}},
	{name: "S9 duplicate protocol and port", in: svc("ports:\n- {name: a, port: 80}\n- {name: b, port: 80, protocol: TCP}\n"),
		want: []string{
			"-:8:5: Service default/s: spec.ports[1]: duplicate value {TCP, 80}",
		}},
	{name: "S10 duplicate protocol and nodePort", in: svc("type: NodePort\nports:\n- {name: a, port: 80, nodePort: 30080}\n- {name: b, port: 80, protocol: UDP, nodePort: 30080}\n- {name: c, port: 81, protocol: UDP, nodePort: 30080}\n"),
		want: []string{
			"-:10:50: Service default/s: spec.ports[2].nodePort: invalid value 30080: provided port is already allocated",
		}},
	{name: "S11 nodePort on ClusterIP", in: svc("ports: [{port: 80, nodePort: 30080}]\n"),
		want: []string{
			"-:6:32: Service default/s: spec.ports[0].nodePort: forbidden: may not be used when `type` is 'ClusterIP'",
		}},
	{name: "S13 one nodePort for two ports", in: svc("type: NodePort\nports:\n- {name: a, port: 80, nodePort: 30080}\n- {name: b, port: 81, protocol: UDP, nodePort: 30080}\n"),
		want: []string{
			"-:9:50: Service default/s: spec.ports[1].nodePort: invalid value 30080: provided port is already allocated",
		}},
	{name: "S12 nodePort outside the range", in: svc("type: NodePort\nports: [{port: 80, nodePort: 20000}]\n"), opts: Options{NodePortRange: PortRange{30000, 32767}},
		want: []string{
			"-:7:32: Service default/s: spec.ports[0].nodePort: invalid value 20000: provided port is not in the valid range. The range of valid ports is 30000-32767",
		}},
	{name: "S12 nodePort above 65535 without a range", in: svc("type: NodePort\nports: [{port: 80, nodePort: 99999}]\n"),
		want: []string{
			"-:7:32: Service default/s: spec.ports[0].nodePort: invalid value 99999: must be between 1 and 65535, inclusive",
		}},
	{name: "S12 negative nodePort without a range", in: svc("type: NodePort\nports: [{port: 80, nodePort: -1}]\n"),
		want: []string{
			"-:7:32: Service default/s: spec.ports[0].nodePort: invalid value -1: must be between 1 and 65535, inclusive",
		}},
	{name: "S12 requested nodePort 65536 without allocation or range", in: svc("type: LoadBalancer\nallocateLoadBalancerNodePorts: false\nports:\n- {name: a, port: 80}\n- {name: b, port: 81, nodePort: 65536}\n"),
		want: []string{
			"-:10:35: Service default/s: spec.ports[1].nodePort: invalid value 65536: must be between 1 and 65535, inclusive",
		}},
	{name: "S12 nodePort above 65535 outside the range", in: svc("type: NodePort\nports: [{port: 80, nodePort: 70000}]\n"), opts: Options{NodePortRange: PortRange{30000, 32767}},
		want: []string{
			"-:7:32: Service default/s: spec.ports[0].nodePort: invalid value 70000: provided port is not in the valid range. The range of valid ports is 30000-32767",
		}},

	// Session affinity and type.
	{name: "S15 sessionAffinity", in: svc("sessionAffinity: Sticky\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:20: Service default/s: spec.sessionAffinity: unsupported value \"Sticky\": must be one of \"None\", \"ClientIP\"",
		}},
	{name: "S16 timeout zero", in: svc("sessionAffinity: ClientIP\nsessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:54: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: invalid value 0: must be between 1 and 86400, inclusive",
		}},
	{name: "S16 timeout too large", in: svc("sessionAffinity: ClientIP\nsessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:54: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: invalid value 86401: must be between 1 and 86400, inclusive",
		}},
	{name: "S18 type", in: svc("type: Foo\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:9: Service default/s: spec.type: unsupported value \"Foo\": must be one of \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\"",
		}},
	{name: "S19 headless NodePort", in: svc("type: NodePort\nclusterIP: None\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:14: Service default/s: spec.clusterIPs[0]: invalid value \"None\": may not be set to 'None' for NodePort services",
		}},
	{name: "S20 ExternalName without externalName", in: svc("type: ExternalName\n"),
		want: []string{
			"-:5:1: Service default/s: spec.externalName: required value",
		}},
	{name: "S20 ExternalName not a subdomain", in: svc("type: ExternalName\nexternalName: Foo_Bar.example.com\n"),
		want: []string{
			"-:7:17: Service default/s: spec.externalName: invalid value \"Foo_Bar.example.com\": must be a lowercase RFC 1123 subdomain: at most 253 characters, a-z, 0-9, '-' and '.', each part starting and ending with a letter or digit",
		}},
	{name: "S20 ExternalName with clusterIP and families", in: svc("type: ExternalName\nexternalName: db.example.com\nclusterIP: 10.0.0.10\nipFamilies: [IPv4]\n"),
		want: []string{
			"-:8:14: Service default/s: spec.clusterIPs: forbidden: may not be set for ExternalName services",
			"-:9:15: Service default/s: spec.ipFamilies: forbidden: may not be set for ExternalName services",
		}},

	// Cluster IPs and families.
	{name: "S21 clusterIPs[0] differs from clusterIP", in: svc("clusterIP: 10.0.0.10\nclusterIPs: [10.0.0.11]\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:15: Service default/s: spec.clusterIPs: invalid value [\"10.0.0.11\"]: first value must match `clusterIP`",
		}},
	{name: "S21 clusterIPs without clusterIP", in: svc("clusterIPs: [10.0.0.11]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:15: Service default/s: spec.clusterIPs: invalid value [\"10.0.0.11\"]: must be empty when `clusterIP` is not specified",
		}},
	{name: "S22 ipFamilies value and duplicate", in: svc("ipFamilies: [IPv5, IPv4, IPv4]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:16: Service default/s: spec.ipFamilies[0]: unsupported value \"IPv5\": must be one of \"IPv4\", \"IPv6\"",
			"-:6:28: Service default/s: spec.ipFamilies[2]: duplicate value \"IPv4\"",
		}},
	{name: "S23 ipFamilyPolicy", in: svc("ipFamilyPolicy: DualStack\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:19: Service default/s: spec.ipFamilyPolicy: unsupported value \"DualStack\": must be one of \"SingleStack\", \"PreferDualStack\", \"RequireDualStack\"",
		}},
	{name: "S24 clusterIP out of range octet", in: svc("clusterIP: 10.0.0.256\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:14: Service default/s: spec.clusterIPs[0]: invalid value \"10.0.0.256\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
		}},
	{name: "S24 clusterIP with leading zero", in: svc("clusterIP: 010.0.0.1\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:14: Service default/s: spec.clusterIPs[0]: invalid value \"010.0.0.1\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
		}},
	{name: "S24 two IPs of one family", in: svc("clusterIP: 10.0.0.10\nclusterIPs: [10.0.0.10, 10.0.0.11]\nipFamilyPolicy: PreferDualStack\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:15: Service default/s: spec.clusterIPs: invalid value [\"10.0.0.10\", \"10.0.0.11\"]: may specify no more than one IP for each IP family",
		}},
	{name: "S24 IP family differs from ipFamilies", in: svc("clusterIP: 10.0.0.10\nipFamilies: [IPv6]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:14: Service default/s: spec.clusterIPs[0]: invalid value \"10.0.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`",
		}},
	{name: "S24 None not alone", in: svc("clusterIP: None\nclusterIPs: [None, 10.0.0.1]\nipFamilyPolicy: PreferDualStack\n"),
		want: []string{
			"-:7:15: Service default/s: spec.clusterIPs: invalid value [\"None\", \"10.0.0.1\"]: 'None' must be the first and only value",
		}},
	{name: "S25 SingleStack with two IPs", in: svc("clusterIP: 10.0.0.10\nclusterIPs: [10.0.0.10, \"2001:db8::10\"]\nipFamilyPolicy: SingleStack\nports: [{port: 80}]\n"),
		want: []string{
			"-:8:19: Service default/s: spec.ipFamilyPolicy: invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
		}},
	{name: "S27 clusterIP outside the service CIDRs", in: svc("clusterIP: 10.1.0.10\nports: [{port: 80}]\n"), opts: Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
		want: []string{
			"-:6:14: Service default/s: spec.clusterIPs: invalid value [\"10.1.0.10\"]: failed to allocate IP 10.1.0.10: not in any service CIDR (10.0.0.0/24)",
		}},

	// External IPs and load-balancer fields.
	{name: "S28 externalIP loopback", in: svc("externalIPs: [127.0.0.1]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:17: Service default/s: spec.externalIPs[0]: invalid value \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
		}},
	{name: "S28 externalIP invalid", in: svc("externalIPs: [192.0.2.300]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:17: Service default/s: spec.externalIPs[0]: invalid value \"192.0.2.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
		}},
	{name: "S28 externalIP IPv4-mapped", in: svc("externalIPs: [\"::ffff:192.0.2.1\"]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:17: Service default/s: spec.externalIPs[0]: invalid value \"::ffff:192.0.2.1\": must not be an IPv4-mapped IPv6 address",
		}},
	{name: "S28 externalIP link-local", in: svc("externalIPs: [\"fe80::1\"]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:17: Service default/s: spec.externalIPs[0]: invalid value \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
		}},
	{name: "S29 source ranges on ClusterIP", in: svc("loadBalancerSourceRanges: [192.0.2.0/24]\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:29: Service default/s: spec.LoadBalancerSourceRanges: forbidden: may only be used when `type` is 'LoadBalancer'",
		}},
	{name: "S30 source range with host bits", in: svc("type: LoadBalancer\nloadBalancerSourceRanges: [\" 192.0.2.0/24 \", 192.0.2.1/24, nonsense]\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:48: Service default/s: spec.LoadBalancerSourceRanges[1]: invalid value \"192.0.2.1/24\": must not have bits set beyond the prefix length (192.0.2.0/24)",
			"-:7:62: Service default/s: spec.LoadBalancerSourceRanges[2]: invalid value \"nonsense\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
		}},
	{name: "S31 source-ranges annotation on NodePort", in: strings.Replace(svc("type: NodePort\nports: [{port: 80}]\n"), "name: s", "name: s\n  annotations: {service.beta.kubernetes.io/load-balancer-source-ranges: \"\"}", 1),
		want: []string{
			"-:5:73: Service default/s: metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: forbidden: may only be used when `type` is 'LoadBalancer'",
		}},
	{name: "S31 source-ranges annotation value", in: strings.Replace(svc("type: LoadBalancer\nports: [{port: 80}]\n"), "name: s", "name: s\n  annotations: {service.beta.kubernetes.io/load-balancer-source-ranges: \"192.0.2.0/24, 198.51.100.7/24\"}", 1),
		want: []string{
			"-:5:73: Service default/s: metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: invalid value \"198.51.100.7/24\": must not have bits set beyond the prefix length (198.51.100.0/24)",
		}},
	{name: "S32 allocateLoadBalancerNodePorts on NodePort", in: svc("type: NodePort\nallocateLoadBalancerNodePorts: false\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:34: Service default/s: spec.allocateLoadBalancerNodePorts: forbidden: may only be used when `type` is 'LoadBalancer'",
		}},
	{name: "S33 loadBalancerClass on ClusterIP and invalid on LB", in: svc("loadBalancerClass: example.com/lb\nports: [{port: 80}]\n") + "---\n" + svc("type: LoadBalancer\nloadBalancerClass: \"/lb\"\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:22: Service default/s: spec.loadBalancerClass: forbidden: may only be used when `type` is 'LoadBalancer'",
			"-:15:22: Service default/s: spec.loadBalancerClass: invalid value \"/lb\": must be a qualified name: an optional DNS subdomain prefix (at most 253 characters) and '/', then at most 63 characters of [A-Za-z0-9-_.] starting and ending with a letter or digit",
		}},
	{name: "S34 externalTrafficPolicy on ClusterIP", in: svc("externalTrafficPolicy: Local\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:26: Service default/s: spec.externalTrafficPolicy: invalid value \"Local\": may only be set for externally-accessible services",
		}},
	{name: "S34 externalTrafficPolicy value", in: svc("type: NodePort\nexternalTrafficPolicy: Global\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:26: Service default/s: spec.externalTrafficPolicy: unsupported value \"Global\": must be one of \"Cluster\", \"Local\"",
		}},
	{name: "S35 healthCheckNodePort with Cluster", in: svc("type: LoadBalancer\nhealthCheckNodePort: 31000\nports: [{port: 80}]\n"),
		want: []string{
			"-:7:24: Service default/s: spec.healthCheckNodePort: invalid value 31000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
		}},
	{name: "S36 internalTrafficPolicy", in: svc("internalTrafficPolicy: Node\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:26: Service default/s: spec.internalTrafficPolicy: unsupported value \"Node\": must be one of \"Cluster\", \"Local\"",
		}},
	{name: "S37 trafficDistribution", in: svc("trafficDistribution: Nearest\nports: [{port: 80}]\n"),
		want: []string{
			"-:6:24: Service default/s: spec.trafficDistribution: unsupported value \"Nearest\": must be one of \"PreferClose\", \"PreferSameZone\", \"PreferSameNode\"",
		}},

	{name: "S38 topology annotations disagree", in: strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  annotations: {service.kubernetes.io/topology-mode: Auto, service.kubernetes.io/topology-aware-hints: Disabled}", 1),
		want: []string{
			"-:5:54: Service default/s: metadata.annotations[service.kubernetes.io/topology-mode]: invalid value \"Auto\": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
		}},

	// EndpointSlice.
	{name: "E1 addressType missing", in: slice("endpoints: [{addresses: [192.0.2.1]}]\n"),
		want: []string{
			"-:1:1: EndpointSlice default/e: addressType: required value",
		}},
	{name: "E1 addressType IP", in: slice("addressType: IP\n"),
		want: []string{
			"-:5:14: EndpointSlice default/e: addressType: unsupported value \"IP\": must be one of \"IPv4\", \"IPv6\", \"FQDN\"",
		}},
	{name: "E2 more than 1000 endpoints", in: slice("addressType: IPv4\nendpoints:\n" + repeat(1001, func(i int) string { return fmt.Sprintf("- addresses: [10.0.%d.%d]", i/250, i%250+1) })),
		want: []string{
			"-:7:1: EndpointSlice default/e: endpoints: too many: 1001: must have at most 1000 items",
		}},
	{name: "E2 more than 1000 endpoints skip the endpoints' checks", in: slice("addressType: IPv4\nendpoints:\n- {addresses: [10.0.0.1], hostname: A_B}\n" +
		repeat(1000, func(i int) string { return fmt.Sprintf("- addresses: [10.1.%d.%d]", i/250, i%250+1) })),
		want: []string{
			"-:7:1: EndpointSlice default/e: endpoints: too many: 1001: must have at most 1000 items",
		}},
	{name: "E12 more than 20000 ports skip the ports' checks", in: slice("addressType: IPv4\nports:\n- {name: HTTP, protocol: tcp}\n" +
		repeat(20000, func(i int) string { return fmt.Sprintf("- {name: p%d, port: %d}", i, i%65535+1) })),
		want: []string{
			"-:7:1: EndpointSlice default/e: ports: too many: 20001: must have at most 20000 items",
		}},
	{name: "E3 no addresses", in: slice("addressType: IPv4\nendpoints:\n- addresses: []\n- conditions: {ready: true}\n"),
		want: []string{
			"-:7:3: EndpointSlice default/e: endpoints[0].addresses: required value",
			"-:8:3: EndpointSlice default/e: endpoints[1].addresses: required value",
		}},
	{name: "E3 more than 100 addresses", in: slice("addressType: IPv4\nendpoints:\n- addresses:\n" + repeat(101, func(i int) string { return fmt.Sprintf("  - 10.0.0.%d", i+1) })),
		want: []string{
			"-:8:3: EndpointSlice default/e: endpoints[0].addresses: too many: 101: must have at most 100 items",
		}},
	{name: "E4 IPv6 address in an IPv4 slice", in: slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.1, \"2001:db8::1\"]}]\n"),
		want: []string{
			"-:6:37: EndpointSlice default/e: endpoints[0].addresses: invalid value \"2001:db8::1\": must be an IPv4 address",
		}},
	{name: "E4 invalid and special addresses", in: slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.01, 127.0.0.1, 0.0.0.0, 169.254.0.1, 224.0.0.1]}]\n"),
		want: []string{
			"-:6:26: EndpointSlice default/e: endpoints[0].addresses[0]: invalid value \"192.0.2.01\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
			"-:6:38: EndpointSlice default/e: endpoints[0].addresses[1]: invalid value \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
			"-:6:49: EndpointSlice default/e: endpoints[0].addresses[2]: invalid value \"0.0.0.0\": may not be unspecified (0.0.0.0)",
			"-:6:58: EndpointSlice default/e: endpoints[0].addresses[3]: invalid value \"169.254.0.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
			"-:6:71: EndpointSlice default/e: endpoints[0].addresses[4]: invalid value \"224.0.0.1\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
		}},
	{name: "E5 non-canonical IPv6", in: slice("addressType: IPv6\nendpoints: [{addresses: [\"2001:db8:0:0::1\", \"2001:DB8::2\", 192.0.2.1]}]\n"),
		want: []string{
			"-:6:26: EndpointSlice default/e: endpoints[0].addresses[0]: invalid value \"2001:db8:0:0::1\": must be in canonical form (\"2001:db8::1\")",
			"-:6:45: EndpointSlice default/e: endpoints[0].addresses[1]: invalid value \"2001:DB8::2\": must be in canonical form (\"2001:db8::2\")",
			"-:6:60: EndpointSlice default/e: endpoints[0].addresses: invalid value \"192.0.2.1\": must be an IPv6 address",
		}},
	{name: "E6 FQDN", in: slice("addressType: FQDN\nendpoints: [{addresses: [db, Db.example.com, \"\", db.example.com.]}]\n"),
		want: []string{
			"-:6:26: EndpointSlice default/e: endpoints[0].addresses[0]: invalid value \"db\": must be a fully qualified domain name: a lowercase RFC 1123 subdomain with at least two dot-separated parts of at most 63 characters",
			"-:6:30: EndpointSlice default/e: endpoints[0].addresses[1]: invalid value \"Db.example.com\": must be a fully qualified domain name: a lowercase RFC 1123 subdomain with at least two dot-separated parts of at most 63 characters",
			"-:6:46: EndpointSlice default/e: endpoints[0].addresses[2]: required value",
		}},
	{name: "E7 E8 nodeName and hostname", in: slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.1], nodeName: Node_1, hostname: web.1}]\n"),
		want: []string{
			"-:6:48: EndpointSlice default/e: endpoints[0].nodeName: invalid value \"Node_1\": must be a lowercase RFC 1123 subdomain: at most 253 characters, a-z, 0-9, '-' and '.', each part starting and ending with a letter or digit",
			"-:6:66: EndpointSlice default/e: endpoints[0].hostname: invalid value \"web.1\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
		}},
	{name: "E10 zone hints", in: slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.1], hints: {forZones: [{name: zone-a}, {name: zone-a}, {name: \"zone b\"}]}}]\n"),
		want: []string{
			"-:6:80: EndpointSlice default/e: endpoints[0].hints.forZones[1].name: duplicate value \"zone-a\"",
			"-:6:96: EndpointSlice default/e: endpoints[0].hints.forZones[2].name: invalid value \"zone b\": must be a valid label value: empty or at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit",
		}},
	{name: "E11 too many node hints", in: slice("addressType: IPv4\nendpoints: [{addresses: [192.0.2.1], hints: {forNodes: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}, {name: f}, {name: g}, {name: h}, {name: i}]}}]\n"),
		want: []string{
			"-:6:56: EndpointSlice default/e: endpoints[0].hints.forNodes: too many: 9: must have at most 8 items",
		}},
	{name: "E13 unnamed ports collide", in: slice("addressType: IPv4\nports: [{port: 80}, {port: 81, protocol: UDP}]\n"),
		want: []string{
			"-:6:21: EndpointSlice default/e: ports[1].name: duplicate value \"\"",
		}},
	{name: "E13 E14 E15 port name, protocol, appProtocol", in: slice("addressType: IPv4\nports: [{name: Web, port: 80}, {name: b, protocol: \"\"}, {name: c, protocol: udp}, {name: d, appProtocol: \"-x\"}]\n"),
		want: []string{
			"-:6:16: EndpointSlice default/e: ports[0].name: invalid value \"Web\": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit",
			"-:6:52: EndpointSlice default/e: ports[1].protocol: unsupported value \"\": must be one of \"TCP\", \"UDP\", \"SCTP\"",
			"-:6:77: EndpointSlice default/e: ports[2].protocol: unsupported value \"udp\": must be one of \"TCP\", \"UDP\", \"SCTP\"",
			"-:6:106: EndpointSlice default/e: ports[3].appProtocol: invalid value \"-x\": must be a qualified name: an optional DNS subdomain prefix (at most 253 characters) and '/', then at most 63 characters of [A-Za-z0-9-_.] starting and ending with a letter or digit",
		}},

	// Structure.
	{name: "kind missing", in: "apiVersion: v1\nmetadata: {name: s}\n",
		want: []string{
			"-:1:1: kind: required value: every document needs apiVersion and kind",
		}},
	{name: "apiVersion missing", in: "kind: Service\nmetadata: {name: s}\n",
		want: []string{
			"-:1:1: apiVersion: required value: every document needs apiVersion and kind",
		}},
	{name: "apiVersion wrong for the kind", in: "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: e}\naddressType: IPv4\n",
		want: []string{
			"-:1:13: EndpointSlice default/e: apiVersion: unsupported value \"discovery.k8s.io/v1beta1\": EndpointSlice must be \"discovery.k8s.io/v1\"" +
				" (kubectl prints v1beta1 slices from clusters of 1.20 and older, and API servers since 1.25 no longer serve it: dump the slices " +
				"of a newer cluster, or convert them: topology's kubernetes.io/hostname is nodeName, topology.kubernetes.io/zone is zone)",
		}},
	{name: "ServiceCIDR ranges", in: "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: c}\nspec:\n  cidrs: [10.96.0.1/12, 10.43.0.0/16, x]\n",
		want: []string{
			"-:5:10: ServiceCIDR c: spec.cidrs: too many: 3: must have at most 2 items",
		}},
	{name: "ServiceCIDR forms and families", in: "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: c}\nspec:\n  cidrs: [10.96.0.1/12, \"2001:db8::/64\"]\n" +
		"---\napiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: d}\nspec:\n  cidrs: [10.43.0.0/16, 10.44.0.0/16]\n" +
		"---\napiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: e}\nspec:\n  cidrs: [nope]\n",
		want: []string{
			`-:5:11: ServiceCIDR c: spec.cidrs[0]: invalid value "10.96.0.1/12": must be in canonical form ("10.96.0.0/12")`,
			`-:11:25: ServiceCIDR d: spec.cidrs[1]: invalid value "10.44.0.0/16": may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64`,
			`-:17:11: ServiceCIDR e: spec.cidrs[0]: invalid value "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
		}},
	{name: "ServiceCIDR without ranges, and a mapped one", in: "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: c}\nspec: {}\n" +
		"---\napiVersion: networking.k8s.io/v1beta1\nkind: ServiceCIDR\nmetadata: {name: d}\nspec:\n  cidrs: [\"::ffff:10.96.0.0/108\"]\n",
		want: []string{
			"-:4:1: ServiceCIDR c: spec.cidrs: required value: at least one CIDR required",
			`-:10:11: ServiceCIDR d: spec.cidrs[0]: invalid value "::ffff:10.96.0.0/108": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
		}},
	{name: "top-level scalar", in: "just some text\n",
		want: []string{
			"-:1:1: document is a string, not a Kubernetes object (a mapping with apiVersion and kind)",
		}},
	{name: "top-level list", in: "- apiVersion: v1\n  kind: Service\n",
		want: []string{
			"-:1:1: document is a list, not a Kubernetes object (a mapping with apiVersion and kind)",
		}},
	{name: "YAML syntax error after a valid document", in: svc("ports: [{port: 80}]\n") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: t\n",
		want: []string{
			"-:10:11: YAML syntax error: did not find expected ',' or '}' in the flow mapping that starts here: close it, or separate its entries with commas",
		}},
	{name: "spec not a mapping", in: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: [80]\n",
		want: []string{
			"-:4:7: Service default/s: spec: must be an object, not a list",
		}},
	{name: "ports not a list", in: svc("ports: 80\n"),
		want: []string{
			"-:6:10: Service default/s: spec.ports: invalid value 80: must be a list",
		}},
	{name: "List item not an object", in: "apiVersion: v1\nkind: List\nitems:\n- 42\n",
		want: []string{
			"-:4:3: List: items: invalid value: every item must be an object",
		}},
	{name: "unknown field in strict mode", in: svc("ports: [{port: 80, targetport: 8080}]\nfoo: 1\n"), opts: Options{Strict: true},
		want: []string{
			`-:6:22: Service default/s: spec.ports[0].targetport: unknown field "spec.ports[0].targetport"`,
			`-:7:3: Service default/s: spec.foo: unknown field "spec.foo"`,
		}},
	{name: "duplicate key in strict mode", in: svc("type: NodePort\ntype: ClusterIP\nports: [{port: 80}]\n"), opts: Options{Strict: true},
		want: []string{
			"-:7:3: Service default/s: spec.type: duplicate field \"type\"",
		}},
	{name: "KubeProxyConfiguration mode", in: "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\niptables: {masqueradeBit: 32}\n",
		want: []string{
			"-:3:7: KubeProxyConfiguration: mode: unsupported value \"userspace\": must be one of \"iptables\", \"ipvs\", \"nftables\" or blank (iptables): kube-proxy on Linux refuses another",
			"-:4:27: KubeProxyConfiguration: iptables.masqueradeBit: invalid value 32: must be between 0 and 31, inclusive",
		}},
	{name: "Node without a name", in: "apiVersion: v1\nkind: Node\nmetadata: {labels: {a: b}}\n",
		want: []string{
			"-:3:1: Node (no name): metadata.name: required value",
		}},
}

func TestLoadInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			in, diags := Load([]string{"-"}, strings.NewReader(tc.in), tc.opts)
			var got []string
			for _, d := range diags {
				got = append(got, d.Error())
			}
			if *printGot {
				fmt.Printf("\t\tname: %q\n", tc.name)
				for _, g := range got {
					fmt.Printf("\t\t\t%q,\n", g)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diags.Err() == nil {
				t.Errorf("no error")
			}
			_ = in
		})
	}
}

// TestJSONSyntaxErrors checks where JSON syntax errors are reported, in a
// .json file and on standard input (read as JSON when it starts with '{'
// or '[', unless it is YAML in flow style), with the fast parsers and
// without: at the offending byte, or just past the last byte of input
// that ends inside a value. The wanted diagnostics follow the file's
// name; stdin is nil when standard input wants the same as the file.
func TestJSONSyntaxErrors(t *testing.T) {
	const service = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}}`
	eoi := "JSON syntax error: unexpected end of input"
	for _, tc := range []struct {
		name  string
		in    string
		file  []string
		stdin []string
	}{
		{"truncated object", service[:88],
			[]string{":1:89: " + eoi}, nil},
		{"truncated in a key", service[:20],
			[]string{":1:21: " + eoi}, nil},
		{"truncated in a string", service[:53],
			[]string{":1:54: " + eoi}, nil},
		{"truncated after a line break", "{\n    \"apiVersion\": \"v1\",\n",
			[]string{":3:1: " + eoi}, nil},
		{"truncated kubectl List", "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n            \"apiVersion\": \"v1\",\n            \"kind\": \"Serv",
			[]string{":6:26: " + eoi}, nil},
		{"truncated second object", service + "\n" + service[:30],
			[]string{":2:31: " + eoi}, nil},
		{"truncated after spaces", "  {\"a\": 1,\n   ",
			[]string{":2:4: " + eoi}, nil},
		{"truncated list", "[" + service[:40],
			[]string{":1:42: " + eoi}, nil},
		{"stray character", "{\"apiVersion\":\"v1\",\n\"kind\":\"Service\" x}\n",
			[]string{":2:18: JSON syntax error: invalid character 'x' after object key:value pair"}, nil},
		{"missing comma", "{\"apiVersion\":\"v1\"\n\"kind\":\"Service\"}\n",
			[]string{":2:1: JSON syntax error: invalid character '\"' after object key:value pair"}, nil},
		{"stray character after an object", service + " x\n",
			[]string{":1:93: JSON syntax error: invalid character 'x' looking for beginning of value"}, nil},
		// YAML takes a line break in a double-quoted string.
		{"line break in a string", "{\"a\":\"abc\n\"}",
			[]string{":1:10: JSON syntax error: invalid character '\\n' in string literal"},
			[]string{":1:1: apiVersion: required value: every document needs apiVersion and kind", ":1:1: kind: required value: every document needs apiVersion and kind"}},
		// Flow-style YAML takes a trailing comma: standard input reads it.
		{"trailing comma", service[:len(service)-1] + ",}\n",
			[]string{":1:92: JSON syntax error: invalid character '}' looking for beginning of object key string"}, []string{}},
		{"trailing comma in a list", "{\"apiVersion\":\"v1\",\n \"kind\":\"Service\",\"metadata\":{\"name\":\"a\"},\"spec\":{\"ports\":[{\"port\":80},]}}",
			[]string{":2:72: JSON syntax error: invalid character ']' looking for beginning of value"}, []string{}},
		{"flow-style YAML", "{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}}\n",
			[]string{":1:2: JSON syntax error: invalid character 'a' looking for beginning of object key string"}, []string{}},
		{"flow-style YAML, not closed", "{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}\n",
			[]string{":1:2: JSON syntax error: invalid character 'a' looking for beginning of object key string"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.json")
			if err := os.WriteFile(file, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			stdin := tc.stdin
			if stdin == nil {
				stdin = tc.file
			}
			prefix := func(name string, diags []string) []string {
				var out []string
				for _, d := range diags {
					out = append(out, name+d)
				}
				return out
			}
			defer func(on bool) { fastYAMLEnabled = on }(fastYAMLEnabled)
			for _, fast := range []bool{true, false} {
				fastYAMLEnabled = fast
				_, diags := Load([]string{file}, nil, Options{})
				if diff := cmp.Diff(prefix(file, tc.file), diagStrings(diags)); diff != "" {
					t.Errorf("file, fast %v: diagnostics (-want +got):\n%s", fast, diff)
				}
				_, diags = Load([]string{"-"}, strings.NewReader(tc.in), Options{})
				if diff := cmp.Diff(prefix("-", stdin), diagStrings(diags)); diff != "" {
					t.Errorf("stdin, fast %v: diagnostics (-want +got):\n%s", fast, diff)
				}
			}
		})
	}
}

// TestYAMLSyntaxErrorColumns checks the columns found for the YAML
// scanner's errors at a character, of which the decoder names the line
// alone (and none on the first line): where one character of the line may
// be it, and not where two may be; the opening bracket of the collection
// of the parser's errors in flow style (see flowOpenAt); and the lines and
// columns found for those of the parser in block style (see
// parserErrorAt).
func TestYAMLSyntaxErrorColumns(t *testing.T) {
	const head = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"mapping value under a scalar", head + "   namespace: x\n",
			"-:5:13: YAML syntax error: mapping values are not allowed in this context"},
		{"mapping value on the first line", "a: b: c\n",
			"-:1: YAML syntax error: mapping values are not allowed in this context"},
		{"mapping value, one of two on the line", head + "   namespace: x: y\n",
			"-:5: YAML syntax error: mapping values are not allowed in this context"},
		{"mapping value, a colon in a plain scalar beside it", head + "   url: http://x\n",
			"-:5:7: YAML syntax error: mapping values are not allowed in this context"},
		{"mapping value at the end", head + "   namespace:",
			"-:5:13: YAML syntax error: mapping values are not allowed in this context"},
		{"block sequence entry", head + "  labels: - a\n",
			"-:5:11: YAML syntax error: block sequence entries are not allowed in this context"},
		{"mapping key", head + "  labels: ? a\n",
			"-:5:11: YAML syntax error: mapping keys are not allowed in this context"},
		{"reserved character", head + "  namespace: @x\n",
			"-:5:14: YAML syntax error: found character that cannot start any token"},
		{"reserved character on the first line", "`a: b\n",
			"-:1:1: YAML syntax error: found character that cannot start any token"},
		{"reserved character, one of two on the line", head + "  namespace: @x # @\n",
			"-:5: YAML syntax error: found character that cannot start any token"},
		{"block scalar indicator in flow style", head + "  labels: {a: |}\n",
			"-:5:15: YAML syntax error: found character that cannot start any token"},
		// The scanner counts LS as a line break: its lines are not the
		// text's, and the decoder's line (3) is kept as it is.
		{"a line break the scanner counts", "# x\u2028y\n" + head + "   namespace: x\n",
			"-:3: YAML syntax error: mapping values are not allowed in this context"},
		// The parser's errors in flow style name the collection's line:
		// its opening bracket is found there.
		{"flow mapping not closed", head + "  labels: {a: b\n",
			"-:5:11: YAML syntax error: did not find expected ',' or '}' in the flow mapping that starts here: close it, or separate its entries with commas"},
		{"flow mapping not closed after a closed one and a quoted brace", head + "  labels: {a: b}\n  annotations: {x: \"}\", y: '{'\n",
			"-:6:16: YAML syntax error: did not find expected ',' or '}' in the flow mapping that starts here: close it, or separate its entries with commas"},
		{"flow sequence not closed, with a closed mapping in it", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports: [{port: 80}, {port: 81} # [\n",
			"-:5:10: YAML syntax error: did not find expected ',' or ']' in the flow sequence that starts here: close it, or separate its entries with commas"},
		{"a k3s placeholder", head + "spec:\n  clusterIP: %{CLUSTER_DNS}%\n",
			"-:6:14: YAML syntax error: found character that cannot start any token; the text around it holds \"%{\": is it a template (k3s's %{VAR}%, say)? Substitute its variables first"},
		{"flow mapping whose brackets the line closes", head + "spec:\n  clusterIP: {{ pillar['ip'] }}\n",
			"-:6:14: YAML syntax error: did not find expected ',' or '}'; the text around it holds \"{{\": is it a template (a Helm chart's, say)? Render it first (helm template, say)"},
		// The block parser's errors name the construct's line; the line
		// at which the text stops parsing is found.
		{"a key indented less than its mapping", head + "spec:\n  ports:\n  - port: 80\n   name: x\n",
			"-:8:4: YAML syntax error: did not find expected key"},
		{"a key indented less, on the reported line", "a:\n  b: 1\n c: 2\n",
			"-:3:2: YAML syntax error: did not find expected key"},
		{"a key after a sequence at its indentation", "a:\n  - b\n  x: 1\n",
			"-:3:3: YAML syntax error: did not find expected '-' indicator"},
		{"a misindented key in an item of a List", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n   namespace: b\n",
			"-:8:4: YAML syntax error: did not find expected key"},
		{"a mapping for a key", "a:\n  {b: c}: 1\n",
			"-:2:3: YAML syntax error: invalid map key: !!map"},
		{"a sequence for a key", "a:\n  x: 1\n  [b]: 1\n",
			"-:3:3: YAML syntax error: invalid map key: !!seq"},
		{"a template's value", "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n",
			`-:4:9: YAML syntax error: invalid map key: !!map; the text around it holds "{{": is it a template (a Helm chart's, say)? Render it first (helm template, say)`},
		{"a Helm template's first line", "{{- if .Values.enabled -}}\napiVersion: v1\nkind: Service\n",
			`-:1:1: YAML syntax error: did not find expected node content; the text around it holds "{{": is it a template (a Helm chart's, say)? Render it first (helm template, say)`},
		{"a template", head + "  labels:\n{{ include \"labels\" . }}\n",
			`-:6:1: YAML syntax error: could not find expected ':'; the text around it holds "{{": is it a template (a Helm chart's, say)? Render it first (helm template, say)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
			if diff := cmp.Diff([]string{tc.want}, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTemplateValueHint checks the hint added to an error about a value
// (invalid or unsupported) that holds "{{" or a shell variable, and that a
// valid value holding either gets none.
func TestTemplateValueHint(t *testing.T) {
	const helm = ` (the value holds "{{": is the file a template, a Helm chart's, say? Render it first: helm template, say)`
	const shell = ` (the value holds a shell variable: is the file a template for envsubst, say? Substitute the variables first)`
	for _, tc := range []struct{ name, in, want string }{
		{"an invalid value", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {a: \"{{ x }}\"}\nspec:\n  clusterIP: \"{{ .Values.ip }}\"\n  ports:\n  - port: 80\n",
			`-:7:14: Service default/web: spec.clusterIPs[0]: invalid value "{{ .Values.ip }}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)` + helm},
		{"an unsupported value", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: \"{{ .Values.type }}\"\n  ports:\n  - port: 80\n",
			`-:5:9: Service default/web: spec.type: unsupported value "{{ .Values.type }}": must be one of "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"` + helm},
		{"a shell variable", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {a: \"${X}\"}\nspec:\n  type: LoadBalancer\n  loadBalancerSourceRanges: [\"$CLIENT_IP/32\"]\n  ports:\n  - port: 80\n",
			`-:8:30: Service default/web: spec.LoadBalancerSourceRanges[0]: invalid value "$CLIENT_IP/32": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)` + shell},
		{"a k3s placeholder", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: \"%{CLUSTER_DNS}%\"\n  ports:\n  - port: 53\n",
			`-:5:14: Service default/web: spec.clusterIPs[0]: invalid value "%{CLUSTER_DNS}%": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)` +
				` (the value holds "%{": is the file a template, k3s's say? Substitute its variables first)`},
		{"a shell variable in braces", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ${NS}\nspec:\n  ports:\n  - port: 80\n",
			`-:5:14: Service ${NS}/web: metadata.namespace: invalid value "${NS}": must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit` + shell},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
			if diff := cmp.Diff([]string{tc.want}, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
