package load

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
	"github.com/google/go-cmp/cmp"

	"kpc/internal/synth"
)

// cueYAML decodes data with CUE's YAML decoder, as the loader uses it
// (yamlExtract).
func cueYAML(name string, data []byte) ([]ast.Expr, error) {
	next := yamlExtract(name, data)
	var out []ast.Expr
	for {
		e, err := next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// sameAST reports the first difference between two syntax trees in what
// the loader reads: node types, labels, literal texts and line:column
// positions. A position that b, CUE's tree, leaves out is not compared
// when a has one: CUE's YAML decoder leaves out some after a document it
// found odd (a bare scalar after a flow collection with a quote in a
// plain scalar, "{a: b\"}\n--- 0"; a key after a tag and a flow mapping
// in a sequence, "0: !00\n 00: [0: 0000]\n---\n0:"), and a diagnostic
// needs the position, which the fast parser gives.
func sameAST(a, b ast.Node, path string) string {
	return sameASTLabels(a, b, path, true)
}

// sameASTLabels is sameAST, comparing the positions of labels that are
// strings only if quotedPos.
func sameASTLabels(a, b ast.Node, path string, quotedPos bool) string {
	sameAST := func(a, b ast.Node, path string) string { return sameASTLabels(a, b, path, quotedPos) }
	lc := func(n ast.Node) string { q := toPos(n.Pos()); return fmt.Sprintf("%d:%d", q.Line, q.Col) }
	// dropped: CUE's tree has no position where the fast parser's has.
	dropped := func(a, b ast.Node) bool { return a.Pos().Filename() != "" && b.Pos().Filename() == "" }
	if fmt.Sprintf("%T", a) != fmt.Sprintf("%T", b) {
		return fmt.Sprintf("%s: %T vs %T", path, a, b)
	}
	if !dropped(a, b) && (lc(a) != lc(b) || a.Pos().Filename() != b.Pos().Filename()) {
		return fmt.Sprintf("%s: position %s %s vs %s %s", path, a.Pos().Filename(), lc(a), b.Pos().Filename(), lc(b))
	}
	switch x := a.(type) {
	case *ast.StructLit:
		y := b.(*ast.StructLit)
		if len(x.Elts) != len(y.Elts) {
			return fmt.Sprintf("%s: %d vs %d fields", path, len(x.Elts), len(y.Elts))
		}
		for i := range x.Elts {
			fx, ok1 := x.Elts[i].(*ast.Field)
			fy, ok2 := y.Elts[i].(*ast.Field)
			if !ok1 || !ok2 {
				return fmt.Sprintf("%s: element %d is %T vs %T", path, i, x.Elts[i], y.Elts[i])
			}
			nx, _, _ := ast.LabelName(fx.Label)
			ny, _, _ := ast.LabelName(fy.Label)
			if lostBool(fx.Label, fy.Label, nx, ny) {
				nx = ny
			} else if nx != ny || fmt.Sprintf("%T", fx.Label) != fmt.Sprintf("%T", fy.Label) {
				return fmt.Sprintf("%s: label %q (%T) vs %q (%T)", path, nx, fx.Label, ny, fy.Label)
			}
			if _, quoted := fx.Label.(*ast.BasicLit); (quotedPos || !quoted) && !dropped(fx.Label, fy.Label) && lc(fx.Label) != lc(fy.Label) {
				return fmt.Sprintf("%s.%s: label position %s vs %s", path, nx, fx.Label.Pos(), fy.Label.Pos())
			}
			if d := sameAST(fx.Value, fy.Value, path+"."+nx); d != "" {
				return d
			}
		}
	case *ast.ListLit:
		y := b.(*ast.ListLit)
		if len(x.Elts) != len(y.Elts) {
			return fmt.Sprintf("%s: %d vs %d elements", path, len(x.Elts), len(y.Elts))
		}
		for i := range x.Elts {
			if d := sameAST(x.Elts[i], y.Elts[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	case *ast.BasicLit:
		y := b.(*ast.BasicLit)
		if (x.Kind != y.Kind || x.Value != y.Value) && !lostBool(x, y, x.Value, unquoted(y)) {
			return fmt.Sprintf("%s: literal %s %s vs %s %s", path, x.Kind, x.Value, y.Kind, y.Value)
		}
	case *ast.UnaryExpr:
		y := b.(*ast.UnaryExpr)
		if x.Op != y.Op {
			return fmt.Sprintf("%s: op %s vs %s", path, x.Op, y.Op)
		}
		return sameAST(x.X, y.X, path)
	default:
		return fmt.Sprintf("%s: unexpected %T", path, a)
	}
	return ""
}

// lostBool reports whether a, of the fast parser, is the YAML 1.1 boolean
// (aText: "true" or "false") that b, of CUE's decoder, would be if the
// decoder had not dropped its position (bText is b's word): without it,
// asYAML11 cannot tell a plain word from a quoted one (see plainAt).
func lostBool(a, b ast.Node, aText, bText string) bool {
	v, ok := yaml11Bool(bText)
	return ok && b.Pos().Filename() == "" && a.Pos().Filename() != "" && aText == boolText(v)
}

// checkFastYAML compares fastYAML with CUE's decoder on data; it returns
// whether the fast parser accepted it.
func checkFastYAML(t *testing.T, name string, data []byte) bool {
	t.Helper()
	got, ok := fastYAMLAll(name, data)
	if !ok {
		return false
	}
	want, err := cueYAML(name, data)
	if err != nil {
		t.Errorf("%s: fast parser accepted what CUE rejects: %v", name, err)
		return true
	}
	// CUE yields null for empty documents; the fast parser drops them.
	var keep []ast.Expr
	for _, e := range want {
		if l, ok := e.(*ast.BasicLit); ok && l.Value == "null" {
			continue
		}
		if _, ok := e.(*ast.BinaryExpr); ok {
			continue
		}
		keep = append(keep, e)
	}
	if len(got) != len(keep) {
		t.Errorf("%s: %d documents, CUE %d", name, len(got), len(keep))
		return true
	}
	for i := range got {
		if d := sameAST(got[i], keep[i], fmt.Sprintf("doc%d", i)); d != "" {
			t.Errorf("%s: %s", name, d)
			return true
		}
	}
	return true
}

func TestFastYAMLMatchesCUE(t *testing.T) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 200, Endpoints: 4}); err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"synth.yaml": b.Bytes(), "gen.yaml": genServices(30)}
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.yaml")
	more2, _ := filepath.Glob("testdata/*/*/*.yaml")
	more3, _ := filepath.Glob("testdata/*/*/*/*.yaml")
	golden, _ := filepath.Glob("../../golden/testdata/*/*.yaml")
	for _, f := range append(append(append(append(files, more...), more2...), more3...), golden...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = data
	}
	accepted := 0
	for name, data := range inputs {
		if checkFastYAML(t, name, data) {
			accepted++
		}
	}
	t.Logf("fast parser took %d of %d inputs", accepted, len(inputs))
	for _, must := range []string{"synth.yaml", "gen.yaml", "testdata/kubectl-list.yaml"} {
		if _, ok := fastYAMLAll(must, inputs[must]); !ok {
			t.Errorf("%s: not taken by the fast parser", must)
		}
	}
}

// TestFastYAMLCases checks small inputs, each either taken by the fast
// parser with CUE's result or left to CUE.
func TestFastYAMLCases(t *testing.T) {
	cases := []string{
		"a: 1\n",
		"a: -1\nb: 0\nc: 007\nd: 1_000\ne: 0x1F\nf: 1e3\ng: 1.5\nh: .5\n",
		"a: true\nb: True\nc: yes\nd: on\ne: null\nf: ~\ng: Null\n",
		"a: 2001-12-14\nb: 10.96.0.1\nc: 1.2.3\nd: 12:30\ne: fd00::1\n",
		"a: \"x\"\nb: 'y'\nc: \"a\\\"b\"\nd: 'it''s'\ne: \"\"\n",
		"a: [1, 2, \"x\", y]\nb: {c: d, e: [f]}\nc: []\nd: {}\n",
		"a:\n  b: 1\n  c:\n  - d: 1\n    e: 2\n  - 3\n",
		"a:\n- 1\n- 2\nb: x\n",
		"---\na: 1\n---\nb: 2\n---\n",
		"# c\n\na: 1 # c\n\n# c\nb:   x   \n",
		"a: x\n  y\n",
		"a: |\n  x\n",
		// Literal block scalars: taken in kubectl's forms.
		"a: |\n  x\nb: 1\n",
		"a: |-\n  x\n   y\n\n  z\n\n\nb: 1\n",
		"a:\n  b: |\n    {\"k\": \"v\", \"l\": [1, 2]} # not a comment\n  c: 2\n",
		"items:\n- a: |\n    x\n  b: 1\n- metadata:\n    annotations:\n      k: |\n        {\"a\":\"b\"}\n    name: c\n",
		"a: |\n  x\n---\nb: |-\n  y\n",
		"a: |\n  x\n  # c\n\n",
		"a: |\n  x",
		"a: |\n  x\n",
		// Keys as in managedFields, and other printable characters in keys.
		"f:metadata:\n  f:labels:\n    .: {}\n    f:app: {}\n  k:{\"port\":80,\"protocol\":\"TCP\"}:\n    .: {}\n",
		"a:b: 1\na,b: 2\na{b}[c]: 3\na#b: 4\na\"b: 5\na'b: 6\na:b:c: 7\na\\b: 8\n_.-/~!$%&*()+=<>?@^`|: 9\n",
		"1:2: x\n", "a:: 1\n", "a:b:\n  c: 1\n", "a b:c: 1\n",
		// Plain scalars folded over several lines, as kubectl prints long values.
		"metadata:\n  annotations:\n    long: a long annotation value with spaces that goes well beyond eighty\n      characters in width for sure\n  name: a\n",
		"a: this is a long\n  value   with spaces  \n     and more\nb: 1\n",
		"a:\n- one\n  two\n- three\n",
		"a: 1\n  2\nb: true\n  false\nc: null\n  x\n",
		"a: x\n\n  y\n", "a: x # c\n  y\n", "a: x\n  - y\n", "a: x\n  y: z\n", "a: x\n  y #c\n", "a: x\n  'y'\n",
		"a: x\n  # c\n  y\n", "a: x\n  y:\n", "a: [x]\n  y\n", "a: 'x'\n  y\n",
		// Literal block scalars decoded by the general decoder:
		"a: |+\n  x\n\n", "a: |2\n   x\n", "a: | # c\n  x\n", "a: |\n\n  x\n", "a: |\n  x\n   \nb: 1\n",
		"a: |\n    x\n  y\n", "a: >\n  x\n", "a: |\nb: 1\n", "- |\n  x\n", "a: |\n",
		"a: &x 1\nb: *x\n",
		"a: !!str 1\n",
		"a:\n",
		"a: b: c\n",
		"- a\n- b\n",
		"a: - b\n",
		"\"quoted key\": 1\n'k': 2\n80: x\ntrue: y\nnull: z\n",
		"a: [a, b,]\n",
		"a: [1,\n  2]\n",
		"a:\tb\n",
		"a: x#y\nb: x #y\n",
		"a: -x\nb: -\n",
		"key with space: 1\n",
		"a: 1\n a2: 2\n",
		"a:\n  - 1\n  - 2\n",
		"a:\n    b: 1\n    c: 2\nd: 3\n",
		"a: {b: 1, c: {d: [1, {e: f}]}}\n",
		"--- # c\na: 1\n",
		"--- a\n",
		"a: 1\n...\n",
		// Document end markers: after a document or a start marker only,
		// and followed by a marker.
		"...\n", "# c\n...\n", "a: 1\n...\n...\n", "---\n...\n...\n", "a: 1\n... # c\n---\nb: 2\n",
		"a: 1\n...\nb: 2\n", "a: 1\n...x\n", "a: 1\n....\n",
		"a: b:c\n",
		"a: 'x' y\n",
		"a: [x] y\n",
		"a: :x\n",
		"a: 99999999999999999999\n",
		"a: -0\n",
		"-1: x\n",
		"a: <<\n<<: x\n",
		"a: 1_0.2.3\nb: 0x1.2.3\nc: +1.2.3\nd: -1.2.3\ne: 1.2e3.4\nf: .1.2\ng: 1..2\nh: 2001.12.14\ni: 0.0.0.0\n",
		"a: {b: 0?}\nc: [d?]\ne: {f: g?h}\n",
		"a: 0b101\nb: -0b11\nc: 0o17\nd: -0o7\ne: 0b_1\n",
		// Integers only to the resolver's own binary and octal syntax.
		"a: 0b+1\n", "a: 0o+7\n", "a: 0b-1\n",
		// Two or more '-' after the first character: never a number.
		"a: 1-2-3\nb: 0b-1-1\nc: 1e-5-5\nd: -0-0-0\ne: 1--\n",
		"a: +.5-5-5\nb: -.5-5\nc: 1.5e-5\nd: 0o-7\n",
		// Strings that start like binary or octal integers, as uids do.
		"uid: 0bb65f58-6fb4-586f-362f-5091dbc081bc\nb: 0oa\nc: -0bx\nd: 0b2\ne: 0b\nf: 0o8\n" +
			"g: 0b11111111111111111111111111111111111111111111111111111111111111111\n",
	}
	for i, c := range cases {
		name := fmt.Sprintf("case%d.yaml", i)
		// What CUE decodes is taken: by the fast parser, or a document
		// at a time by the general decoder.
		_, err := cueYAML(name, []byte(c))
		if taken := checkFastYAML(t, name, []byte(c)); taken != (err == nil) {
			t.Errorf("%q: taken %v, CUE's error %v", c, taken, err)
		}
	}
	// Spot checks that the fast parser takes the plain cases.
	literals := slices.Index(cases, "a: |\n  x\nb: 1\n")
	folded := slices.IndexFunc(cases, func(c string) bool { return strings.HasPrefix(c, "metadata:\n  annotations:\n    long:") })
	dashes := slices.Index(cases, "a: 1-2-3\nb: 0b-1-1\nc: 1e-5-5\nd: -0-0-0\ne: 1--\n")
	for _, c := range append(append([]string{cases[0], cases[5], cases[6], cases[7], cases[8], cases[9], cases[dashes], cases[len(cases)-1]},
		cases[literals:literals+6]...), cases[folded:folded+4]...) {
		if _, ok := fastYAMLAll("x.yaml", []byte(c)); !ok {
			t.Errorf("fast parser refused %q", c)
		}
	}
	_ = strings.TrimSpace
}

// TestGeneralDocuments checks the documents that the general decoder
// decodes alone, between documents of the fast parser's: every position
// in their trees is one of the whole file's, and the trees are CUE's for
// the whole file (checkFastYAML).
func TestGeneralDocuments(t *testing.T) {
	svc := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n"
	odd := []string{
		"metadata:\n  name: caf\u00e9\n  annotations: {a: \"\u65e5\u672c\", b: x}\nspec: {}\n",
		"metadata:\n  name:\tt\n",
		"a: &x [1, {b: 2}]\nc: *x\n",
		"a: >\n  folded\n  text\nb: |+\n  kept\n\n",
		"a: \"tab\\there\"\nb: \"multi\n  line\"\n",
		"a: !!str 1\nb: 0x1F\n# \u00e9 in a comment\n",
		"--- {a: 1}\n",
		"- a\n- b\n",
		"'x': y\n...\n# c\n... # c\n",
		"a: 1\r\nb: [x,\r\n  y]\r\n",
	}
	var b strings.Builder
	for i, o := range odd {
		b.WriteString(svc + "---\n# before\n" + o)
		if i%2 == 0 {
			b.WriteString("---\n")
		}
		if !strings.HasPrefix(o, "---") {
			b.WriteString("---\n")
		}
	}
	b.WriteString(svc)
	data := []byte(b.String())
	docs, ok := fastYAMLAll("odd.yaml", data)
	if !ok {
		t.Fatal("not taken")
	}
	if !checkFastYAML(t, "odd.yaml", data) {
		t.Fatal("not taken")
	}
	file := docs[0].Pos().File()
	for i, d := range docs {
		ast.Walk(d, func(n ast.Node) bool {
			v := reflect.ValueOf(n).Elem()
			for j := range v.NumField() {
				if !v.Type().Field(j).IsExported() {
					continue
				}
				if p, ok := v.Field(j).Interface().(token.Pos); ok && p.HasAbsPos() && p.File() != file {
					t.Errorf("doc %d: %T.%s at %v is not in the file's positions", i, n, v.Type().Field(j).Name, p)
				}
			}
			return true
		}, nil)
	}
	// The general decoder's errors stop the fast parser.
	for _, bad := range []string{"a: [\n", "a: \"x\n", "%YAML 1.2\n", "a: 1\n...\nb: 2\n", "a: &x\n  b: *x\n"} {
		in := []byte(svc + "---\n" + bad + "---\n" + svc)
		if _, ok := fastYAML("bad.yaml", in, func(ast.Expr) {}); ok {
			t.Errorf("%q: taken", bad)
		}
		if _, err := cueYAML("bad.yaml", in); err == nil {
			t.Errorf("%q: CUE takes it", bad)
		}
	}
}

// TestGeneralUnicodeBreaks checks documents with a line break other than
// LF (NEL, LS, PS), which the YAML decoder counts as lines: the fast
// parser leaves them to a decoding of the whole file, whose positions do
// not depend on where a document starts, and Load gives what it gives
// with CUE's decoder alone.
func TestGeneralUnicodeBreaks(t *testing.T) {
	svc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: {ports: [{port: 80}]}\n"
	}
	for _, c := range []string{
		"--- 0\n\u0085--- 0\n",
		"0\n--\n--- 0\n\u0085--- 0\n--- 0", // found by FuzzFastYAML
		"#\u0085#\u0085y3",                 // found by FuzzFastYAML: a comment hid "y3"
		svc("a") + "# c\u0085spec: {ports: [{port: 81}]}\n",
		svc("a") + "---\n" + "a: \u2028b\n" + "---\n" + svc("b"),
		svc("a") + "--- x\u2029--- y\n---\n" + svc("b"),
		svc("a") + "---\n" + strings.Replace(svc("b"), "spec:", "\u0085spec:", 1) + "---\n" + svc("c") + "---\n" + svc("d"),
	} {
		if _, ok := fastYAMLAll("f.yaml", []byte(c)); ok {
			t.Errorf("%q: taken by the fast parser", c)
		}
		checkFastYAML(t, "f.yaml", []byte(c))
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		fastYAMLEnabled = true
		got, gotDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%q: diagnostics differ (-CUE +fast):\n%s", c, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%q: objects differ (-CUE +fast):\n%s", c, d)
		}
	}
}

