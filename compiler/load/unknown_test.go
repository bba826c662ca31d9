package load

import (
	"bytes"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	"kpc/compiler/diag"
	"kpc/internal/synth"
)

// typos is a Service with three misspelt fields.
const typos = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  lables: {app: s}\nspec:\n" +
	"  internalTraficPolicy: Local\n  ports:\n  - port: 80\n    tagetPort: 8080\n"

// dump is what kubectl get -o yaml prints, with every field the API server
// sets: none of them is unknown.
const dump = `apiVersion: v1
kind: Service
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"}}
  creationTimestamp: "2025-03-01T10:00:00Z"
  deletionGracePeriodSeconds: 0
  deletionTimestamp: "2025-03-02T10:00:00Z"
  finalizers:
  - service.kubernetes.io/load-balancer-cleanup
  generation: 2
  labels: {app: web}
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        f:ports: {}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2025-03-01T10:00:00Z"
  name: web
  namespace: shop
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: 0b8f4c4e-6f3a-4a57-9a57-2f1c1f5c9d11, controller: false, blockOwnerDeletion: false}
  resourceVersion: "4242"
  selfLink: /api/v1/namespaces/shop/services/web
  uid: 4d2c7a1e-1111-2222-3333-444455556666
spec:
  allocateLoadBalancerNodePorts: true
  clusterIP: 10.96.12.34
  clusterIPs: [10.96.12.34]
  externalIPs: [198.51.100.7]
  externalTrafficPolicy: Local
  healthCheckNodePort: 31234
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  loadBalancerClass: example.com/lb
  loadBalancerSourceRanges: [203.0.113.0/24]
  ports:
  - {appProtocol: http, name: http, nodePort: 30080, port: 80, protocol: TCP, targetPort: http}
  publishNotReadyAddresses: false
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  trafficDistribution: PreferClose
  type: LoadBalancer
status:
  conditions:
  - {lastTransitionTime: "2025-03-01T10:00:00Z", message: ok, observedGeneration: 2, reason: Ready, status: "True", type: Ready}
  loadBalancer:
    ingress:
    - ip: 203.0.113.10
      ipMode: VIP
      ports: [{port: 80, protocol: TCP, error: ""}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {externalName: db.example.com, internalTrafficPolicy: Cluster, sessionAffinity: None, type: ExternalName}
status: {loadBalancer: {}}
---
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints:
- addresses: [192.0.2.10]
  conditions: {ready: true, serving: true, terminating: false}
  deprecatedTopology: {kubernetes.io/hostname: node-a}
  hints:
    forNodes: [{name: node-a}]
    forZones: [{name: zone-a}]
  hostname: web-0
  nodeName: node-a
  targetRef: {kind: Pod, name: web-0, namespace: shop, uid: 9e9e9e9e-0000-1111-2222-333344445555, resourceVersion: "7"}
  zone: zone-a
kind: EndpointSlice
metadata:
  generateName: web-
  labels:
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    kubernetes.io/service-name: web
  name: web-x7k2p
  namespace: shop
ports:
- {appProtocol: http, name: http, port: 8080, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: other, namespace: shop, resourceVersion: "9"}
subsets:
- addresses:
  - {hostname: a, ip: 192.0.2.20, nodeName: node-a, targetRef: {kind: Pod, name: a}}
  notReadyAddresses:
  - {ip: 192.0.2.21}
  ports: [{appProtocol: http, name: http, port: 8080, protocol: TCP}]
`

// dumpWarnings are the API server's warnings for dump's Service, which it
// returned when the Service was created.
var dumpWarnings = []string{
	"-:34:16: warning: Service shop/web: spec.externalIPs: deprecated, and may no longer be implemented in some clusters",
	`-:49:24: warning: Service shop/web: spec.trafficDistribution: "PreferClose" is deprecated; use "PreferSameZone"`,
}

