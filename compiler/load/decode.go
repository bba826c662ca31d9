package load

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/encoding/json"

	"kpc/compiler/diag"
	"kpc/schema"
)

// kindInfo describes a kind kpc reads.
type kindInfo struct {
	kind       string
	apiVersion string
	def        string // schema definition
	namespaced bool
	named      bool // has metadata.name
	// strict reports whether Options.Strict closes the kind's schema.
	strict bool
	// older is an older apiVersion of the same shape that is read too.
	older string
}

var kinds = map[string]*kindInfo{
	"Service":                {kind: "Service", apiVersion: "v1", def: schema.Service, namespaced: true, named: true, strict: true},
	"EndpointSlice":          {kind: "EndpointSlice", apiVersion: "discovery.k8s.io/v1", def: schema.EndpointSlice, namespaced: true, named: true, strict: true},
	"Endpoints":              {kind: "Endpoints", apiVersion: "v1", def: schema.Endpoints, namespaced: true, named: true, strict: true},
	"Node":                   {kind: "Node", apiVersion: "v1", def: schema.Node, named: true},
	"KubeProxyConfiguration": {kind: "KubeProxyConfiguration", apiVersion: "kubeproxy.config.k8s.io/v1alpha1", def: schema.KubeProxyConfiguration},
	"ServiceCIDR":            {kind: "ServiceCIDR", apiVersion: "networking.k8s.io/v1", older: "networking.k8s.io/v1beta1", def: schema.ServiceCIDR, named: true},
}

// document is one object to validate, with its results.
type document struct {
	pos  diag.Pos       // where the object starts
	expr *ast.StructLit // the normalised object
	// evaluated says that CUE evaluated expr, and may still hold its
	// nodes after validation.
	evaluated bool
	info      *kindInfo
	object    string // "Service ns/name"

	// Filled by validation (diags, with the strict mode's duplicate keys,
	// from decoding).
	diags diag.List
	out   any // *api.Service, ..., or *api.Invalid if invalid
}

// decoder splits one file into documents.
type decoder struct {
	file  string
	opts  Options
	diags *diag.List
	emit  func(*document)
	// src, when set, is the file's text, at the offsets of its positions
	// (see blockPos).
	src []byte
}

// decodeFile decodes the documents of one file and passes them to emit.
func decodeFile(name string, data []byte, asJSON bool, opts Options, diags *diag.List, emit func(*document)) {
	decodeFileTo(name, data, asJSON, opts, diags, &sink{emit: emit})
}

// decodeFileTo decodes the documents of one file and passes them to out.
func decodeFileTo(name string, data []byte, asJSON bool, opts Options, diags *diag.List, out *sink) {
	if pos, msg, ok := checkText(name, data); !ok {
		diags.Add(pos, "", "", msg)
		return
	}
	decodeText(name, data, asJSON, true, opts, diags, out)
}

// decodeStdin decodes standard input, read as JSON or YAML by its content
// (see isJSON and decodeText), and passes its documents to out. A large
// List in kubectl's JSON layout is decoded as JSON without decodeText's
// scan of the whole input: decoding it proves it JSON.
func decodeStdin(data []byte, opts Options, diags *diag.List, out *sink) {
	if pos, msg, ok := checkText(stdinName, data); !ok {
		diags.Add(pos, "", "", msg)
		return
	}
	if decodeJSONList(stdinName, data, opts, out) {
		return
	}
	decodeText(stdinName, data, isJSON(stdinName, data), false, opts, diags, out)
}

