package load

import (
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
)

// requiredRounds bounds the evaluations of hiddenRequired.
const requiredRounds = 4

// hiddenRequired returns the required fields that d lacks but that CUE did
// not report: it reports a missing field only where the document holds no
// other error (a Service with no ports and an unsupported
// sessionAffinity, say), while the API server reports every error at once.
// CUE also reports no error under a struct that lacks a required field.
// They are found by evaluating d again with the fields of errs (the errors
// of d evaluated with def, as first) set aside and a placeholder (see
// placeholder) in place of each missing field, and again with those of the
// new errors, for at most requiredRounds rounds. A missing field at or
// under a field set aside or a placeholder is that field's own error, and
// "incomplete value" where a regular field is (a default that refers to a
// field set aside) is a consequence: neither is returned. "incomplete
// value" where none is, is a missing required field.
func (e *evaluator) hiddenRequired(d *document, first, def cue.Value, errs []fieldError) []fieldError {
	aside := map[*ast.Field]bool{}
	var asidePaths []fpath
	// setAside sets aside the field at p, or the nearest field above it.
	setAside := func(p fpath) bool {
		for q := p; len(q) > 0; q = q[:len(q)-1] {
			if f := fieldAt(d.expr, q); f != nil {
				if aside[f] {
					return false
				}
				aside[f] = true
				asidePaths = append(asidePaths, slices.Clip(q))
				return true
			}
		}
		return false
	}
	// fill adds a placeholder for the missing field at p, in its parent
	// struct, as the schema allows it in v (see placeholder).
	filled := map[*ast.StructLit][]*ast.Field{}
	var filledPaths []fpath
	fill := func(v cue.Value, p fpath) bool {
		if len(p) == 0 {
			return false
		}
		name, ok := p[len(p)-1].(string)
		parent, _ := locate(d.expr, p[:len(p)-1])
		s, isStruct := parent.(*ast.StructLit)
		if !ok || !isStruct || slices.ContainsFunc(filled[s], func(f *ast.Field) bool { n, _, _ := labelName(f.Label); return n == name }) {
			return false
		}
		if f := field(s, name); f != nil && !aside[f] {
			return false
		}
		filled[s] = append(filled[s], &ast.Field{Label: ast.NewString(name), Value: placeholder(v, p)})
		filledPaths = append(filledPaths, slices.Clip(p))
		return true
	}
	reported := map[string]bool{}
	progress := false
	for _, fe := range errs {
		reported[fe.path.String()] = true
		if fe.msg == "required value" {
			progress = fill(first, fe.path) || progress
		} else {
			progress = setAside(fe.path) || progress
		}
	}
	var out []fieldError
	for round := 0; progress && round < requiredRounds; round++ {
		progress = false
		e.docs++
		doc := e.ctx.BuildExpr(edited(d.expr, aside, filled))
		if doc.Err() != nil {
			break
		}
		v := doc.Unify(def)
		for _, ce := range cueerrors.Errors(v.Validate(cue.Concrete(true))) {
			elems := ce.Path()
			format, args := ce.Msg()
			missing := format == "field is required but not present"
			if format == "required field missing: %s" && len(args) == 1 {
				// Reported on the parent; the API server names the field.
				elems = append(slices.Clip(elems), fmt.Sprint(args[0]))
				missing = true
			}
			if slices.ContainsFunc(elems, func(el string) bool { return strings.HasPrefix(el, "_") || strings.HasPrefix(el, "#") }) {
				continue
			}
			p := apiPath(d.expr, elems)
			if strings.HasPrefix(format, "incomplete value") {
				// A required field that is missing, when there is no such
				// regular field; else a default that is a consequence.
				if !absent(v, p) {
					continue
				}
				missing = true
			}
			under := func(a fpath) bool { return pathUnder(p, a) }
			hidden := slices.ContainsFunc(asidePaths, under) || slices.ContainsFunc(filledPaths, under)
			switch {
			case !missing && !hidden:
				progress = setAside(p) || progress
			case missing:
				// Filled also when hidden, for CUE to look under its
				// parent.
				if k := p.String(); !hidden && !reported[k] {
					reported[k] = true
					out = append(out, fieldError{path: p, msg: "required value"})
				}
				progress = fill(v, p) || progress
			}
		}
	}
	slices.SortFunc(out, func(a, b fieldError) int { return strings.Compare(a.path.String(), b.path.String()) })
	return out
}

// placeholder is a value for the missing required field at p of v: the
// schema's default, else the first concrete choice of a disjunction (a
// field such as an EndpointSlice's addressType decides what other fields
// must be, and _ would leave them undecided), else _.
func placeholder(v cue.Value, p fpath) ast.Expr {
	sels := selectors(p)
	sels[len(sels)-1] = sels[len(sels)-1].Required()
	c := v.LookupPath(cue.MakePath(sels...))
	if def, ok := c.Default(); ok {
		c = def
	}
	if op, choices := c.Expr(); !c.IsConcrete() && op == cue.OrOp {
		for _, x := range choices {
			if x.IsConcrete() {
				c = x
				break
			}
		}
	}
	if c.IsConcrete() {
		if x, ok := c.Syntax().(*ast.BasicLit); ok {
			return x
		}
	}
	return ast.NewIdent("_")
}

// selectors are the CUE selectors of p.
func selectors(p fpath) []cue.Selector {
	sels := make([]cue.Selector, len(p))
	for i, el := range p {
		switch x := el.(type) {
		case int:
			sels[i] = cue.Index(x)
		case string:
			sels[i] = cue.Str(x)
		}
	}
	return sels
}

// absent reports whether v has no regular field at p.
func absent(v cue.Value, p fpath) bool {
	return !v.LookupPath(cue.MakePath(selectors(p)...)).Exists()
}

// pathUnder reports whether p is a or a path under it.
func pathUnder(p, a fpath) bool {
	return len(p) >= len(a) && slices.Equal(p[:len(a)], a)
}

// edited returns x without the fields aside and with the fields that
// filled lists for a struct, sharing what neither changes.
func edited(x ast.Expr, aside map[*ast.Field]bool, filled map[*ast.StructLit][]*ast.Field) ast.Expr {
	switch x := x.(type) {
	case *ast.StructLit:
		var elts []ast.Decl
		for i, el := range x.Elts {
			f, ok := el.(*ast.Field)
			var keep ast.Decl = el
			switch {
			case ok && aside[f]:
				keep = nil
			case ok:
				if v := edited(f.Value, aside, filled); v != f.Value {
					g := *f
					g.Value = v
					keep = &g
				}
			}
			if keep != el && elts == nil {
				elts = append(make([]ast.Decl, 0, len(x.Elts)), x.Elts[:i]...)
			}
			if elts != nil && keep != nil {
				elts = append(elts, keep)
			}
		}
		names := filled[x]
		if elts == nil && len(names) == 0 {
			return x
		}
		if elts == nil {
			elts = slices.Clone(x.Elts)
		}
		for _, f := range names {
			elts = append(elts, f)
		}
		s := *x
		s.Elts = elts
		return &s
	case *ast.ListLit:
		var elts []ast.Expr
		for i, el := range x.Elts {
			v := edited(el, aside, filled)
			if v != el && elts == nil {
				elts = slices.Clone(x.Elts)
			}
			if elts != nil {
				elts[i] = v
			}
		}
		if elts == nil {
			return x
		}
		l := *x
		l.Elts = elts
		return &l
	}
	return x
}
