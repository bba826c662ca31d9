package schema

import (
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
)

// buildFiles compiles files into one instance.
func buildFiles(t *testing.T, files []File) cue.Value {
	t.Helper()
	inst := build.NewContext().NewInstance("", nil)
	for _, f := range files {
		af, err := parser.ParseFile(f.Name, f.Source)
		if err != nil {
			t.Fatal(err)
		}
		if err := inst.AddSyntax(af); err != nil {
			t.Fatal(err)
		}
	}
	v := cuecontext.New().BuildInstance(inst)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFiles(t *testing.T) {
	files := Files()
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := []string{"common.cue", "endpoints.cue", "endpointslice.cue", "extra.cue", "node.cue", "service.cue"}
	if !slices.Equal(names, want) {
		t.Errorf("Files() = %v, want %v", names, want)
	}
	for _, tc := range []struct {
		name  string
		files []File
		open  bool
	}{{"open", Files(), true}, {"strict", StrictFiles(), false}} {
		t.Run(tc.name, func(t *testing.T) {
			root := buildFiles(t, tc.files)
			for _, def := range []string{Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration, ServiceCIDR} {
				if !root.LookupPath(cue.ParsePath(def)).Exists() {
					t.Errorf("%s missing", def)
				}
			}
			// An unknown field of a Service's spec is accepted only when open.
			doc := cuecontext.New().CompileString(`{apiVersion: "v1", kind: "Service", metadata: name: "s", spec: {ports: [{port: 80}], unknown: 1}}`)
			err := doc.Unify(root.LookupPath(cue.ParsePath(Service))).Validate(cue.Concrete(true))
			if got := err == nil; got != tc.open {
				t.Errorf("unknown field accepted: %v, want %v (%v)", got, tc.open, err)
			}
		})
	}
	if !strings.Contains(Source(), "// file: service.cue\n") {
		t.Errorf("Source() lacks the service.cue header")
	}
}