// decodeText is decodeFileTo for data that checkText takes; list says
// whether to try decodeJSONList on JSON (not when the caller has). It
// reports whether the text decoded, false when it added an error of the
// text as a whole (a syntax error) and stopped.
//
// Standard input read as JSON by its content (isJSON) that is not JSON is
// read as YAML if it decodes so, as flow-style YAML does; else as JSON,
// whose decoder reports where the input stops being JSON.
func decodeText(name string, data []byte, asJSON, list bool, opts Options, diags *diag.List, out *sink) bool {
	if asJSON && name == stdinName && !validJSON(data) {
		// The documents wait until the YAML decoder has taken the whole
		// text.
		var docs []*document
		var yd diag.List
		if decodeText(name, data, false, false, opts, &yd, &sink{emit: func(d *document) { docs = append(docs, d) }}) {
			*diags = append(*diags, yd...)
			for _, d := range docs {
				out.doc(d)
			}
			return true
		}
		// A template's text ("{{- if ... }}" first) is no JSON: the YAML
		// decoder's error says what it is.
		if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{{")) {
			*diags = append(*diags, yd...)
			return false
		}
	}
	if !asJSON {
		if pos, msg, ok := yamlControl(name, data); !ok {
			diags.Add(pos, "", "", msg)
			return false
		}
		if pos, msg, ok := checkAliases(name, data); !ok {
			diags.Add(pos, "", "", msg)
			return false
		}
	}
	if pos, ok := bareCR(name, data); !ok && !asJSON {
		// The YAML parser counts a lone CR as a line break, CUE's
		// positions do not.
		diags.Add(pos, "", "", "carriage return not followed by a line feed: line endings must be LF or CRLF")
		return false
	}
	d := &decoder{file: name, opts: opts, diags: diags, emit: out.doc, src: data}
	if asJSON && list && decodeJSONList(name, data, opts, out) {
		return true
	}
	if asJSON && fastYAMLEnabled {
		// Other JSON: parsed here, validated by the workers.
		if values, ok := fastJSONValues(name, data); ok {
			for _, e := range values {
				d.document(e)
			}
			return true
		}
	}
	skip := 0
	if !asJSON && fastYAMLEnabled {
		n, ok := fastDecode(name, data, opts, d, out)
		if ok {
			return true
		}
		wholeFallbacks.Add(1)
		// The general decoder takes over where the fast one stopped.
		skip = n
	}
	var next func() (ast.Expr, error)
	if asJSON {
		next = json.NewDecoder(nil, name, bytes.NewReader(data)).Extract
	} else {
		next = yamlExtract(name, data)
	}
	for {
		expr, err := extract(next)
		if err == io.EOF {
			break
		}
		if err != nil {
			var pos diag.Pos
			var msg string
			if asJSON {
				pos, msg = jsonSyntaxError(name, data, err)
			} else {
				pos, msg = syntaxError(name, err)
				pos, msg = locateYAMLError(data, pos, msg)
				if i := bytes.IndexAny(data, "\u0085\u2028\u2029"); i >= 0 && errors.As(err, new(decoderPanic)) {
					// CUE's decoder places the lines that the YAML
					// parser counts, which these breaks begin, in
					// the text's LF lines, and can fail on them.
					pos = offsetPos(name, data, i)
					msg = fmt.Sprintf("cannot decode the input after this line break %U: write LF line breaks", []rune(string(data[i:]))[0])
				}
			}
			if kubectlWarning(data) {
				msg += kubectlWarningHint
			}
			diags.Add(pos, "", "", msg)
			return false
		}
		if skip > 0 && !emptyDocument(expr) {
			skip--
			continue
		}
		d.document(expr)
	}
	return true
}

// extract calls next, turning a panic of the decoder into an error (a
// decoderPanic).
func extract(next func() (ast.Expr, error)) (e ast.Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, decoderPanic{r}
		}
	}()
	return next()
}

// decoderPanic is the error of a decoder that panicked.
type decoderPanic struct{ v any }

func (p decoderPanic) Error() string { return fmt.Sprintf("cannot decode the input: %v", p.v) }

