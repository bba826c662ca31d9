package load

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

func ptr[T any](v T) *T { return &v }

// TestLoadSeed loads the example Service and EndpointSlice of the
// Kubernetes documentation and checks every field, defaults included.
func TestLoadSeed(t *testing.T) {
	in, diags := Load([]string{"testdata/seed.yaml"}, nil, Options{})
	if len(diags) != 0 {
		t.Fatalf("diagnostics:\n%v", diags)
	}
	want := &api.Input{
		Services: []*api.Service{{
			Pos:        diag.Pos{File: "testdata/seed.yaml", Line: 1, Col: 1},
			APIVersion: "v1",
			Kind:       "Service",
			Metadata:   api.ObjectMeta{Name: "my-service", Namespace: "default"},
			Spec: api.ServiceSpec{
				Type: "ClusterIP",
				Ports: []api.ServicePort{{
					Name:       "http",
					Protocol:   "TCP",
					Port:       80,
					TargetPort: api.IntOrString{IntVal: 9376},
				}},
				SessionAffinity:       "None",
				InternalTrafficPolicy: "Cluster",
				IPFamilyPolicy:        "SingleStack",
			},
		}},
		EndpointSlices: []*api.EndpointSlice{{
			Pos:        diag.Pos{File: "testdata/seed.yaml", Line: 12, Col: 1},
			APIVersion: "discovery.k8s.io/v1",
			Kind:       "EndpointSlice",
			Metadata: api.ObjectMeta{
				Name:      "my-service-1",
				Namespace: "default",
				Labels:    map[string]string{"kubernetes.io/service-name": "my-service"},
			},
			AddressType: "IPv4",
			Endpoints: []api.Endpoint{
				{Addresses: []string{"10.4.5.6"}},
				{Addresses: []string{"10.1.2.3"}},
			},
			Ports: []api.EndpointPort{{
				Name:        ptr("http"),
				Protocol:    ptr("TCP"),
				Port:        ptr[int32](9376),
				AppProtocol: ptr("http"),
			}},
		}},
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

// summary lists the objects of in as "Kind ns/name file:line:col".
func summary(in *api.Input) []string {
	var out []string
	for _, s := range in.Services {
		out = append(out, fmt.Sprintf("Service %s %s", s.ID(), s.Pos))
	}
	for _, s := range in.EndpointSlices {
		out = append(out, fmt.Sprintf("EndpointSlice %s %s", s.ID(), s.Pos))
	}
	for _, n := range in.Nodes {
		out = append(out, fmt.Sprintf("Node %s %s", n.Metadata.Name, n.Pos))
	}
	for _, c := range in.ProxyConfigs {
		out = append(out, fmt.Sprintf("KubeProxyConfiguration %s", c.Pos))
	}
	for _, e := range in.Endpoints {
		out = append(out, fmt.Sprintf("Endpoints %s %s", e.ID(), e.Pos))
	}
	for _, c := range in.ServiceCIDRs {
		out = append(out, fmt.Sprintf("ServiceCIDR %s %s", c.Metadata.Name, c.Pos))
	}
	return out
}

func diagStrings(l diag.List) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.Error())
	}
	return out
}