// TestFastYAMLFallback checks inputs where the fast parser stops part way
// (a construct outside its subset, a syntax error): the results must be
// those of the general decoder alone.
func TestFastYAMLFallback(t *testing.T) {
	svc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  ports:\n  - port: 80\n"
	}
	cases := map[string]string{
		"block scalar":   svc("a") + "---\n" + svc("b") + "  description: |\n    text\n---\n" + svc("c"),
		"syntax error":   svc("a") + "---\n" + svc("b") + "---\nkind: [\n---\n" + svc("c"),
		"empty docs":     "---\n---\n" + svc("a") + "---\n# only a comment\n---\n" + svc("b") + "---\na: &x 1\n---\n" + svc("c"),
		"top-level list": svc("a") + "---\n- a\n- b\n---\n" + svc("b"),
		"bad value":      svc("a") + "---\n" + svc("b") + "---\n" + strings.Replace(svc("c"), "port: 80", "port: 0x50", 1),
		"CRLF":           strings.ReplaceAll(svc("a")+"---\n"+strings.Replace(svc("b"), "port: 80", "port: 0", 1)+"  x: |\n    a\n    b\n  y: \"c\n    d\"\n", "\n", "\r\n"),
	}
	for name, c := range cases {
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		fastYAMLEnabled = true
		got, gotDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		if wantDiags.Error() != gotDiags.Error() {
			t.Errorf("%s: diagnostics\n%s\nwant\n%s", name, gotDiags.Error(), wantDiags.Error())
		}
		if len(got.Services) != len(want.Services) {
			t.Errorf("%s: %d services, want %d", name, len(got.Services), len(want.Services))
		}
		for i := range got.Services {
			if i < len(want.Services) && (got.Services[i].Metadata.Name != want.Services[i].Metadata.Name || got.Services[i].Pos != want.Services[i].Pos) {
				t.Errorf("%s: service %d is %s at %v, want %s at %v", name, i, got.Services[i].Metadata.Name, got.Services[i].Pos, want.Services[i].Metadata.Name, want.Services[i].Pos)
			}
		}
	}
}

