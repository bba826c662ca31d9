package load

import (
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
)

// TestDecodeTree decodes a tree with and without parameters, and refuses a
// tree built for another type.
func TestDecodeTree(t *testing.T) {
	v := cuecontext.New().CompileString(`{
		metadata: {name: "web", namespace: "shop", labels: {app: "web"}}
		spec: {clusterIP: "10.0.0.1", ports: [{name: "http", port: 80}, {port: 443}]}
	}`)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	// The parameter replaces metadata.name (a path in shapeWalker form).
	tree, ok := buildTree(v, "Service", []string{"\x00metadata\x00name"})
	if !ok {
		t.Fatal("buildTree failed")
	}
	var got api.Service
	if err := decodeTree(tree, []param{{kind: 's', s: "api"}}, reflect.ValueOf(&got).Elem()); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Name != "api" || got.Metadata.Namespace != "shop" || got.Metadata.Labels["app"] != "web" ||
		got.Spec.ClusterIP != "10.0.0.1" || len(got.Spec.Ports) != 2 || got.Spec.Ports[0].Name != "http" ||
		got.Spec.Ports[0].Port != 80 || got.Spec.Ports[1].Port != 443 {
		t.Errorf("decoded %s", cmp.Diff(api.Service{}, got))
	}
	var es api.EndpointSlice
	if err := decodeTree(tree, nil, reflect.ValueOf(&es).Elem()); err == nil || !strings.Contains(err.Error(), "decoded into") {
		t.Errorf("a Service tree decoded into an EndpointSlice: error %v", err)
	}
}
