package load

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/encoding/json"
	"github.com/google/go-cmp/cmp"

	"kpc/internal/synth"
)

// checkFastJSON compares fastJSON with CUE's JSON decoder on data, a file
// with one JSON value; it returns whether fastJSON took it.
func checkFastJSON(t *testing.T, name string, data []byte, known map[string]string) bool {
	t.Helper()
	file := token.NewFile(name, 0, len(data)+1)
	file.SetLinesForContent(data)
	got, ok := fastJSON(file, data, 0, len(data), known)
	dec := json.NewDecoder(nil, name, bytes.NewReader(data))
	want, err := dec.Extract()
	if err == nil {
		if _, err2 := dec.Extract(); err2 != io.EOF {
			err = fmt.Errorf("a second value: %v", err2)
		}
	}
	if !ok {
		return false
	}
	if err != nil {
		t.Errorf("%s: fastJSON took what CUE rejects: %v", name, err)
		return true
	}
	if d := sameAST(got, want, "value"); d != "" {
		t.Errorf("%s: %s", name, d)
	}
	if d := cmp.Diff(positions(want), positions(got)); d != "" {
		t.Errorf("%s: positions differ (-CUE +fastJSON):\n%s", name, d)
	}
	return true
}

// checkFastJSONValues compares fastJSONValues with CUE's JSON decoder on
// a stream of values: the same trees, at the same positions of their
// nodes and labels (see sameAST).
func checkFastJSONValues(t *testing.T, name string, data []byte) {
	t.Helper()
	got, ok := fastJSONValues(name, data)
	if !ok {
		return
	}
	dec := json.NewDecoder(nil, name, bytes.NewReader(data))
	for i := 0; ; i++ {
		want, err := dec.Extract()
		if err == io.EOF {
			if i != len(got) {
				t.Errorf("%s: %d values, CUE %d", name, len(got), i)
			}
			return
		}
		if err != nil {
			t.Errorf("%s: fastJSONValues took what CUE rejects: %v", name, err)
			return
		}
		if i >= len(got) {
			t.Errorf("%s: %d values, CUE more", name, len(got))
			return
		}
		// CUE's decoder moves the positions of a value that does not
		// start the text by the value's offset, and those of its labels
		// that need quoting twice (up to the end of the text), where
		// fastJSONValues places them where they are: those are not
		// compared.
		start := got[i].Pos().Offset()
		if d := sameASTLabels(got[i], want, fmt.Sprintf("value%d", i), start == 0); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
}

// positions lists every position of a syntax tree's nodes, by node type
// and field, as line:column.
func positions(n ast.Node) []string {
	var out []string
	ast.Walk(n, func(n ast.Node) bool {
		v := reflect.ValueOf(n).Elem()
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if p, ok := v.Field(i).Interface().(token.Pos); ok {
				q := toPos(p)
				out = append(out, fmt.Sprintf("%T.%s %d:%d", n, v.Type().Field(i).Name, q.Line, q.Col))
			}
		}
		return true
	}, nil)
	return out
}

