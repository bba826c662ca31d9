package load

import (
	"maps"
	"slices"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"

	"kpc/schema"
)

func parseSchema(t *testing.T, files []schema.File) []*ast.File {
	t.Helper()
	var out []*ast.File
	for _, f := range files {
		af, err := parser.ParseFile(f.Name, f.Source)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, af)
	}
	return out
}

// TestAnalyzeSchema checks what the analysis finds a schema can observe.
func TestAnalyzeSchema(t *testing.T) {
	cases := []struct {
		name   string
		src    string
		ok     bool
		refs   []string
		lens   []string
		eqSafe []string
		self   []string
		elem   []string
	}{{
		name: "references",
		src: `#S: {
	type: *"A" | "B"
	port: int
	target: *port | string
	ip?: string
	_x: type == "A"
	_y: ip == "None"
	if _x { sel?: {...} }
	_n: len(*sel | {})
}`,
		ok: true, refs: []string{"_x", "port"}, lens: []string{"sel"}, eqSafe: []string{"ip", "type"},
		self: []string{"_n", "target", "type"},
	}, {
		name: "conditional declaration is not eq-safe",
		src: `#S: {
	mode?: string
	if mode == "x" { mode: =~"^x" }
}`,
		ok: true,
	}, {
		name: "list element constraints",
		src: `import "net"
#S: {
	ips?: [...string & net.IP]
	objs?: [...#A | #B]
	c?: #C
}
#A: {a: int}
#B: {b: int}
#C: {...}`,
		ok: true, elem: []string{"ips", "objs"},
	}, {
		name: "let clauses are not modelled",
		src:  `#S: { let x = 1, a: x }`,
	}, {
		name: "aliases are not modelled",
		src:  `#S: { X=a: int, b: X }`,
	}, {
		name: "selecting patterns are not modelled",
		src: `#S: { [string]: #A | #B }
#A: {a: int}
#B: {b: int}`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := analyzeSchema(parseSchema(t, []schema.File{{Name: "s.cue", Source: []byte("package s\n" + c.src)}}))
			if d.ok != c.ok {
				t.Fatalf("ok = %v, want %v", d.ok, c.ok)
			}
			if !c.ok {
				return
			}
			check := func(what string, got map[string]bool, want []string) {
				var names []string
				for n := range got {
					names = append(names, n)
				}
				slices.Sort(names)
				if want == nil {
					want = []string{}
				}
				if names == nil {
					names = []string{}
				}
				if !slices.Equal(names, want) {
					t.Errorf("%s = %v, want %v", what, names, want)
				}
			}
			check("refs", d.refs, c.refs)
			check("lenRefs", d.lenRefs, c.lens)
			check("eqSafe", d.eqSafe, c.eqSafe)
			check("selfDep", d.selfDep, c.self)
			check("elemDep", d.elemDep, c.elem)
		})
	}
}

// TestAnalyzeKpcSchema checks that the analysis models kpc's schemas, so
// that large inputs are validated by shape, and that the fields the
// schema compares or refers to are known.
func TestAnalyzeKpcSchema(t *testing.T) {
	for name, files := range map[string][]schema.File{"open": schema.Files(), "strict": schema.StrictFiles()} {
		d := analyzeSchema(parseSchema(t, files))
		if !d.ok {
			t.Fatalf("%s: the schema uses a construct the shape analysis does not model", name)
		}
		if !d.refs["port"] || d.eqLits["type"] == nil {
			t.Errorf("%s: refs %v, eqLits %v", name, slices.Sorted(maps.Keys(d.refs)), d.eqLits)
		}
	}
}
