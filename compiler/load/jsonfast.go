package load

import (
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// fastJSON parses the JSON value in data[from:to] of a file into the
// syntax tree CUE's JSON decoder produces when it decodes that text alone,
// the value at its start: the same nodes, literal texts and positions
// (those of file, which holds data). Keys that are identifiers become identifiers placed after the
// opening quote, negative numbers unary expressions, and strings of more
// than ten bytes of text are quoted again the way CUE prints them, as the
// decoder does. It reports false on anything it is not sure of (invalid
// JSON among it), which the caller leaves to CUE's decoder.
//
// known, if not nil, holds the texts of short strings seen before, which
// the parser shares instead of allocating them again (keys, kinds,
// protocols and the like repeat from item to item).
func fastJSON(file *token.File, data []byte, from, to int, known map[string]string) (ast.Expr, bool) {
	p := &jparser{file: file, known: known}
	return p.parse(data, from, to)
}

// parse is fastJSON with p's file, memo and nodes; p's stacks serve
// again.
func (p *jparser) parse(data []byte, from, to int) (ast.Expr, bool) {
	p.data, p.i, p.ok = data[:to], from, true
	clear(p.decls) // left by a parse that failed
	clear(p.exprs)
	p.decls, p.exprs = p.decls[:0], p.exprs[:0]
	p.space()
	e := p.value(1)
	p.space()
	if !p.ok || p.i != to {
		return nil, false
	}
	return e, true
}

// fastJSONValues parses a file of JSON values with fastJSON, as CUE's
// decoder reads them one after the other, or reports false. The first
// value's tree is the decoder's when it starts the file. Otherwise the
// decoder leaves the positions of closing brackets and colons relative to
// the value's start, and moves those of labels that need quoting by twice
// the value's offset; fastJSONValues places them all where they are in
// the file (the loader reports at labels and values).
func fastJSONValues(name string, data []byte) ([]ast.Expr, bool) {
	file := token.NewFile(name, 0, len(data)+1)
	setLines(file, lineStarts(data), nil)
	p := &jparser{data: data, file: file, ok: true, known: map[string]string{}}
	var values []ast.Expr
	for p.space(); p.i < len(data); p.space() {
		e := p.value(1)
		if !p.ok {
			return nil, false
		}
		values = append(values, e)
	}
	return values, true
}

// jparser is fastJSON's parser.
type jparser struct {
	data  []byte
	file  *token.File
	i     int
	ok    bool
	known map[string]string
	// nodes allocates the syntax nodes: a workspace's, or nil.
	nodes *nodeArena
	// decls and exprs are stacks of the members and elements of the
	// collections being parsed, as the YAML parser's (yparser).
	decls []ast.Decl
	exprs []ast.Expr
}

// At most maxKnownStrings strings of at most maxKnownString bytes are
// shared (see fastJSON); a full memo is emptied first (see remember).
const (
	maxKnownString  = 64
	maxKnownStrings = 4096
)

func (p *jparser) pos(off int) token.Pos { return p.file.Pos(off, token.NoRelPos) }

func (p *jparser) fail() ast.Expr {
	p.ok = false
	return nil
}

// space skips JSON whitespace.
func (p *jparser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\n', '\t', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses a value at p.i; depth is the number of collections it is
// in, plus one (the stack of the decoder's reformatting, whose length sets
// the indentation of a multi-line string).
func (p *jparser) value(depth int) ast.Expr {
	if p.i >= len(p.data) {
		return p.fail()
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		off := p.i
		raw, s, ok := p.str()
		if !ok {
			return p.fail()
		}
		return p.lit(p.pos(off), token.STRING, requote(raw, s, depth))
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		for _, w := range [...]struct {
			text string
			kind token.Token
		}{{"true", token.TRUE}, {"false", token.FALSE}, {"null", token.NULL}} {
			if p.word(w.text) {
				return p.lit(p.pos(p.i-len(w.text)), w.kind, w.text)
			}
		}
		return p.fail()
	}
}

// word consumes w if it is next and not followed by a letter or digit.
func (p *jparser) word(w string) bool {
	end := p.i + len(w)
	if end > len(p.data) || string(p.data[p.i:end]) != w {
		return false
	}
	if end < len(p.data) {
		if c := p.data[end]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			return false
		}
	}
	p.i = end
	return true
}

// object parses an object at p.i, whose members are at depth.
func (p *jparser) object(depth int) ast.Expr {
	s := p.nodes.structLit()
	s.Lbrace = p.pos(p.i)
	base := len(p.decls)
	for closed := p.open('}'); !closed; closed = p.next('}') {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return p.fail()
		}
		off := p.i
		raw, key, ok := p.str()
		if !ok {
			return p.fail()
		}
		var f *ast.Field
		if ast.StringLabelNeedsQuoting(key) {
			f = &ast.Field{Label: p.lit(p.pos(off), token.STRING, requote(raw, key, depth))}
		} else {
			x := p.nodes.identField()
			x.id = ast.Ident{NamePos: p.pos(off + 1), Name: key}
			f = &x.f
			f.Label = &x.id
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return p.fail()
		}
		f.TokenPos = p.pos(p.i)
		p.i++
		p.space()
		if f.Value = p.value(depth); !p.ok {
			return nil
		}
		p.decls = append(p.decls, f)
	}
	if !p.ok {
		return nil
	}
	s.Elts = pop(&p.decls, base, p.nodes.declSlice(len(p.decls)-base))
	s.Rbrace = p.pos(p.i - 1)
	return s
}