// TestChunkedMatchesSequential checks the parallel decoding of large
// inputs against the general decoder: a valid cluster, and clusters where
// the fast parser stops in the middle (a block scalar, a syntax error)
// or documents are invalid.
func TestChunkedMatchesSequential(t *testing.T) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 1500, Endpoints: 4}); err != nil {
		t.Fatal(err)
	}
	valid := b.String()
	if len(valid) < 3*chunkBytes {
		t.Fatalf("input of %d bytes is too small to be chunked", len(valid))
	}
	mid := strings.Index(valid[len(valid)/2:], "\n---\n") + len(valid)/2 + 1
	cm := "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n"
	// Documents outside the fast parser's subset: in the middle, and in
	// every part (a Service's port name, on every tenth Service).
	every := regexp.MustCompile(`(?m)^  name: (svc-\d*1)$`).ReplaceAllString(valid, "  name: $1\n  annotations: {note: \"caf\u00e9\"}")
	if strings.Count(every, "caf") != 150 {
		t.Fatalf("%d odd Services, want 150", strings.Count(every, "caf"))
	}
	cases := map[string]struct {
		in    string
		whole bool // given back to the general decoder from a point on
	}{
		"valid":                   {valid, false},
		"block scalar":            {valid[:mid] + cm + "  a: >\n    text\n" + valid[mid:], false},
		"non-ASCII":               {valid[:mid] + cm + "  a: \u65e5\u672c\n" + valid[mid:], false},
		"every part":              {every, false},
		"tab":                     {valid[:mid] + cm + "  a:\tb\n" + valid[mid:], false},
		"anchor":                  {valid[:mid] + cm + "  a: &x b\n  c: *x\n" + valid[mid:], false},
		"escape":                  {strings.Replace(valid, "name: svc-2\n", "name: \"svc\\x2d2\"\n", 1), false},
		"CRLF":                    {strings.ReplaceAll(valid, "\n", "\r\n"), false},
		"invalid in odd":          {strings.Replace(every, "targetPort: 8082", "targetPort: 70000", 3), false},
		"invalid after non-ASCII": {valid[:mid] + "---\napiVersion: v1\nkind: Service\nmetadata: {name: \"\u00e9\", namespace: x}\nspec:\n  ports: [{name: \"\u00e9\", port: 0}]\n" + valid[mid:], false},
		"syntax error":            {valid[:mid] + "---\nkind: [\n" + valid[mid:], true},
		"invalid":                 {strings.ReplaceAll(valid, "targetPort: 8082", "targetPort: 70000"), false},
		"list":                    {valid[:mid] + "---\n- a\n" + valid[mid:], false},
	}
	for name, tc := range cases {
		c := tc.in
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		fastYAMLEnabled = true
		before := wholeFallbacks.Load()
		got, gotDiags := Load([]string{"-"}, strings.NewReader(c), Options{})
		if whole := wholeFallbacks.Load() > before; whole != tc.whole {
			t.Errorf("%s: given back whole %v, want %v", name, whole, tc.whole)
		}
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%s: diagnostics differ (-sequential +chunked):\n%s", name, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: objects differ (-sequential +chunked):\n%s", name, d)
		}
		if invalid := strings.Contains(name, "invalid") || name == "syntax error" || name == "list"; invalid != (len(wantDiags.Errors()) > 0) {
			t.Errorf("%s: diagnostics %v", name, wantDiags)
		}
	}
}

