package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"

	"kpc/compiler/diag"
)

// sizeError reports a document that is too deep or too large.
type sizeError struct {
	pos token.Pos
	msg string
	// path is the field path of the list or mapping too large, when known.
	path fpath
}

// checkSize rejects documents nested deeper than MaxDepth or with more than
// MaxNodes values. The elements of items, a field of s when not nil, are
// left out: they are the items of a List, each a document of its own that
// is checked when it is decoded (a List of 50,000 Services holds more than
// MaxNodes values).
func checkSize(s *ast.StructLit, items *ast.Field) *sizeError {
	nodes := 0
	var walk func(e ast.Expr, depth int) *sizeError
	walk = func(e ast.Expr, depth int) *sizeError {
		nodes++
		if nodes > MaxNodes {
			return &sizeError{pos: e.Pos(), msg: fmt.Sprintf("document has more than %d values", MaxNodes)}
		}
		switch x := e.(type) {
		case *ast.StructLit:
			if depth > MaxDepth {
				return &sizeError{pos: e.Pos(), msg: fmt.Sprintf("document is nested more than %d levels deep", MaxDepth)}
			}
			for _, el := range x.Elts {
				if f, ok := el.(*ast.Field); ok {
					if f == items {
						nodes++ // the list itself
						continue
					}
					if err := walk(f.Value, depth+1); err != nil {
						return err
					}
				}
			}
		case *ast.ListLit:
			if depth > MaxDepth {
				return &sizeError{pos: e.Pos(), msg: fmt.Sprintf("document is nested more than %d levels deep", MaxDepth)}
			}
			for _, el := range x.Elts {
				if err := walk(el, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(s, 1)
}

// largeCollection is the size from which a mapping or list counts
// towards MaxLargeElements.
const largeCollection = 1_000

// checkBreadth rejects a document with more than MaxObjectValues values,
// with a mapping or list of more than MaxElements elements, or with more
// than MaxLargeElements elements in its mappings and lists of more than
// largeCollection elements.
func checkBreadth(s *ast.StructLit) *sizeError {
	large, nodes := 0, 0
	var walk func(e ast.Expr) *sizeError
	count := func(e ast.Expr, n int, what string) *sizeError {
		if n > MaxElements {
			return &sizeError{e.Pos(), fmt.Sprintf("%s of %d elements: kpc validates at most %d in one list or mapping", what, n, MaxElements), pathTo(s, e)}
		}
		if n > largeCollection {
			if large += n; large > MaxLargeElements {
				return &sizeError{e.Pos(), fmt.Sprintf("%s of %d elements: the document's lists and mappings of more than %d elements hold more than %d elements in all, more than kpc validates",
					what, n, largeCollection, MaxLargeElements), pathTo(s, e)}
			}
		}
		return nil
	}
	walk = func(e ast.Expr) *sizeError {
		if nodes++; nodes > MaxObjectValues {
			return &sizeError{e.Pos(), fmt.Sprintf("document has more than %d values: kpc validates at most that many in one object", MaxObjectValues), nil}
		}
		switch x := e.(type) {
		case *ast.StructLit:
			if err := count(e, len(x.Elts), "mapping"); err != nil {
				return err
			}
			for _, el := range x.Elts {
				if f, ok := el.(*ast.Field); ok {
					if err := walk(f.Value); err != nil {
						return err
					}
				}
			}
		case *ast.ListLit:
			if err := count(e, len(x.Elts), "list"); err != nil {
				return err
			}
			for _, el := range x.Elts {
				if err := walk(el); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(s)
}

// pathTo returns the field path of target in root, or nil: the path of
// a size error, found once there is one (the walk that finds it keeps
// no path, which would cost an allocation for every value).
func pathTo(root, target ast.Expr) fpath {
	var find func(e ast.Expr, p fpath) (fpath, bool)
	find = func(e ast.Expr, p fpath) (fpath, bool) {
		if e == target {
			return p, true
		}
		switch x := e.(type) {
		case *ast.StructLit:
			for _, el := range x.Elts {
				if f, ok := el.(*ast.Field); ok {
					name, _, _ := labelName(f.Label)
					if q, ok := find(f.Value, p.key(name)); ok {
						return q, true
					}
				}
			}
		case *ast.ListLit:
			for i, el := range x.Elts {
				if q, ok := find(el, p.index(i)); ok {
					return q, true
				}
			}
		}
		return nil, false
	}
	p, _ := find(root, nil)
	return p
}

// normalize applies Go JSON decoding semantics to a document, in place:
// fields whose value is null or an empty list are removed (unset), and of
// duplicate keys in a mapping only the last is kept. In strict mode each
// duplicate key is an error of object, reported at the key or else at the
// nearest enclosing node with a position (near), or else at base. The
// positions are converted only for an error. Otherwise, when dups is not
// nil, the field that wins over an earlier one of its name is appended to
// it (see duplicateWarnings).
func normalize(s *ast.StructLit, strict bool, object string, path fpath, near token.Pos, base diag.Pos, diags *diag.List, dups *[]dupField) {
	// Field names seen, with their index in keep: a map only for large
	// mappings.
	var seen map[string]int
	var small [8]struct {
		name string
		i    int
	}
	nsmall := 0
	if len(s.Elts) > len(small) {
		seen = make(map[string]int, len(s.Elts))
	}
	lookup := func(name string) (int, bool) {
		if seen != nil {
			i, ok := seen[name]
			return i, ok
		}
		for _, e := range small[:nsmall] {
			if e.name == name {
				return e.i, true
			}
		}
		return 0, false
	}
	keep := s.Elts[:0]
	for _, el := range s.Elts {
		f, ok := el.(*ast.Field)
		if !ok {
			keep = append(keep, el)
			continue
		}
		name, _, err := labelName(f.Label)
		if err == nil {
			if i, dup := lookup(name); dup {
				if strict {
					at := toPosOr(f.Label.Pos(), toPosOr(f.Value.Pos(), toPosOr(near, base)))
					diags.Add(at, object, path.key(name).String(), fmt.Sprintf("duplicate field %q", name))
				} else if dups != nil {
					*dups = append(*dups, dupField{f, s})
				}
				keep[i] = nil // the later one wins
			}
		}
		if isNull(f.Value) || isEmptyList(f.Value) {
			continue
		}
		// Paths are only reported in strict mode.
		var sub fpath
		if strict {
			sub = path.key(name)
		}
		switch v := f.Value.(type) {
		case *ast.StructLit:
			normalize(v, strict, object, sub, posOr(v.Pos(), near), base, diags, dups)
		case *ast.ListLit:
			normalizeList(v, strict, object, sub, posOr(v.Pos(), near), base, diags, dups)
		default:
			wholeNumber(v)
		}
		if err == nil {
			if seen != nil {
				seen[name] = len(keep)
			} else {
				found := false
				for j := range small[:nsmall] {
					if small[j].name == name {
						small[j].i, found = len(keep), true
					}
				}
				if !found {
					small[nsmall].name, small[nsmall].i = name, len(keep)
					nsmall++
				}
			}
		}
		keep = append(keep, f)
	}
	out := keep[:0]
	for _, el := range keep {
		if el != nil {
			out = append(out, el)
		}
	}
	clear(s.Elts[len(out):])
	s.Elts = out
}

func normalizeList(l *ast.ListLit, strict bool, object string, path fpath, near token.Pos, base diag.Pos, diags *diag.List, dups *[]dupField) {
	for i, el := range l.Elts {
		var sub fpath
		if strict {
			sub = path.index(i)
		}
		switch v := el.(type) {
		case *ast.StructLit:
			normalize(v, strict, object, sub, posOr(v.Pos(), near), base, diags, dups)
		case *ast.ListLit:
			normalizeList(v, strict, object, sub, posOr(v.Pos(), near), base, diags, dups)
		default:
			wholeNumber(v)
		}
	}
}

// wholeNumber turns a number literal with a fraction or an exponent whose
// value is a whole number (80.0, 8e1) into an integer literal, in place:
// kubectl decodes a manifest's numbers as floats where they are not
// integers as written, and sends a whole one as an integer, so that the API
// server takes `port: 80.0` for 80.
func wholeNumber(e ast.Expr) {
	if u, ok := e.(*ast.UnaryExpr); ok && (u.Op == token.SUB || u.Op == token.ADD) {
		e = u.X
	}
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.FLOAT {
		return
	}
	// CUE's YAML decoder writes a float that looks like an integer (one
	// beyond 64 bits, or tagged !!float) as "number & 123", which is no
	// literal: it is the float kubectl sends, in Go's shortest form.
	if v, ok := strings.CutPrefix(b.Value, "number & "); ok {
		f, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
		if err != nil {
			b.Value = v
			return
		}
		b.Value = strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(b.Value, ".e") {
			b.Value += ".0"
		}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(b.Value, "_", ""), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return
	}
	b.Kind, b.Value = token.INT, strconv.FormatInt(int64(f), 10)
}

// dupField is a field that won over an earlier field of its name in the
// mapping in.
type dupField struct {
	f  *ast.Field
	in *ast.StructLit
}

// duplicateWarnings returns the warnings of object for the duplicate
// fields of its document root (collected by normalize, or topDuplicates):
// the API server's Warn mode. Duplicate fields at the top level are what a
// missing "---" between two documents gives; they make one warning.
// Duplicates inside a value that itself lost to a later field are left
// out.
func duplicateWarnings(root *ast.StructLit, dups []dupField, object string, base diag.Pos) diag.List {
	const missing = `; is a "---" line missing between two documents?`
	var out diag.List
	var top []string // names of the top-level duplicates
	var topAt diag.Pos
	for _, d := range dups {
		name, _, _ := labelName(d.f.Label)
		at := toPosOr(d.f.Label.Pos(), base)
		if d.in == root {
			if len(top) == 0 {
				topAt = at
			}
			top = append(top, name)
			continue
		}
		if p, ok := structPath(root, d.in, nil); ok {
			out.Warn(at, object, p.key(name).String(), fmt.Sprintf("duplicate field %q: the later value is used", name))
		}
	}
	switch {
	case len(top) == 1:
		out.Warn(topAt, object, fpath{top[0]}.String(), fmt.Sprintf("duplicate field %q: the later value is used", top[0])+missing)
	case len(top) > 1:
		quoted := make([]string, len(top))
		for i, n := range top {
			quoted[i] = strconv.Quote(n)
		}
		out.Warn(topAt, object, "", "duplicate fields "+strings.Join(quoted, ", ")+": the later values are used"+missing)
	}
	return out
}

// topDuplicates returns the fields of s that come after an earlier field
// of their name.
func topDuplicates(s *ast.StructLit) []dupField {
	var out []dupField
	seen := make(map[string]bool, len(s.Elts))
	for _, el := range s.Elts {
		if f, ok := el.(*ast.Field); ok {
			if name, _, err := labelName(f.Label); err == nil {
				if seen[name] {
					out = append(out, dupField{f, s})
				}
				seen[name] = true
			}
		}
	}
	return out
}

// structPath returns the API path of the mapping target inside the value v
// (at path p), and whether it is there.
func structPath(v ast.Expr, target *ast.StructLit, p fpath) (fpath, bool) {
	switch v := v.(type) {
	case *ast.StructLit:
		if v == target {
			return p, true
		}
		for _, el := range v.Elts {
			if g, ok := el.(*ast.Field); ok {
				name, _, _ := labelName(g.Label)
				if q, ok := structPath(g.Value, target, p.key(name)); ok {
					return q, true
				}
			}
		}
	case *ast.ListLit:
		for i, el := range v.Elts {
			if q, ok := structPath(el, target, p.index(i)); ok {
				return q, true
			}
		}
	}
	return nil, false
}

// posOr returns p when it is a position in a file (see toPos), else near.
func posOr(p, near token.Pos) token.Pos {
	if p.IsValid() && p.Filename() != "" {
		return p
	}
	return near
}

func isNull(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.NULL
}

func isEmptyList(e ast.Expr) bool {
	l, ok := e.(*ast.ListLit)
	return ok && len(l.Elts) == 0
}

// normalizeKind unsets the zero values of a kind's non-pointer fields
// ("" for strings, 0 for numbers, false for booleans; targetPort is an
// IntOrString, so both 0 and ""). Go's JSON decoding cannot tell them from
// absent fields, and the API server's defaults apply to both.
func normalizeKind(kind string, s *ast.StructLit) {
	meta := structAt(s, "metadata")
	dropZero(meta, "name:s", "namespace:s", "generateName:s")
	// managedFields are accepted as they are (see #ObjectMeta): only that
	// each entry is a mapping is checked, so their contents go. They name
	// each object's owner by its uid, which made every document of a dump
	// kept with them a shape of its own (memo.go): five times slower.
	// A null entry decodes to an empty one, which the field manager
	// drops as well.
	if l, ok := get(meta, "managedFields").(*ast.ListLit); ok {
		for i, el := range l.Elts {
			switch m := el.(type) {
			case *ast.StructLit:
				m.Elts = nil
			case *ast.BasicLit:
				if m.Kind == token.NULL {
					l.Elts[i] = &ast.StructLit{Lbrace: m.Pos(), Rbrace: m.End()}
				}
			}
		}
	}
	switch kind {
	case "Service":
		spec := structAt(s, "spec")
		dropZero(spec, "type:s", "clusterIP:s", "externalName:s", "sessionAffinity:s", "loadBalancerIP:s",
			"externalTrafficPolicy:s", "healthCheckNodePort:n", "publishNotReadyAddresses:b")
		if spec == nil {
			return
		}
		if f := field(spec, "ports"); f != nil {
			if l, ok := f.Value.(*ast.ListLit); ok {
				for _, el := range l.Elts {
					if p, ok := el.(*ast.StructLit); ok {
						dropZero(p, "name:s", "protocol:s", "targetPort:sn", "nodePort:n")
					}
				}
			}
		}
	case "EndpointSlice":
		dropZero(s, "addressType:s")
	case "Endpoints":
		// SetDefaults_Endpoints: an empty protocol is TCP.
		for _, ss := range elems(get(s, "subsets")) {
			for _, p := range elems(get(asStruct(ss), "ports")) {
				dropZero(asStruct(p), "protocol:s")
			}
		}
	}
}

// dropZero removes the fields of s named in specs ("name:kinds", kinds from
// s, n, b) whose value is the zero value of one of the kinds.
func dropZero(s *ast.StructLit, specs ...string) {
	if s == nil {
		return
	}
	kinds := make(map[string]string, len(specs))
	for _, sp := range specs {
		name, k, _ := strings.Cut(sp, ":")
		kinds[name] = k
	}
	out := s.Elts[:0]
	for _, el := range s.Elts {
		if f, ok := el.(*ast.Field); ok {
			if name, _, err := labelName(f.Label); err == nil {
				if k, ok := kinds[name]; ok && isZero(f.Value, k) {
					continue
				}
			}
		}
		out = append(out, el)
	}
	clear(s.Elts[len(out):])
	s.Elts = out
}

// isZero reports whether e is "" (kinds has s), 0 (n) or false (b).
func isZero(e ast.Expr, kinds string) bool {
	b, ok := e.(*ast.BasicLit)
	if !ok {
		return false
	}
	switch b.Kind {
	case token.STRING:
		s, ok := stringLit(b)
		return ok && s == "" && strings.Contains(kinds, "s")
	case token.INT:
		n, err := strconv.ParseInt(strings.ReplaceAll(b.Value, "_", ""), 0, 64)
		return err == nil && n == 0 && strings.Contains(kinds, "n")
	case token.FALSE:
		return strings.Contains(kinds, "b")
	}
	return false
}

// field returns s's last field called name (the one Go's JSON decoding
// keeps), or nil.
func field(s *ast.StructLit, name string) *ast.Field {
	if s == nil {
		return nil
	}
	for i := len(s.Elts) - 1; i >= 0; i-- {
		f, ok := s.Elts[i].(*ast.Field)
		if !ok {
			continue
		}
		if id, ok := f.Label.(*ast.Ident); ok && id.Name != name {
			continue // an identifier's label name, if it has one, is its name
		}
		if n, _, err := labelName(f.Label); err == nil && n == name {
			return f
		}
	}
	return nil
}

// labelName is ast.LabelName, without its checks for an identifier made of
// ASCII letters, digits, "_" and "$" that starts with a letter (the keys
// of Kubernetes objects): the loader asks for the names of the same labels
// many times.
func labelName(l ast.Label) (name string, isIdent bool, err error) {
	if id, ok := l.(*ast.Ident); ok && plainIdent(id.Name) {
		return id.Name, true, nil
	}
	return ast.LabelName(l)
}

// plainIdent reports whether s is an ASCII letter followed by ASCII
// letters, digits, "_" and "$" (a subset of ast.IsValidIdent).
func plainIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '_' || c == '$'):
		default:
			return false
		}
	}
	return true
}

// structAt returns the value of s's field name if it is a mapping.
func structAt(s *ast.StructLit, name string) *ast.StructLit {
	f := field(s, name)
	if f == nil {
		return nil
	}
	v, _ := f.Value.(*ast.StructLit)
	return v
}

// stringLit returns the value of a string literal.
func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	// A plain double-quoted string without escapes is its text (the
	// usual case, without Unquote's allocation).
	if v := b.Value; len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.HasPrefix(v, `"""`) && !strings.ContainsRune(v, '\\') {
		return v[1 : len(v)-1], true
	}
	s, err := literal.Unquote(b.Value)
	if err != nil {
		return "", false
	}
	return s, true
}
