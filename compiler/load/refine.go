package load

import (
	"bytes"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/encoding/yaml"

	"kpc/compiler/diag"
)

// Refine moves diagnostics that are positioned at the start of an object
// and name a field path, as the compiler's and CrossCheck's are (they work
// on decoded objects, which keep only where each object starts), to the
// field's own line and column. It reads each such object's document again
// from its YAML file; a diagnostic of standard input or of a JSON file, or
// whose field is not in the document (a defaulted one), keeps its
// position. It changes the diagnostics in place and returns them.
func Refine(diags diag.List) diag.List {
	type docKey struct {
		file      string
		line, col int
	}
	files := map[string][]byte{}
	docs := map[docKey]*ast.StructLit{}
	for _, d := range diags {
		if d.Path == "" || d.Pos.File == "" || d.Pos.File == stdinName || d.Pos.Line <= 0 || d.Pos.Col <= 0 {
			continue
		}
		data, seen := files[d.Pos.File]
		if !seen {
			data = refineText(d.Pos.File)
			files[d.Pos.File] = data
		}
		if data == nil {
			continue
		}
		k := docKey{d.Pos.File, d.Pos.Line, d.Pos.Col}
		root, seen := docs[k]
		if !seen {
			root = documentAt(d.Pos.File, data, d.Pos.Line, d.Pos.Col)
			docs[k] = root
		}
		if root == nil {
			continue
		}
		p, ok := parseFieldPath(d.Path)
		if !ok {
			continue
		}
		v, at := locate(root, p)
		if v == nil && d.Path == "spec.clusterIPs[0]" {
			// The loader fills clusterIPs from clusterIP.
			v, at = locate(root, fpath{"spec", "clusterIP"})
		}
		if q := toPos(at); v != nil && q.Line > 0 {
			d.Pos.Line, d.Pos.Col = q.Line, q.Col
		}
	}
	return diags
}

// refineText returns the text of a YAML input file as the loader reads it,
// or nil (a JSON file, or one that cannot be read).
func refineText(name string) []byte {
	data, err := readFile(name)
	if err != nil {
		return nil
	}
	data, _, _, ok := fromUTF16(name, data)
	if !ok || isJSON(name, data) {
		return nil
	}
	return crlfToLF(data)
}

// documentAt decodes the object that starts at line:col of data: a
// document (col 1), which ends at the next document marker, or a List item
// ("- " two columns before col), which ends at the next line indented less
// than col-1. The item's dash is blanked, so that positions stay the
// file's. It returns nil when the text does not decode to a mapping.
func documentAt(name string, data []byte, line, col int) *ast.StructLit {
	start := 0
	for l := 1; l < line; l++ {
		nl := bytes.IndexByte(data[start:], '\n')
		if nl < 0 {
			return nil
		}
		start += nl + 1
	}
	end := start
	for first := true; end < len(data); first = false {
		lineEnd := len(data)
		if nl := bytes.IndexByte(data[end:], '\n'); nl >= 0 {
			lineEnd = end + nl + 1
		}
		text := data[end:lineEnd]
		if !first {
			if col == 1 && (bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("..."))) {
				break
			}
			trimmed := bytes.TrimLeft(text, " ")
			blank := len(bytes.TrimSpace(trimmed)) == 0 || trimmed[0] == '#'
			if col > 1 && !blank && len(text)-len(trimmed) < col-1 {
				break
			}
		}
		end = lineEnd
	}
	// Whole lines, with the lines before blank, keep the decoder's
	// positions the file's.
	buf := make([]byte, 0, line-1+end-start)
	buf = append(buf, bytes.Repeat([]byte("\n"), line-1)...)
	doc := append(buf, data[start:end]...)
	if col > 2 {
		dash := line - 1 + col - 3
		if dash < len(doc) && doc[dash] == '-' {
			doc[dash] = ' '
		}
	}
	expr, err := extract(yaml.NewDecoder(name, bytes.NewReader(doc)).Extract)
	if err != nil {
		return nil
	}
	s, _ := expr.(*ast.StructLit)
	return s
}

// parseFieldPath parses a path as fpath.String spells it.
func parseFieldPath(s string) (fpath, bool) {
	var p fpath
	for s != "" {
		switch {
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, false
			}
			in := s[1:end]
			if i, err := strconv.Atoi(in); err == nil {
				p = append(p, i)
			} else {
				p = append(p, in)
			}
			s = s[end+1:]
		case s[0] == '.':
			s = s[1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			name := s[:end]
			if len(p) == 1 && p[0] == "spec" && name == "LoadBalancerSourceRanges" {
				name = "loadBalancerSourceRanges"
			}
			p = append(p, name)
			s = s[end:]
		}
	}
	return p, len(p) > 0
}
