package load

import (
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// Shape memoisation.
//
// Large inputs hold many documents that differ only in names, addresses
// and similar values: ten thousand Services of a few dozen shapes. The
// schema evaluates such a value in one place only, against a constraint
// that depends on nothing else in the document (a pattern, a bound, an IP
// check), so the rest of the evaluation is the same for every document of
// the shape. A document's shape is the document with each such value
// (a parameter) replaced by its type; which values qualify is decided by
// reading the schema (shape.go). Two documents of one shape unify with the
// schema identically except at the parameters, so one is valid if and
// only if
//
//   - another document of the same shape unified without error, and
//   - each of its parameters unifies, without error and concretely, with
//     the constraint the schema puts at the parameter's path in the shape
//     (found by unifying the shape, with types in place of the
//     parameters, with the schema).
//
// Each parameter is still checked by CUE against the schema's own
// constraint (results are cached per constraint and value); what is
// shared is the evaluation of the document's structure. The defaulted
// object is the first document's evaluation with the parameters replaced.
//
// A value compared with literals only (type == "ClusterIP", clusterIP ==
// "None") is a parameter too when its declarations are unconditional and
// self-contained: the shape records which literal it equals, if any, and
// an unequal value is checked against the constraint it has when every
// parameter is a type.
//
// Only documents known valid are accepted this way: anything else (a
// first or second sighting of a shape, a parameter failing its check)
// takes the full evaluation, which reports the errors.

// param is one parameter value of a document.
type param struct {
	kind byte // 's' string, 'i' int, 'b' bool
	s    string
	n    int64
}

// shapeWalker computes a document's shape key and parameters.
type shapeWalker struct {
	deps   *schemaDeps
	key    []byte
	params []param
	ok     bool

	// When building a template: the path of each parameter, whether it
	// is compared with literals, and the rewritten document.
	collect bool
	sels    [][]cue.Selector
	paths   []string
	eq      []bool
	cur     []cue.Selector
	curPath []byte
	// typesFor selects what replaces parameters in the rewritten
	// document: 1 regular parameters only, 2 every parameter.
	typesFor int
}

// leafClass is how one scalar of a document enters its shape.
type leafClass int

const (
	exact   leafClass = iota // the value is part of the key
	regular                  // a parameter
	eqOther                  // a parameter compared with literals, equal to none
)

// walk appends the shape of e to w.key and its parameters to w.params.
// label is the field name e is the value of (for list elements, the
// list's), forced whether every value under e is exact, indexed whether
// the path to e has a list index. When w.typesFor is set it returns e
// rewritten with types in place of the chosen parameters.
func (w *shapeWalker) walk(e ast.Expr, label string, forced, indexed bool) ast.Expr {
	if !w.ok {
		return e
	}
	switch x := e.(type) {
	case *ast.StructLit:
		forced = forced || w.deps.selfDep[label] || w.deps.refs[label] || w.deps.eqLits[label] != nil
		w.key = append(w.key, '{')
		var out *ast.StructLit
		if w.typesFor != 0 {
			out = &ast.StructLit{Elts: make([]ast.Decl, 0, len(x.Elts))}
		}
		for _, el := range x.Elts {
			f, ok := el.(*ast.Field)
			if !ok {
				w.ok = false
				return e
			}
			name, _, err := labelName(f.Label)
			if err != nil || f.Constraint != token.ILLEGAL {
				w.ok = false
				return e
			}
			w.key = strconv.AppendInt(w.key, int64(len(name)), 10)
			w.key = append(w.key, ':')
			w.key = append(w.key, name...)
			if w.collect {
				w.cur = append(w.cur, cue.Str(name))
				w.curPath = append(w.curPath, 0)
				w.curPath = append(w.curPath, name...)
			}
			n := len(w.curPath)
			v := w.walk(f.Value, name, forced, indexed)
			if w.collect {
				w.cur = w.cur[:len(w.cur)-1]
				w.curPath = w.curPath[:n-len(name)-1]
			}
			if out != nil {
				out.Elts = append(out.Elts, &ast.Field{Label: ast.NewString(name), Value: v})
			}
		}
		w.key = append(w.key, '}')
		if out != nil {
			return out
		}
		return e
	case *ast.ListLit:
		forced = forced || w.deps.selfDep[label] || w.deps.refs[label] || w.deps.eqLits[label] != nil
		elemForced := forced || w.deps.elemDep[label]
		w.key = append(w.key, '[')
		var out *ast.ListLit
		if w.typesFor != 0 {
			out = &ast.ListLit{Elts: make([]ast.Expr, 0, len(x.Elts))}
		}
		for i, el := range x.Elts {
			f := forced
			switch el.(type) {
			case *ast.StructLit:
				f = elemForced
			case *ast.ListLit:
				f = true // nested lists: not modelled
			}
			if w.collect {
				w.cur = append(w.cur, cue.Index(i))
				w.curPath = append(w.curPath, 1)
				w.curPath = strconv.AppendInt(w.curPath, int64(i), 10)
			}
			n := len(w.curPath)
			v := w.walk(el, label, f, true)
			if w.collect {
				w.cur = w.cur[:len(w.cur)-1]
				w.curPath = w.curPath[:n-len(strconv.Itoa(i))-1]
			}
			if out != nil {
				out.Elts = append(out.Elts, v)
			}
		}
		w.key = append(w.key, ']')
		if out != nil {
			return out
		}
		return e
	case *ast.BasicLit:
		return w.leaf(x, label, forced, indexed)
	case *ast.UnaryExpr:
		// A negative number: exact.
		if lit, ok := x.X.(*ast.BasicLit); ok && x.Op == token.SUB && (lit.Kind == token.INT || lit.Kind == token.FLOAT) {
			w.key = append(w.key, 'L', '-')
			w.key = strconv.AppendInt(w.key, int64(len(lit.Value)), 10)
			w.key = append(w.key, ':')
			w.key = append(w.key, lit.Value...)
			return e
		}
	}
	w.ok = false
	return e
}

// leaf handles a scalar.
func (w *shapeWalker) leaf(x *ast.BasicLit, label string, forced, indexed bool) ast.Expr {
	p, plain := paramOf(x)
	class := exact
	if plain && !forced && !w.deps.refs[label] && !w.deps.lenRefs[label] {
		class = regular
		if lits := w.deps.eqLits[label]; lits != nil {
			switch {
			case lits[litKey(x.Kind, litText(p))]:
				class = exact
			case w.deps.eqSafe[label] && !indexed:
				class = eqOther
			default:
				class = exact
			}
		}
	}
	if class == exact {
		w.key = append(w.key, 'L', byte(x.Kind))
		w.key = strconv.AppendInt(w.key, int64(len(x.Value)), 10)
		w.key = append(w.key, ':')
		w.key = append(w.key, x.Value...)
		return x
	}
	if class == eqOther {
		w.key = append(w.key, 'E', p.kind)
	} else {
		w.key = append(w.key, 'P', p.kind)
	}
	w.params = append(w.params, p)
	if w.collect {
		w.sels = append(w.sels, append([]cue.Selector(nil), w.cur...))
		w.paths = append(w.paths, string(w.curPath))
		w.eq = append(w.eq, class == eqOther)
	}
	if w.typesFor == 2 || (w.typesFor == 1 && class == regular) {
		switch p.kind {
		case 's':
			return ast.NewIdent("string")
		case 'i':
			return ast.NewIdent("int")
		case 'b':
			return ast.NewIdent("bool")
		}
	}
	return x
}

// litText is a parameter's value as litKey wants it.
func litText(p param) string {
	switch p.kind {
	case 's':
		return p.s
	case 'b':
		if p.n != 0 {
			return "true"
		}
		return "false"
	}
	return strconv.FormatInt(p.n, 10)
}

// paramOf returns a literal's value if it can be a parameter: a string, a
// boolean, or an integer written in plain decimal.
func paramOf(x *ast.BasicLit) (param, bool) {
	switch x.Kind {
	case token.STRING:
		v := x.Value
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.HasPrefix(v, `"""`) &&
			strings.IndexByte(v, '\\') < 0 {
			return param{kind: 's', s: v[1 : len(v)-1]}, true
		}
		if strings.HasPrefix(v, "'") || strings.HasPrefix(v, "#") {
			return param{}, false // bytes, raw strings
		}
		s, err := literal.Unquote(v)
		if err != nil {
			return param{}, false
		}
		return param{kind: 's', s: s}, true
	case token.INT:
		v := x.Value
		if v == "" || len(v) > 18 || (v[0] == '0' && len(v) > 1) {
			return param{}, false
		}
		n := int64(0)
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return param{}, false
			}
			n = n*10 + int64(c-'0')
		}
		return param{kind: 'i', n: n}, true
	case token.TRUE:
		return param{kind: 'b', n: 1}, true
	case token.FALSE:
		return param{kind: 'b'}, true
	}
	return param{}, false
}

