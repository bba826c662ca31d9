package load

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// cueErrors converts CUE's validation errors into one fieldError per path.
//
// CUE reports a failing disjunction as one error per branch (plus a
// summary), with positions mixing the schema and the input, in no useful
// order. For each path this picks, in order of preference:
//
//  1. a schema message (a @msg attribute of the failed constraint, or an
//     error("...")) of an error positioned in the input: the check that the
//     value failed;
//  2. a type mismatch: "invalid value "80": must be an integer";
//  3. any other schema message (a forbidden field has no input position);
//  4. a missing field: "required value"; a field that the closed schema
//     (schema.StrictFiles) does not declare: an unknown field (the
//     fieldError is marked so);
//  5. a bound error, reworded like the API server;
//  6. anything else, as CUE words it.
//
// Schema messages are reworded by render.
func cueErrors(err error, d *document) []fieldError {
	type group struct {
		elems []string
		errs  []cueerrors.Error
	}
	groups := map[string]*group{}
	for _, e := range cueerrors.Errors(err) {
		elems := e.Path()
		if format, args := e.Msg(); format == "required field missing: %s" && len(args) == 1 {
			// Reported on the parent; the API server names the field.
			elems = append(slices.Clip(elems), fmt.Sprint(args[0]))
		}
		key := strings.Join(elems, "\x00")
		g := groups[key]
		if g == nil {
			g = &group{elems: elems}
			groups[key] = g
		}
		g.errs = append(g.errs, e)
	}
	// A value left incomplete (a default that refers to a missing or
	// invalid field, such as targetPort to port) is a consequence of
	// another error: drop such paths when there are others.
	onlyIncomplete := func(g *group) bool {
		for _, e := range g.errs {
			if format, _ := e.Msg(); !strings.HasPrefix(format, "incomplete value") {
				return false
			}
		}
		return true
	}
	keys := slices.Sorted(maps.Keys(groups))
	consequences := 0
	for _, k := range keys {
		if onlyIncomplete(groups[k]) {
			consequences++
		}
	}
	var out []fieldError
	for _, k := range keys {
		g := groups[k]
		if consequences < len(keys) && onlyIncomplete(g) {
			continue
		}
		p := apiPath(d.expr, g.elems)
		c := pickMessage(g.errs, d, p)
		out = append(out, fieldError{path: p, msg: c.msg, unknown: c.unknown})
	}
	return out
}

// apiPath converts CUE path elements ("spec", "ports", "0", "\"a/b\"") to
// an fpath, using the document to tell list indices from map keys. Hidden
// fields and definitions (schema helpers) end the path at their parent.
func apiPath(root *ast.StructLit, elems []string) fpath {
	var p fpath
	var cur ast.Expr = root
	for _, el := range elems {
		if strings.HasPrefix(el, "_") || strings.HasPrefix(el, "#") {
			break
		}
		if strings.HasPrefix(el, "\"") {
			if s, err := literal.Unquote(el); err == nil {
				el = s
			}
		}
		if l, ok := cur.(*ast.ListLit); ok {
			if i, err := strconv.Atoi(el); err == nil && i >= 0 {
				p = append(p, i)
				if i < len(l.Elts) {
					cur = l.Elts[i]
				} else {
					cur = nil
				}
				continue
			}
		}
		p = append(p, el)
		if s, ok := cur.(*ast.StructLit); ok {
			if f := field(s, el); f != nil {
				cur = f.Value
				continue
			}
		}
		cur = nil
	}
	return p
}

// candidate is one CUE error of a path, classified.
type candidate struct {
	tier int
	msg  string
	// unknown says that the error is a field the closed schema does not
	// declare.
	unknown bool
}

