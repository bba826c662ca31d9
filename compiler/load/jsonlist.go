package load

import (
	"bytes"
	"io"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/encoding/json"

	"kpc/compiler/diag"
)

// kubectl prints a List in JSON (kubectl get -o json) with four spaces of
// indentation: the items are objects whose braces are on lines of their
// own, eight spaces in.
const (
	jsonItemsLine = `    "items": [`
	jsonItemOpen  = `        {`
	jsonItemClose = `        }`
)

// jsonListLayout reports whether p's input, JSON, is one List as kubectl
// prints it, and returns the lines of its items and their kind. The text
// without the items must be an object that listWrapper takes, with an
// empty "items" list, and every item runs from an opening brace line to
// the next closing brace line, followed by a comma before the next item.
// An item that is not what its lines say fails to decode alone, and the
// caller then decodes the whole input.
func (p *yparser) jsonListLayout() (listLayout, bool) {
	var l listLayout
	if p.line != 0 || p.end < 2 || !p.isLine(0, "{") {
		return l, false // the List starts the file, as the decoder's positions assume
	}
	at := -1
	for i := p.line; i < p.end; i++ {
		if p.isLine(i, jsonItemsLine) {
			at = i
			break
		}
	}
	if at < 0 || at+1 >= p.end || !p.isLine(at+1, jsonItemOpen) {
		return l, false
	}
	// The items: each closing line ends with a comma but the last's.
	first, end := at+1, -1
	for i := first + 1; i < p.end && end < 0; i++ {
		rest, ok := p.cutLine(i, jsonItemClose)
		if !ok {
			continue
		}
		switch string(rest) {
		case ",":
			if i+1 >= p.end || !p.isLine(i+1, jsonItemOpen) {
				return l, false
			}
			i++
		case "":
			end = i + 1
		default:
			return l, false
		}
	}
	if end < 0 {
		return l, false
	}
	// The List without its items.
	var wrapper bytes.Buffer
	wrapper.Write(p.data[:p.start(first)])
	wrapper.Write(p.data[p.lineEnd(end-1):])
	dec := json.NewDecoder(nil, p.file.Name(), &wrapper)
	e, err := dec.Extract()
	s, ok := e.(*ast.StructLit)
	if err != nil || !ok {
		return l, false
	}
	if _, err := dec.Extract(); err != io.EOF {
		return l, false // a second value
	}
	kind, ok := listWrapper(s, true)
	if !ok {
		return l, false
	}
	l.items = [2]int{first, end}
	l.kind = kind
	return l, true
}

// isJSONItemLine reports whether line l of a JSON List's items starts an
// item.
func isJSONItemLine(p *yparser, l int) bool { return p.isLine(l, jsonItemOpen) }

// decodeJSONList decodes a large JSON file, valid text (see checkText),
// with fastDecodeJSONList, and reports whether it did: if not, nothing was
// passed on.
func decodeJSONList(name string, data []byte, opts Options, out *sink) bool {
	return decodeJSONText(name, text{data: data}, opts, out)
}

// decodeDedented decodes a dedented text (see text) of a file or of
// standard input: with decodeJSONText when it takes the text, else as
// decodeData (or for standard input decodeStdin) decodes the input as it
// is, without trying decodeJSONList again.
func decodeDedented(name string, t text, opts Options, diags *diag.List, out *sink) {
	// The text starts with '{': it is not UTF-16 (fromUTF16). crlfToLF
	// rewrites the bytes in place: only what it returns is read after.
	t.data = crlfToLF(t.data)
	_, _, valid := checkText(name, t.data) // as valid as the input: only spaces are left out
	if valid && decodeJSONText(name, t, opts, out) {
		return
	}
	plain := t.plain()
	if !valid {
		pos, msg, _ := checkText(name, plain)
		diags.Add(pos, "", "", msg)
		return
	}
	decodeText(name, plain, name != stdinName || isJSON(name, plain), false, opts, diags, out)
}

// decodeJSONText is decodeJSONList for a text that may be dedented.
func decodeJSONText(name string, t text, opts Options, out *sink) bool {
	if !fastYAMLEnabled || len(t.data) < 2*chunkBytes || out.v == nil || t.data[0] != '{' {
		return false
	}
	layout, ok := fastDecodeJSONList(name, t, opts, out)
	if layout && !ok {
		wholeFallbacks.Add(1)
	}
	return ok
}

// fastDecodeJSONList decodes a file that is one large List in kubectl's
// JSON layout (see jsonListLayout): its items are decoded alone, in parts,
// by the validation workers. It reports whether the file is in that
// layout, and whether it decoded it: if any item fails to decode, every
// part is discarded, and the general decoder then decodes the whole file.
func fastDecodeJSONList(name string, t text, opts Options, out *sink) (layout, ok bool) {
	p := newTextParser(name, t)
	l, ok := p.jsonListLayout()
	if !p.ok || !ok {
		return false, false
	}
	cs := runChunks(p, p.itemChunks(l.items, chunkBytes, isJSONItemLine), name, opts, out, l.kind, true)
	for _, c := range cs {
		if !c.ok {
			for _, c := range cs {
				c.discard = true
			}
			return true, false
		}
	}
	return true, true
}

// runJSONItems decodes the chunk's JSON List items, each alone with
// fastJSON or else CUE's JSON decoder, and passes them on as the decoder
// passes the items of a List document. An item's text starts at its
// opening brace, so that the decoder's positions are offsets from it;
// they are moved to the file's (the decoder of the whole file makes
// positions from the start of the List, the file's first byte). It
// reports whether every item decoded.
func (c *chunk) runJSONItems(d *decoder, ws *workspace) bool {
	p := c.p
	if ws.strings == nil {
		ws.strings = map[string]string{}
	}
	jp := &jparser{file: p.file, known: ws.strings, nodes: p.nodes}
	for a := p.line; a < p.end; {
		b := a + 1
		for b < p.end && !isJSONItemLine(p, b) {
			b++
		}
		from := p.lineEnd(a) - 1 // the brace that ends the line
		to := p.lineEnd(b - 1)
		if data := p.data[to-1 : to]; string(data) == "," {
			to--
		}
		e, ok := jp.parse(p.data, from, to)
		if !ok {
			if e, ok = cueJSON(p, from, to); !ok {
				return false
			}
		}
		c.items(d, []ast.Expr{e})
		a = b
	}
	return true
}

// cueJSON decodes the JSON value in p's input at [from, to) with CUE's
// decoder, and moves its positions to the file's.
func cueJSON(p *yparser, from, to int) (ast.Expr, bool) {
	dec := json.NewDecoder(nil, p.file.Name(), bytes.NewReader(p.data[from:to]))
	e, err := dec.Extract()
	if err != nil {
		return nil, false
	}
	if _, err := dec.Extract(); err != io.EOF {
		return nil, false
	}
	movePositions(e, p.file, from)
	return e, true
}