// array parses an array at p.i, whose elements are at depth.
func (p *jparser) array(depth int) ast.Expr {
	l := p.nodes.listLit()
	l.Lbrack = p.pos(p.i)
	base := len(p.exprs)
	for closed := p.open(']'); !closed; closed = p.next(']') {
		e := p.value(depth)
		if !p.ok {
			return nil
		}
		p.exprs = append(p.exprs, e)
	}
	if !p.ok {
		return nil
	}
	l.Elts = pop(&p.exprs, base, p.nodes.exprSlice(len(p.exprs)-base))
	l.Rbrack = p.pos(p.i - 1)
	return l
}

// open consumes the opening bracket of a collection at p.i, and the
// closing one, close, if the collection is empty; it reports whether it
// was.
func (p *jparser) open(close byte) bool {
	p.i++
	p.space()
	if p.i < len(p.data) && p.data[p.i] == close {
		p.i++
		return true
	}
	return false
}

// next consumes what follows an element of a collection, a comma before
// another element or the closing bracket close, and reports whether it
// was the bracket. On anything else it fails and reports the collection
// closed.
func (p *jparser) next(close byte) bool {
	p.space()
	if p.i < len(p.data) {
		switch p.data[p.i] {
		case ',':
			p.i++
			p.space()
			return false
		case close:
			p.i++
			return true
		}
	}
	p.fail()
	return true
}

// str parses a string at p.i: it returns its text, quotes included, and
// its value. It takes the escapes of JSON but those of surrogate halves,
// and no control characters (the file is valid UTF-8, see checkText).
func (p *jparser) str() (raw, s string, ok bool) {
	start := p.i
	escaped := false
	for i := start + 1; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			p.i = i + 1
			text := p.data[start:p.i]
			if r, ok := p.known[string(text)]; ok {
				raw = r
			} else {
				raw = string(text)
				if p.known != nil && len(raw) <= maxKnownString {
					if len(p.known) >= maxKnownStrings {
						clear(p.known)
					}
					p.known[raw] = raw
				}
			}
			if !escaped {
				return raw, raw[1 : len(raw)-1], true
			}
			s, err := literal.Unquote(raw)
			return raw, s, err == nil
		case c < 0x20:
			return "", "", false
		case c == '\\':
			escaped = true
			if i+1 >= len(p.data) {
				return "", "", false
			}
			i++
			switch p.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p.data) || !isHex4(p.data[i+1:i+5]) || surrogate(p.data[i+1:i+5]) {
					return "", "", false
				}
				i += 4
			default:
				return "", "", false
			}
		}
	}
	return "", "", false
}

// isHex4 reports whether b is four hexadecimal digits.
func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// surrogate reports whether the four hexadecimal digits b are a UTF-16
// surrogate half (D800-DFFF).
func surrogate(b []byte) bool {
	return (b[0] == 'd' || b[0] == 'D') && (b[1] >= '8' && b[1] <= '9' || b[1] >= 'a' && b[1] <= 'f' || b[1] >= 'A' && b[1] <= 'F')
}

// requote is the literal text of a string as the decoder leaves it: the
// JSON text up to ten bytes, and longer ones quoted again with the
// indentation of depth (which gives the JSON text back for printable ASCII
// without escapes).
func requote(raw, s string, depth int) string {
	if len(raw) <= 10 || len(s) == len(raw)-2 && simpleString(s) {
		return raw
	}
	return quote(literal.String.WithOptionalTabIndent(depth), s)
}

// simpleString reports whether quote encloses s in quotes as it is:
// printable ASCII without a quote or a backslash.
func simpleString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// number parses a number at p.i: an integer or a float literal, negative
// ones as unary minus.
func (p *jparser) number() ast.Expr {
	start := p.i
	i := p.i
	if p.data[i] == '-' {
		i++
	}
	digits := i
	switch {
	case i < len(p.data) && p.data[i] == '0':
		i++
	case i < len(p.data) && p.data[i] >= '1' && p.data[i] <= '9':
		for i < len(p.data) && p.data[i] >= '0' && p.data[i] <= '9' {
			i++
		}
	default:
		return p.fail()
	}
	kind := token.INT
	if i < len(p.data) && p.data[i] == '.' {
		kind = token.FLOAT
		i++
		n := i
		for i < len(p.data) && p.data[i] >= '0' && p.data[i] <= '9' {
			i++
		}
		if i == n {
			return p.fail()
		}
	}
	if i < len(p.data) && (p.data[i] == 'e' || p.data[i] == 'E') {
		kind = token.FLOAT
		i++
		if i < len(p.data) && (p.data[i] == '+' || p.data[i] == '-') {
			i++
		}
		n := i
		for i < len(p.data) && p.data[i] >= '0' && p.data[i] <= '9' {
			i++
		}
		if i == n {
			return p.fail()
		}
	}
	p.i = i
	lit := p.lit(p.pos(digits), kind, string(p.data[digits:i]))
	if digits > start {
		return &ast.UnaryExpr{OpPos: p.pos(start), Op: token.SUB, X: lit}
	}
	return lit
}

// lit returns a literal.
func (p *jparser) lit(pos token.Pos, kind token.Token, value string) *ast.BasicLit {
	lit := p.nodes.lit()
	lit.ValuePos, lit.Kind, lit.Value = pos, kind, value
	return lit
}