// pickMessage chooses the message for a path's errors.
func pickMessage(errs []cueerrors.Error, d *document, p fpath) candidate {
	val, _ := locate(d.expr, p)
	text, scalar := "", false
	if val != nil {
		text, scalar = valueText(val)
	}
	var cands []candidate
	var wants []string // kinds wanted by type mismatches
	for _, e := range errs {
		format, args := e.Msg()
		inInput, schemaText := false, ""
		for _, pos := range cueerrors.Positions(e) {
			if !strings.HasPrefix(pos.Filename(), schemaPrefix) {
				inInput = true
			} else if schemaText == "" {
				schemaText = schemaMsg(pos)
			}
		}
		tier := 3
		if inInput {
			tier = 1
		}
		switch {
		case strings.Contains(format, "mismatched types") && len(args) == 4:
			a, b := fmt.Sprint(args[2]), fmt.Sprint(args[3])
			have := astKind(val)
			switch {
			case a == have && b != have:
				wants = append(wants, b)
			case b == have && a != have:
				wants = append(wants, a)
			}
		case format == "%s" && len(args) == 1:
			// error("...") in the schema.
			if msg, ok := args[0].(string); ok {
				cands = append(cands, candidate{tier: tier, msg: render(msg, text, scalar)})
			}
		case format == "field is required but not present" || format == "required field missing: %s" ||
			strings.HasPrefix(format, "incomplete value"):
			cands = append(cands, candidate{tier: 4, msg: "required value"})
		case notAllowed(e):
			cands = append(cands, candidate{tier: 4, msg: unknownFieldMsg(p), unknown: true})
		case schemaText != "":
			cands = append(cands, candidate{tier: tier, msg: render(schemaText, text, scalar)})
		case strings.HasSuffix(format, "errors in empty disjunction:"):
			// A summary; its branches are reported separately.
		default:
			msg := fmt.Sprintf(format, args...)
			cands = append(cands, candidate{tier: 5, msg: reword(msg, text, scalar)})
		}
	}
	if len(wants) > 0 {
		cands = append(cands, candidate{tier: 2, msg: typeMessage(wants, text, scalar, astKind(val))})
	}
	if len(cands) == 0 {
		return candidate{msg: strings.TrimSpace(errs[0].Error())}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), strings.Compare(a.msg, b.msg))
	})
	return cands[0]
}

// notAllowed reports whether e is CUE's error for a field that a closed
// struct does not declare.
func notAllowed(e cueerrors.Error) bool {
	format, _ := e.Msg()
	return format == "field not allowed"
}

// unknownFieldMsg is the message for a field at p that the schema does not
// declare, worded as the API server words it in both modes of field
// validation (a warning in Warn mode, kubectl's default; an error in
// Strict mode): unknown field "spec.ports[0].tagetPort".
func unknownFieldMsg(p fpath) string {
	return fmt.Sprintf("unknown field %q", p.String())
}

// render rewords a custom schema message like the API server:
// "must be one of ..." becomes `unsupported value V: must be one of ...`,
// other "must ..." and "may ..." messages `invalid value V: ...`, where V
// is the offending scalar value. Other messages are kept.
func render(msg, text string, scalar bool) string {
	if !scalar {
		return msg
	}
	switch {
	case strings.HasPrefix(msg, "must be one of "):
		return "unsupported value " + text + ": " + msg
	case strings.HasPrefix(msg, "must ") || strings.HasPrefix(msg, "may "):
		return "invalid value " + text + ": " + msg
	}
	return msg
}

var (
	boundRE    = regexp.MustCompile(`^invalid value .* \(out of bound ([<>!=]=?)(-?[0-9]+)\)$`)
	boundWords = map[string]string{
		">=": "greater than or equal to",
		">":  "greater than",
		"<=": "less than or equal to",
		"<":  "less than",
	}
)

// reword turns CUE's bound messages into the API server's style; other
// messages are returned as they are.
func reword(msg, text string, scalar bool) string {
	if m := boundRE.FindStringSubmatch(msg); m != nil {
		if w, ok := boundWords[m[1]]; ok && scalar {
			return "invalid value " + text + ": must be " + w + " " + m[2]
		}
	}
	return msg
}

// astKind is the CUE kind of an input value ("" if unknown).
func astKind(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StructLit:
		return "struct"
	case *ast.ListLit:
		return "list"
	case *ast.UnaryExpr:
		return astKind(x.X)
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			if strings.HasPrefix(x.Value, "'") {
				return "bytes"
			}
			return "string"
		case token.INT:
			return "int"
		case token.FLOAT:
			return "float"
		case token.TRUE, token.FALSE:
			return "bool"
		case token.NULL:
			return "null"
		}
	}
	return ""
}

var kindWords = map[string]string{
	"int":    "an integer",
	"float":  "a number",
	"number": "a number",
	"string": "a string",
	"bool":   "a boolean",
	"null":   "null",
	"struct": "an object",
	"list":   "a list",
	"bytes":  "a string",
}

// kindOrder fixes the order of kinds in a message.
var kindOrder = []string{"int", "number", "float", "string", "bool", "struct", "list", "bytes", "null"}

// typeMessage says which types a value may have.
func typeMessage(wants []string, text string, scalar bool, have string) string {
	var ws []string
	for _, k := range kindOrder {
		if slices.Contains(wants, k) {
			w := kindWords[k]
			if !slices.Contains(ws, w) {
				ws = append(ws, w)
			}
		}
	}
	for _, k := range wants {
		if !slices.Contains(kindOrder, k) && !slices.Contains(ws, k) {
			ws = append(ws, k)
		}
	}
	want := strings.Join(ws, " or ")
	if scalar {
		return "invalid value " + text + ": must be " + want
	}
	if h, ok := kindWords[have]; ok {
		return "must be " + want + ", not " + h
	}
	return "must be " + want
}
