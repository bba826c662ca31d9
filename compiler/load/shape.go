package load

import (
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// schemaDeps is what the schema can observe of a document's scalar
// values, found by reading the schema's syntax. It decides which scalar
// values of a document are parameters of its shape (see memo.go): values
// that the schema only checks in place, against constraints that do not
// depend on any other value.
//
// The analysis is by field name, over the whole schema, so it
// over-approximates: a name referenced anywhere counts for every field of
// that name, in every kind. A schema construct it does not model (field
// aliases, let clauses, self references, patterns whose value selects
// among alternatives) makes it refuse any shape (ok false), and every
// document is then evaluated in full.
type schemaDeps struct {
	ok bool
	// refs holds the names referenced by an expression other than a
	// comparison with a literal: a value under such a field is never a
	// parameter.
	refs map[string]bool
	// lenRefs holds the names referenced only as the argument of len()
	// (alone, or as the default of a disjunction with literals): the
	// number of fields or elements under such a mapping or list is part of
	// its shape, and its values only matter through their validity, which
	// every parameter check establishes. A scalar under such a name is
	// never a parameter (len of a string depends on it).
	lenRefs map[string]bool
	// eqLits holds the names referenced only in comparisons (== or !=)
	// with literals, with those literals (unquoted strings, or the
	// literal text of numbers and booleans).
	eqLits map[string]map[string]bool
	// eqSafe holds the names of eqLits whose every declaration is outside
	// comprehensions and refers to no field: such a value depends on the
	// document only through the comparisons, and its own constraint can
	// be checked apart.
	eqSafe map[string]bool
	// selfDep holds the names of fields declared somewhere with a
	// constraint that, on a mapping or list, depends on the values inside
	// it (a disjunction, a call other than error()). Below such a field,
	// no value is a parameter.
	selfDep map[string]bool
	// elemDep holds the names of list fields whose element constraint is
	// such a constraint: below a mapping or list element, no value is a
	// parameter.
	elemDep map[string]bool
}

// predeclared are the identifiers CUE resolves without a field.
var predeclared = map[string]bool{
	"_": true, "string": true, "int": true, "bool": true, "number": true, "float": true,
	"bytes": true, "null": true, "true": true, "false": true, "error": true, "len": true,
	"close": true, "and": true, "or": true, "div": true, "mod": true, "quo": true, "rem": true,
	"int8": true, "int16": true, "int32": true, "int64": true, "int128": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true, "uint128": true,
	"float32": true, "float64": true, "rune": true,
}

// analyzeSchema reads the parsed schema files.
func analyzeSchema(files []*ast.File) *schemaDeps {
	a := &analyzer{
		deps: &schemaDeps{
			ok:      true,
			refs:    map[string]bool{},
			lenRefs: map[string]bool{},
			eqLits:  map[string]map[string]bool{},
			eqSafe:  map[string]bool{},
			selfDep: map[string]bool{},
			elemDep: map[string]bool{},
		},
		defs:     map[string][]ast.Expr{},
		imports:  map[string]bool{},
		decls:    map[string][]ast.Expr{},
		inComp:   map[string]bool{},
		lenOnly:  map[string]bool{},
		topMemo:  map[string]int{},
		elemMemo: map[string]int{},
	}
	for _, f := range files {
		for imp := range f.ImportSpecs() {
			path, err := literal.Unquote(imp.Path.Value)
			if err != nil {
				a.deps.ok = false
				continue
			}
			name := path[strings.LastIndexByte(path, '/')+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			a.imports[name] = true
		}
		// Top-level definitions, for resolving #X in constraints.
		for _, d := range f.Decls {
			if fl, ok := d.(*ast.Field); ok {
				if name, _, err := labelName(fl.Label); err == nil && strings.HasPrefix(name, "#") {
					a.defs[name] = append(a.defs[name], fl.Value)
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			a.decl(d, false)
		}
	}
	a.finish()
	return a.deps
}

type analyzer struct {
	deps    *schemaDeps
	defs    map[string][]ast.Expr // top-level definitions
	imports map[string]bool       // package names
	// decls holds every declared value of each field name.
	decls map[string][]ast.Expr
	// inComp holds the names declared inside comprehension bodies,
	// including the fields of definitions referenced there.
	inComp map[string]bool
	// eqOnly tracks, per referenced name, whether all references so far
	// were comparisons with literals.
	// lenOnly marks the names referenced as len() arguments.
	lenOnly  map[string]bool
	topMemo  map[string]int // definition -> 0 unknown, 1 computing, 2 false, 3 true
	elemMemo map[string]int
}

// decl walks a declaration of a struct (or file).
func (a *analyzer) decl(d ast.Decl, inComp bool) {
	switch x := d.(type) {
	case *ast.Field:
		a.field(x, inComp)
	case *ast.EmbedDecl:
		a.expr(x.Expr, inComp)
	case *ast.Comprehension:
		for _, c := range x.Clauses {
			switch cl := c.(type) {
			case *ast.IfClause:
				a.expr(cl.Condition, inComp)
			case *ast.ForClause:
				a.expr(cl.Source, inComp)
			default:
				a.deps.ok = false // let clauses
			}
		}
		a.expr(x.Value, true)
		a.markComp(x.Value, map[string]bool{})
	case *ast.LetClause, *ast.Alias:
		a.deps.ok = false
	case *ast.Ellipsis:
		if x.Type != nil {
			a.expr(x.Type, inComp)
			if a.topDep(x.Type) {
				a.deps.ok = false
			}
		}
	case *ast.Attribute, *ast.Package, *ast.ImportDecl, *ast.CommentGroup:
	default:
		a.deps.ok = false
	}
}

// field records a field declaration and walks its value.
func (a *analyzer) field(f *ast.Field, inComp bool) {
	switch l := f.Label.(type) {
	case *ast.Ident, *ast.BasicLit:
		name, _, err := labelName(l)
		if err != nil {
			a.deps.ok = false
			break
		}
		a.decls[name] = append(a.decls[name], f.Value)
		if inComp {
			a.inComp[name] = true
		}
		if a.topDep(f.Value) {
			a.deps.selfDep[name] = true
		}
		if a.elemDepOf(f.Value) {
			a.deps.elemDep[name] = true
		}
	case *ast.ListLit:
		// A pattern constraint [expr]: value.
		for _, e := range l.Elts {
			a.expr(e, inComp)
		}
		if a.topDep(f.Value) || a.elemDepOf(f.Value) {
			// The value under a key matched by the pattern may select
			// among alternatives: not modelled.
			a.deps.ok = false
		}
	default:
		// Aliases, dynamic and interpolated labels.
		a.deps.ok = false
	}
	a.expr(f.Value, inComp)
}

// markComp records the field names a comprehension body declares,
// following definitions it references.
func (a *analyzer) markComp(n ast.Node, seen map[string]bool) {
	ast.Walk(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			if name, _, err := labelName(x.Label); err == nil {
				a.inComp[name] = true
			}
		case *ast.Ident:
			if strings.HasPrefix(x.Name, "#") && !seen[x.Name] {
				seen[x.Name] = true
				for _, v := range a.defs[x.Name] {
					a.markComp(v, seen)
				}
			}
		}
		return true
	}, nil)
}

// expr walks an expression, recording references.
func (a *analyzer) expr(e ast.Expr, inComp bool) {
	if e == nil {
		return
	}
	switch x := e.(type) {
	case *ast.Ident:
		a.ref(x.Name, false, "")
	case *ast.SelectorExpr:
		// pkg.Name, or a selection from a field value.
		if id, ok := x.X.(*ast.Ident); ok && a.imports[id.Name] {
			return
		}
		a.expr(x.X, inComp)
		if name, _, err := labelName(x.Sel); err == nil {
			a.ref(name, false, "")
		} else {
			a.deps.ok = false
		}
	case *ast.BinaryExpr:
		if x.Op == token.EQL || x.Op == token.NEQ {
			if id, lit, ok := eqOperands(x); ok {
				a.ref(id.Name, true, lit)
				return
			}
		}
		a.expr(x.X, inComp)
		a.expr(x.Y, inComp)
	case *ast.UnaryExpr:
		a.expr(x.X, inComp)
	case *ast.ParenExpr:
		a.expr(x.X, inComp)
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "len" && len(x.Args) == 1 {
			if name, ok := lenOperand(x.Args[0]); ok {
				if !predeclared[name] && !a.imports[name] {
					a.lenOnly[name] = true
				}
				return
			}
		}
		a.expr(x.Fun, inComp)
		for _, arg := range x.Args {
			a.expr(arg, inComp)
		}
	case *ast.IndexExpr:
		a.expr(x.X, inComp)
		a.expr(x.Index, inComp)
	case *ast.SliceExpr:
		a.expr(x.X, inComp)
		a.expr(x.Low, inComp)
		a.expr(x.High, inComp)
	case *ast.Interpolation:
		for _, el := range x.Elts {
			a.expr(el, inComp)
		}
	case *ast.StructLit:
		for _, d := range x.Elts {
			a.decl(d, inComp)
		}
	case *ast.ListLit:
		for _, el := range x.Elts {
			a.expr(el, inComp)
		}
	case *ast.Ellipsis:
		a.expr(x.Type, inComp)
	case *ast.Comprehension:
		a.decl(x, inComp)
	case *ast.BasicLit, *ast.BottomLit:
	case *ast.Alias:
		a.deps.ok = false
	default:
		a.deps.ok = false
	}
}

// lenOperand matches the argument of len(): a name, possibly the default
// of a disjunction with literals (*name | {}).
func lenOperand(e ast.Expr) (string, bool) {
	name := ""
	var match func(e ast.Expr) bool
	match = func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.ParenExpr:
			return match(x.X)
		case *ast.UnaryExpr:
			return x.Op == token.MUL && match(x.X)
		case *ast.BinaryExpr:
			return x.Op == token.OR && match(x.X) && match(x.Y)
		case *ast.Ident:
			if name != "" || strings.HasPrefix(x.Name, "#") || strings.HasPrefix(x.Name, "_") || predeclared[x.Name] {
				return false
			}
			name = x.Name
			return true
		case *ast.StructLit:
			return len(x.Elts) == 0
		case *ast.ListLit:
			return len(x.Elts) == 0
		case *ast.BasicLit:
			return true
		}
		return false
	}
	if !match(e) || name == "" {
		return "", false
	}
	return name, true
}

