package load

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
	"github.com/google/go-cmp/cmp"
)

// TestYAML11Booleans checks that the unquoted booleans of YAML 1.1 are read
// as kubectl reads them, by the fast parser and by the general decoder
// alike, and that quoted, tagged and block scalars stay strings.
func TestYAML11Booleans(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// want: the Service's publishNotReadyAddresses, labels and
		// annotations when it loads; diags otherwise.
		want  string
		diags []string
	}{{
		name: "yes, on and Y are true",
		in:   "spec:\n  publishNotReadyAddresses: yes\n  ports: [{port: 80}]\n",
		want: "true map[] map[]",
	}, {
		name: "a flow mapping",
		in:   "spec: {publishNotReadyAddresses: On, ports: [{port: 80}]}\n",
		want: "true map[] map[]",
	}, {
		name: "no, off and N are false",
		in:   "spec:\n  publishNotReadyAddresses: OFF\n  ports: [{port: 80}]\n",
		want: "false map[] map[]",
	}, {
		name: "a quoted yes is a string",
		in:   "metadata:\n  labels: {a: \"yes\", b: 'no'}\n  annotations:\n    c: \"on\"\nspec:\n  ports: [{port: 80}]\n",
		want: "false map[a:yes b:no] map[c:on]",
	}, {
		name: "a tagged or block scalar is a string",
		in:   "metadata:\n  annotations:\n    a: !!str yes\n    b: |-\n      no\n    c: >-\n      y\nspec:\n  ports: [{port: 80}]\n",
		want: "false map[] map[a:yes b:no c:y]",
	}, {
		name: "a longer word is a string",
		in:   "metadata:\n  labels: {a: yess, b: nope, c: online}\nspec:\n  ports: [{port: 80}]\n",
		want: "false map[a:yess b:nope c:online] map[]",
	}, {
		name: "a key is true or false",
		in:   "metadata:\n  labels: {y: a, NO: b}\nspec:\n  ports: [{port: 80}]\n",
		want: "false map[false:b true:a] map[]",
	}, {
		name:  "a label value yes is a boolean, which the API server refuses",
		in:    "metadata:\n  labels:\n    enabled: yes\nspec:\n  ports: [{port: 80}]\n",
		diags: []string{"-:6:14: Service default/s: metadata.labels[enabled]: invalid value true: must be a string"},
	}, {
		name:  "after characters of several bytes on its line",
		in:    "metadata:\n  annotations: {note: \"é ü\", flag: no}\nspec:\n  ports: [{port: 80}]\n",
		diags: []string{"-:5:36: Service default/s: metadata.annotations[flag]: invalid value false: must be a string"},
	}, {
		name:  "a port named n",
		in:    "spec:\n  ports:\n  - port: 80\n    name: n\n",
		diags: []string{"-:8:11: Service default/s: spec.ports[0].name: invalid value false: must be a string"},
	}}
	for _, tt := range tests {
		for _, fast := range []bool{true, false} {
			t.Run(tt.name+map[bool]string{true: "", false: " (general decoder)"}[fast], func(t *testing.T) {
				fastYAMLEnabled = fast
				defer func() { fastYAMLEnabled = true }()
				in, diags := Load([]string{"-"}, strings.NewReader("apiVersion: v1\nkind: Service\n"+withName(tt.in)), Options{})
				if diff := cmp.Diff(tt.diags, diagStrings(diags)); diff != "" {
					t.Fatalf("diagnostics (-want +got):\n%s", diff)
				}
				if tt.diags != nil {
					return
				}
				if len(in.Services) != 1 {
					t.Fatalf("%d Services", len(in.Services))
				}
				s := in.Services[0]
				got := fmt.Sprint(s.Spec.PublishNotReadyAddresses, " ", s.Metadata.Labels, " ", s.Metadata.Annotations)
				if got != tt.want {
					t.Errorf("got %s, want %s", got, tt.want)
				}
			})
		}
	}
}

// withName puts "name: s" first in the metadata of a Service's text after
// its kind, adding the metadata when it has none.
func withName(body string) string {
	if rest, ok := strings.CutPrefix(body, "metadata:\n"); ok {
		return "metadata:\n  name: s\n" + rest
	}
	return "metadata:\n  name: s\n" + body
}