// bareCR returns the position of the first carriage return not followed
// by a line feed, or ok.
func bareCR(name string, data []byte) (diag.Pos, bool) {
	for i := bytes.IndexByte(data, '\r'); i >= 0; {
		if i+1 >= len(data) || data[i+1] != '\n' {
			return offsetPos(name, data, i), false
		}
		j := bytes.IndexByte(data[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return diag.Pos{}, true
}

// offsetPos is the position of the byte at offset at of data (at may be
// len(data), just past its last byte).
func offsetPos(name string, data []byte, at int) diag.Pos {
	line := 1 + bytes.Count(data[:at], []byte{'\n'})
	col := at - bytes.LastIndexByte(data[:at], '\n')
	return diag.Pos{File: name, Line: line, Col: col}
}

// fastYAMLEnabled enables fastYAML; tests compare with it off.
var fastYAMLEnabled = true

// wholeFallbacks counts the files that the fast parser gave back to the
// general decoder from a point on, rather than a document at a time; tests
// read it.
var wholeFallbacks atomic.Int64

// chunkBytes is the size of the parts of a large file that are parsed
// and validated in parallel.
const chunkBytes = 256 << 10

// fastDecode decodes a YAML file with fastYAML: a small file in the
// calling goroutine, a large one in parts by the validation workers. It
// returns how many documents were passed on and whether that was all of
// them (see fastYAML).
func fastDecode(name string, data []byte, opts Options, d *decoder, out *sink) (int, bool) {
	p := newYParser(name, data)
	if len(data) < 2*chunkBytes || out.v == nil {
		// The memos of keys and scalars go from file to file (a
		// directory of a file per Service); the nodes do not, as the
		// workers validate the documents later.
		m := memos.Get().(*workspace)
		p.plainKeys, p.scalars = m.keys, m.scalars
		defer func() {
			m.keys, m.scalars = p.plainKeys, p.scalars
			memos.Put(m)
		}()
		n := 0
		ok := func() (ok bool) {
			// A panic of the fast parser leaves the input to the general
			// decoder.
			defer func() {
				if recover() != nil {
					ok = false
				}
			}()
			_, ok = p.documents(0, p.end, func(e ast.Expr) {
				n++ // if d.document panics, its document is not decoded again
				d.document(e)
			})
			return ok
		}()
		return n, ok
	}
	if l, ok := p.listLayout(); ok {
		return fastDecodeList(p, l, name, opts, out)
	}
	cs := runChunks(p, p.chunks(chunkBytes), name, opts, out, nil, false)
	n := 0
	for i, c := range cs {
		n += c.n
		if !c.ok {
			// Later parts are decoded again by the general decoder.
			for _, later := range cs[i+1:] {
				later.discard = true
			}
			return n, false
		}
	}
	return n, true
}

// fastDecodeList decodes a file that is one large List in kubectl's
// layout (see listLayout): its items are parsed and validated in parts by
// the validation workers, as the documents of a large file are (an item
// outside the fast parser's subset by the general decoder, alone). If the
// general decoder reports an error in any part, every part is discarded
// and it decodes the whole file (fastDecodeList returns false and no
// documents).
func fastDecodeList(p *yparser, l listLayout, name string, opts Options, out *sink) (int, bool) {
	cs := runChunks(p, p.itemChunks(l.items, chunkBytes, isItemLine), name, opts, out, l.kind, false)
	for _, c := range cs {
		if !c.ok {
			for _, c := range cs {
				c.discard = true
			}
			return 0, false
		}
	}
	return 1, true
}

// runChunks queues the parts of p's input in the lines of ranges for the
// validation workers, as chunks of List items of kind list when list is
// not nil (in JSON with asJSON), and waits for them.
func runChunks(p *yparser, ranges [][2]int, name string, opts Options, out *sink, list *listKind, asJSON bool) []*chunk {
	cs := make([]*chunk, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		cs[i] = &chunk{p: p.at(r[0], r[1]), file: name, opts: opts, wg: &wg, list: list, json: asJSON}
		wg.Add(1)
		out.chunk(cs[i])
	}
	wg.Wait()
	return cs
}

// chunk is a part of a large file, parsed and validated by a worker.
type chunk struct {
	p    *yparser
	file string
	opts Options
	wg   *sync.WaitGroup
	// list, when not nil, says that the part holds items of a List of
	// that kind (see fastDecodeList) rather than documents; json, that
	// they are in JSON (see jsonListLayout).
	list *listKind
	json bool

	// Results.
	docs    []*document
	diags   diag.List
	n       int  // documents parsed
	ok      bool // all parsed
	discard bool // superseded by the general decoder
}

// run parses the chunk's documents, its parser lent ws, and validates
// each with check.
func (c *chunk) run(check func(*document), ws *workspace) {
	defer c.wg.Done()
	defer func() { c.p = nil }() // the input is not needed any more
	ws.lend(c.p)
	defer func() {
		if r := recover(); r != nil {
			c.ok = false
		}
		ws.retrieve(c.p, c.ok && !slices.ContainsFunc(c.docs, func(d *document) bool { return d.evaluated }))
	}()
	d := &decoder{file: c.file, opts: c.opts, diags: &c.diags, emit: func(doc *document) {
		c.docs = append(c.docs, doc)
		check(doc)
	}}
	if c.p.dedent == nil {
		d.src = c.p.data
	}
	if c.json {
		c.ok = c.runJSONItems(d, ws)
		return
	}
	if c.list != nil {
		c.ok = c.runItems(d)
		return
	}
	c.n, c.ok = c.p.documents(c.p.line, c.p.end, func(e ast.Expr) {
		c.n++ // if d.document panics, its document is not decoded again
		d.document(e)
	})
}

// runItems parses the chunk's List items and decodes each as the decoder
// decodes the items of a List document. An item outside the fast
// parser's subset is decoded by the general decoder, alone (see
// yparser.general). It reports whether all the items were taken: false
// when the general decoder reported an error.
func (c *chunk) runItems(d *decoder) bool {
	p := c.p
	from, to := p.line, p.end
	if !p.oddBetween(from, to) {
		list, ok := p.sequence(from, 0).(*ast.ListLit)
		if ok && p.ok && p.nextContent(p.line) < 0 {
			c.items(d, list.Elts)
			return true
		}
	}
	// Item by item: each starts with a "-" at column 0.
	for a := from; a < to; {
		b := a + 1
		for b < to && !isItemLine(p, b) {
			b++
		}
		p.line, p.end, p.ok = a, b, true
		var elts []ast.Expr
		if !p.oddBetween(a, b) {
			if list, ok := p.sequence(a, 0).(*ast.ListLit); ok && p.ok && p.nextContent(p.line) < 0 {
				elts = list.Elts
			}
		}
		if elts == nil {
			docs, ok := p.general(a)
			if !ok || len(docs) != 1 {
				return false
			}
			list, ok := docs[0].(*ast.ListLit)
			if !ok {
				return false
			}
			elts = list.Elts
		}
		c.items(d, elts)
		a = b
	}
	return true
}

// isItemLine reports whether line l of a List's items starts an item.
func isItemLine(p *yparser, l int) bool { b := p.raw(l); return len(b) > 0 && b[0] == '-' }

// items decodes List items as the decoder decodes the items of a List
// document.
func (c *chunk) items(d *decoder, elts []ast.Expr) {
	for _, it := range elts {
		is, ok := it.(*ast.StructLit)
		if !ok {
			d.diags.Add(d.pos(it), c.list.list, "items", "invalid value: every item must be an object")
			continue
		}
		d.object(is, c.list)
	}
}

// emptyDocument reports whether a decoded document is empty (null, or
// the decoder's value for an empty input), which fastYAML does not pass
// on.
func emptyDocument(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind == token.NULL
	case *ast.BinaryExpr:
		return true
	}
	return false
}

// locateYAMLError finds in data the position of the YAML decoder's errors
// that name none or the wrong line, or no column: the first alias of an
// unknown anchor, a %YAML directive the decoder refuses (it reads YAML
// 1.1), a tab that indents, and the scanner's errors at a character (see
// scannerErrorAt), and the parser's errors in block style, which name the
// line of the construct being parsed, not where it failed (see
// parserErrorAt). Those of its parser in flow style ("did not find
// expected ',' or '}'") name the line where the collection starts: they
// are placed at its opening bracket (see flowOpenAt). The decoder's other
// errors keep their line alone: those of a scalar ("found unexpected end
// of stream") name the line where the scalar starts. A YAML syntax error
// near a line with "{{" says that the text may be a template.
func locateYAMLError(data []byte, pos diag.Pos, msg string) (diag.Pos, string) {
	at := -1
	if anchor, ok := strings.CutPrefix(msg, "YAML syntax error: unknown anchor '"); ok {
		anchor, _, _ = strings.Cut(anchor, "'")
		alias := []byte("*" + anchor)
		for i := 0; anchor != "" && at < 0; {
			j := bytes.Index(data[i:], alias)
			if j < 0 {
				break
			}
			j += i
			end := j + len(alias)
			before := j == 0 || strings.IndexByte(" \t\n[{,:-", data[j-1]) >= 0
			after := end == len(data) || strings.IndexByte(" \t\r\n]},", data[end]) >= 0
			lineStart := bytes.LastIndexByte(data[:j], '\n') + 1
			comment := bytes.IndexByte(data[lineStart:j], '#') >= 0
			if before && after && !comment && !inBlockScalar(data, lineStart) {
				at = j
			}
			i = j + 1
		}
	} else if strings.HasSuffix(msg, "found incompatible YAML document") {
		for i := 0; i < len(data); {
			if bytes.HasPrefix(data[i:], []byte("%YAML")) {
				at = i
				msg += `: the %YAML directive asks for another version than YAML 1.1, which the decoder reads; remove the directive`
				break
			}
			nl := bytes.IndexByte(data[i:], '\n')
			if nl < 0 {
				break
			}
			i += nl + 1
		}
	}
	if tabs := strings.Contains(msg, "tab character"); tabs || strings.HasSuffix(msg, "cannot start any token") {
		// A tab that indents: on the reported line, or, for the
		// decoder's tab message, on the next one (it reports that a
		// line early).
		start := 0
		for line := 1; line < pos.Line && start < len(data); line++ {
			nl := bytes.IndexByte(data[start:], '\n')
			if nl < 0 {
				start = len(data)
				break
			}
			start += nl + 1
		}
		lines := 1
		if tabs {
			lines = 2
		}
		for n := 0; n < lines && pos.Line > 0 && start < len(data) && at < 0; n++ {
			end := len(data)
			if nl := bytes.IndexByte(data[start:], '\n'); nl >= 0 {
				end = start + nl
			}
			indent := data[start:end]
			indent = indent[:len(indent)-len(bytes.TrimLeft(indent, " \t"))]
			if t := bytes.IndexByte(indent, '\t'); t >= 0 {
				at = start + t
			}
			start = end + 1
		}
	}
	if at < 0 {
		var scanner bool
		if at, scanner = scannerErrorAt(data, pos.Line, msg); scanner && pos.Line == 0 {
			pos.Line = 1 // the decoder names none for the first
		}
	}
	if at < 0 {
		at = parserErrorAt(data, pos.Line, msg)
	}
	if at < 0 {
		at = mapKeyAt(data, pos.Line, msg)
	}
	if at < 0 {
		if at = flowOpenAt(data, pos.Line, msg); at >= 0 {
			kind := "mapping"
			if strings.HasSuffix(msg, "']'") {
				kind = "sequence"
			}
			msg += " in the flow " + kind + " that starts here: close it, or separate its entries with commas"
		}
	}
	if at < 0 && strings.HasPrefix(msg, "YAML syntax error") {
		// Else, a template's mark on the reported line, which the hint
		// below names.
		if start, ok := lineStart(data, pos.Line); ok && pos.Line > 0 {
			line := lineOf(data[start:])
			for _, mark := range []string{"{{", "%{"} {
				if i := bytes.Index(line, []byte(mark)); i >= 0 {
					at = start + i
					break
				}
			}
		}
	}
	if at >= 0 {
		pos = offsetPos(pos.File, data, at)
	}
	switch {
	case !strings.HasPrefix(msg, "YAML syntax error"):
	case nearTemplate(data, pos.Line, "{{"):
		msg += templateHint
	case nearTemplate(data, pos.Line, "%{"):
		msg += percentTemplateHint
	}
	return pos, msg
}

// scannerError is an error that the YAML scanner raises at the character
// it reads, with the characters that may be: one of chars, followed by a
// space, a tab, a line break or the end when blank is set (an indicator).
type scannerError struct {
	msg   string
	chars string
	blank bool
}

// scannerErrors are the scanner's errors at a character.
var scannerErrors = []scannerError{
	{"mapping values are not allowed in this context", ":", true},
	{"block sequence entries are not allowed in this context", "-", true},
	{"mapping keys are not allowed in this context", "?", true},
	// What starts no token: a tab, and the characters that start no
	// plain scalar and no other token ('|' and '>' in flow style).
	{"found character that cannot start any token", "\t%@`|>", false},
}

// scannerErrorAt reports whether msg is one of scannerErrors, and returns
// the offset in data of the character at which the YAML scanner raised it
// on line line (0 when the decoder names none: the first), or -1. The
// decoder names the line alone; the character is found when it is the
// only one on that line that the error may be raised at. Not in text with
// line breaks that the scanner counts and the decoder's positions do not
// (NEL, LS, PS).
func scannerErrorAt(data []byte, line int, msg string) (int, bool) {
	i := slices.IndexFunc(scannerErrors, func(e scannerError) bool { return strings.HasSuffix(msg, e.msg) })
	if i < 0 {
		return -1, false
	}
	if bytes.ContainsAny(data, "\u0085\u2028\u2029") {
		return -1, true
	}
	e := scannerErrors[i]
	start, ok := lineStart(data, line)
	if !ok {
		return -1, true
	}
	end := len(data)
	if nl := bytes.IndexByte(data[start:], '\n'); nl >= 0 {
		end = start + nl
	}
	at := -1
	for j := start; j < end; j++ {
		if strings.IndexByte(e.chars, data[j]) < 0 {
			continue
		}
		if e.blank && j+1 < len(data) && strings.IndexByte(" \t\r\n", data[j+1]) < 0 {
			continue
		}
		if at >= 0 {
			return -1, true // two that may be
		}
		at = j
	}
	return at, true
}

// inBlockScalar reports whether the line of data starting at lineStart is
// text of a block scalar: the nearest line above it indented less ends
// with "|" or ">" (and their modifiers).
func inBlockScalar(data []byte, lineStart int) bool {
	line := data[lineStart:]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	indent := len(line) - len(bytes.TrimLeft(line, " "))
	for end := lineStart - 1; end > 0; {
		start := bytes.LastIndexByte(data[:end], '\n') + 1
		above := data[start:end]
		end = start - 1
		trimmed := bytes.TrimLeft(above, " ")
		if len(bytes.TrimSpace(trimmed)) == 0 || len(above)-len(trimmed) >= indent {
			continue
		}
		header := bytes.TrimRight(bytes.TrimSpace(above), "+-0123456789")
		return bytes.HasSuffix(header, []byte("|")) || bytes.HasSuffix(header, []byte(">"))
	}
	return false
}

// jsonSyntaxError turns an error of CUE's JSON decoder on data into a
// position and a message: the offending byte's, or, for data that ends
// inside a value, the position just past its last byte.
func jsonSyntaxError(name string, data []byte, err error) (diag.Pos, string) {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return offsetPos(name, data, len(data)), "JSON syntax error: unexpected end of input"
	}
	pos := diag.Pos{File: name}
	if ce, ok := err.(cueerrors.Error); ok {
		if p := ce.Position(); p.IsValid() {
			pos = toPos(p)
		}
	}
	var se *stdjson.SyntaxError
	if errors.As(err, &se) {
		return pos, "JSON syntax error: " + se.Error()
	}
	return pos, "JSON syntax error: " + strings.TrimPrefix(err.Error(), name+": ")
}

// syntaxError turns an error of the YAML decoder into a position and a
// message.
func syntaxError(name string, err error) (diag.Pos, string) {
	pos := diag.Pos{File: name}
	// The YAML decoder reports "name:LINE: msg" or "name: msg".
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, name+":"); ok {
		msg = strings.TrimSpace(rest)
		if i := strings.IndexByte(msg, ':'); i > 0 {
			if n, err := strconv.Atoi(msg[:i]); err == nil {
				pos.Line = n
				msg = strings.TrimSpace(msg[i+1:])
				// go.yaml.in/yaml/v3 reports the parser's errors ("did not
				// find expected ...") with the 0-based line of the
				// construct being parsed (its scanner errors are 1-based).
				if strings.HasPrefix(msg, "did not find expected") {
					pos.Line++
				}
			}
		}
		if pos.Line == 0 {
			// go.yaml.in/yaml/v3 leaves the line out when its 0-based
			// line is 0: the error is on the first line.
			pos.Line = 1
		}
	}
	return pos, "YAML syntax error: " + msg
}

