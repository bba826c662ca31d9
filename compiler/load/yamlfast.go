package load

import (
	"bytes"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// fastYAML parses the common subset of YAML that Kubernetes manifests and
// kubectl's output use (block mappings and sequences, single-line quoted
// scalars, plain scalars on one line or folded over several, literal block
// scalars with "|" or "|-", single-line flow collections, comments, "---"
// separators) into the syntax tree CUE's YAML decoder produces for it:
// the same nodes, literal texts and line:column positions. It is several
// times faster than the general decoder. A document outside the subset
// (anchors, tags, folded block scalars, multi-line quoted scalars,
// escapes, tabs, non-ASCII text, carriage returns, numbers other than plain
// decimal integers) is decoded alone by the general decoder, from its line
// to the next document marker, and its positions are moved to the file's
// (see general). Where the general decoder reports an error, fastYAML
// stops and reports false; the caller then decodes the input again, which
// also produces the syntax error.
//
// Documents are passed to emit as they are parsed. fastYAML returns how
// many it passed and whether it parsed the whole input; when it did not,
// the caller decodes the input again and skips that many non-empty
// documents.
func fastYAML(name string, data []byte, emit func(ast.Expr)) (int, bool) {
	p := newYParser(name, data)
	return p.documents(0, p.lines(), emit)
}

// newYParser prepares a parser of data: it finds the lines, and the lines
// with bytes outside the subset (tabs, carriage returns, non-ASCII text),
// whose documents go to the general decoder.
func newYParser(name string, data []byte) *yparser {
	return newTextParser(name, text{data: data})
}

// newTextParser is newYParser for a text that may be dedented (a JSON
// List's, for decodeJSONList): the parser's lines are its data's, and
// isLine and cutLine see them as they are in the input.
func newTextParser(name string, t text) *yparser {
	data := t.data
	p := &yparser{data: data, dedent: t.indent, ok: true}
	p.file = token.NewFile(name, 0, len(data)+1)
	// The table is sized exactly: a kubectl List as JSON has a line for
	// every 36 bytes. It is the file's only line table (setLines).
	p.starts = make([]int32, 1, bytes.Count(data, []byte{'\n'})+1)
	for i, c := range data {
		switch {
		case c == '\n':
			p.starts = append(p.starts, int32(i+1))
		case c >= 0x80 || c == '\t' || c == '\r':
			if l := p.lines() - 1; len(p.odd) == 0 || p.odd[len(p.odd)-1] != l {
				p.odd = append(p.odd, l)
			}
		}
	}
	if p.dedent != nil && len(p.dedent) != len(p.starts) {
		p.ok = false // not a dedented text of these lines
		p.dedent = nil
	}
	setLines(p.file, p.starts, p.dedent)
	p.end = p.lines()
	return p
}

// start is the offset at which line l starts.
func (p *yparser) start(l int) int { return int(p.starts[l]) }

// lines is the number of lines of the input.
func (p *yparser) lines() int { return len(p.starts) }

// at returns a parser of the same input for the lines [from, to), which
// must start at a document boundary; it shares p's tables and may run
// concurrently with p.
func (p *yparser) at(from, to int) *yparser {
	return &yparser{data: p.data, file: p.file, starts: p.starts, dedent: p.dedent, odd: p.odd, line: from, end: to, ok: true}
}

// documents parses the documents of lines [from, to), passing each to
// emit, those outside the subset through general; it returns how many it
// passed and whether it parsed them all.
func (p *yparser) documents(from, to int, emit func(ast.Expr)) (int, bool) {
	p.line, p.end, p.ok = from, to, true
	n := 0
	if p.unicodeBreaks(from, to) {
		return 0, false
	}
	// A document end marker ("...") may follow a document or a start
	// marker, and is followed by another end marker or a start marker (or
	// a directive, which is left to the general decoder).
	started, ended := from > 0, false
	for p.line < p.end {
		// Document markers and empty documents.
		l := p.nextContent(p.line)
		if l < 0 || l >= p.end {
			break
		}
		b := p.raw(l)
		if isEndMarker(b) && started {
			p.line, ended = l+1, true
			continue
		}
		if ended && !isMarker(b) {
			return n, false
		}
		started, ended = true, false
		if isMarker(b) {
			if r := strings.TrimLeft(string(b[3:]), " "); r == "" || r[0] == '#' {
				p.line = l + 1
				continue
			}
			// Content on the marker line: the general decoder's.
		} else if len(b) > 0 && b[0] != '-' && b[0] != '.' && b[0] != '%' && b[0] != ' ' && !p.oddIn(l, p.end) {
			// Not a top-level list, "...", a directive or a stray
			// indentation, and no odd byte before the document's end.
			doc := p.mapping(l, 0)
			if p.ok {
				emit(doc)
				n++
				continue
			}
		}
		docs, ok := p.general(l)
		if !ok {
			return n, false
		}
		for _, d := range docs {
			emit(d)
		}
		n += len(docs)
	}
	return n, true
}

// unicodeBreaks reports whether a line in [from, to) holds a line break
// other than LF (NEL, LS, PS): the YAML decoder counts them as line
// breaks, and the fast parser does not (a comment would hide what follows
// one), so such text is the general decoder's, whole.
func (p *yparser) unicodeBreaks(from, to int) bool {
	i, _ := slices.BinarySearch(p.odd, from)
	for ; i < len(p.odd) && p.odd[i] < to; i++ {
		end := len(p.data)
		if l := p.odd[i] + 1; l < p.lines() {
			end = p.start(l)
		}
		if bytes.ContainsAny(p.data[p.start(p.odd[i]):end], "\u0085\u2028\u2029") {
			return true
		}
	}
	return false
}

// oddIn reports whether the document that starts at line l, which ends
// at the next document marker or at line end, has a line with a byte
// outside the subset.
func (p *yparser) oddIn(l, end int) bool {
	return p.oddBetween(l, end) && p.oddBetween(l, p.nextMarker(l+1))
}

// oddBetween reports whether a line in [from, to) has a byte outside the
// subset.
func (p *yparser) oddBetween(from, to int) bool {
	i, _ := slices.BinarySearch(p.odd, from)
	return i < len(p.odd) && p.odd[i] < to
}

// nextMarker returns the first line from l that is a document marker for
// the general decoder, or p.end.
func (p *yparser) nextMarker(l int) int {
	for ; l < p.end; l++ {
		if isMarkerLine(p.raw(l)) {
			return l
		}
	}
	return p.end
}

// general decodes the lines from l to the next document marker with the
// general decoder, for a document outside the fast parser's subset. The
// decoder's positions are offsets in that text: moved by the text's
// offset, they are those of the whole file, as the line and column of a
// position are (a column is the decoder's, counted in characters from
// the line's start). It returns the non-empty documents, and false if
// the decoder reported an error; p continues at the marker. A text with a
// line break other than LF (NEL, LS, PS) is left to a decoding of the whole
// file (false): the decoder counts such breaks as lines and its positions
// do not, so the positions it gives depend on where the text it decodes
// starts.
func (p *yparser) general(l int) ([]ast.Expr, bool) {
	end := p.nextMarker(l + 1)
	from, to := p.start(l), len(p.data)
	if end < p.lines() {
		to = p.start(end)
	}
	if bytes.ContainsAny(p.data[from:to], "\u0085\u2028\u2029") {
		return nil, false
	}
	clear(p.decls)
	clear(p.exprs)
	p.decls, p.exprs = p.decls[:0], p.exprs[:0]
	p.line, p.ok = end, true
	next := yamlExtract(p.file.Name(), p.data[from:to])
	var docs []ast.Expr
	for {
		e, err := extract(next)
		if err == io.EOF {
			return docs, true
		}
		if err != nil {
			return nil, false
		}
		if !emptyDocument(e) {
			movePositions(e, p.file, from)
			docs = append(docs, e)
		}
	}
}

// movePositions moves the positions of a syntax tree that CUE's YAML
// decoder made from a part of a file starting at offset base to file f,
// the whole file's.
func movePositions(n ast.Node, f *token.File, base int) {
	move := func(p *token.Pos) {
		if p.HasAbsPos() {
			*p = f.Pos(base+p.Offset(), p.RelPos())
		}
	}
	ast.Walk(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.StructLit:
			move(&x.Lbrace)
			move(&x.Rbrace)
		case *ast.ListLit:
			move(&x.Lbrack)
			move(&x.Rbrack)
		case *ast.Field:
			move(&x.TokenPos)
		case *ast.BasicLit:
			move(&x.ValuePos)
		case *ast.Ident:
			move(&x.NamePos)
		case *ast.UnaryExpr:
			move(&x.OpPos)
		case *ast.BinaryExpr:
			move(&x.OpPos)
		case *ast.Comment:
			move(&x.Slash)
		}
		return true
	}, nil)
}

