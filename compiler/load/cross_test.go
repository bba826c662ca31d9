package load

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
)

// The corpus (testdata/corpus/cross) covers each cross-document rule; these
// tests cover what a corpus file cannot: nil input, input order and
// duplicate Services.

func TestCrossCheckNil(t *testing.T) {
	if d := CrossCheck(nil); len(d) != 0 {
		t.Errorf("CrossCheck(nil) = %v", d)
	}
	if d := CrossCheck(&api.Input{}); len(d) != 0 {
		t.Errorf("CrossCheck(empty) = %v", d)
	}
}

// TestCrossCheckOrder checks that the objects' order in the Input does not
// change the result (the first endpoint is the first by position).
func TestCrossCheckOrder(t *testing.T) {
	in, diags := Load([]string{"testdata/corpus/cross/x6-address-in-two-slices-with-different-conditions.yaml"}, nil, Options{})
	if diags.Err() != nil {
		t.Fatal(diags)
	}
	want := CrossCheck(in)
	if len(want) != 1 || !strings.Contains(want[0].Msg, "default/web-1") {
		t.Fatalf("CrossCheck = %v", want)
	}
	rev := &api.Input{Services: slices.Clone(in.Services), EndpointSlices: slices.Clone(in.EndpointSlices)}
	slices.Reverse(rev.EndpointSlices)
	if diff := cmp.Diff(want, CrossCheck(rev)); diff != "" {
		t.Errorf("reversed input (-want +got):\n%s", diff)
	}
}

// TestCrossCheckDuplicateService checks that of two Services with one
// name the first (by position) is the one slices are checked against.
func TestCrossCheckDuplicateService(t *testing.T) {
	doc := `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: https, port: 8443}]
endpoints: [{addresses: [192.0.2.10]}]
`
	in, diags := Load([]string{"-"}, strings.NewReader(doc), Options{})
	if diags.Err() != nil {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range CrossCheck(in) {
		got = append(got, d.Error())
	}
	want := []string{`-:13:1: warning: EndpointSlice default/web-1: ports[0]: port "https"/TCP matches no port of Service default/web (ports are joined by name and protocol): its endpoints get no traffic`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CrossCheck (-want +got):\n%s", diff)
	}
}