// document handles one top-level YAML document or JSON value.
func (d *decoder) document(expr ast.Expr) {
	switch x := expr.(type) {
	case *ast.StructLit:
		d.object(x, nil)
	case *ast.BasicLit:
		if x.Kind == token.NULL {
			return // an empty document
		}
		msg := fmt.Sprintf("document is a %s, not a Kubernetes object (a mapping with apiVersion and kind)", litKind(x))
		if s, ok := stringLit(x); ok && kubectlTable(s) {
			msg += ": it looks like kubectl's table output; ask kubectl for -o yaml or -o json"
		}
		d.diags.Add(d.pos(x), "", "", msg)
	case *ast.BinaryExpr:
		// "*null | _": the decoder's value for an empty input.
		return
	case *ast.ListLit:
		d.diags.Add(d.pos(x), "", "", "document is a list, not a Kubernetes object (a mapping with apiVersion and kind)")
	default:
		d.diags.Add(d.pos(x), "", "", "document is not a Kubernetes object (a mapping with apiVersion and kind)")
	}
}

// kubectlWarning reports whether data starts with a warning kubectl
// printed on its standard error ("Warning: v1 Endpoints is deprecated in
// v1.33+; ..."), which "&> FILE" or "2>&1 |" put in front of a dump.
func kubectlWarning(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimPrefix(data, []byte("\uFEFF")), []byte("Warning: "))
}