// isMarker reports whether a line is a document start marker.
func isMarker(b []byte) bool {
	return len(b) >= 3 && b[0] == '-' && b[1] == '-' && b[2] == '-' && (len(b) == 3 || b[3] == ' ')
}

// isEndMarker reports whether a line is a document end marker, alone or
// before a comment.
func isEndMarker(b []byte) bool {
	if len(b) < 3 || b[0] != '.' || b[1] != '.' || b[2] != '.' {
		return false
	}
	r := bytes.TrimLeft(b[3:], " ")
	return len(r) == 0 || len(r) < len(b)-3 && r[0] == '#'
}

// isMarkerLine reports whether the general decoder reads a line as a
// document start marker: isMarker, or "---" before a tab or a carriage
// return.
func isMarkerLine(b []byte) bool {
	return isMarker(b) || len(b) > 3 && b[0] == '-' && b[1] == '-' && b[2] == '-' && (b[3] == '\t' || b[3] == '\r')
}

// chunks splits the lines of p into ranges of about size bytes that start
// at document markers.
func (p *yparser) chunks(size int) [][2]int {
	var out [][2]int
	from := 0
	for l := 1; l < p.lines(); l++ {
		if p.start(l)-p.start(from) < size {
			continue
		}
		if isMarkerLine(p.raw(l)) {
			out = append(out, [2]int{from, l})
			from = l
		}
	}
	return append(out, [2]int{from, p.lines()})
}

// listLayout is the layout of an input that is one List as kubectl
// prints it: top-level keys, one of them "items:" followed by the items,
// a block sequence at column 0.
type listLayout struct {
	items [2]int // the lines of the items
	kind  *listKind
}

