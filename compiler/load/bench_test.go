package load

import (
	"bytes"
	"fmt"
	"testing"

	"kpc/internal/synth"

	"cuelang.org/go/cue/ast"
)

// genServices writes n Services with two ports each and one
// EndpointSlice per Service with three endpoints.
func genServices(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata:
  name: svc-%d
  namespace: ns-%d
  labels:
    app: svc-%d
spec:
  selector:
    app: svc-%d
  clusterIP: 10.%d.%d.%d
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: https
    port: 443
    targetPort: 8443
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-%d-abcde
  namespace: ns-%d
  labels:
    kubernetes.io/service-name: svc-%d
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
- name: https
  port: 8443
  protocol: TCP
endpoints:
- addresses: [10.200.%d.1]
  conditions: {ready: true}
  nodeName: node-1
- addresses: [10.200.%d.2]
  conditions: {ready: true}
  nodeName: node-2
- addresses: [10.200.%d.3]
  conditions: {ready: false}
  nodeName: node-3
---
`, i, i%50, i, i, 96+i>>16, (i>>8)&255, i&255, i, i%50, i, i&255, i&255, i&255)
	}
	return b.Bytes()
}

func BenchmarkLoad10k(b *testing.B) {
	data := genServices(10000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	loadLoop(b, data, 10000)
}

func BenchmarkLoad1k(b *testing.B) {
	data := genServices(1000)
	b.ResetTimer()
	for b.Loop() {
		_, diags := Load([]string{"-"}, bytes.NewReader(data), Options{})
		if err := diags.Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// synth10k returns the cluster "kpc gen --services 10000 --endpoints 10"
// writes, and sets b's bytes per operation to its size.
func synth10k(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := synth.Write(&buf, synth.Config{Services: 10000, Endpoints: 10}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	return buf.Bytes()
}

// BenchmarkLoadSynth10k loads the cluster "kpc gen --services 10000
// --endpoints 10" writes: 10,000 Services of the generator's mix, each
// with an EndpointSlice of ten endpoints.
func BenchmarkLoadSynth10k(b *testing.B) {
	data := synth10k(b)
	loadLoop(b, data, 10000)
}

// BenchmarkFastYAML parses the cluster of BenchmarkLoadSynth10k with the
// fast YAML parser alone, on one CPU: the parser's share of a load.
func BenchmarkFastYAML(b *testing.B) {
	data := synth10k(b)
	b.ReportAllocs()
	for b.Loop() {
		docs := 0
		if _, ok := fastYAML("bench.yaml", data, func(ast.Expr) { docs++ }); !ok || docs < 20000 {
			b.Fatalf("parsed %d documents (ok %v), want at least 20000", docs, ok)
		}
	}
}

// BenchmarkLoadKubectl10k loads the cluster of BenchmarkLoadSynth10k as
// "kubectl get services,endpointslices -A -o yaml" prints it ("kpc gen
// --format kubectl-yaml"): one List, with the fields the API server adds.
func BenchmarkLoadKubectl10k(b *testing.B) {
	var buf bytes.Buffer
	if err := synth.WriteKubectl(&buf, synth.Config{Services: 10000, Endpoints: 10}, false); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	data := buf.Bytes()
	loadLoop(b, data, 10000)
}

// loadLoop loads data from standard input at each round of b and checks
// that it holds n Services and n EndpointSlices.
func loadLoop(b *testing.B, data []byte, n int) {
	for b.Loop() {
		in, diags := Load([]string{"-"}, bytes.NewReader(data), Options{})
		if err := diags.Err(); err != nil {
			b.Fatal(err)
		}
		if len(in.Services) != n || len(in.EndpointSlices) != n {
			b.Fatalf("got %d services, %d slices, want %d of each", len(in.Services), len(in.EndpointSlices), n)
		}
	}
}