// kubectlWarningHint is added to the syntax error of such an input.
const kubectlWarningHint = `; the input starts with a warning kubectl printed on its standard error ("Warning: ..."): redirect only its standard output (> FILE, not &> FILE or 2>&1)`

// dropKubectlWarning removes from a document the field that a warning
// kubectl printed on its standard error, in front of a YAML dump, reads
// as ("Warning: v1 Endpoints is deprecated ..." on line 1), with a warning.
func (d *decoder) dropKubectlWarning(s *ast.StructLit) {
	f := field(s, "Warning")
	if f == nil {
		return
	}
	at := d.pos(f)
	if _, ok := stringLit(f.Value); !ok || at.Line != 1 || at.Col != 1 {
		return
	}
	s.Elts = slices.DeleteFunc(s.Elts, func(el ast.Decl) bool { return el == ast.Decl(f) })
	d.diags.Warn(at, "", "", "ignored: line 1 is a warning kubectl printed on its standard error (\"Warning: ...\"); "+
		"redirect only its standard output (> FILE, not &> FILE or 2>&1)")
}

// kubectlTable reports whether s starts like the table kubectl get prints
// without -o: a header of at least three capitalised column names, NAME
// first (or NAMESPACE with -A). YAML folds the table's lines into one
// string.
func kubectlTable(s string) bool {
	cols := strings.Fields(s)
	if len(cols) < 3 || cols[0] != "NAME" && cols[0] != "NAMESPACE" {
		return false
	}
	return !slices.ContainsFunc(cols[:3], func(c string) bool { return strings.ToUpper(c) != c })
}