// eqOperands matches `name == literal` and `literal == name`.
func eqOperands(x *ast.BinaryExpr) (*ast.Ident, string, bool) {
	id, ok := x.X.(*ast.Ident)
	lit, ok2 := x.Y.(*ast.BasicLit)
	if !ok || !ok2 {
		id, ok = x.Y.(*ast.Ident)
		lit, ok2 = x.X.(*ast.BasicLit)
	}
	if !ok || !ok2 || strings.HasPrefix(id.Name, "#") || strings.HasPrefix(id.Name, "_") || predeclared[id.Name] {
		return nil, "", false
	}
	v := lit.Value
	if lit.Kind == token.STRING {
		s, err := literal.Unquote(lit.Value)
		if err != nil || strings.HasPrefix(lit.Value, "'") {
			return nil, "", false
		}
		v = s
	}
	return id, litKey(lit.Kind, v), true
}

// litKey is a comparable form of a literal: its kind and value.
func litKey(kind token.Token, v string) string {
	switch kind {
	case token.STRING:
		return "s" + v
	case token.TRUE, token.FALSE:
		return "b" + v
	}
	return "n" + v
}

// ref records a reference to name.
func (a *analyzer) ref(name string, eq bool, lit string) {
	if strings.HasPrefix(name, "#") || predeclared[name] || a.imports[name] {
		return
	}
	if name == "self" || strings.HasPrefix(name, "__") {
		a.deps.ok = false
		return
	}
	if !eq {
		a.deps.refs[name] = true
		return
	}
	m := a.deps.eqLits[name]
	if m == nil {
		m = map[string]bool{}
		a.deps.eqLits[name] = m
	}
	m[lit] = true
}

