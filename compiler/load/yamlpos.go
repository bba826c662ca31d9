package load

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"kpc/compiler/diag"
)

// blockParserErrors are the YAML parser's errors in block style that name
// the line of the construct being parsed (a mapping, a sequence, a key)
// rather than the line it failed at.
var blockParserErrors = []string{
	"did not find expected key",
	"did not find expected '-' indicator",
	"could not find expected ':'",
}

// Bounds of parserErrorAt's search: the text it parses again at a time
// and in all, and the lines it tries.
const (
	maxReparsed      = 1 << 20
	maxReparsedTotal = 16 << 20
	maxLinesOver     = 1000
)

// parserErrorAt finds where the YAML parser failed with msg, one of
// blockParserErrors, that it reported at line (from 1): the first line
// from the reported one on at which the text parsed from the nearest
// line above it that is not indented fails with the same error. It
// returns the offset of the first character of that line, or -1. The
// text is parsed again with go.yaml.in/yaml/v3, the parser under CUE's
// decoder. A prefix that ends inside a flow collection or a quoted scalar
// fails with another error, and is passed over.
func parserErrorAt(data []byte, line int, msg string) int {
	i := -1
	for j, e := range blockParserErrors {
		if strings.HasSuffix(msg, e) {
			i = j
		}
	}
	if i < 0 || line < 1 || bytes.ContainsAny(data, "\u0085\u2028\u2029") {
		return -1
	}
	want := blockParserErrors[i]
	at, ok := lineStart(data, line) // where the reported line starts
	if !ok {
		return -1
	}
	// The text is parsed from the nearest line above the reported one
	// that begins with neither a blank, a comment nor a document marker
	// (the reported line may be the one that fails, unindented, as a
	// template's "{{ ... }}" line is), or from the start.
	from := 0
	for end := at - 1; end > 0; {
		start := bytes.LastIndexByte(data[:end], '\n') + 1
		if at-start > maxReparsed {
			return -1
		}
		b := data[start:end]
		if len(b) > 0 && !bytes.ContainsRune([]byte(" \t\r#"), rune(b[0])) && !isMarkerLine(b) && !isEndMarker(b) {
			from = start
			break
		}
		end = start - 1
	}
	total := 0
	for n := 0; n < maxLinesOver && at < len(data) && at-from <= maxReparsed; n++ {
		end := len(data)
		if nl := bytes.IndexByte(data[at:], '\n'); nl >= 0 {
			end = at + nl + 1
		}
		if total += end - from; total > maxReparsedTotal {
			return -1
		}
		if err := parseAll(data[from:end]); err != nil && strings.HasSuffix(err.Error(), want) {
			return at + len(lineOf(data[at:])) - len(bytes.TrimLeft(lineOf(data[at:]), " "))
		}
		at = end
	}
	return -1
}

// mapKeyAt finds the key of CUE's "invalid map key" error on line (from
// 1): the first '{' of the line for a mapping used as a key (as a
// template's "{{ .Values.x }}" is), the first '[' for a sequence. It
// returns its offset, or -1.
func mapKeyAt(data []byte, line int, msg string) int {
	var open byte
	switch {
	case strings.HasSuffix(msg, "invalid map key: !!map"):
		open = '{'
	case strings.HasSuffix(msg, "invalid map key: !!seq"):
		open = '['
	default:
		return -1
	}
	at, ok := lineStart(data, line)
	if !ok {
		return -1
	}
	if i := bytes.IndexByte(lineOf(data[at:]), open); i >= 0 {
		return at + i
	}
	return -1
}

// flowOpenAt finds the collection of the YAML parser's error in flow style
// on line (from 1), "did not find expected ',' or '}'" (or ']'), which
// names the line where the collection starts: the last '{' (or '[') of the
// line that the line does not close, outside quotes and comments. It
// returns its offset, or -1.
func flowOpenAt(data []byte, line int, msg string) int {
	var open, close byte
	switch {
	case strings.HasSuffix(msg, "did not find expected ',' or '}'"):
		open, close = '{', '}'
	case strings.HasSuffix(msg, "did not find expected ',' or ']'"):
		open, close = '[', ']'
	default:
		return -1
	}
	at, ok := lineStart(data, line)
	if !ok || bytes.ContainsAny(data, "\u0085\u2028\u2029") {
		return -1
	}
	l := lineOf(data[at:])
	var opened []int // the offsets in l of the brackets of the kind still open
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case c == '"' || c == '\'':
			for i++; i < len(l) && l[i] != c; i++ {
				if c == '"' && l[i] == '\\' {
					i++
				}
			}
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			i = len(l)
		case c == open:
			opened = append(opened, i)
		case c == close && len(opened) > 0:
			opened = opened[:len(opened)-1]
		}
	}
	if len(opened) == 0 {
		return -1
	}
	return at + opened[len(opened)-1]
}