// pos is the position of n, or the file if n has none.
func (d *decoder) pos(n ast.Node) diag.Pos {
	if p := toPos(n.Pos()); p.File != "" {
		return p
	}
	return diag.Pos{File: d.file}
}

// listItems returns the items field of s when s is a List (kind, its own
// kind, ends in "List") whose items are a list, else nil.
func listItems(s *ast.StructLit, kind string) *ast.Field {
	if !strings.HasSuffix(kind, "List") {
		return nil
	}
	items := field(s, "items")
	if items == nil {
		return nil
	}
	if _, ok := items.Value.(*ast.ListLit); !ok {
		return nil
	}
	return items
}

// listKind is the typed list a List item comes from.
type listKind struct {
	kind       string // item kind, "" for a plain List
	apiVersion string
	list       string // the List's own kind
}

// newListKind returns the listKind of the items of a List of kind kind.
func newListKind(kind, apiVersion string) *listKind {
	lk := &listKind{apiVersion: apiVersion, list: kind}
	if kind != "List" {
		lk.kind = strings.TrimSuffix(kind, "List")
	}
	return lk
}

// object handles one object: a top-level document or a List item.
func (d *decoder) object(s *ast.StructLit, from *listKind) {
	pos := d.pos(s)
	if from == nil {
		d.dropKubectlWarning(s)
	}
	kind, kindOK := stringField(s, "kind")
	if err := checkSize(s, listItems(s, kind)); err != nil {
		d.diags.Add(toPosOr(err.pos, pos), "", "", err.msg)
		return
	}
	apiVersion, avOK := stringField(s, "apiVersion")
	if from != nil && from.kind != "" {
		if field(s, "kind") == nil {
			kind, kindOK = from.kind, true
		}
		if field(s, "apiVersion") == nil {
			apiVersion, avOK = from.apiVersion, true
		}
	}
	if !kindOK || !avOK {
		for _, f := range []struct {
			name string
			ok   bool
		}{{"apiVersion", avOK}, {"kind", kindOK}} {
			if f.ok {
				continue
			}
			if fl := field(s, f.name); fl != nil {
				d.diags.Add(d.pos(fl.Value), "", f.name, "invalid value: must be a string")
			} else {
				d.diags.Add(pos, "", f.name, "required value: every document needs apiVersion and kind")
			}
		}
		return
	}

	// kubectl's List, and typed lists (ServiceList...) whose items may
	// omit kind and apiVersion.
	if items := field(s, "items"); items != nil && strings.HasSuffix(kind, "List") {
		lk := newListKind(kind, apiVersion)
		list, ok := items.Value.(*ast.ListLit)
		if !ok {
			d.diags.Add(d.pos(items.Value), kind, "items", "invalid value: must be a list")
			return
		}
		for _, it := range list.Elts {
			is, ok := it.(*ast.StructLit)
			if !ok {
				d.diags.Add(d.pos(it), kind, "items", "invalid value: every item must be an object")
				continue
			}
			d.object(is, lk)
		}
		return
	}

	info := kinds[kind]
	strict := d.opts.Strict && info != nil && info.strict
	ns, hasNS := metaString(s, "namespace")
	name, _ := metaString(s, "name")
	if name == "" {
		name = "(no name)"
	}
	if key, ok := proxyConfigMaps[name]; ok && info == nil && kind == "ConfigMap" && apiVersion == "v1" && ns == "kube-system" {
		if conf := proxyConfigOf(s, key); conf != nil {
			d.proxyConfigMap(conf, name, key, pos)
			return
		}
	}
	if msg, unknown := unknownKind(apiVersion, kind); info == nil && unknown {
		at := pos
		if f := field(s, "kind"); f != nil {
			at = d.pos(f.Value)
		}
		d.diags.Add(at, "", "kind", msg)
		return
	}
	if info == nil {
		id := name
		if hasNS && !clusterScoped[kind] {
			id = ns + "/" + name
		}
		msg := fmt.Sprintf("skipping %s %s: kpc reads Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration and ServiceCIDR", kind, id)
		if kind == "Kustomization" && strings.HasPrefix(apiVersion, "kustomize.config.k8s.io/") {
			dir := filepath.Dir(d.file)
			if d.file == stdinName {
				dir = "DIR"
			}
			msg += "; the other files are read as they are: to compile what the kustomization makes, " +
				"run kubectl kustomize " + dir + " | kpc compile -f -"
		}
		d.diags.Skip(pos, kind, msg)
		if dups := topDuplicates(s); len(dups) > 0 {
			*d.diags = append(*d.diags, duplicateWarnings(s, dups, kind+" "+id, pos)...)
		}
		return
	}
	object := info.kind
	switch {
	case info.namespaced:
		if !hasNS || ns == "" {
			ns = "default"
		}
		object += " " + ns + "/" + name
	case info.named:
		object += " " + name
	}
	if err := checkBreadth(s); err != nil {
		d.diags.Add(toPosOr(err.pos, pos), object, err.path.String(), err.msg)
		return
	}
	if apiVersion != info.apiVersion && (info.older == "" || apiVersion != info.older) {
		at := pos
		if f := field(s, "apiVersion"); f != nil {
			at = d.pos(f.Value)
		}
		msg := fmt.Sprintf("unsupported value %q: %s must be %q", apiVersion, info.kind, info.apiVersion)
		if info.kind == "EndpointSlice" && apiVersion == "discovery.k8s.io/v1beta1" {
			msg += " (kubectl prints v1beta1 slices from clusters of 1.20 and older, and API servers since 1.25 no longer serve it: " +
				"dump the slices of a newer cluster, or convert them: topology's kubernetes.io/hostname is nodeName, " +
				"topology.kubernetes.io/zone is zone)"
		}
		d.diags.Add(at, object, "apiVersion", msg)
		return
	}
	// The strict mode's duplicate keys are errors of the document, which
	// is then invalid (the API server's strict field validation refuses
	// it); otherwise warnings of the file.
	var own diag.List
	var dups []dupField
	normalize(s, strict, object, nil, token.NoPos, pos, &own, &dups)
	if len(dups) > 0 {
		*d.diags = append(*d.diags, duplicateWarnings(s, dups, object, pos)...)
	}
	normalizeKind(info.kind, s)
	isStored := stored(s)
	if info.kind == "Service" {
		d.dropLegacy(s, isStored, object, &own)
	}
	d.rewriteLegacyIPs(info.kind, s, isStored, object, &own)
	d.emit(&document{pos: pos, expr: s, info: info, object: object, diags: own})
}

