package load

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/diag"
)

func TestRefine(t *testing.T) {
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "in.yaml")
	text := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n" +
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: b\n    labels: {app.kubernetes.io/name: b}\n" +
		"  spec:\n    ports:\n    - port: 80\n      nodePort: 30007\n- apiVersion: v1\n  kind: Service\n  metadata: {name: c}\n"
	if err := os.WriteFile(yamlFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonFile := filepath.Join(dir, "in.json")
	if err := os.WriteFile(jsonFile, []byte(`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(file string, line, col int) diag.Pos { return diag.Pos{File: file, Line: line, Col: col} }
	tests := []struct {
		name string
		pos  diag.Pos
		path string
		want diag.Pos
	}{
		{"a field of a document", at(yamlFile, 1, 1), "spec.clusterIPs[0]", at(yamlFile, 5, 14)},
		{"a list item's field", at(yamlFile, 11, 3), "spec.ports[0].nodePort", at(yamlFile, 19, 17)},
		{"a map key", at(yamlFile, 11, 3), "metadata.labels[app.kubernetes.io/name]", at(yamlFile, 15, 38)},
		{"the next item is not read", at(yamlFile, 11, 3), "metadata.name", at(yamlFile, 14, 11)},
		{"a field that is not there", at(yamlFile, 20, 3), "spec.ports[0].nodePort", at(yamlFile, 20, 3)},
		{"no path", at(yamlFile, 1, 1), "", at(yamlFile, 1, 1)},
		{"JSON", at(jsonFile, 1, 1), "metadata.name", at(jsonFile, 1, 1)},
		{"standard input", at("-", 1, 1), "metadata.name", at("-", 1, 1)},
		{"a missing file", at(filepath.Join(dir, "gone.yaml"), 1, 1), "metadata.name", at(filepath.Join(dir, "gone.yaml"), 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diag.List{{Pos: tt.pos, Object: "Service x", Path: tt.path, Msg: "m"}}
			Refine(d)
			if diff := cmp.Diff(tt.want, d[0].Pos); diff != "" {
				t.Errorf("position (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFieldPath(t *testing.T) {
	for _, p := range []fpath{
		{"spec", "ports", 0, "nodePort"},
		{"metadata", "labels", "kubernetes.io/service-name"},
		{"spec", "loadBalancerSourceRanges", 1},
		{"subsets", 2, "notReadyAddresses", 0, "ip"},
	} {
		got, ok := parseFieldPath(p.String())
		if !ok || !cmp.Equal(p, got) {
			t.Errorf("parseFieldPath(%q) = %v, %v; want %v", p.String(), got, ok, p)
		}
	}
}

// TestRefineAnyPosition checks that Refine takes any position in a file
// without panicking, and moves a diagnostic only to a position in it.
func TestRefineAnyPosition(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.yaml")
	text := "# c\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n-\n  - x\n---\n- a\n...\nz: [\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for line := -1; line <= 16; line++ {
		for col := -1; col <= 12; col++ {
			d := diag.List{{Pos: diag.Pos{File: file, Line: line, Col: col}, Path: "metadata.name", Msg: "m"}}
			Refine(d)
			if p := d[0].Pos; p.Line != line && (p.Line < 1 || p.Line > 14) {
				t.Errorf("%d:%d moved to %s", line, col, p)
			}
		}
	}
}

// TestRefineLineStart checks where lineStart finds each line, asked in any
// order: the line after a final line break starts at the end, and the
// next is past it.
func TestRefineLineStart(t *testing.T) {
	f := &refineFile{data: []byte("a: 1\n\nb: 2\n"), line: 1}
	for _, c := range []struct{ line, want int }{
		{1, 0}, {3, 6}, {2, 5}, {4, 11}, {5, -1}, {1, 0}, {4, 11}, {3, 6},
	} {
		if got := f.lineStart(c.line); got != c.want {
			t.Errorf("lineStart(%d) = %d, want %d", c.line, got, c.want)
		}
	}
}