// template is what one shape's documents share.
type template struct {
	usable bool
	// cons[i] is the constraint of parameter i.
	cons []cue.Value
	// any[i] reports that constraint i admits every value of the
	// parameter's type (CUE finds that the type is an instance of it).
	any []bool
	// fast[i] checks values of parameter i in Go (nil: by CUE, see
	// fastcheck.go).
	fast []paramCheck
	// seen[i] caches the outcome of checking values of parameter i by CUE.
	seen []map[param]bool
	// tree is the defaulted object of the first document, with the
	// parameters marked.
	tree *tnode
	// unknown are the paths of the shape's fields that the closed schema
	// does not declare, for the warnings of documents validated with the
	// open one (found by the full evaluations of the shape's first
	// documents): whether a field is declared is the schema's evaluation
	// of the document's structure, the same for every document of the
	// shape.
	unknown []fpath
}

// memo is one evaluator's shapes for one schema (open or strict).
type memo struct {
	deps      *schemaDeps
	templates map[string]*template
	sightings map[string]bool
	walker    shapeWalker
}

// maxShapes bounds the shapes one memo records.
const maxShapes = 1 << 16

// shapeOf computes the key and parameters of a document. The returned
// slices are reused by the next call.
func (m *memo) shapeOf(d *document) (string, []param, bool) {
	w := &m.walker
	*w = shapeWalker{deps: m.deps, key: w.key[:0], params: w.params[:0], ok: m.deps.ok}
	w.key = append(w.key, d.info.kind...)
	w.key = append(w.key, 0)
	w.walk(d.expr, "", false, false)
	if !w.ok {
		return "", nil, false
	}
	return string(w.key), w.params, true
}