// clusterScoped holds the kinds of the Kubernetes API that have no
// namespace: the API server ignores one written in their metadata, and a
// skip warning names them without it.
var clusterScoped = map[string]bool{
	"Namespace": true, "PersistentVolume": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "StorageClass": true, "PriorityClass": true, "IngressClass": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "APIService": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true, "CSIDriver": true, "CSINode": true,
	"VolumeAttachment": true, "RuntimeClass": true, "CertificateSigningRequest": true, "FlowSchema": true,
	"PriorityLevelConfiguration": true, "IPAddress": true, "VolumeAttributesClass": true,
}

// proxyConfigMaps are the ConfigMaps of kube-system that hold kube-proxy's
// KubeProxyConfiguration, with the key of data that holds it: kubeadm's,
// and EKS's.
var proxyConfigMaps = map[string]string{
	"kube-proxy":        "config.conf",
	"kube-proxy-config": "config",
}

// proxyConfigOf returns the value of data[key] of a ConfigMap, where it
// keeps kube-proxy's KubeProxyConfiguration, or nil.
func proxyConfigOf(cm *ast.StructLit, key string) *ast.Field {
	data, ok := get(cm, "data").(*ast.StructLit)
	if !ok {
		return nil
	}
	f := field(data, key)
	if f == nil {
		return nil
	}
	if _, ok := stringLit(f.Value); !ok {
		return nil
	}
	return f
}

