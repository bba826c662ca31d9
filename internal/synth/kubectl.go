package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// created is the creation time of every object of a kubectl dump.
const created = "2026-11-20T10:00:00Z"

// WriteKubectl writes the cluster's Services and EndpointSlices as
// "kubectl get services,endpointslices -A -o yaml" prints them (or
// "-o json" with asJSON): one List, whose objects carry what the API
// server adds (uids, resource versions, timestamps, defaulted fields,
// owner and target references, the EndpointSlice controller's labels). A
// dump holds no Node or KubeProxyConfiguration. The same Config always
// gives the same bytes.
func WriteKubectl(w io.Writer, c Config, asJSON bool) error {
	var src bytes.Buffer
	if err := Write(&src, c); err != nil {
		return err
	}
	// The items are written one at a time, as they are decoded: a List
	// of 50,000 Services encoded whole takes gigabytes.
	l := &listWriter{w: w, asJSON: asJSON}
	l.head()
	dec := yaml.NewDecoder(&src)
	for i := 0; l.err == nil; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		switch obj["kind"] {
		case "Service":
			asServed(obj, i)
			serviceDefaults(obj)
		case "EndpointSlice":
			asServed(obj, i)
			sliceDefaults(obj)
		default:
			continue
		}
		l.item(obj)
	}
	l.tail()
	if l.err != nil {
		return fmt.Errorf("synth: %w", l.err)
	}
	return nil
}

// listWriter writes a List as kubectl prints it, an item at a time: in
// YAML with two spaces and sequences not indented under their key, in
// JSON with four spaces; keys sorted. The List's keys are apiVersion,
// items, kind and metadata, in that order.
type listWriter struct {
	w      io.Writer
	asJSON bool
	items  int
	err    error
}

func (l *listWriter) write(s string) {
	if l.err == nil {
		_, l.err = io.WriteString(l.w, s)
	}
}

func (l *listWriter) head() {
	if l.asJSON {
		l.write("{\n    \"apiVersion\": \"v1\",\n    \"items\": [")
		return
	}
	l.write("apiVersion: v1\nitems:")
}

func (l *listWriter) item(obj map[string]any) {
	if l.err != nil {
		return
	}
	if l.asJSON {
		out, err := json.MarshalIndent(obj, "        ", "    ")
		if err != nil {
			l.err = err
			return
		}
		if l.items > 0 {
			l.write(",")
		}
		l.write("\n        " + string(out))
	} else {
		if l.items == 0 {
			l.write("\n")
		}
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		enc.CompactSeqIndent()
		if err := enc.Encode([]any{obj}); err != nil {
			l.err = err
			return
		}
		if err := enc.Close(); err != nil {
			l.err = err
			return
		}
		l.write(b.String())
	}
	l.items++
}

func (l *listWriter) tail() {
	switch {
	case l.asJSON && l.items == 0:
		l.write("],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
	case l.asJSON:
		l.write("\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n")
	case l.items == 0:
		l.write(" []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n")
	default:
		l.write("kind: List\nmetadata:\n  resourceVersion: \"\"\n")
	}
}

// uid is a deterministic uid for the object named s.
func uid(s string) string {
	h := sha256.Sum256([]byte(s))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// asServed adds the metadata the API server gives object i.
func asServed(obj map[string]any, i int) {
	m := obj["metadata"].(map[string]any)
	m["creationTimestamp"] = created
	m["resourceVersion"] = strconv.Itoa(100000 + i)
	m["uid"] = uid(fmt.Sprint(obj["kind"], "/", m["namespace"], "/", m["name"]))
}

// serviceDefaults adds the fields the API server defaults or allocates in
// a Service.
func serviceDefaults(obj map[string]any) {
	m := obj["metadata"].(map[string]any)
	m["labels"] = map[string]any{"app.kubernetes.io/name": m["name"]}
	spec := obj["spec"].(map[string]any)
	spec["clusterIPs"] = []any{spec["clusterIP"]}
	spec["ipFamilyPolicy"] = "SingleStack"
	setDefault(spec, "internalTrafficPolicy", "Cluster")
	setDefault(spec, "sessionAffinity", "None")
	if spec["type"] != "ClusterIP" {
		setDefault(spec, "externalTrafficPolicy", "Cluster")
	}
	if spec["type"] == "LoadBalancer" {
		spec["allocateLoadBalancerNodePorts"] = true
	}
	for _, p := range spec["ports"].([]any) {
		p.(map[string]any)["protocol"] = "TCP"
	}
	if _, ok := obj["status"]; !ok {
		obj["status"] = map[string]any{"loadBalancer": map[string]any{}}
	}
}

// sliceDefaults adds what the EndpointSlice controller and the API server
// put in an EndpointSlice.
func sliceDefaults(obj map[string]any) {
	m := obj["metadata"].(map[string]any)
	labels := m["labels"].(map[string]any)
	svc := fmt.Sprint(labels["kubernetes.io/service-name"])
	labels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
	m["generateName"] = svc + "-"
	m["generation"] = 3
	m["annotations"] = map[string]any{"endpoints.kubernetes.io/last-change-trigger-time": created}
	m["ownerReferences"] = []any{map[string]any{
		"apiVersion": "v1", "blockOwnerDeletion": true, "controller": true, "kind": "Service",
		"name": svc, "uid": uid(fmt.Sprint("Service/", m["namespace"], "/", svc)),
	}}
	for _, p := range obj["ports"].([]any) {
		p.(map[string]any)["protocol"] = "TCP"
	}
	eps, _ := obj["endpoints"].([]any) // none with 0 endpoints
	for j, e := range eps {
		ep := e.(map[string]any)
		cond := ep["conditions"].(map[string]any)
		setDefault(cond, "serving", cond["ready"])
		setDefault(cond, "terminating", false)
		pod := uid(fmt.Sprint("Pod/", m["namespace"], "/", svc, "/", j))
		ep["targetRef"] = map[string]any{"kind": "Pod", "name": svc + "-" + pod[:8] + "-" + pod[9:13], "namespace": m["namespace"], "uid": pod}
	}
}

// setDefault sets m[k] to v if it is not set.
func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}
