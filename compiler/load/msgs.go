package load

import (
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"kpc/schema"
)

// msgSpan is the value of a schema field that carries a @msg attribute.
type msgSpan struct {
	start, end int // byte offsets
	msg        string
}

// schemaMsgs indexes the @msg attributes of the schema by file name (as
// the evaluator names the files), parsed once per process.
var schemaMsgs = sync.OnceValue(func() map[string][]msgSpan {
	idx := map[string][]msgSpan{}
	files := map[string]*ast.File{}
	defs := map[string]string{} // definition name -> message
	for _, f := range schema.Files() {
		name := schemaPrefix + f.Name
		af, err := parser.ParseFile(name, f.Source)
		if err != nil {
			continue // the evaluator reports it
		}
		files[name] = af
		ast.Walk(af, func(n ast.Node) bool {
			fl, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			for _, a := range fl.Attrs {
				key, body := a.Split()
				if key != "msg" {
					continue
				}
				msg, err := literal.Unquote(body)
				if err != nil {
					continue
				}
				idx[name] = append(idx[name], msgSpan{fl.Value.Pos().Offset(), fl.Value.End().Offset(), msg})
				if label, ok := fl.Label.(*ast.Ident); ok && strings.HasPrefix(label.Name, "#") {
					defs[label.Name] = msg
				}
			}
			return true
		}, nil)
	}
	// Errors of a constraint reached through a reference (`[...#IP]`) may
	// be positioned at the reference: index references to definitions
	// with a message too.
	for name, af := range files {
		ast.Walk(af, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				if msg, ok := defs[id.Name]; ok {
					idx[name] = append(idx[name], msgSpan{id.Pos().Offset(), id.End().Offset(), msg})
				}
			}
			return true
		}, nil)
	}
	return idx
})

// schemaMsg returns the message of the innermost @msg field whose value
// contains p, or "".
func schemaMsg(p token.Pos) string {
	if !p.IsValid() {
		return ""
	}
	best, size := "", -1
	off := p.Offset()
	for _, s := range schemaMsgs()[p.Filename()] {
		if off >= s.start && off < s.end && (size < 0 || s.end-s.start < size) {
			best, size = s.msg, s.end-s.start
		}
	}
	return best
}