// lineStart returns the offset at which line (from 1; 0 counts as 1) of
// data starts, and whether data has that line.
func lineStart(data []byte, line int) (int, bool) {
	at := 0
	for l := 1; l < line; l++ {
		nl := bytes.IndexByte(data[at:], '\n')
		if nl < 0 {
			return 0, false
		}
		at += nl + 1
	}
	return at, true
}

// columnAt returns the offset of column col (from 1, in characters, as
// CUE's decoder counts them) of the line starting at start, and whether
// the line has that column.
func columnAt(data []byte, start, col int) (int, bool) {
	at := start
	for k := 1; k < col; k++ {
		if at >= len(data) || data[at] == '\n' {
			return 0, false
		}
		_, w := utf8.DecodeRune(data[at:])
		at += w
	}
	return at, true
}

// lineOf returns b up to its first line break.
func lineOf(b []byte) []byte {
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
		return b[:nl]
	}
	return b
}

// parseAll parses every document of text, returning the first error.
func parseAll(text []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// templateHint is added to a YAML syntax error near a line with "{{":
// the text of a Helm chart or another template, not a manifest.
const templateHint = `; the text around it holds "{{": is it a template (a Helm chart's, say)? Render it first (helm template, say)`

// hintTemplates adds to each error about a value (invalid or unsupported)
// that holds "{{" (a Helm chart's "{{ .Release.Name }}", quoted, is valid
// YAML) that the file may be an unrendered template, and to one about a
// value that holds a shell variable ("${NAMESPACE}", "$IP/32") that the
// file may be one for envsubst.
func hintTemplates(diags diag.List) {
	for _, d := range diags {
		if d.Severity != diag.SevError {
			continue
		}
		rest, ok := strings.CutPrefix(d.Msg, "invalid value ")
		if !ok {
			rest, ok = strings.CutPrefix(d.Msg, "unsupported value ")
		}
		q, err := strconv.QuotedPrefix(rest)
		if !ok || err != nil {
			continue
		}
		switch v, _ := strconv.Unquote(q); {
		case strings.Contains(v, "{{"):
			d.Msg += valueTemplateHint
		case strings.Contains(v, "%{"):
			d.Msg += valuePercentHint
		case shellVariable.MatchString(v):
			d.Msg += valueVariableHint
		}
	}
}

// valueTemplateHint is added to an error about a value that holds "{{".
const valueTemplateHint = ` (the value holds "{{": is the file a template, a Helm chart's, say? Render it first: helm template, say)`

// shellVariable matches a value that holds a shell variable, as envsubst
// replaces them: "$NAME" or "${NAME}".
var shellVariable = regexp.MustCompile(`\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`)

// valueVariableHint is added to an error about a value that holds a shell
// variable.
const valueVariableHint = ` (the value holds a shell variable: is the file a template for envsubst, say? Substitute the variables first)`

// percentTemplateHint is added to a YAML syntax error near a line with
// "%{": the text of a template with k3s's %{VAR}% placeholders, say.
const percentTemplateHint = `; the text around it holds "%{": is it a template (k3s's %{VAR}%, say)? Substitute its variables first`

// valuePercentHint is added to an error about a value that holds "%{".
const valuePercentHint = ` (the value holds "%{": is the file a template, k3s's say? Substitute its variables first)`

// nearTemplate reports whether a line within two of line (from 1) of data
// holds mark ("{{", "%{").
func nearTemplate(data []byte, line int, mark string) bool {
	if !bytes.Contains(data, []byte(mark)) {
		return false
	}
	l, off := 1, 0
	for off <= len(data) && l <= line+2 {
		b := lineOf(data[off:])
		if l >= line-2 && bytes.Contains(b, []byte(mark)) {
			return true
		}
		off += len(b) + 1
		l++
	}
	return false
}