// listLayout reports whether p's input is one List in kubectl's layout
// whose other keys (apiVersion, kind ending in "List", metadata) the fast
// parser takes; its items are then parsed in parts (itemChunks). Anything
// else, or a List whose keys the decoder would report on, is left to the
// usual parsing of the whole input.
func (p *yparser) listLayout() (listLayout, bool) {
	var l listLayout
	// The "items:" line comes after top-level "key: value" lines (and
	// blank lines, comments and a first document marker).
	at := -1
	for i := p.line; i < p.end && at < 0; i++ {
		b := p.raw(i)
		switch {
		case string(b) == "items:":
			at = i
		case len(b) == 0 || b[0] == '#' || isMarker(b) && i == p.nextContent(p.line):
		case b[0] == ' ' || b[0] == '-' || b[0] == '.' || b[0] == '%' || !p.isKey(b, 0):
			return l, false
		}
	}
	if at < 0 {
		return l, false
	}
	// The items: every line up to the next content at column 0 that is
	// not a sequence entry, the first being one.
	first := p.nextContent(at + 1)
	if first < 0 || !isSeqEntry(p.raw(first)) || p.indent(first) != 0 {
		return l, false
	}
	end := p.end
	for i := first + 1; i < p.end; i++ {
		b := p.raw(i)
		if len(b) == 0 || b[0] == ' ' || b[0] == '#' || isSeqEntry(b) {
			continue
		}
		end = i
		break
	}
	// One document: no marker after the items.
	for i := end; i < p.end; i++ {
		if b := p.raw(i); isMarker(b) || len(b) >= 3 && string(b[:3]) == "..." {
			return l, false
		}
	}
	// The List's other keys, before and after the items, in the subset.
	if p.oddBetween(p.line, first) || p.oddBetween(end, p.end) {
		return l, false
	}
	wrapper := &ast.StructLit{}
	for _, r := range [][2]int{{p.line, at}, {end, p.end}} {
		q := p.at(r[0], r[1])
		docs := 0
		_, ok := q.documents(r[0], r[1], func(e ast.Expr) {
			docs++
			if s, ok := e.(*ast.StructLit); ok {
				wrapper.Elts = append(wrapper.Elts, s.Elts...)
			}
		})
		if !ok || docs > 1 {
			return l, false
		}
	}
	kind, ok := listWrapper(wrapper, false)
	if !ok {
		return l, false
	}
	l.items = [2]int{first, end}
	l.kind = kind
	return l, true
}