// kubectlList returns the documents of a multi-document YAML text as one
// List in kubectl's layout, with head before the items and tail after.
func kubectlList(docs, head, tail string) string {
	var b strings.Builder
	b.WriteString(head + "items:\n")
	for _, d := range strings.Split(docs, "\n---\n") {
		first := true
		for _, l := range strings.Split(strings.TrimPrefix(d, "---\n"), "\n") {
			switch {
			case l == "":
			case first:
				b.WriteString("- " + l + "\n")
				first = false
			default:
				b.WriteString("  " + l + "\n")
			}
		}
	}
	b.WriteString(tail)
	return b.String()
}

// TestChunkedListMatchesSequential checks the parallel decoding of a large
// List in kubectl's layout against the general decoder, and which inputs
// take that path.
func TestChunkedListMatchesSequential(t *testing.T) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 1500, Endpoints: 4}); err != nil {
		t.Fatal(err)
	}
	docs := b.String()
	head, tail := "apiVersion: v1\n", "kind: List\nmetadata:\n  resourceVersion: \"\"\n"
	valid := kubectlList(docs, head, tail)
	if len(valid) < 3*chunkBytes {
		t.Fatalf("input of %d bytes is too small to be chunked", len(valid))
	}
	mid := strings.Index(valid[len(valid)/2:], "\n- ") + len(valid)/2 + 1
	item := "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: x\n"
	cases := []struct {
		name   string
		in     string
		layout bool // taken in parts
	}{
		{"valid", valid, true},
		{"keys first", kubectlList(docs, "kind: List\napiVersion: v1\n", "metadata: {}\n"), true},
		{"typed list", kubectlList(strings.ReplaceAll(docs, "apiVersion: v1\nkind: Service\n", ""), head, "kind: ServiceList\n"), true},
		{"invalid", strings.ReplaceAll(valid, "targetPort: 8082", "targetPort: 70000"), true},
		{"not an object", valid[:mid] + "- a\n" + valid[mid:], true},
		{"block scalar", valid[:mid] + item + "  data:\n    a: |\n      text\n" + valid[mid:], true},
		{"folded", valid[:mid] + item + "  data:\n    a: >\n      text\n" + valid[mid:], true},
		{"non-ASCII", valid[:mid] + item + "  data:\n    a: caf\u00e9\n" + valid[mid:], true},
		{"every part", regexp.MustCompile(`(?m)^    name: (svc-\d*1)$`).ReplaceAllString(valid, "    name: $1\n    annotations: {note: \"caf\u00e9\"}"), true},
		{"anchor", valid[:mid] + item + "  data: &x\n    a: b\n  other: *x\n" + valid[mid:], true},
		{"invalid in odd", valid[:mid] + item + "  data: \"\u00e9\"\n" + valid[mid:], true},
		{"invalid after non-ASCII", valid[:mid] + "- apiVersion: v1\n  kind: Service\n  metadata: {name: \"\u00e9\", namespace: x}\n  spec:\n    ports: [{name: \"\u00e9\", port: 0}]\n" + valid[mid:], true},
		{"odd in the wrapper", kubectlList(docs, "apiVersion: v1 # \u00e9\n", tail), false},
		{"CRLF", strings.ReplaceAll(strings.ReplaceAll(valid, "targetPort: 8082", "targetPort: 70000"), "\n", "\r\n"), true},
		{"syntax error", valid[:mid] + item + "  data: [\n" + valid[mid:], true},
		{"two documents", kubectlList(docs, head, "---\n"+tail), false},
		{"other key", kubectlList(docs, head, tail+"extra: 1\n"), false},
		{"not a List", kubectlList(docs, head, "kind: Service\n"), false},
		{"items twice", kubectlList(docs, head, tail+"items: []\n"), false},
		{"indented items", strings.Replace(valid, "items:\n- ", "items:\n  - ", 1), false},
	}
	for _, tc := range cases {
		p := newYParser("-", crlfToLF([]byte(tc.in))) // as Load reads it
		if _, got := p.listLayout(); got != tc.layout {
			t.Errorf("%s: listLayout %v, want %v", tc.name, got, tc.layout)
		}
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		fastYAMLEnabled = true
		before := wholeFallbacks.Load()
		got, gotDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		// Only a syntax error gives the input back to the general decoder
		// from a point on (the first item alone indented is one).
		if whole := wholeFallbacks.Load() > before; whole != (tc.name == "syntax error" || tc.name == "indented items") {
			t.Errorf("%s: given back whole %v", tc.name, whole)
		}
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%s: diagnostics differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: objects differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if tc.name == "valid" && (len(wantDiags) != 0 || len(want.Services) != 1500) {
			t.Errorf("%s: %d Services, diagnostics %v", tc.name, len(want.Services), wantDiags)
		}
	}
}