// accept reports whether a document of template t's shape with parameters
// ps is valid, checking each parameter against its constraint.
func (e *evaluator) accept(t *template, ps []param) bool {
	if !t.usable || len(ps) != len(t.cons) {
		return false
	}
	for i, p := range ps {
		if t.any[i] {
			continue
		}
		if f := t.fast[i]; f != nil {
			if !f(p) {
				return false
			}
			continue
		}
		seen := t.seen[i]
		ok, known := seen[p]
		if !known {
			ok = e.checkParam(t.cons[i], p)
			if len(seen) < 4096 {
				seen[p] = ok
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// checkParam unifies a parameter value with its constraint.
func (e *evaluator) checkParam(c cue.Value, p param) bool {
	var x cue.Value
	switch p.kind {
	case 's':
		x = e.ctx.Encode(p.s)
	case 'i':
		x = e.ctx.Encode(p.n)
	case 'b':
		x = e.ctx.Encode(p.n != 0)
	default:
		return false
	}
	e.checks++
	return c.Unify(x).Validate(cue.Concrete(true)) == nil
}

// regexps returns the evaluator's compiled regular expressions, by
// pattern.
func (e *evaluator) regexps() map[string]*regexp.Regexp {
	if e.res == nil {
		e.res = map[string]*regexp.Regexp{}
	}
	return e.res
}

// kindType is the CUE type of a parameter kind.
func (e *evaluator) kindType(k byte) cue.Value {
	if e.types == nil {
		e.types = map[byte]cue.Value{
			's': e.ctx.CompileString("string"),
			'i': e.ctx.CompileString("int"),
			'b': e.ctx.CompileString("bool"),
		}
	}
	return e.types[k]
}

// learn records the shape of a valid document d, fully evaluated as v,
// with the paths of its unknown fields. The first sighting of a shape only
// marks it; the second builds the template, so that shapes seen once cost
// nothing more.
func (e *evaluator) learn(m *memo, key string, d *document, def, v cue.Value, unknown []fpath) {
	if _, ok := m.templates[key]; ok {
		return
	}
	if !m.sightings[key] {
		if len(m.sightings) < maxShapes {
			m.sightings[key] = true
		}
		return
	}
	delete(m.sightings, key)
	t := &template{unknown: unknown}
	if len(m.templates) < maxShapes {
		m.templates[key] = t
	}
	w := &shapeWalker{deps: m.deps, ok: true, collect: true, typesFor: 1}
	k1 := w.walk(d.expr, "", false, false)
	if !w.ok {
		return
	}
	kv := e.ctx.BuildExpr(k1).Unify(def)
	cons := make([]cue.Value, len(w.params))
	hasEq := false
	for i, sels := range w.sels {
		if w.eq[i] {
			hasEq = true
			continue
		}
		cons[i] = kv.LookupPath(cue.MakePath(sels...)).Eval()
	}
	if hasEq {
		w2 := &shapeWalker{deps: m.deps, ok: true, typesFor: 2}
		k2 := w2.walk(d.expr, "", false, false)
		if !w2.ok {
			return
		}
		kv2 := e.ctx.BuildExpr(k2).Unify(def)
		for i, sels := range w.sels {
			if w.eq[i] {
				cons[i] = kv2.LookupPath(cue.MakePath(sels...)).Eval()
			}
		}
	}
	t.cons = cons
	t.any = make([]bool, len(cons))
	t.fast = make([]paramCheck, len(cons))
	t.seen = make([]map[param]bool, len(cons))
	for i, c := range cons {
		if !c.Exists() {
			return
		}
		t.seen[i] = map[param]bool{}
		t.any[i] = c.Subsume(e.kindType(w.params[i].kind)) == nil
		if !t.any[i] {
			t.fast[i] = fastCheck(c, e.regexps())
		}
	}
	tree, ok := buildTree(v, d.info.kind, w.paths)
	if !ok {
		return
	}
	t.tree = tree
	// The document itself must pass its own parameters' checks, and a
	// fast check that disagrees with CUE on them is not used.
	for i, p := range w.params {
		if !e.checkParam(cons[i], p) {
			return
		}
		if f := t.fast[i]; f != nil && !f(p) {
			t.fast[i] = nil
		}
	}
	t.usable = true
}