// TestYAML11Words checks every spelling that YAML 1.1 reads as a boolean,
// as a value and as a key, with the fast parser and with the general
// decoder, and spellings it reads as strings.
func TestYAML11Words(t *testing.T) {
	words := map[string]string{
		"y": "true", "Y": "true", "yes": "true", "Yes": "true", "YES": "true", "on": "true", "On": "true", "ON": "true",
		"n": "false", "N": "false", "no": "false", "No": "false", "NO": "false", "off": "false", "Off": "false", "OFF": "false",
		"yES": "", "oN": "", "nO": "", "oFF": "", "ye": "", "of": "",
	}
	for w, want := range words {
		data := []byte("a: " + w + "\n" + w + ": b\nc: [" + w + "]\n")
		for name, decode := range map[string]func() ([]ast.Expr, error){
			"fast": func() ([]ast.Expr, error) {
				docs, ok := fastYAMLAll("x.yaml", data)
				if !ok {
					return nil, fmt.Errorf("not taken")
				}
				return docs, nil
			},
			"general": func() ([]ast.Expr, error) { return cueYAML("x.yaml", data) },
		} {
			docs, err := decode()
			if err != nil || len(docs) != 1 {
				t.Fatalf("%s %q: %d documents, %v", name, w, len(docs), err)
			}
			s := docs[0].(*ast.StructLit)
			value := s.Elts[0].(*ast.Field).Value.(*ast.BasicLit)
			key, _, _ := ast.LabelName(s.Elts[1].(*ast.Field).Label)
			item := s.Elts[2].(*ast.Field).Value.(*ast.ListLit).Elts[0].(*ast.BasicLit)
			if want == "" {
				if value.Kind != token.STRING || item.Kind != token.STRING || key != w {
					t.Errorf("%s %q: value %s, key %q, item %s: want strings", name, w, value.Value, key, item.Value)
				}
				continue
			}
			if value.Value != want || value.Kind == token.STRING || item.Value != want || item.Kind == token.STRING || key != want {
				t.Errorf("%s %q: value %s, key %q, item %s: want %s", name, w, value.Value, key, item.Value, want)
			}
		}
	}
}

// TestYAML11Anchors checks that a boolean written plain after an anchor is
// a boolean, where the anchor is and where an alias repeats it, and that a
// quoted one stays a string.
func TestYAML11Anchors(t *testing.T) {
	data := []byte("a: &x yes\nb: *x\nc: &y 'no'\nd: *y\ne: [&z off, *z]\n")
	docs, err := cueYAML("x.yaml", data)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d documents, %v", len(docs), err)
	}
	var got []string
	ast.Walk(docs[0], func(n ast.Node) bool {
		if x, ok := n.(*ast.BasicLit); ok {
			got = append(got, x.Kind.String()+" "+x.Value)
		}
		return true
	}, nil)
	want := []string{"true true", "true true", `STRING "no"`, `STRING "no"`, "false false", "false false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("literals (-want +got):\n%s", diff)
	}
}

// TestYAML11Hint checks the hint added to an error about a boolean that
// the file spells as a YAML 1.1 word, and not to one spelt true; and the
// one added to an error about a whole number spelt as a float, which
// kubectl sends as an integer.
func TestYAML11Hint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.yaml")
	text := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels: {a: true, b: Yes, c: é, d: off, e: 2, f: 2.0}\nspec:\n  ports:\n  - port: on\n    targetPort: 7e5\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags := Load([]string{file}, nil, Options{})
	var got []string
	for _, d := range diags {
		if d.Path != "metadata.labels" { // the é, which is no qualified name
			got = append(got, fmt.Sprintf("%d:%d: %s: %s", d.Pos.Line, d.Pos.Col, d.Path, d.Msg))
		}
	}
	want := []string{
		"5:15: metadata.labels[a]: invalid value true: must be a string",
		`5:24: metadata.labels[b]: invalid value true: must be a string (kubectl reads YAML 1.1, where an unquoted Yes is a boolean: write "Yes" for a string)`,
		`5:38: metadata.labels[d]: invalid value false: must be a string (kubectl reads YAML 1.1, where an unquoted off is a boolean: write "off" for a string)`,
		"5:46: metadata.labels[e]: invalid value 2: must be a string",
		`5:52: metadata.labels[f]: invalid value 2: must be a string (kubectl sends the number 2.0 as 2: write "2.0" for a string)`,
		"8:11: spec.ports[0].port: invalid value true: must be an integer (kubectl reads YAML 1.1, where an unquoted on is a boolean)",
		"9:17: spec.ports[0].targetPort: invalid value 700000: must be a port number between 1 and 65535, inclusive, or an IANA_SVC_NAME (at most 15 characters, a-z, 0-9 and '-', at least one letter, no leading, trailing or double '-') (kubectl sends the number 7e5 as 700000)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