// TestBareCarriageReturn checks that YAML with a CR that does not end a
// CRLF line is rejected with a position (the YAML parser and CUE's
// positions disagree on such lines).
func TestBareCarriageReturn(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"\r\r0", "-:1:1: carriage return not followed by a line feed: line endings must be LF or CRLF"},
		{"a: 1\r\nb: 2\rc: 3\n", "-:2:5: carriage return not followed by a line feed: line endings must be LF or CRLF"},
	} {
		_, diags := Load([]string{"-"}, strings.NewReader(c.in), Options{})
		if len(diags) != 1 || diags[0].Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.in, diags, c.want)
		}
	}
	// CRLF line endings are fine.
	in, diags := Load([]string{"-"}, strings.NewReader("apiVersion: v1\r\nkind: Service\r\nmetadata: {name: a}\r\nspec: {ports: [{port: 80}]}\r\n"), Options{})
	if len(diags) != 0 || len(in.Services) != 1 {
		t.Errorf("CRLF: %v", diags)
	}
}

// FuzzFastYAML checks that whatever the fast parser accepts, it parses as
// CUE's YAML decoder does.
func FuzzFastYAML(f *testing.F) {
	f.Add([]byte("a: 1\nb:\n- c: [x, \"y\"]\n  d: {e: true}\n---\nf: -2\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: a # c\nspec:\n  ports:\n  - port: 80\n"))
	f.Add([]byte("a:\n  b: 'c'\n  d:\n  - 1\n  - 2\n"))
	f.Add([]byte("a:\n- b: |\n    {\"c\":[1]}\n\n    d\n  e: |-\n    f\n  g: 0bb65f58-6fb4\n"))
	f.Add([]byte("a:\n  b: one two\n    three\n  c:\n  - four\n    five\n"))
	f.Add([]byte("managedFields:\n- fieldsV1:\n    f:spec:\n      .: {}\n      k:{\"port\":80}:\n        f:name: {}\n"))
	// Documents for the general decoder among the fast parser's.
	f.Add([]byte("a: caf\u00e9\n---\nb: 1\n...\n---\nc: &x [1]\nd: *x\n---\ne: >\n  f\n"))
	f.Add([]byte("a: 1\r\n---\r\nb:\t2\r\n--- {c: 3}\n- d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		// Load rejects such inputs before parsing.
		if _, _, ok := checkText("f.yaml", data); !ok {
			return
		}
		if _, _, ok := yamlControl("f.yaml", data); !ok {
			return
		}
		if _, _, ok := checkAliases("f.yaml", data); !ok {
			return
		}
		if _, ok := bareCR("f.yaml", data); !ok {
			return
		}
		checkFastYAML(t, "f.yaml", data)
	})
}