// listWrapper returns the kind of the items of a List whose keys other
// than its items are those of wrapper, if the decoder would take them
// without a report: apiVersion and kind strings, the kind ending in
// "List", metadata, and no other key, none twice. With items, wrapper
// also has the key "items", an empty list (where the items were).
func listWrapper(wrapper *ast.StructLit, items bool) (*listKind, bool) {
	seen := map[string]bool{}
	for _, e := range wrapper.Elts {
		f, ok := e.(*ast.Field)
		if !ok {
			return nil, false
		}
		name, _, err := labelName(f.Label)
		if err != nil || seen[name] {
			return nil, false
		}
		seen[name] = true
		switch name {
		case "apiVersion", "kind", "metadata":
		case "items":
			if l, ok := f.Value.(*ast.ListLit); !items || !ok || len(l.Elts) != 0 {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	kind, kindOK := stringField(wrapper, "kind")
	apiVersion, avOK := stringField(wrapper, "apiVersion")
	if !kindOK || !avOK || !strings.HasSuffix(kind, "List") || items != seen["items"] || checkSize(wrapper, nil) != nil {
		return nil, false
	}
	return newListKind(kind, apiVersion), true
}

// itemChunks splits the lines of a List's items into ranges of about size
// bytes that start at items (lines for which start is true).
func (p *yparser) itemChunks(items [2]int, size int, start func(p *yparser, l int) bool) [][2]int {
	var out [][2]int
	from := items[0]
	for l := from + 1; l < items[1]; l++ {
		if p.start(l)-p.start(from) < size {
			continue
		}
		if start(p, l) {
			out = append(out, [2]int{from, l})
			from = l
		}
	}
	return append(out, [2]int{from, items[1]})
}

// fastYAMLAll parses a whole input with fastYAML, or reports false.
func fastYAMLAll(name string, data []byte) ([]ast.Expr, bool) {
	var docs []ast.Expr
	_, ok := fastYAML(name, data, func(e ast.Expr) { docs = append(docs, e) })
	return docs, ok
}

type yparser struct {
	data   []byte
	file   *token.File
	starts []int32 // line start offsets (inputs are at most MaxFileSize bytes)
	// dedent, when not nil, is the spaces each line of a dedented text
	// left out (see text): only the JSON List decoder reads one.
	dedent []uint16
	odd    []int // the lines with bytes outside the subset, in order
	line   int   // the next line to read
	end    int   // the line where parsing stops
	ok     bool
	// plainKeys holds the labels of the plain (unquoted) keys seen, by
	// their text (at most maxKnownKeys), and scalars the plain scalars
	// (see maxKnownScalars); a chunk's parser has its worker's (see
	// workspace).
	plainKeys map[string]keyLabel
	scalars   map[string]resolved
	// nodes allocates the syntax nodes: a workspace's, or nil.
	nodes *nodeArena
	// decls and exprs are stacks of the fields and the items of the
	// collections being parsed: a collection pushes its elements as it
	// parses them (a nested one pushes above them and pops its own when
	// it ends), then copies them out once, into a slice of their number.
	decls []ast.Decl
	exprs []ast.Expr
}

// pop copies the elements pushed on stack above base into elts, a slice
// of their number, and pops them.
func pop[T any](stack *[]T, base int, elts []T) []T {
	copy(elts, (*stack)[base:])
	clear((*stack)[base:])
	*stack = (*stack)[:base]
	return elts
}

// popDecls pops the fields pushed above base, in a slice of their own.
func (p *yparser) popDecls(base int) []ast.Decl {
	return pop(&p.decls, base, p.nodes.declSlice(len(p.decls)-base))
}

// popExprs pops the items pushed above base, in a slice of their own.
func (p *yparser) popExprs(base int) []ast.Expr {
	return pop(&p.exprs, base, p.nodes.exprSlice(len(p.exprs)-base))
}

// newStruct returns a struct that opens at pos.
func (p *yparser) newStruct(pos token.Pos) *ast.StructLit {
	s := p.nodes.structLit()
	s.Lbrace = pos
	return s
}

// newList returns a list that opens at pos.
func (p *yparser) newList(pos token.Pos) *ast.ListLit {
	l := p.nodes.listLit()
	l.Lbrack = pos
	return l
}

// newLit returns a literal.
func (p *yparser) newLit(pos token.Pos, kind token.Token, value string) *ast.BasicLit {
	lit := p.nodes.lit()
	lit.ValuePos, lit.Kind, lit.Value = pos, kind, value
	return lit
}

// raw is line l without its newline, as bytes of the input.
func (p *yparser) raw(l int) []byte {
	return p.data[p.start(l):p.lineEnd(l)]
}

// lineEnd is the offset of the newline that ends line l, or the input's
// length.
func (p *yparser) lineEnd(l int) int {
	if l+1 < p.lines() {
		return p.start(l+1) - 1
	}
	return len(p.data)
}

// cutLine reports whether line l is, as it is in the input, prefix
// followed by more text, and returns that text; prefix is spaces followed
// by something else (for a dedented text).
func (p *yparser) cutLine(l int, prefix string) ([]byte, bool) {
	b := p.raw(l)
	if p.dedent == nil {
		return bytes.CutPrefix(b, []byte(prefix))
	}
	// A line without all its spaces left out (maxIndent) has more than
	// any prefix's.
	rest := strings.TrimLeft(prefix, " ")
	if int(p.dedent[l]) != len(prefix)-len(rest) || (len(b) > 0 && b[0] == ' ') {
		return nil, false
	}
	return bytes.CutPrefix(b, []byte(rest))
}

// isLine reports whether line l is, as it is in the input, text.
func (p *yparser) isLine(l int, text string) bool {
	rest, ok := p.cutLine(l, text)
	return ok && len(rest) == 0
}

func (p *yparser) indent(l int) int {
	b := p.raw(l)
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// nextContent returns the first line from l that is neither blank nor a
// comment, or -1 at the end of the input. A document marker is content.
func (p *yparser) nextContent(l int) int {
	for ; l < p.end; l++ {
		b := p.raw(l)
		i := 0
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i == len(b) || b[i] == '#' {
			continue
		}
		return l
	}
	return -1
}

// endOfBlock reports whether line l (a content line or -1) ends every
// block: the end of the input or a document marker.
func (p *yparser) endOfBlock(l int) bool {
	if l < 0 {
		return true
	}
	b := p.raw(l)
	return isMarker(b) || len(b) >= 3 && b[0] == '.' && b[1] == '.' && b[2] == '.' && (len(b) == 3 || b[3] == ' ')
}

func (p *yparser) pos(off int) token.Pos { return p.file.Pos(off, token.NoRelPos) }

func (p *yparser) fail() ast.Expr {
	p.ok = false
	return &ast.BadExpr{}
}

// isSeqEntry reports whether a line is a block sequence entry.
func isSeqEntry(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i < len(b) && b[i] == '-' && (i+1 == len(b) || b[i+1] == ' ')
}

// mapping parses a block mapping whose first key starts at column col
// (0-based) of line l; its other keys are on the following lines at that
// indentation.
func (p *yparser) mapping(l, col int) ast.Expr {
	s := p.newStruct(p.pos(p.start(l) + col))
	s.Rbrace = s.Lbrace
	base := len(p.decls)
	first := true
	for {
		if !first {
			l = p.nextContent(p.line)
			if p.endOfBlock(l) {
				p.line = p.end
				if l >= 0 {
					p.line = l
				}
				s.Elts = p.popDecls(base)
				return s
			}
			ind := p.indent(l)
			if ind < col {
				p.line = l
				s.Elts = p.popDecls(base)
				return s
			}
			if ind > col || isSeqEntry(p.raw(l)) {
				return p.fail()
			}
		}
		first = false
		f := p.entry(l, col, col)
		if !p.ok {
			return p.fail()
		}
		p.decls = append(p.decls, f)
	}
}

// entry parses "key: value" starting at column col of line l, in a
// mapping indented by ind.
func (p *yparser) entry(l, col, ind int) *ast.Field {
	b := p.raw(l)
	off := p.start(l)
	f, after, ok := p.key(b, col, off, false)
	if !ok {
		p.ok = false
		return nil
	}
	i := after
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i == len(b) || b[i] == '#' {
		if i < len(b) && i == after {
			p.ok = false // "key:#" is not a comment
			return nil
		}
		// The value is on the following lines.
		next := p.nextContent(l + 1)
		if p.endOfBlock(next) {
			p.ok = false // null value
			return nil
		}
		nind := p.indent(next)
		switch {
		case nind > ind && isSeqEntry(p.raw(next)):
			f.Value = p.sequence(next, nind)
		case nind > ind:
			p.line = next
			f.Value = p.mapping(next, nind)
		case nind == ind && isSeqEntry(p.raw(next)):
			f.Value = p.sequence(next, nind)
		default:
			p.ok = false // null value
			return nil
		}
		return f
	}
	if b[i] == '|' {
		f.Value = p.literal(l, i, ind)
		return f
	}
	f.Value = p.inline(l, i, ind)
	return f
}

// literal parses a literal block scalar whose indicator ("|" or "|-",
// ending the line) is at column i of line l, the value of a key in a
// mapping indented by ind: kubectl prints multi-line annotations so, such
// as kubectl.kubernetes.io/last-applied-configuration. Its lines are the
// following ones indented like the first, which must be more indented
// than the mapping; empty lines among them are kept, trailing ones
// dropped, and "|" ends the value with a newline. Anything else (folded
// scalars, "|+", indentation indicators, a comment after the indicator,
// lines of spaces, a first line that is empty or less indented) is left
// to the general decoder.
func (p *yparser) literal(l, i, ind int) ast.Expr {
	b := p.raw(l)
	var clip bool
	switch string(b[i:]) {
	case "|":
		clip = true
	case "|-":
	default:
		return p.fail()
	}
	first := l + 1
	if first >= p.end {
		return p.fail()
	}
	n := p.indent(first)
	if n <= ind || n == len(p.raw(first)) {
		return p.fail()
	}
	var lines []string
	j := first
	for ; j < p.end; j++ {
		lb := p.raw(j)
		if len(lb) == 0 {
			lines = append(lines, "")
			continue
		}
		k := p.indent(j)
		if k == len(lb) {
			return p.fail() // a line of spaces
		}
		if k < n {
			break
		}
		lines = append(lines, string(lb[n:]))
	}
	last := len(lines)
	for lines[last-1] == "" {
		last--
	}
	if clip && first+last == p.lines() && !bytes.HasSuffix(p.data, []byte{'\n'}) {
		return p.fail() // the last line of an input without a final newline
	}
	v := strings.Join(lines[:last], "\n")
	if clip {
		v += "\n"
	}
	p.line = j
	return &ast.BasicLit{ValuePos: p.pos(p.start(l) + i), Kind: token.STRING, Value: quote(valueForm, v)}
}

// keyLabel is how a key labels its field: by an identifier (text is its
// name) or by a string (text is the quoted string), as
// ast.NewStringLabel decides.
type keyLabel struct {
	ident bool
	text  string
}

// labelOf returns the label of the key whose value is value.
func labelOf(value string) keyLabel {
	if !ast.StringLabelNeedsQuoting(value) {
		return keyLabel{true, value}
	}
	return keyLabel{false, quote(literal.String, value)}
}

// maxKnownKeys bounds the plain keys a parser remembers.
const maxKnownKeys = 1024

// maxSimpleKey is the longest key, in bytes, the fast parser reads; YAML
// allows 1,024 characters, which are at least as many bytes.
const maxSimpleKey = 1000

// key parses a mapping key at column col of line b (starting at offset
// off) and returns a field with its label, and the column after the ':'.
// In a flow mapping (flow), a plain key is of keyChar characters only.
func (p *yparser) key(b []byte, col, off int, flow bool) (*ast.Field, int, bool) {
	if col >= len(b) {
		return nil, 0, false
	}
	var k keyLabel
	end := 0
	switch b[col] {
	case '"', '\'':
		q := b[col]
		j := col + 1
		for j < len(b) && b[j] != q && b[j] != '\\' {
			j++
		}
		if j >= len(b) || b[j] != q {
			return nil, 0, false
		}
		end = j + 1
		if end >= len(b) || b[end] != ':' {
			return nil, 0, false
		}
		k = labelOf(string(b[col+1 : j]))
	default:
		if !keyChar(b[col]) {
			return nil, 0, false
		}
		// After its first character, a plain key of a block mapping may
		// hold any printable character but a space, and ':' not followed by
		// a space, as the keys of managedFields do ("f:metadata",
		// `k:{"port":80}`).
		j := col + 1
		for j < len(b) && keyChar(b[j]) {
			j++
		}
		for !flow && j < len(b) && b[j] > ' ' && b[j] < 0x7f && (b[j] != ':' || j+1 < len(b) && b[j+1] != ' ') {
			j++
		}
		if j >= len(b) || b[j] != ':' || b[col] == '-' && j == col+1 {
			return nil, 0, false
		}
		end = j
		var known bool
		if k, known = p.plainKeys[string(b[col:j])]; known {
			break
		}
		v, kind, ok := resolvePlain(string(b[col:j]))
		if !ok {
			return nil, 0, false
		}
		switch kind {
		case token.STRING, token.INT, token.TRUE, token.FALSE, token.NULL:
			// A string, or the literal text, as CUE's decoder labels it.
		default:
			return nil, 0, false
		}
		if kind == token.INT && strings.HasPrefix(v, "-") { // resolvePlain refuses "<<"
			return nil, 0, false
		}
		k = labelOf(v)
		remember(&p.plainKeys, string(b[col:j]), k, maxKnownKeys)
	}
	// ':' must be followed by a space or the end of the line.
	if end+1 < len(b) && b[end+1] != ' ' {
		return nil, 0, false
	}
	// YAML refuses a simple key of more than 1,024 characters: a long key
	// is left to the general decoder.
	if end-col > maxSimpleKey {
		return nil, 0, false
	}
	if k.ident {
		x := p.nodes.identField()
		x.id = ast.Ident{NamePos: p.pos(off + col), Name: k.text}
		x.f.Label = &x.id
		return &x.f, end + 1, true
	}
	return litField(p.pos(off+col), k.text), end + 1, true
}

// litField returns a field labelled by the quoted string, allocated with
// its label.
func litField(pos token.Pos, quoted string) *ast.Field {
	x := &struct {
		f   ast.Field
		lit ast.BasicLit
	}{lit: ast.BasicLit{ValuePos: pos, Kind: token.STRING, Value: quoted}}
	x.f.Label = &x.lit
	return &x.f
}

// valueForm is how string values are quoted (keys: literal.String).
var valueForm = literal.String.WithOptionalTabIndent(1)

// quote returns s as a CUE string literal, as f.Quote does, but without
// its rune-by-rune escaping when s is printable ASCII without a quote or a
// backslash, as most keys and values are: such a string is only enclosed
// in quotes, whatever f.
func quote(f literal.Form, s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return f.Quote(s)
		}
	}
	return `"` + s + `"`
}

// keyChar reports whether c may appear in a plain key.
func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/'
}

// sequence parses a block sequence whose dashes are at column ind,
// starting on line l.
func (p *yparser) sequence(l, ind int) ast.Expr {
	list := p.newList(p.pos(p.start(l) + ind))
	list.Rbrack = list.Lbrack
	base := len(p.exprs)
	for {
		b := p.raw(l)
		i := ind + 1
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i == len(b) || b[i] == '#' || b[i] == '-' && (i+1 == len(b) || b[i+1] == ' ') {
			return p.fail() // an empty item or a nested sequence
		}
		if p.isKey(b, i) {
			// A mapping starting on the dash line.
			p.line = l
			p.exprs = append(p.exprs, p.mapping(l, i))
		} else {
			p.exprs = append(p.exprs, p.inline(l, i, ind))
		}
		if !p.ok {
			return p.fail()
		}
		next := p.nextContent(p.line)
		if p.endOfBlock(next) {
			p.line = p.end
			if next >= 0 {
				p.line = next
			}
			list.Elts = p.popExprs(base)
			return list
		}
		nind := p.indent(next)
		if nind < ind || nind == ind && !isSeqEntry(p.raw(next)) {
			p.line = next
			list.Elts = p.popExprs(base)
			return list
		}
		if nind > ind {
			return p.fail()
		}
		l = next
	}
}

// isKey reports whether a mapping key starts at column i of b.
func (p *yparser) isKey(b []byte, i int) bool {
	switch b[i] {
	case '"', '\'':
		q := b[i]
		j := i + 1
		for j < len(b) && b[j] != q {
			j++
		}
		return j+1 < len(b) && b[j+1] == ':' && (j+2 == len(b) || b[j+2] == ' ')
	case '[', '{':
		return false
	}
	for j := i; j < len(b); j++ {
		if b[j] == ':' && (j+1 == len(b) || b[j+1] == ' ') {
			return true
		}
		if b[j] == ' ' && j+1 < len(b) && b[j+1] == '#' {
			return false
		}
	}
	return false
}

// inline parses a value that starts at column i of line l and ends on
// that line; the value belongs to a block indented by ind, so a following
// line indented more would continue it (not supported).
func (p *yparser) inline(l, i, ind int) ast.Expr {
	b := p.raw(l)
	off := p.start(l)
	var e ast.Expr
	end := 0
	switch b[i] {
	case '[', '{':
		e, end = p.flow(b, i, off)
	case '"', '\'':
		e, end = p.quoted(b, i, off)
	default:
		if strings.IndexByte("?:,]}#&*!|>%@`", b[i]) >= 0 || b[i] == '-' && (i+1 == len(b) || b[i+1] == ' ') {
			return p.fail()
		}
		j := i
		for j < len(b) && !(b[j] == ' ' && j+1 < len(b) && b[j+1] == '#') {
			if b[j] == ':' && (j+1 == len(b) || b[j+1] == ' ') {
				return p.fail() // a mapping in a scalar's place
			}
			j++
		}
		if j == len(b) {
			// A plain scalar may go on, more indented, on the next lines.
			if next := p.nextContent(l + 1); !p.endOfBlock(next) && p.indent(next) > ind {
				return p.folded(l, i, ind)
			}
		}
		e = p.scalar(bytes.TrimRight(b[i:j], " "), off+i)
		end = j
	}
	if !p.ok || e == nil {
		return p.fail()
	}
	// Only a comment may follow.
	for end < len(b) && b[end] == ' ' {
		end++
	}
	if end < len(b) && (b[end] != '#' || b[end-1] != ' ') {
		return p.fail()
	}
	p.line = l + 1
	// A more indented line would continue a plain scalar.
	if next := p.nextContent(l + 1); !p.endOfBlock(next) && p.indent(next) > ind {
		return p.fail()
	}
	return e
}

// folded parses a plain scalar that starts at column i of line l, in a
// block indented by ind, and goes on over the following lines indented
// more than ind: kubectl folds long values with spaces so. The lines are
// joined by spaces. A blank line, a comment, or a line that could start or
// hold anything but scalar text (an indicator first, ": " or " #") leaves
// the scalar to the general decoder, as does a value that is not a string.
func (p *yparser) folded(l, i, ind int) ast.Expr {
	v := slices.Clip(bytes.TrimRight(p.raw(l)[i:], " ")) // appended to below, not in place
	k := l + 1
	for ; k < p.end; k++ {
		b := p.raw(k)
		n := p.indent(k)
		if n == len(b) {
			if next := p.nextContent(k); !p.endOfBlock(next) && p.indent(next) > ind {
				return p.fail() // a blank line in the value: a newline
			}
			break
		}
		if n <= ind {
			break
		}
		t := bytes.TrimRight(b[n:], " ")
		if strings.IndexByte("#-?:,[]{}&*!|>'\"%@`", t[0]) >= 0 || bytes.Contains(t, []byte(": ")) ||
			t[len(t)-1] == ':' || bytes.Contains(t, []byte(" #")) {
			return p.fail()
		}
		v = append(append(v, ' '), t...)
	}
	s, kind, ok := resolvePlain(string(v))
	if !ok || kind != token.STRING {
		return p.fail()
	}
	p.line = k
	return &ast.BasicLit{ValuePos: p.pos(p.start(l) + i), Kind: token.STRING, Value: quote(valueForm, s)}
}

// quoted parses a single-line quoted scalar without escapes.
func (p *yparser) quoted(b []byte, i, off int) (ast.Expr, int) {
	q := b[i]
	j := i + 1
	for j < len(b) && b[j] != q && b[j] != '\\' {
		j++
	}
	if j >= len(b) || b[j] != q || j+1 < len(b) && b[j+1] == q {
		p.ok = false
		return nil, 0
	}
	return &ast.BasicLit{
		ValuePos: p.pos(off + i),
		Kind:     token.STRING,
		Value:    quote(valueForm, string(b[i+1:j])),
	}, j + 1
}

// flow parses a single-line flow collection starting at column i.
func (p *yparser) flow(b []byte, i, off int) (ast.Expr, int) {
	skip := func(j int) int {
		for j < len(b) && b[j] == ' ' {
			j++
		}
		return j
	}
	switch b[i] {
	case '[':
		list := p.newList(p.pos(off + i))
		j := skip(i + 1)
		if j < len(b) && b[j] == ']' {
			list.Rbrack = p.pos(off + j)
			return list, j + 1
		}
		base := len(p.exprs)
		for {
			e, k := p.flowValue(b, j, off)
			if !p.ok {
				return nil, 0
			}
			p.exprs = append(p.exprs, e)
			k = skip(k)
			if k >= len(b) {
				p.ok = false
				return nil, 0
			}
			switch b[k] {
			case ',':
				j = skip(k + 1)
				if j >= len(b) || b[j] == ']' {
					p.ok = false // a trailing comma
					return nil, 0
				}
			case ']':
				list.Rbrack = p.pos(off + k)
				list.Elts = p.popExprs(base)
				return list, k + 1
			default:
				p.ok = false
				return nil, 0
			}
		}
	case '{':
		s := p.newStruct(p.pos(off + i))
		j := skip(i + 1)
		if j < len(b) && b[j] == '}' {
			s.Rbrace = p.pos(off + j)
			return s, j + 1
		}
		base := len(p.decls)
		for {
			f, k, ok := p.key(b, j, off, true)
			if !ok {
				p.ok = false
				return nil, 0
			}
			k = skip(k)
			if k >= len(b) || b[k] == ',' || b[k] == '}' {
				p.ok = false // null value
				return nil, 0
			}
			e, k := p.flowValue(b, k, off)
			if !p.ok {
				return nil, 0
			}
			f.Value = e
			p.decls = append(p.decls, f)
			k = skip(k)
			if k >= len(b) {
				p.ok = false
				return nil, 0
			}
			switch b[k] {
			case ',':
				j = skip(k + 1)
				if j >= len(b) || b[j] == '}' {
					p.ok = false
					return nil, 0
				}
			case '}':
				s.Rbrace = p.pos(off + k)
				s.Elts = p.popDecls(base)
				return s, k + 1
			default:
				p.ok = false
				return nil, 0
			}
		}
	}
	p.ok = false
	return nil, 0
}

// flowValue parses a scalar or collection inside a flow collection.
func (p *yparser) flowValue(b []byte, j, off int) (ast.Expr, int) {
	if j >= len(b) {
		p.ok = false
		return nil, 0
	}
	switch b[j] {
	case '[', '{':
		return p.flow(b, j, off)
	case '"', '\'':
		return p.quoted(b, j, off)
	}
	if strings.IndexByte("?:,]}#&*!|>%@`-", b[j]) >= 0 && !(b[j] == '-' && j+1 < len(b) && b[j+1] >= '0' && b[j+1] <= '9') {
		p.ok = false
		return nil, 0
	}
	// In a flow collection '?' ends a plain scalar too (YAML's parser
	// then expects a ',' or the collection's end): left to it.
	k := j
	for k < len(b) && strings.IndexByte(",]}:#[{\"'?", b[k]) < 0 {
		k++
	}
	if k < len(b) && strings.IndexByte(",]}", b[k]) < 0 {
		p.ok = false
		return nil, 0
	}
	e := p.scalar(bytes.TrimRight(b[j:k], " "), off+j)
	if e == nil {
		p.ok = false
		return nil, 0
	}
	return e, k
}

// scalar makes the literal of a plain scalar, or nil if it is outside the
// subset.
func (p *yparser) scalar(text []byte, off int) ast.Expr {
	r, ok := p.scalars[string(text)]
	if !ok {
		v, kind, ok := resolvePlain(string(text))
		if !ok {
			return nil
		}
		r = resolved{kind, v}
		if kind == token.STRING {
			r.value = quote(valueForm, v)
		}
		if len(text) <= maxKnownScalar {
			remember(&p.scalars, string(text), r, maxKnownScalars)
		}
	}
	pos := p.pos(off)
	switch r.kind {
	case token.STRING:
		return p.newLit(pos, token.STRING, r.value)
	case token.TRUE:
		return p.newLit(pos, token.TRUE, "true")
	case token.FALSE:
		return p.newLit(pos, token.FALSE, "false")
	case token.NULL:
		return &ast.BasicLit{ValuePos: pos.WithRel(token.Blank), Kind: token.NULL, Value: "null"}
	case token.INT:
		if neg, ok := strings.CutPrefix(r.value, "-"); ok {
			return &ast.UnaryExpr{OpPos: pos, Op: token.SUB, X: &ast.BasicLit{ValuePos: pos, Kind: token.INT, Value: neg}}
		}
		return p.newLit(pos, token.INT, r.value)
	}
	return nil
}

// resolved is what a plain scalar's text resolves to: its kind and its
// literal's text (quoted for a string).
type resolved struct {
	kind  token.Token
	value string
}

// A parser remembers what the plain scalars of at most maxKnownScalar
// bytes resolve to, up to maxKnownScalars of them (see remember):
// protocols, kinds, ports and the like repeat from document to document.
const (
	maxKnownScalar  = 64
	maxKnownScalars = 4096
)

// yamlFloat is the YAML resolver's float syntax.
var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// isPlainInt reports whether s is a decimal integer of at most 18 digits
// without leading zeros or a plus sign (^-?(0|[1-9][0-9]{0,17})$).
func isPlainInt(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || len(s) > 18 || s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// radixInt reports whether go.yaml.in/yaml/v3 resolves plain (a plain
// scalar without its underscores) as an integer written with prefix
// ("0b", "0o") in base, or with "-" and the prefix.
func radixInt(plain, prefix string, base int) bool {
	if rest, ok := strings.CutPrefix(plain, prefix); ok {
		if _, err := strconv.ParseInt(rest, base, 64); err == nil {
			return true
		}
		_, err := strconv.ParseUint(rest, base, 64)
		return err == nil
	}
	if rest, ok := strings.CutPrefix(plain, "-"+prefix); ok {
		_, err := strconv.ParseInt("-"+rest, base, 64)
		return err == nil
	}
	return false
}

// resolvePlain resolves a plain scalar as go.yaml.in/yaml/v3 does, within
// the subset: it returns the value (for numbers the literal text) and its
// kind, or false for floats, timestamps, non-decimal integers and the
// like.
func resolvePlain(s string) (string, token.Token, bool) {
	if s == "" {
		return "", token.NULL, true
	}
	switch s {
	case "~", "null", "Null", "NULL":
		return "null", token.NULL, true
	case "true", "True", "TRUE":
		return "true", token.TRUE, true
	case "false", "False", "FALSE":
		return "false", token.FALSE, true
	case "<<":
		return "", 0, false // a merge key, which CUE refuses as a value
	}
	if v, ok := yaml11Bool(s); ok { // as kubectl reads it
		if v {
			return "true", token.TRUE, true
		}
		return "false", token.FALSE, true
	}
	switch c := s[0]; {
	case c == '.':
		if _, err := strconv.ParseFloat(s, 64); err == nil || strings.EqualFold(s, ".nan") || strings.EqualFold(s, ".inf") {
			return "", 0, false
		}
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if isPlainInt(s) { // at most 18 digits: an int64
			return s, token.INT, true
		}
		// Anything the YAML resolver might read as a number or a
		// timestamp is left to the general decoder.
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 4 && i < len(s) && s[i] == '-' {
			return "", 0, false
		}
		if strings.Count(s, ".") > 1 {
			// Not a number, whatever its base (an IPv4 address, say).
			return s, token.STRING, true
		}
		if strings.Count(s[1:], "-") > 1 && s[1] != '.' {
			// Not a number either: after its first character a number has
			// at most one '-' (an exponent's sign, or a binary or octal
			// integer's after its prefix); a uid has four.
			return s, token.STRING, true
		}
		plain := strings.ReplaceAll(s, "_", "")
		if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return "", 0, false
		}
		if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return "", 0, false
		}
		if yamlFloat.MatchString(plain) {
			return "", 0, false
		}
		// Binary and octal integers, which the resolver tries last: a
		// Kubernetes uid may start with "0b" ("0bb65f58-6fb4-...") and is a
		// string.
		if radixInt(plain, "0b", 2) || radixInt(plain, "0o", 8) {
			return "", 0, false
		}
		for _, pre := range []string{"+.", "-."} {
			if strings.HasPrefix(plain, pre) {
				return "", 0, false
			}
		}
	}
	return s, token.STRING, true
}