func TestFastJSON(t *testing.T) {
	known := map[string]string{} // shared by the cases, as by a chunk's items
	cases := []struct {
		in    string
		taken bool
	}{
		{`{}`, true},
		{`[]`, true},
		// (A value starts the text, as in runJSONItems: CUE's decoder
		// leaves the positions of closing brackets and colons relative to
		// the value's start.)
		{`{ "a" : 1 , "b":[ 1, -2, 3.5, -0.25, 1e3, 1E-3, -0, 0, 12345678901234567890 ] } `, true},
		{`{"a": true, "b": false, "c": null, "d": "x", "e": ""}`, true},
		{"{\n    \"metadata\": {\n        \"name\": \"svc-0\",\n        \"labels\": {\"kubernetes.io/service-name\": \"svc-0\"}\n    }\n}", true},
		{`{"a": "a string of more than ten bytes", "_b": 1, "#c": 2, "d-e": 3, "1": 4, "": 5, "f g": 6, "true": 7}`, true},
		{`{"a": "multi\nline string\n", "b": {"c": ["another\nmulti-line one"]}}`, true},
		{`{"a": "esc\"aped \\ \/ \b\f\n\r\t \u00e9\u4e2d", "b": "\u00e9", "c\"d": "e", "long key with \"quotes\"": 1}`, true},
		{`{"last-applied": "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"name\":\"a\"}}\n"}`, true},
		{"{\"a\": \"caf\u00e9 \u65e5\u672c\", \"\u00e9\": 1}", true},
		{"{\"a\":\t1,\r\n\"b\": 2}", true},
		{`[[[[{"a": [{"b": "deep\nstring"}]}]]]]`, true},
		{`"just a string"`, true},
		{`-12`, true},
		// Left to CUE's decoder: surrogate halves.
		{`{"a": "\ud83d\ude00"}`, false},
		// Invalid JSON.
		{`{"a": 01}`, false}, {`{"a": 1.}`, false}, {`{"a": .5}`, false}, {`{"a": +1}`, false},
		{`{"a": 1e}`, false}, {`{"a": -}`, false}, {`{"a": 1,}`, false}, {`[1,]`, false},
		{`{"a" 1}`, false}, {`{a: 1}`, false}, {`{"a": tru}`, false}, {`{"a": truex}`, false},
		{`{"a": nul}`, false}, {`{"a": "x}`, false}, {"{\"a\": \"x\ny\"}", false}, {`{"a": "\x"}`, false},
		{`{"a": "\u00g0"}`, false}, {`{"a": "\u00e"}`, false}, {`{"a": 1} {}`, false}, {`{"a": 1}}`, false},
		{`{"a": [1 2]}`, false}, {`{"a": 'x'}`, false}, {`{"a": NaN}`, false}, {``, false}, {`{`, false},
		{`{"a": 1 "b": 2}`, false}, {`{"a": "\`, false}, {`{"a": "\u12`, false}, {`{"a": -`, false}, {`{"a": 1e+`, false}, {`{"a": t`, false}, {`{,}`, false}, {`[,]`, false}, {`{"a": // c
1}`, false},
	}
	for i, c := range cases {
		if got := checkFastJSON(t, fmt.Sprintf("case%d.json", i), []byte(c.in), known); got != c.taken {
			t.Errorf("%q: taken %v, want %v", c.in, got, c.taken)
		}
	}
}

// TestFastJSONSynth compares fastJSON with CUE's decoder on a cluster in
// kubectl's JSON layout, item by item as runJSONItems takes them, in the
// text as it is and dedented (readDedented), whose positions must be the
// same.
func TestFastJSONSynth(t *testing.T) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 200, Endpoints: 3}); err != nil {
		t.Fatal(err)
	}
	data := []byte(kubectlJSON(t, b.String(), map[string]any{"apiVersion": "v1", "kind": "List"}))
	dedented, err := readDedented(bytes.NewReader(data), len(data), MaxFileSize)
	if err != nil || dedented.indent == nil || len(dedented.data) > len(data)/2 {
		t.Fatalf("dedented to %d of %d bytes, %v", len(dedented.data), len(data), err)
	}
	var plainPositions [][]string
	for _, in := range []struct {
		name string
		text text
	}{{"plain", text{data: data}}, {"dedented", dedented}} {
		p := newTextParser("list.json", in.text)
		l, ok := p.jsonListLayout()
		if !ok {
			t.Fatalf("%s: not in kubectl's layout", in.name)
		}
		items := 0
		for a := l.items[0]; a < l.items[1]; a++ {
			if !isJSONItemLine(p, a) {
				continue
			}
			b := a + 1
			for b < l.items[1] && !isJSONItemLine(p, b) {
				b++
			}
			from, to := p.lineEnd(a)-1, p.lineEnd(b-1)
			if p.data[from] != '{' {
				t.Fatalf("%s: item at line %d starts with %q", in.name, a+1, p.data[from])
			}
			if p.data[to-1] == ',' {
				to--
			}
			got, ok := fastJSON(p.file, p.data, from, to, nil)
			want, ok2 := cueJSON(p, from, to)
			if !ok || !ok2 {
				t.Fatalf("%s: item at line %d: taken %v, CUE %v", in.name, a+1, ok, ok2)
			}
			if d := sameAST(got, want, fmt.Sprintf("%s item%d", in.name, items)); d != "" {
				t.Fatal(d)
			}
			if d := cmp.Diff(positions(want), positions(got)); d != "" {
				t.Fatalf("%s: item%d: positions differ (-CUE +fastJSON):\n%s", in.name, items, d)
			}
			if in.name == "plain" {
				plainPositions = append(plainPositions, positions(got))
			} else if d := cmp.Diff(plainPositions[items], positions(got)); d != "" {
				t.Fatalf("item%d: positions differ (-plain +dedented):\n%s", items, d)
			}
			items++
		}
		if items != 2+200*2 {
			t.Errorf("%s: %d items", in.name, items)
		}
	}
}

// FuzzFastJSON checks that whatever fastJSON and fastJSONValues accept,
// they parse as CUE's JSON decoder does, and that the List layout check
// takes any input.
func FuzzFastJSON(f *testing.F) {
	f.Add([]byte(`{"a": [1, -2.5e3, true, null, "x"], "b c": {"d": "multi\nline \u00e9 string"}}`))
	f.Add([]byte("{\"a\": 1}\n  [2, {\"b\": \"c\"}]\n\"d\" 3 null"))
	f.Add([]byte("{\n    \"metadata\": {\"name\": \"a\", \"labels\": {\"k/x\": \"v\"}},\n    \"spec\": {\"ports\": [{\"port\": 80}]}\n}"))
	f.Add([]byte("{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n        {\n            \"kind\": \"Service\"\n        },\n        {\n        }\n    ],\n    \"kind\": \"List\"\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		if _, _, ok := checkText("f.json", data); !ok {
			return
		}
		newYParser("f.json", data).jsonListLayout() // must not panic
		checkFastJSONValues(t, "f.json", data)
		// A value starts the text, as in runJSONItems.
		if len(data) > 0 && (data[0] == ' ' || data[0] == '\t' || data[0] == '\n' || data[0] == '\r') {
			return
		}
		checkFastJSON(t, "f.json", data, map[string]string{})
	})
}

// TestFastJSONValuesLoad checks JSON files outside kubectl's List layout,
// which fastJSONValues parses whole: Load gives what it gives with CUE's
// decoder, reports and positions included.
func TestFastJSONValuesLoad(t *testing.T) {
	svc := func(name, port string) string {
		return `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "` + name + `"}, "spec": {"ports": [{"port": ` + port + `}]}}`
	}
	cases := map[string]string{
		"one":             svc("a", "80"),
		"indented":        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    " + svc("a", "80") + ",\n    " + svc("b", "0") + "\n  ]\n}\n",
		"stream":          svc("a", "80") + "\n" + svc("b", "70000") + "\n\n  " + svc("c", "81") + " " + svc("d", "-1"),
		"leading space":   "\n\t " + svc("a", "0"),
		"not an object":   `[1, 2]` + "\n" + `"x"` + "\n" + svc("a", "0"),
		"syntax error":    svc("a", "80") + "\n" + `{"kind": }`,
		"trailing bytes":  svc("a", "0") + " x",
		"empty":           "",
		"white space":     " \n",
		"escapes":         `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a\u00e9", "annotations": {"x": "line\nbreak"}}, "spec": {"ports": [{"port": 0}]}}`,
		"surrogate pairs": `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "\ud83d\ude00"}, "spec": {"ports": [{"port": 80}]}}`,
	}
	dir := t.TempDir()
	for name, in := range cases {
		file := filepath.Join(dir, "in.json")
		if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		// Taken unless invalid or with surrogate pairs.
		_, taken := fastJSONValues(file, []byte(in))
		if want := name != "syntax error" && name != "trailing bytes" && name != "surrogate pairs"; taken != want {
			t.Errorf("%s: taken %v, want %v", name, taken, want)
		}
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{file}, nil, Options{})
		fastYAMLEnabled = true
		got, gotDiags := Load([]string{file}, nil, Options{})
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%s: diagnostics differ (-CUE +fast):\n%s", name, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: objects differ (-CUE +fast):\n%s", name, d)
		}
	}
}
