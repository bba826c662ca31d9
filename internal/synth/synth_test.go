package synth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestWriteDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	c := Config{Services: 40, Endpoints: 3}
	if err := Write(&a, c); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, c); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("two writes of the same config differ")
	}
	for _, want := range []string{"kind: Node", "type: NodePort", "type: LoadBalancer", "externalTrafficPolicy: Local", "sessionAffinity: ClientIP", "ipFamilies: [IPv6]", "loadBalancerSourceRanges"} {
		if !strings.Contains(a.String(), want) {
			t.Errorf("mix lacks %q", want)
		}
	}
	if got := strings.Count(a.String(), "kind: Service\n"); got != 40 {
		t.Errorf("%d Services, want 40", got)
	}
}

func TestClusterIPsDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 50000 {
		for _, v6 := range []bool{false, true} {
			a := clusterIP(i, v6).String()
			if j, ok := seen[a]; ok {
				t.Fatalf("Services %d and %d share %s", j, i, a)
			}
			seen[a] = i
		}
	}
}

// TestNodePortsUnique checks that nodePorts and healthCheckNodePorts are
// distinct and inside the default range at every size, so that large
// clusters stay valid.
func TestNodePortsUnique(t *testing.T) {
	for _, n := range []int{100, 10000, 50000} {
		var b bytes.Buffer
		if err := Write(&b, Config{Services: n, Endpoints: 1}); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for line := range strings.Lines(b.String()) {
			f := strings.Fields(line)
			if len(f) != 2 || (f[0] != "nodePort:" && f[0] != "healthCheckNodePort:") {
				continue
			}
			if seen[f[1]] {
				t.Fatalf("%d Services: port %s given twice", n, f[1])
			}
			seen[f[1]] = true
			if f[1] < "30000" || f[1] > "32767" || len(f[1]) != 5 {
				t.Fatalf("%d Services: port %s outside 30000-32767", n, f[1])
			}
		}
		if n >= 10000 && len(seen) < 2700 {
			t.Errorf("%d Services: only %d of the range's ports used", n, len(seen))
		}
	}
}

// TestWriteKubectl checks the kubectl dumps of a cluster: the same bytes
// each time, kubectl's layout (which the loader parses in parts), what
// the API server adds, and every Service and EndpointSlice, also with no
// endpoints.
func TestWriteKubectl(t *testing.T) {
	for _, c := range []Config{{Services: 30, Endpoints: 3}, {Services: 5, Endpoints: 0}, {Services: 4, Endpoints: 2, Plain: true}} {
		for _, asJSON := range []bool{false, true} {
			var a, b bytes.Buffer
			if err := WriteKubectl(&a, c, asJSON); err != nil {
				t.Fatal(err)
			}
			if err := WriteKubectl(&b, c, asJSON); err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Fatalf("%+v json %v: two writes differ", c, asJSON)
			}
			out := a.String()
			head, service, slice := "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n", "\n  kind: Service\n", "\n  kind: EndpointSlice\n"
			want := []string{"uid: ", "creationTimestamp: \"2026-11-20T10:00:00Z\"", "protocol: TCP", "ownerReferences:", "kind: List"}
			if asJSON {
				head, service, slice = "{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n", "\n            \"kind\": \"Service\",", "\n            \"kind\": \"EndpointSlice\","
				want = []string{`"uid": "`, `"creationTimestamp": "2026-11-20T10:00:00Z"`, `"protocol": "TCP"`, `"ownerReferences": [`, `    "kind": "List",`}
			}
			if !strings.HasPrefix(out, head) {
				t.Errorf("%+v json %v: starts %q", c, asJSON, out[:min(len(out), 80)])
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%+v json %v: no %q", c, asJSON, w)
				}
			}
			if n, m := strings.Count(out, service), strings.Count(out, slice); n != c.Services || m != c.Services {
				t.Errorf("%+v json %v: %d Services and %d EndpointSlices", c, asJSON, n, m)
			}
			if strings.Contains(out, "kind: Node") || strings.Contains(out, `"Node"`) {
				t.Errorf("%+v json %v: a Node in a dump of Services", c, asJSON)
			}
		}
	}
}

// TestWriteKubectlWhole checks that the List written an item at a time is
// what encoding it whole gives.
func TestWriteKubectlWhole(t *testing.T) {
	for _, c := range []Config{{Services: 12, Endpoints: 2}, {Services: 0}} {
		for _, asJSON := range []bool{false, true} {
			var streamed bytes.Buffer
			if err := WriteKubectl(&streamed, c, asJSON); err != nil {
				t.Fatal(err)
			}
			var v any
			var whole []byte
			if asJSON {
				if err := json.Unmarshal(streamed.Bytes(), &v); err != nil {
					t.Fatal(err)
				}
				out, err := json.MarshalIndent(v, "", "    ")
				if err != nil {
					t.Fatal(err)
				}
				whole = append(out, '\n')
			} else {
				if err := yaml.Unmarshal(streamed.Bytes(), &v); err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				enc := yaml.NewEncoder(&b)
				enc.SetIndent(2)
				enc.CompactSeqIndent()
				if err := enc.Encode(v); err != nil {
					t.Fatal(err)
				}
				whole = b.Bytes()
			}
			if d := cmp.Diff(string(whole), streamed.String()); d != "" {
				t.Errorf("%+v json %v: differs from the whole List (-whole +streamed):\n%s", c, asJSON, d)
			}
		}
	}
}