// finish computes eqSafe: names compared with literals only, declared
// outside comprehensions with values that refer to no field.
func (a *analyzer) finish() {
	for name := range a.lenOnly {
		if !a.deps.refs[name] {
			a.deps.lenRefs[name] = true
		}
	}
	for name := range a.deps.eqLits {
		if a.deps.refs[name] || a.inComp[name] || len(a.decls[name]) == 0 {
			continue
		}
		safe := true
		for _, v := range a.decls[name] {
			if !a.closedExpr(v, map[string]bool{}) {
				safe = false
			}
		}
		if safe {
			a.deps.eqSafe[name] = true
		}
	}
}

// closedExpr reports whether e refers to nothing but definitions,
// predeclared identifiers and packages (transitively through the
// definitions).
func (a *analyzer) closedExpr(e ast.Expr, seen map[string]bool) bool {
	ok := true
	ast.Walk(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			// Labels are not references; walk values only.
			if !a.closedExpr(x.Value, seen) {
				ok = false
			}
			return false
		case *ast.SelectorExpr:
			if id, isID := x.X.(*ast.Ident); isID && a.imports[id.Name] {
				return false
			}
			ok = false
			return false
		case *ast.Ident:
			switch {
			case predeclared[x.Name] || a.imports[x.Name]:
			case strings.HasPrefix(x.Name, "#") && !strings.HasPrefix(x.Name, "#_"):
				if !seen[x.Name] {
					seen[x.Name] = true
					for _, v := range a.defs[x.Name] {
						if !a.closedExpr(v, seen) {
							ok = false
						}
					}
				}
			default:
				ok = false
			}
		case *ast.Comprehension:
			ok = false
		}
		return ok
	}, nil)
	return ok
}