// proxyConfigMap reads the KubeProxyConfiguration of kube-system/name
// (kubectl get configmap -n kube-system kube-proxy -o yaml), from its
// data[key], conf. When the value is a literal block scalar
// (config.conf: |), as kubectl prints it, its positions are those of its
// lines in the file (blockPos); otherwise they are all the value's.
func (d *decoder) proxyConfigMap(conf *ast.Field, name, key string, cmPos diag.Pos) {
	text, _ := stringLit(conf.Value)
	at := conf.Value.Pos()
	// The text is YAML of its own, decoded here: its aliases are bounded
	// as a file's are (a mapping merged into itself would overflow the
	// decoder's stack).
	if _, msg, ok := checkAliases(d.file, []byte(text)); !ok {
		d.diags.Add(toPosOr(at, cmPos), "ConfigMap kube-system/"+name, "data["+key+"]", "invalid value: "+msg)
		return
	}
	expr, err := extract(yamlExtract(d.file, []byte(text)))
	inner, ok := expr.(*ast.StructLit)
	kind, _ := stringField(inner, "kind")
	if err != nil || !ok || kind != "KubeProxyConfiguration" {
		why := "not a YAML mapping of kind KubeProxyConfiguration"
		if err != nil {
			_, why = syntaxError(d.file, err)
		}
		d.diags.Add(toPosOr(at, cmPos), "ConfigMap kube-system/"+name, "data["+key+"]", "invalid value: "+why)
		return
	}
	// Every position is read before any is set: a node may share its
	// position with another (a field with its label).
	moved := d.blockPos(at)
	type placed struct {
		n   ast.Node
		pos token.Pos
	}
	var nodes []placed
	ast.Walk(inner, func(n ast.Node) bool {
		if n != nil {
			nodes = append(nodes, placed{n, n.Pos()})
		}
		return true
	}, nil)
	for _, p := range nodes {
		ast.SetPos(p.n, moved(p.pos))
	}
	d.object(inner, nil)
}

// blockPos returns the function that places a position of the text of
// the block scalar at `at` in the file: a literal block (| with its
// chomping and indentation indicators) holds its lines as they are but
// for their indentation, so line l, column c of the text is line l of the
// block, column c after its indentation. Positions it cannot place (no
// source, another kind of scalar, a line shorter than the indentation)
// become `at`.
func (d *decoder) blockPos(at token.Pos) func(token.Pos) token.Pos {
	whole := func(token.Pos) token.Pos { return at }
	off := at.Offset()
	if !at.IsValid() || at.File() == nil || d.src == nil || off < 0 || off >= len(d.src) || d.src[off] != '|' {
		return whole
	}
	nl := bytes.IndexByte(d.src[off:], '\n')
	if nl < 0 {
		return whole
	}
	body := d.src[off+nl+1:]
	indent := -1
	for rest := body; len(rest) > 0 && indent < 0; {
		line := lineOf(rest)
		if trimmed := bytes.TrimLeft(line, " "); len(bytes.TrimSpace(trimmed)) > 0 {
			indent = len(line) - len(trimmed)
		}
		rest = rest[min(len(line)+1, len(rest)):]
	}
	if indent <= 0 {
		return whole
	}
	start := off + nl + 1
	return func(p token.Pos) token.Pos {
		q := toPos(p)
		if q.Line < 1 || q.Col < 1 {
			return at
		}
		ls, ok := lineStart(body, q.Line)
		if !ok || len(lineOf(body[ls:])) < indent+q.Col-1 ||
			len(bytes.TrimLeft(body[ls:ls+indent], " ")) > 0 {
			return at
		}
		return at.File().Pos(start+ls+indent+q.Col-1, p.RelPos())
	}
}

// toPosOr converts p, or returns def if p is not a valid position.
func toPosOr(p token.Pos, def diag.Pos) diag.Pos {
	if q := toPos(p); q.File != "" {
		return q
	}
	return def
}

// stringField returns the value of s's field name if it is a string.
func stringField(s *ast.StructLit, name string) (string, bool) {
	f := field(s, name)
	if f == nil {
		return "", false
	}
	return stringLit(f.Value)
}

// metaString returns metadata.<name> if it is a string.
func metaString(s *ast.StructLit, name string) (string, bool) {
	m := field(s, "metadata")
	if m == nil {
		return "", false
	}
	ms, ok := m.Value.(*ast.StructLit)
	if !ok {
		return "", false
	}
	return stringField(ms, name)
}

// litKind names a literal's type.
func litKind(x *ast.BasicLit) string {
	switch x.Kind {
	case token.STRING:
		return "string"
	case token.INT, token.FLOAT:
		return "number"
	case token.TRUE, token.FALSE:
		return "boolean"
	}
	return "scalar"
}
