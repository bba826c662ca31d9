package load

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// fpath is an API field path: a sequence of field names (string) and list
// indices (int).
type fpath []any

// key returns p extended by a field name (never aliasing p).
func (p fpath) key(name string) fpath {
	return append(p[:len(p):len(p)], name)
}

// index returns p extended by a list index (never aliasing p).
func (p fpath) index(i int) fpath {
	return append(p[:len(p):len(p)], i)
}

// mapFields are the fields whose values are maps: their keys are printed
// in brackets, like the API server's field.Path.Key.
var mapFields = map[string]bool{
	"labels":             true,
	"annotations":        true,
	"selector":           true,
	"deprecatedTopology": true,
}

// String renders the path in the API server's form:
// spec.ports[0].port, metadata.labels[app.kubernetes.io/name]. Like the
// API server it spells spec.loadBalancerSourceRanges with a capital L.
func (p fpath) String() string {
	var b strings.Builder
	for i, el := range p {
		switch x := el.(type) {
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(x))
			b.WriteByte(']')
		case string:
			if i > 0 {
				if prev, ok := p[i-1].(string); ok && mapFields[prev] {
					b.WriteByte('[')
					b.WriteString(x)
					b.WriteByte(']')
					continue
				}
				b.WriteByte('.')
			}
			if i == 1 && x == "loadBalancerSourceRanges" && p[0] == "spec" {
				x = "LoadBalancerSourceRanges"
			}
			b.WriteString(x)
		}
	}
	return b.String()
}

// locate walks p from root through the AST. If the value at p exists it
// returns it and its position. Otherwise it returns nil and the position of
// the key of the deepest existing ancestor (the document start if there is
// none): where a missing field would go.
func locate(root *ast.StructLit, p fpath) (ast.Expr, token.Pos) {
	var cur ast.Expr = root
	anchor := root.Pos()
	for _, el := range p {
		var next ast.Expr
		var at token.Pos
		switch x := el.(type) {
		case string:
			if s, ok := cur.(*ast.StructLit); ok {
				if f := field(s, x); f != nil {
					next, at = f.Value, f.Label.Pos()
				}
			}
		case int:
			if l, ok := cur.(*ast.ListLit); ok && x >= 0 && x < len(l.Elts) {
				next = l.Elts[x]
				at = next.Pos()
			}
		}
		if next == nil {
			return nil, anchor
		}
		cur, anchor = next, at
	}
	if vp := cur.Pos(); vp.IsValid() {
		return cur, vp
	}
	return cur, anchor
}

// fieldAt returns the field at p, a path that ends in a field name, or nil
// if there is none.
func fieldAt(root *ast.StructLit, p fpath) *ast.Field {
	if len(p) == 0 {
		return nil
	}
	name, ok := p[len(p)-1].(string)
	if !ok {
		return nil
	}
	parent, _ := locate(root, p[:len(p)-1])
	s, ok := parent.(*ast.StructLit)
	if !ok {
		return nil
	}
	return field(s, name)
}

// keyPos returns the position of the key of the field at p, or an invalid
// position if there is no such field.
func keyPos(root *ast.StructLit, p fpath) token.Pos {
	if f := fieldAt(root, p); f != nil {
		return f.Label.Pos()
	}
	return token.NoPos
}

// valueText renders a scalar AST value as the API server prints values:
// strings quoted, numbers and booleans as written. ok is false for
// mappings, lists and anything else.
func valueText(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			s, ok := stringLit(x)
			if !ok {
				return "", false
			}
			return strconv.Quote(s), true
		case token.INT, token.FLOAT, token.TRUE, token.FALSE:
			return x.Value, true
		}
	case *ast.UnaryExpr:
		if t, ok := valueText(x.X); ok && x.Op == token.SUB {
			return "-" + t, true
		}
	}
	return "", false
}