// topDep reports whether constraint e, applied to a mapping or a list,
// could depend on the values inside it: it is (or embeds, or refers to a
// definition that is) a disjunction or a call other than error().
// Constraints that would simply fail on a mapping or list (bounds,
// regular expressions, literals, scalar types) do not count: the shape's
// own evaluation reports them.
func (a *analyzer) topDep(e ast.Expr) bool {
	switch x := e.(type) {
	case nil:
		return false
	case *ast.Ident:
		if strings.HasPrefix(x.Name, "#") {
			return a.defDep(x.Name, a.topMemo, a.topDep)
		}
		return false
	case *ast.BasicLit, *ast.BottomLit, *ast.ListLit:
		return false
	case *ast.UnaryExpr:
		if x.Op == token.MUL {
			return true // a default marks a disjunction
		}
		return a.topDep(x.X)
	case *ast.ParenExpr:
		return a.topDep(x.X)
	case *ast.BinaryExpr:
		switch x.Op {
		case token.AND:
			return a.topDep(x.X) || a.topDep(x.Y)
		case token.OR:
			return true
		}
		// Comparisons and arithmetic: scalar results.
		return false
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "error" {
			return false
		}
		return true
	case *ast.StructLit:
		for _, d := range x.Elts {
			if em, ok := d.(*ast.EmbedDecl); ok && a.topDep(em.Expr) {
				return true
			}
		}
		return false
	}
	return true
}

// elemDepOf reports whether the element constraints of list constraint e
// (or of the list constraints it is made of) have topDep.
func (a *analyzer) elemDepOf(e ast.Expr) bool {
	switch x := e.(type) {
	case nil:
		return false
	case *ast.ListLit:
		for _, el := range x.Elts {
			if el, ok := el.(*ast.Ellipsis); ok {
				if a.topDep(el.Type) {
					return true
				}
				continue
			}
			if a.topDep(el) {
				return true
			}
		}
		return false
	case *ast.Ident:
		if strings.HasPrefix(x.Name, "#") {
			return a.defDep(x.Name, a.elemMemo, a.elemDepOf)
		}
		return false
	case *ast.BasicLit, *ast.BottomLit, *ast.StructLit:
		return false
	case *ast.UnaryExpr:
		return a.elemDepOf(x.X)
	case *ast.ParenExpr:
		return a.elemDepOf(x.X)
	case *ast.BinaryExpr:
		return a.elemDepOf(x.X) || a.elemDepOf(x.Y)
	case *ast.CallExpr:
		return false // topDep covers calls
	}
	return true
}

// defDep evaluates f over a definition's declarations, memoised; a
// recursive definition counts as dependent.
func (a *analyzer) defDep(name string, memo map[string]int, f func(ast.Expr) bool) bool {
	switch memo[name] {
	case 1, 3:
		return true
	case 2:
		return false
	}
	decls, ok := a.defs[name]
	if !ok {
		return true // not a top-level definition of the schema
	}
	memo[name] = 1
	dep := false
	for _, v := range decls {
		if f(v) {
			dep = true
		}
	}
	memo[name] = 2
	if dep {
		memo[name] = 3
	}
	return dep
}
