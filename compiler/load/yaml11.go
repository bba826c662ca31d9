package load

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
	"cuelang.org/go/encoding/yaml"

	"kpc/compiler/diag"
)

// kubectl turns YAML into the JSON it sends to the API server with
// sigs.k8s.io/yaml, which reads YAML 1.1 (go.yaml.in/yaml/v2): an unquoted
// yes, no, on, off, y or n (in the spellings below) is a boolean there,
// where CUE's decoder, a YAML 1.2 reader, reads a string. kpc reads them
// as kubectl does, so that `publishNotReadyAddresses: yes` is true and a
// label value `enabled: yes` is refused as the API server refuses the
// boolean it gets. A quoted "yes" stays a string in both.

// yaml11Bool reports whether the plain scalar s is a boolean in YAML 1.1
// only, and which.
func yaml11Bool(s string) (value, ok bool) {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

// yamlExtract returns the Extract of CUE's YAML decoder on data, each
// document's YAML 1.1 booleans made booleans (asYAML11).
func yamlExtract(name string, data []byte) func() (ast.Expr, error) {
	next := yaml.NewDecoder(name, bytes.NewReader(data)).Extract
	return func() (ast.Expr, error) {
		e, err := next()
		if err == nil && e != nil {
			asYAML11(e, data)
		}
		return e, err
	}
}

// asYAML11 turns the strings and keys of e, a syntax tree that CUE's YAML
// decoder made from data, that are plain scalars YAML 1.1 reads as
// booleans into booleans (keys into "true" and "false", as kubectl labels
// a boolean key).
func asYAML11(e ast.Node, data []byte) {
	ast.Walk(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			var name string
			switch l := x.Label.(type) {
			case *ast.Ident:
				name = l.Name
			case *ast.BasicLit:
				name = unquoted(l)
			}
			if v, ok := yaml11Bool(name); ok && plainAt(data, x.Label.Pos(), name) {
				label := ast.NewStringLabel(boolText(v))
				ast.SetPos(label, x.Label.Pos())
				x.Label = label
			}
		case *ast.BasicLit:
			if s := unquoted(x); s != "" {
				if v, ok := yaml11Bool(s); ok && plainAt(data, x.ValuePos, s) {
					x.Kind, x.Value = token.FALSE, "false"
					if v {
						x.Kind, x.Value = token.TRUE, "true"
					}
				}
			}
		}
		return true
	}, nil)
}

// unquoted returns the text of a short string literal as CUE's decoder
// quotes it ("yes"), or "" for any other literal.
func unquoted(x *ast.BasicLit) string {
	v := x.Value
	if x.Kind != token.STRING || len(v) < 3 || len(v) > 5 || v[0] != '"' || v[len(v)-1] != '"' {
		return ""
	}
	return v[1 : len(v)-1]
}

func boolText(v bool) string {
	if v {
		return "true"
	}
	return "false"
}

// plainAt reports whether the scalar that CUE's decoder placed at pos in
// data is written plain, as word, after its anchor if it has one: a quoted
// one starts with its quote, a block one with | or >, a tagged one with
// its tag. The decoder counts its columns in characters, so the byte offset
// is found from the line's start. A scalar the decoder gives no position
// (after a flow collection with a quote in a plain scalar, which misleads
// its search for the closing bracket) is taken for a string.
func plainAt(data []byte, pos token.Pos, word string) bool {
	if !pos.IsValid() {
		return false
	}
	col := pos.Column()
	start := pos.Offset() - (col - 1)
	if start < 0 || col < 1 {
		return false
	}
	i, ok := columnAt(data, start, col)
	if !ok {
		return false
	}
	if i < len(data) && data[i] == '&' {
		// An anchor, then the scalar after blanks and line breaks.
		for i < len(data) && data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r' {
			i++
		}
		for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
			i++
		}
	}
	return i <= len(data) && bytes.HasPrefix(data[i:], []byte(word))
}

// hintYAML11 adds to each diagnostic about a value that the file spells
// otherwise than kubectl sends it what kubectl makes of the spelling: a
// boolean that is a YAML 1.1 word (an unquoted yes where a string is
// wanted, say), and a whole number written as a float (a label value 1.0,
// which kubectl sends as 1; see wholeNumber). The files are read again,
// and only for such diagnostics; standard input is not.
func hintYAML11(diags diag.List) {
	var files map[string][]byte
	for _, d := range diags {
		value, _, found := strings.Cut(strings.TrimPrefix(d.Msg, "invalid value "), ": ")
		_, numErr := strconv.ParseInt(value, 10, 64)
		boolean := value == "true" || value == "false"
		if !strings.HasPrefix(d.Msg, "invalid value ") || !found || !boolean && numErr != nil ||
			d.Pos.File == "" || d.Pos.File == stdinName || d.Pos.Line < 1 || d.Pos.Col < 1 {
			continue
		}
		if files == nil {
			files = map[string][]byte{}
		}
		data, ok := files[d.Pos.File]
		if !ok {
			if b, err := readFile(d.Pos.File); err == nil {
				data, _, _, _ = fromUTF16(d.Pos.File, b)
			}
			files[d.Pos.File] = data
		}
		word := wordAt(data, d.Pos.Line, d.Pos.Col)
		quote := ""
		if strings.Contains(d.Msg, "must be a string") {
			quote = fmt.Sprintf(": write %q for a string", word)
		}
		if _, ok := yaml11Bool(word); ok && boolean {
			d.Msg += fmt.Sprintf(" (kubectl reads YAML 1.1, where an unquoted %s is a boolean%s)", word, quote)
		} else if f, err := strconv.ParseFloat(strings.TrimPrefix(word, "+"), 64); err == nil && !boolean && word != value &&
			strconv.FormatFloat(f, 'f', -1, 64) == value {
			d.Msg += fmt.Sprintf(" (kubectl sends the number %s as %s%s)", word, value, quote)
		}
	}
}

// wordAt returns the text at line:col (from 1, col in characters) of data
// up to a blank, a line break, a comma, a closing bracket or a comment.
func wordAt(data []byte, line, col int) string {
	start, ok := lineStart(data, line)
	if !ok {
		return ""
	}
	at, ok := columnAt(data, start, col)
	if !ok {
		return ""
	}
	end := at
	for end < len(data) && !bytes.ContainsRune([]byte(" \t\r\n,]}#"), rune(data[end])) {
		end++
	}
	return string(data[at:end])
}