func TestLoadForms(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonStream := write("stream.json", `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}, "spec": {"ports": [{"port": 80}]}}
`)
	yamlAsJSONName := write("yaml.json", "apiVersion: v1\n")

	for _, tc := range []struct {
		name   string
		paths  []string
		stdin  string
		want   []string
		diags  []string
		errors bool
	}{{
		name:  "multi-document YAML with empty documents and comments",
		paths: []string{"-"},
		stdin: "---\n# a comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\nspec: {ports: [{port: 80}]}\n---\n",
		want: []string{"Service default/a -:4:1", "Service x/b -:10:1"},
	}, {
		name:  "JSON object on stdin",
		paths: []string{"-"},
		stdin: `  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}`,
		want:  []string{"Service default/a -:1:3"},
	}, {
		name:  "flow-style YAML on stdin",
		paths: []string{"-"},
		stdin: "{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}}\n---\n{apiVersion: v1, kind: Service, metadata: {name: b}, spec: {ports: [{port: 80}]}}\n",
		want:  []string{"Service default/a -:1:1", "Service default/b -:3:1"},
	}, {
		name:  "JSON List on stdin",
		paths: []string{"-"},
		stdin: `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}},
  {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "a-1"}, "addressType": "IPv4"}
]}`,
		want: []string{"Service default/a -:2:3", "EndpointSlice default/a-1 -:3:3"},
	}, {
		name:  "JSON stream file",
		paths: []string{jsonStream},
		want:  []string{"Service default/a " + jsonStream + ":1:1", "Service default/b " + jsonStream + ":2:1"},
	}, {
		name:  "kubectl get -o yaml List",
		paths: []string{"testdata/kubectl-list.yaml"},
		want: []string{
			"Service default/kubernetes testdata/kubectl-list.yaml:3:3",
			"Service shop/web testdata/kubectl-list.yaml:48:3",
			"EndpointSlice shop/web-x7k2p testdata/kubectl-list.yaml:88:3",
		},
	}, {
		name:  "ServiceList and EndpointSliceList items without kind",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: a}\n  spec: {ports: [{port: 80}]}\n---\n" +
			"apiVersion: discovery.k8s.io/v1\nkind: EndpointSliceList\nitems:\n- metadata: {name: a-1}\n  addressType: IPv4\n",
		want: []string{"Service default/a -:4:3", "EndpointSlice default/a-1 -:10:3"},
	}, {
		name:  "directory, walked in lexical order",
		paths: []string{"testdata/dir"},
		want: []string{
			"Service default/a testdata/dir/a.json:1:1",
			"Service default/b testdata/dir/b.yaml:1:1",
			"Service default/sub-a testdata/dir/sub/a.yml:1:1",
		},
	}, {
		name:  "paths in the order given",
		paths: []string{"testdata/dir/b.yaml", "-", "testdata/dir/a.json"},
		stdin: "apiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec: {ports: [{port: 80}]}\n",
		want: []string{
			"Service default/b testdata/dir/b.yaml:1:1",
			"Service default/c -:1:1",
			"Service default/a testdata/dir/a.json:1:1",
		},
	}, {
		name:  "other kinds are skipped with a warning",
		paths: []string{"-"},
		stdin: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n",
		want: []string{"Service default/a -:10:1"},
		diags: []string{
			"-:1:1: warning: skipping Deployment shop/web: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR",
			"-:5:1: warning: skipping ConfigMap cm: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR",
		},
	}, {
		name:  "skipped documents of a kind make one warning per file",
		paths: []string{"-", "testdata/dir/b.yaml"},
		stdin: strings.Repeat("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n", 3) +
			strings.Repeat("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n", 2) +
			"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
		want: []string{"Service default/b testdata/dir/b.yaml:1:1"},
		diags: []string{
			"-:1:1: warning: skipping Pod p: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR; so are 2 more Pod documents in this file",
			"-:13:1: warning: skipping ConfigMap cm: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR; so is 1 more ConfigMap document in this file",
			"-:21:1: warning: skipping Secret s: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR",
		},
	}, {
		name:  "kubeadm's kube-proxy ConfigMap",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |-\n" +
			"    apiVersion: kubeproxy.config.k8s.io/v1alpha1\n    kind: KubeProxyConfiguration\n    clusterCIDR: 10.244.0.0/16\n  kubeconfig.conf: x\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: other}\ndata: {config.conf: 'kind: KubeProxyConfiguration'}\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata: {config.conf: 'kind: Other'}\n",
		want: []string{"KubeProxyConfiguration -:6:5"},
		diags: []string{
			"-:11:1: warning: skipping ConfigMap other/kube-proxy: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR",
			"-:19:21: ConfigMap kube-system/kube-proxy: data[config.conf]: invalid value: not a YAML mapping of kind KubeProxyConfiguration",
		},
		errors: true,
	}, {
		name:  "EKS's kube-proxy ConfigMap",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy-config, namespace: kube-system}\ndata:\n  config: |-\n" +
			"    apiVersion: kubeproxy.config.k8s.io/v1alpha1\n    kind: KubeProxyConfiguration\n    clusterCIDR: 10.0.0.0/16\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy-config, namespace: kube-system}\ndata: {config: 'kind: Other'}\n",
		want: []string{"KubeProxyConfiguration -:6:5"},
		diags: []string{
			"-:13:16: ConfigMap kube-system/kube-proxy-config: data[config]: invalid value: not a YAML mapping of kind KubeProxyConfiguration",
		},
		errors: true,
	}, {
		// Its text is YAML decoded apart: its aliases are bounded too.
		name:  "a mapping merged into itself in kube-proxy's ConfigMap",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |\n" +
			"    kind: KubeProxyConfiguration\n    x: &x\n      <<: *x\n      a: y\n",
		diags:  []string{"-:5:16: ConfigMap kube-system/kube-proxy: data[config.conf]: invalid value: YAML aliases and merge keys expand to more than 1000000 values"},
		errors: true,
	}, {
		// The text of a literal block keeps its lines: an error in it is
		// placed where it is in the file; in a quoted string, at the value.
		name:  "an error in kube-proxy's ConfigMap",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |+ # kubeadm's\n" +
			"      apiVersion: kubeproxy.config.k8s.io/v1alpha1\n      kind: KubeProxyConfiguration\n\n      iptables:\n        masqueradeBit: \"14\"\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\n" +
			"data: {config.conf: \"apiVersion: kubeproxy.config.k8s.io/v1alpha1\\nkind: KubeProxyConfiguration\\nmode: x\\n\"}\n",
		diags: []string{
			`-:10:24: KubeProxyConfiguration: iptables.masqueradeBit: invalid value "14": must be an integer`,
			`-:15:21: KubeProxyConfiguration: mode: unsupported value "x": must be one of "iptables", "ipvs", "nftables" or blank (iptables): kube-proxy on Linux refuses another`,
		},
		errors: true,
	}, {
		name:  "Node and KubeProxyConfiguration",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: Node\nmetadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}\n" +
			"spec: {podCIDR: 10.244.1.0/24, taints: []}\nstatus: {addresses: [{type: InternalIP, address: 192.0.2.11}], capacity: {cpu: \"2\"}}\n---\n" +
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nclusterCIDR: 10.244.0.0/16\nconntrack: {maxPerCore: 0}\n",
		want: []string{"Node node-a -:1:1", "KubeProxyConfiguration -:7:1"},
	}, {
		name:   "stdin given twice",
		paths:  []string{"-", "-"},
		stdin:  "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n",
		want:   []string{"Service default/a -:1:1"},
		diags:  []string{`-: standard input ("-") given more than once`},
		errors: true,
	}, {
		name:   "missing file",
		paths:  []string{"testdata/no-such-file.yaml"},
		diags:  []string{"testdata/no-such-file.yaml: cannot read input: stat testdata/no-such-file.yaml: no such file or directory"},
		errors: true,
	}, {
		// A dump's Service may keep fields an older API server allowed;
		// a manifest to create may not.
		name:  "fields a stored Service kept from an older version",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: Service\nmetadata: {name: a, uid: 08c55f35-7572-4c29-8ed4-07e956bf41c3, resourceVersion: \"7\"}\n" +
			"spec: {ports: [{port: 80}], externalTrafficPolicy: Cluster, healthCheckNodePort: 32100}\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: b, resourceVersion: \"7\"}\nspec: {ports: [{port: 80}], externalTrafficPolicy: Cluster}\n",
		want: []string{"Service default/a -:1:1"},
		diags: []string{
			"-:4:52: warning: Service default/a: spec.externalTrafficPolicy: ignored: may only be set for externally-accessible services " +
				"(a create is refused); this object, stored by the API server (it has a uid), kept it from an older version, and kube-proxy ignores it",
			"-:4:82: warning: Service default/a: spec.healthCheckNodePort: ignored: may only be set when `type` is 'LoadBalancer' and " +
				"`externalTrafficPolicy` is 'Local' (a create is refused); this object, stored by the API server (it has a uid), kept it " +
				"from an older version, and kube-proxy ignores it",
			`-:9:52: Service default/b: spec.externalTrafficPolicy: invalid value "Cluster": may only be set for externally-accessible services`,
		},
		errors: true,
	}, {
		name:  "a cluster-scoped kind with a namespace",
		paths: []string{"-"},
		stdin: "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv1, namespace: dev}\n",
		diags: []string{"-:1:1: warning: skipping PersistentVolume pv1: kpc reads Service, EndpointSlice, Endpoints, Node, " +
			"KubeProxyConfiguration and ServiceCIDR"},
	}, {
		name:  "a kustomization",
		paths: []string{"-"},
		stdin: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [service.yaml]\n",
		diags: []string{"-:1:1: warning: skipping Kustomization (no name): kpc reads Service, EndpointSlice, Endpoints, Node, " +
			"KubeProxyConfiguration and ServiceCIDR; the other files are read as they are: to compile what the kustomization " +
			"makes, run kubectl kustomize DIR | kpc compile -f -"},
	}, {
		name:  "kubectl's warning in front of a YAML dump",
		paths: []string{"-"},
		stdin: "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\napiVersion: v1\nkind: List\n" +
			"items:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {ports: [{port: 80}]}\n",
		want: []string{"Service default/a -:5:3"},
		diags: []string{`-:1:1: warning: ignored: line 1 is a warning kubectl printed on its standard error ("Warning: ..."); ` +
			"redirect only its standard output (> FILE, not &> FILE or 2>&1)"},
	}, {
		name:  "kubectl's warning in front of a JSON dump",
		paths: []string{"-"},
		stdin: "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\n{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": []}\n",
		diags: []string{`-:2:1: YAML syntax error: could not find expected ':'; the input starts with a warning kubectl printed on its ` +
			`standard error ("Warning: ..."): redirect only its standard output (> FILE, not &> FILE or 2>&1)`},
		errors: true,
	}, {
		name:  "kubectl's table output",
		paths: []string{"-"},
		stdin: "NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\nkubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   5d\n",
		diags: []string{"-:1:1: document is a string, not a Kubernetes object (a mapping with apiVersion and kind): " +
			"it looks like kubectl's table output; ask kubectl for -o yaml or -o json"},
		errors: true,
	}, {
		name:   "a string",
		paths:  []string{"-"},
		stdin:  "NAME of a thing\n",
		diags:  []string{"-:1:1: document is a string, not a Kubernetes object (a mapping with apiVersion and kind)"},
		errors: true,
	}, {
		name:  "a URL, which kubectl reads",
		paths: []string{"https://example.com/deploy.yaml"},
		diags: []string{"https://example.com/deploy.yaml: cannot read input: kpc reads files, not URLs (it works offline): " +
			"download it first, e.g. curl -fsSL 'https://example.com/deploy.yaml' | kpc compile -f -"},
		errors: true,
	}, {
		name:   "YAML in a .json file is a JSON error",
		paths:  []string{yamlAsJSONName},
		diags:  []string{yamlAsJSONName + ":1:1: JSON syntax error: invalid character 'a' looking for beginning of value"},
		errors: true,
	}, {
		name:  "empty input",
		paths: []string{"-"},
		stdin: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var stdin io.Reader
			if tc.stdin != "" || slicesContains(tc.paths, "-") {
				stdin = strings.NewReader(tc.stdin)
			}
			in, diags := Load(tc.paths, stdin, Options{})
			if diff := cmp.Diff(tc.want, summary(in)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if got := diags.Err() != nil; got != tc.errors {
				t.Errorf("errors: got %v, want %v", got, tc.errors)
			}
		})
	}
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestDefaults checks the API server's defaults, one Service or slice per
// case, by the fields they set.
func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want func(in *api.Input) any
		val  any
	}{
		{"D4 type, D1 sessionAffinity, D8 internalTrafficPolicy, no externalTrafficPolicy",
			svc("ports: [{port: 80}]\n"),
			func(in *api.Input) any {
				s := in.Services[0].Spec
				return []string{s.Type, s.SessionAffinity, s.InternalTrafficPolicy, s.ExternalTrafficPolicy}
			},
			[]string{"ClusterIP", "None", "Cluster", ""}},
		{"empty strings are unset",
			svc("type: \"\"\nsessionAffinity: \"\"\nexternalTrafficPolicy: \"\"\nclusterIP: \"\"\nports: [{port: 80, protocol: \"\", name: \"\", targetPort: \"\", nodePort: 0}]\n"),
			func(in *api.Input) any {
				s := in.Services[0].Spec
				return []any{s.Type, s.SessionAffinity, s.ExternalTrafficPolicy, s.ClusterIP, s.Ports[0]}
			},
			[]any{"ClusterIP", "None", "", "", api.ServicePort{Protocol: "TCP", Port: 80, TargetPort: api.IntOrString{IntVal: 80}}}},
		{"D6 targetPort 0 becomes port", svc("ports: [{port: 8080, targetPort: 0}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.Ports[0].TargetPort },
			api.IntOrString{IntVal: 8080}},
		{"named targetPort", svc("ports: [{port: 80, targetPort: http-alt}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.Ports[0].TargetPort },
			api.IntOrString{IsString: true, StrVal: "http-alt"}},
		{"D2 sessionAffinityConfig dropped with None",
			svc("sessionAffinityConfig: {clientIP: {timeoutSeconds: 99999}}\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.SessionAffinityConfig },
			(*api.SessionAffinityConfig)(nil)},
		{"D3 ClientIP timeout", svc("sessionAffinity: ClientIP\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return *in.Services[0].Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds },
			int32(10800)},
		{"D3 ClientIP explicit timeout", svc("sessionAffinity: ClientIP\nsessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return *in.Services[0].Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds },
			int32(60)},
		{"D7 NodePort externalTrafficPolicy", svc("type: NodePort\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.ExternalTrafficPolicy }, "Cluster"},
		{"D7 ClusterIP with externalIPs", svc("externalIPs: [192.0.2.7]\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.ExternalTrafficPolicy }, "Cluster"},
		{"D7, D9 LoadBalancer", svc("type: LoadBalancer\nports: [{port: 80}]\n"),
			func(in *api.Input) any {
				s := in.Services[0].Spec
				return []any{s.ExternalTrafficPolicy, *s.AllocateLoadBalancerNodePorts}
			},
			[]any{"Cluster", true}},
		{"D8 not on ExternalName", svc("type: ExternalName\nexternalName: db.example.com\n"),
			func(in *api.Input) any { return in.Services[0].Spec.InternalTrafficPolicy }, ""},
		{"D10 ipMode VIP", svc("type: LoadBalancer\nports: [{port: 80}]\n") + "status: {loadBalancer: {ingress: [{ip: 203.0.113.5}, {hostname: lb.example.com}]}}\n",
			func(in *api.Input) any { return in.Services[0].Status.LoadBalancer.Ingress },
			[]api.LoadBalancerIngress{{IP: "203.0.113.5", IPMode: ptr("VIP")}, {Hostname: "lb.example.com"}}},
		{"D11 clusterIPs from clusterIP", svc("clusterIP: 10.0.0.10\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.ClusterIPs }, []string{"10.0.0.10"}},
		{"headless without ports", svc("clusterIP: None\n"),
			func(in *api.Input) any { return in.Services[0].Spec.ClusterIPs }, []string{"None"}},
		{"namespace from metadata", strings.Replace(svc("ports: [{port: 80}]\n"), "name: s", "name: s\n  namespace: shop", 1),
			func(in *api.Input) any { return in.Services[0].ID() }, "shop/s"},
		{"null fields are unset", "apiVersion: v1\nkind: Service\nmetadata: {name: s, creationTimestamp: null, labels: null}\nspec: {ports: [{port: 80, appProtocol: null}], selector: null}\nstatus: null\n",
			func(in *api.Input) any { return in.Services[0].Spec.Ports[0] },
			api.ServicePort{Protocol: "TCP", Port: 80, TargetPort: api.IntOrString{IntVal: 80}}},
		{"duplicate keys: the last wins", svc("type: NodePort\ntype: ClusterIP\nports: [{port: 80}]\n"),
			func(in *api.Input) any { return in.Services[0].Spec.Type }, "ClusterIP"},
		{"D17, D18 slice port name and protocol", slice("addressType: IPv4\nports: [{port: 80}, {name: b, port: null}]\n"),
			func(in *api.Input) any { return in.EndpointSlices[0].Ports },
			[]api.EndpointPort{{Name: ptr(""), Protocol: ptr("TCP"), Port: ptr[int32](80)}, {Name: ptr("b"), Protocol: ptr("TCP")}}},
		{"endpoint conditions and hints", slice("addressType: IPv6\nendpoints: [{addresses: [\"2001:db8::1\"], conditions: {ready: false, terminating: true}, nodeName: n1, zone: z1, hints: {forZones: [{name: z1}]}}]\n"),
			func(in *api.Input) any { return in.EndpointSlices[0].Endpoints },
			[]api.Endpoint{{Addresses: []string{"2001:db8::1"}, Conditions: api.EndpointConditions{Ready: ptr(false), Terminating: ptr(true)},
				NodeName: ptr("n1"), Zone: ptr("z1"), Hints: &api.EndpointHints{ForZones: []api.ForZone{{Name: "z1"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, diags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
			if diags.Err() != nil {
				t.Fatalf("diagnostics:\n%v", diags)
			}
			if diff := cmp.Diff(tc.val, tc.want(in), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestStrictAcceptsKubectlOutput(t *testing.T) {
	for _, strict := range []bool{false, true} {
		in, diags := Load([]string{"testdata/kubectl-list.yaml"}, nil, Options{Strict: strict})
		if len(diags) != 0 {
			t.Fatalf("strict=%v: diagnostics:\n%v", strict, diags)
		}
		if len(in.Services) != 2 || len(in.EndpointSlices) != 1 {
			t.Errorf("strict=%v: got %v", strict, summary(in))
		}
		lb := in.Services[1]
		if got := lb.Spec.Ports[0]; got.NodePort != 30080 || got.TargetPort.StrVal != "http" {
			t.Errorf("strict=%v: port %+v", strict, got)
		}
		if got := lb.Status.LoadBalancer.Ingress; len(got) != 1 || got[0].IP != "203.0.113.10" {
			t.Errorf("strict=%v: ingress %+v", strict, got)
		}
	}
}

// TestDropCaches checks that DropCaches empties the pool of evaluators that
// a Load leaves behind, and that a Load after it works as before.
func TestDropCaches(t *testing.T) {
	load := func() int {
		in, diags := Load([]string{"testdata/seed.yaml"}, nil, Options{})
		if err := diags.Err(); err != nil {
			t.Fatal(err)
		}
		return len(in.Services)
	}
	want := load()
	evaluators.Lock()
	kept := len(evaluators.free)
	evaluators.Unlock()
	if kept == 0 {
		t.Fatal("a Load kept no evaluator: nothing to drop")
	}
	DropCaches()
	evaluators.Lock()
	kept = len(evaluators.free)
	evaluators.Unlock()
	if kept != 0 {
		t.Errorf("%d evaluators kept after DropCaches", kept)
	}
	if got := load(); got != want {
		t.Errorf("after DropCaches: %d Services, want %d", got, want)
	}
}

// TestTextOK checks that textOK, checkText's quick answer, agrees with
// its rune-by-rune scan on texts with and without each kind of fault, and
// on random bytes.
func TestTextOK(t *testing.T) {
	inputs := []string{"", "a: 1\n", "a:\tb\r\n", "é: 日本\n", "a\x00", "a\x01b", "\x1f", "a\x7f", "\x80", "\xc3", "\xc3\x28",
		"\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\u0085", "\ufeffa: 1", "a\u2028b"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		_, _, want := scanText("x", []byte(in))
		if got := textOK([]byte(in)); got != want {
			t.Errorf("textOK(%q) = %v, the scan says %v", in, got, want)
		}
	}
}

// TestDuplicateFields checks the warnings (errors under Strict) for
// duplicate keys: the API server's Warn mode.
func TestDuplicateFields(t *testing.T) {
	concat := svc("ports: [{port: 80}]\n") + svc("ports: [{port: 81, port: 82}]\n")
	tests := []struct {
		name   string
		in     string
		strict bool
		want   []string
	}{{
		name: "two documents without a marker",
		in:   concat,
		want: []string{`-:7:1: warning: Service default/s: duplicate fields "apiVersion", "kind", "metadata", "spec": the later values are used; is a "---" line missing between two documents?`,
			`-:12:22: warning: Service default/s: spec.ports[0].port: duplicate field "port": the later value is used`},
	}, {
		name:   "strict",
		in:     concat,
		strict: true,
		want: []string{`-:7:1: Service default/s: apiVersion: duplicate field "apiVersion"`, `-:8:1: Service default/s: kind: duplicate field "kind"`,
			`-:9:1: Service default/s: metadata: duplicate field "metadata"`, `-:11:1: Service default/s: spec: duplicate field "spec"`,
			`-:12:22: Service default/s: spec.ports[0].port: duplicate field "port"`},
	}, {
		name: "one field at the top level, in JSON",
		in:   `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"}, "spec": {"ports": [{"port": 80}]}, "kind": "Service"}`,
		want: []string{`-:1:104: warning: Service default/j: kind: duplicate field "kind": the later value is used; is a "---" line missing between two documents?`},
	}, {
		name: "a skipped kind",
		in:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nkind: ConfigMap\n",
		want: []string{`-:1:1: warning: skipping ConfigMap c: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR`,
			`-:4:1: warning: ConfigMap c: kind: duplicate field "kind": the later value is used; is a "---" line missing between two documents?`},
	}, {
		name: "inside a value that lost",
		in:   svc("ports: [{port: 81, port: 82}]\n") + "spec: {ports: [{port: 80}]}\n",
		want: []string{`-:7:1: warning: Service default/s: spec: duplicate field "spec": the later value is used; is a "---" line missing between two documents?`},
	}, {
		name: "a null value wins",
		in:   svc("ports: [{port: 80}]\ntype: NodePort\ntype: null\n"),
		want: []string{`-:8:3: warning: Service default/s: spec.type: duplicate field "type": the later value is used`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, strings.NewReader(tt.in), Options{Strict: tt.strict})
			if diff := cmp.Diff(tt.want, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadFilesMatchesLoad checks that loading files read by ReadFiles
// gives what Load gives for the same paths: the documents, their
// positions and the diagnostics.
func TestLoadFilesMatchesLoad(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"a.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n" +
			"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		"b.json":      `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "x"}, "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 81}]}}`,
		"c.yaml":      "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: x}\nspec:\n  ports: [{port: 99999}]\n",
		"crlf.yaml":   "apiVersion: v1\r\nkind: Service\r\nmetadata: {name: d, namespace: x}\r\nspec:\r\n  clusterIP: 10.96.0.12\r\n  ports: [{port: 82}]\r\n",
		"ignored.txt": "not read",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, paths := range [][]string{{dir}, {filepath.Join(dir, "a.yaml"), filepath.Join(dir, "missing.yaml")}} {
		want, wantDiags := Load(paths, nil, Options{})
		files, readDiags := ReadFiles(paths)
		read := make([]string, len(files))
		for i, f := range files {
			read[i] = string(f.Data)
		}
		got, gotDiags := LoadFiles(files, Options{})
		// The watcher splits the bytes it loaded into documents.
		for i, f := range files {
			if string(f.Data) != read[i] {
				t.Errorf("%s: LoadFiles changed the file's data from %q to %q", f.Name, read[i], f.Data)
			}
		}
		AddUnread(got, readDiags)
		gotDiags = append(readDiags, gotDiags...)
		gotDiags.Sort()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%v: LoadFiles differs from Load (-Load +LoadFiles):\n%s", paths, diff)
		}
		if diff := cmp.Diff(fmt.Sprint(wantDiags), fmt.Sprint(gotDiags)); diff != "" {
			t.Errorf("%v: diagnostics differ (-Load +LoadFiles):\n%s", paths, diff)
		}
		if len(wantDiags) == 0 {
			t.Errorf("%v: no diagnostics: the case tests nothing of them", paths)
		}
	}
}

// TestLoadNamesInvalid checks what an Input names of its invalid documents:
// kind, namespace and name as far as they were read, and the places
// where no document was read.
func TestLoadNamesInvalid(t *testing.T) {
	doc := `apiVersion: v1
kind: Service
metadata: {name: bad, namespace: ns}
spec: {ports: [{port: 0}]}
---
apiVersion: v1
kind: Service
metadata: {labels: {a: b}}
spec: {ports: [{port: 80}]}
---
kind: Service
metadata: {name: nokind}
---
apiVersion: v1
kind: Service
metadata: {name: twice}
spec: {ports: [{port: 80}]}
spec: {ports: [{port: 81}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 5}]}
---
apiVersion: v1
kind: Service
metadata: {name: ok}
spec: {ports: [{port: 80}]}
`
	pos := func(line int) diag.Pos { return diag.Pos{File: "-", Line: line, Col: 1} }
	tests := []struct {
		name   string
		strict bool
		valid  []string // the Services loaded
		want   []api.Invalid
	}{
		{
			name:  "default",
			valid: []string{"default/twice", "default/ok"},
			want: []api.Invalid{
				{Pos: pos(1), Kind: "Service", Namespace: "ns", Name: "bad"},
				{Pos: pos(6), Kind: "Service", Namespace: "default"},
				{Pos: pos(11)},
				{Pos: pos(20), Kind: "Node", Name: "n1"},
			},
		},
		{
			// The API server's strict field validation refuses a
			// duplicate key.
			name:   "strict",
			strict: true,
			valid:  []string{"default/ok"},
			want: []api.Invalid{
				{Pos: pos(1), Kind: "Service", Namespace: "ns", Name: "bad"},
				{Pos: pos(6), Kind: "Service", Namespace: "default"},
				{Pos: pos(11)},
				{Pos: pos(14), Kind: "Service", Namespace: "default", Name: "twice"},
				{Pos: pos(20), Kind: "Node", Name: "n1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, diags := Load([]string{"-"}, strings.NewReader(doc), Options{Strict: tt.strict})
			if diags.Err() == nil {
				t.Fatal("no errors")
			}
			var valid []string
			for _, s := range in.Services {
				valid = append(valid, s.ID())
			}
			if diff := cmp.Diff(tt.valid, valid); diff != "" {
				t.Errorf("Services (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, in.Invalid); diff != "" {
				t.Errorf("Invalid (-want +got):\n%s\ndiagnostics:\n%v", diff, diags)
			}
		})
	}
	in, diags := Load([]string{"-"}, strings.NewReader(doc[strings.LastIndex(doc, "---"):]), Options{})
	if len(diags) != 0 || in.Invalid != nil {
		t.Errorf("a valid input: Invalid %v, diagnostics %v", in.Invalid, diags)
	}
}