// TestQuote checks quote against CUE's own quoting, in both forms, on
// strings with and without characters that need escaping.
func TestQuote(t *testing.T) {
	inputs := []string{"", "a", "svc-1", "10.96.0.1", "a b", "~!@#$%^&*()_+{}|:<>?`-=[];',./", "say \"hi\"", `back\slash`,
		"tab\there", "line\nbreak", "two\nlines\n", "é", "日本", "\x00", "\x7f", "\\(x)", `"`, "\r"}
	for b := 0x20; b < 0x7f; b++ {
		inputs = append(inputs, "x"+string(rune(b))+"y")
	}
	for _, f := range []literal.Form{literal.String, valueForm} {
		for _, s := range inputs {
			if got, want := quote(f, s), f.Quote(s); got != want {
				t.Errorf("quote(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// TestIsPlainInt checks isPlainInt against the regular expression it
// stands for.
func TestIsPlainInt(t *testing.T) {
	re := regexp.MustCompile(`^-?(0|[1-9][0-9]{0,17})$`)
	inputs := []string{"", "-", "0", "-0", "00", "01", "1", "-1", "+1", "10", "8080", "123456789012345678", "1234567890123456789",
		"-123456789012345678", "1a", "a1", "1.0", "1_000", " 1", "1 ", "0x1", "१"}
	for _, s := range inputs {
		if got, want := isPlainInt(s), re.MatchString(s); got != want {
			t.Errorf("isPlainInt(%q) = %v, want %v", s, got, want)
		}
	}
}