// TestUnknownFields checks the warnings (errors under Strict) for the
// fields that a Service, EndpointSlice or Endpoints (or their metadata)
// does not have, as the API server's Warn field validation, kubectl's
// default, gives them.
func TestUnknownFields(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		strict bool
		want   []string
	}{{
		name: "misspelt fields of a Service",
		in:   typos,
		want: []string{
			`-:5:3: warning: Service default/s: metadata.lables: unknown field "metadata.lables"`,
			`-:7:3: warning: Service default/s: spec.internalTraficPolicy: unknown field "spec.internalTraficPolicy"`,
			`-:10:5: warning: Service default/s: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`,
		},
	}, {
		name:   "strict",
		in:     typos,
		strict: true,
		want: []string{
			`-:5:3: Service default/s: metadata.lables: unknown field "metadata.lables"`,
			`-:7:3: Service default/s: spec.internalTraficPolicy: unknown field "spec.internalTraficPolicy"`,
			`-:10:5: Service default/s: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`,
		},
	}, {
		name: "an EndpointSlice",
		in:   slice("addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n  conditions: {redy: true}\nports: [{port: 80, portocol: UDP}]\n"),
		want: []string{
			`-:8:16: warning: EndpointSlice default/e: endpoints[0].conditions.redy: unknown field "endpoints[0].conditions.redy"`,
			`-:9:20: warning: EndpointSlice default/e: ports[0].portocol: unknown field "ports[0].portocol"`,
		},
	}, {
		name: "an Endpoints",
		in:   "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- adresses: [{ip: 10.0.0.1}]\n",
		want: []string{
			`-:5:3: Endpoints default/e: subsets[0]: required value: must specify addresses or notReadyAddresses`,
			`-:5:3: warning: Endpoints default/e: subsets[0].adresses: unknown field "subsets[0].adresses"`,
		},
	}, {
		name: "JSON",
		in:   `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"}, "spec": {"ports": [{"port": 80}], "tpye": "NodePort"}}`,
		want: []string{`-:1:103: warning: Service default/j: spec.tpye: unknown field "spec.tpye"`},
	}, {
		name: "the fields under an unknown field are not reported",
		in:   svc("ports: [{port: 80}]\nextra: {a: {b: 1}}\n"),
		want: []string{`-:7:3: warning: Service default/s: spec.extra: unknown field "spec.extra"`},
	}, {
		name: "beside an error",
		in:   svc("ports: [{port: 0, tagetPort: 80}]\n"),
		want: []string{
			`-:6:18: Service default/s: spec.ports[0].port: invalid value 0: must be between 1 and 65535, inclusive`,
			`-:6:21: warning: Service default/s: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`,
		},
	}, {
		// CUE reports no undeclared field in a struct that holds another
		// error: here the error that the misspelt field causes.
		name: "the cause of an error",
		in:   svc("type: LoadBalancer\nexternalTraficPolicy: Local\nhealthCheckNodePort: 30000\nports: [{port: 80}]\n"),
		want: []string{
			`-:7:3: warning: Service default/s: spec.externalTraficPolicy: unknown field "spec.externalTraficPolicy"`,
			"-:8:24: Service default/s: spec.healthCheckNodePort: invalid value 30000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
		},
	}, {
		name:   "the cause of an error, under Strict",
		strict: true,
		in:     svc("tpye: LoadBalancer\nloadBalancerSourceRanges: [10.0.0.0/8]\nports: [{port: 80}]\n"),
		want: []string{
			`-:6:3: Service default/s: spec.tpye: unknown field "spec.tpye"`,
			"-:7:29: Service default/s: spec.LoadBalancerSourceRanges: forbidden: may only be used when `type` is 'LoadBalancer'",
		},
	}, {
		// Their other fields are read leniently: lenient_test.go.
		name: "Node and KubeProxyConfiguration: misspellings are warnings",
		in: "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labls: {}}\nspec: {podCIDR: 10.244.0.0/24}\nstatus: {adresses: []}\n---\n" +
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclustrCIDR: 10.244.0.0/16\nmode: nftables\n",
		want: []string{`-:9:1: warning: KubeProxyConfiguration: clustrCIDR: unknown field "clustrCIDR": ` +
			`kube-proxy ignores it (and logs "Using lenient decoding as strict decoding failed"); did you mean "clusterCIDR"?`},
	}, {
		name:   "Node and KubeProxyConfiguration: misspellings are errors under Strict",
		strict: true,
		in: "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labls: {}}\nspec: {podCIDR: 10.244.0.0/24}\nstatus: {adresses: []}\n---\n" +
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclustrCIDR: 10.244.0.0/16\nmode: nftables\n",
		want: []string{`-:9:1: KubeProxyConfiguration: clustrCIDR: unknown field "clustrCIDR": ` +
			`kube-proxy ignores it (and logs "Using lenient decoding as strict decoding failed"); did you mean "clusterCIDR"?`},
	}, {
		// The API server's warnings, which stay warnings under Strict.
		name: "what kubectl get -o yaml prints",
		in:   dump,
		want: dumpWarnings,
	}, {
		name:   "what kubectl get -o yaml prints, under Strict",
		in:     dump,
		strict: true,
		want:   dumpWarnings,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, strings.NewReader(tt.in), Options{Strict: tt.strict})
			if tt.strict {
				diags.Strict() // as the commands' --strict does
			}
			if diff := cmp.Diff(tt.want, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnknownFieldsOfKubectlDumps checks that kubectl's YAML and JSON dumps
// of a cluster draw no warning.
func TestUnknownFieldsOfKubectlDumps(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var b bytes.Buffer
		if err := synth.WriteKubectl(&b, synth.Config{Services: 60, Endpoints: 3}, asJSON); err != nil {
			t.Fatal(err)
		}
		name := "dump.yaml"
		if asJSON {
			name = "dump.json"
		}
		in, diags := LoadFiles([]File{{Name: name, Data: b.Bytes()}}, Options{})
		if len(diags) != 0 {
			t.Errorf("%s: diagnostics:\n%v", name, diags)
		}
		if len(in.Services) != 60 {
			t.Errorf("%s: %d Services, want 60", name, len(in.Services))
		}
	}
}

// TestUnknownFieldsByShape checks that the unknown fields of a shape are
// found by the full evaluations of its first documents and remembered:
// the later documents of the shape are validated by shape and draw the
// same warnings, at their own positions.
func TestUnknownFieldsByShape(t *testing.T) {
	var in strings.Builder
	for i := range 5 {
		in.WriteString(strings.Replace(typos, "name: s\n", "name: s"+string(rune('a'+i))+"\n", 1))
		in.WriteString("---\n")
	}
	docs, e := decodeForShapes(t, in.String(), 5)
	for i, d := range docs {
		if !e.validate(d, Options{}) {
			t.Fatalf("document %d: the evaluator failed", i)
		}
		if d.out == nil {
			t.Errorf("document %d: no object: %v", i, d.diags)
		}
		// The first two sightings are evaluated in full, the template
		// serves the others.
		if want := i < 2; d.evaluated != want {
			t.Errorf("document %d: evaluated in full: %v, want %v", i, d.evaluated, want)
		}
		line := 1 + 11*i
		want := []string{
			diag.Pos{File: "-", Line: line + 4, Col: 3}.String() + `: warning: ` + d.object + `: metadata.lables: unknown field "metadata.lables"`,
			diag.Pos{File: "-", Line: line + 6, Col: 3}.String() + `: warning: ` + d.object + `: spec.internalTraficPolicy: unknown field "spec.internalTraficPolicy"`,
			diag.Pos{File: "-", Line: line + 9, Col: 5}.String() + `: warning: ` + d.object + `: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`,
		}
		if diff := cmp.Diff(want, diagStrings(d.diags)); diff != "" {
			t.Errorf("document %d: diagnostics (-want +got):\n%s", i, diff)
		}
	}
	// And the whole, with shape memoisation off and on.
	loadBoth(t, "unknown fields", []byte(in.String()), Options{})
}

// TestUnknownFieldsFromStructure checks the search of a document with
// errors for its unknown fields, from its structure alone: it finds those
// of typos, and none among the fields of kubectl's dump (which the schema
// must declare outside the conditions that the structure cannot decide).
func TestUnknownFieldsFromStructure(t *testing.T) {
	e := &evaluator{ctx: cuecontext.New()}
	closed, err := e.schema(true)
	if err != nil {
		t.Fatal(err)
	}
	decodeDocs := func(text string) []*document {
		var diags diag.List
		var docs []*document
		decodeFile("-", []byte(text), false, Options{}, &diags, func(d *document) { docs = append(docs, d) })
		if len(diags) != 0 {
			t.Fatalf("diagnostics: %v", diags)
		}
		return docs
	}
	for _, d := range decodeDocs(dump) {
		if got := e.unknownFields(d, closed[d.info.def]); len(got) != 0 {
			t.Errorf("%s: unknown fields %v", d.object, got)
		}
	}
	d := decodeDocs(typos)[0]
	var got []string
	for _, p := range e.unknownFields(d, closed[d.info.def]) {
		got = append(got, p.String())
	}
	want := []string{"metadata.lables", "spec.internalTraficPolicy", "spec.ports[0].tagetPort"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unknown fields of typos (-want +got):\n%s", diff)
	}
}
