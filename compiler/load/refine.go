package load

import (
	"bytes"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"

	"kpc/compiler/diag"
)

// Refine moves diagnostics that are positioned at the start of an object
// and name a field path, as the compiler's and CrossCheck's are (they work
// on decoded objects, which keep only where each object starts), to the
// field's own line and column. It reads each such object's document again
// from its YAML file; a diagnostic of standard input or of a JSON file, or
// whose field is not in the document (a defaulted one), keeps its
// position, as do those beyond the first maxRefined documents. It changes
// the diagnostics in place and returns them.
func Refine(diags diag.List) diag.List { return RefineFrom(diags, nil) }

// RefineFrom is Refine with the contents of some files given by name,
// which it reads from there instead of the file system: kpc apply --watch
// has the file it just read in memory (a diagnostic of a change to one
// file of 45 MB had it read again). The contents must be those the
// diagnostics were made from.
func RefineFrom(diags diag.List, src map[string][]byte) diag.List {
	type docKey struct {
		file      string
		line, col int
	}
	files := map[string]*refineFile{}
	docs := map[docKey]*ast.StructLit{}
	for _, d := range diags {
		if d.Path == "" || d.Pos.File == "" || d.Pos.File == stdinName || d.Pos.Line <= 0 || d.Pos.Col <= 0 {
			continue
		}
		f, seen := files[d.Pos.File]
		if !seen {
			f = newRefineFile(d.Pos.File, src)
			files[d.Pos.File] = f
		}
		if f == nil {
			continue
		}
		k := docKey{d.Pos.File, d.Pos.Line, d.Pos.Col}
		root, seen := docs[k]
		if !seen {
			if len(docs) >= maxRefined {
				continue
			}
			root = f.documentAt(d.Pos.Line, d.Pos.Col)
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
			d.Pos.Line, d.Pos.Col = d.Pos.Line-1+q.Line, q.Col
		}
	}
	return diags
}

// maxRefined bounds the documents Refine decodes again: each takes the
// general YAML decoder about a millisecond.
const maxRefined = 1000

// refineFile is a YAML input file as the loader reads it, with the offsets
// of its lines.
type refineFile struct {
	name string
	data []byte
	// line and off are the last line found by lineStart and where it
	// starts (line 1 at 0).
	line, off int
}

// lineStart returns the offset at which line l (from 1) of f starts, -1
// past its end. It counts on from the last line it found, or from the
// start for an earlier line: the diagnostics come sorted, and a table of
// every line of a large file (1.8 million at 50,000 Services) took longer
// to build than the rest of a refinement.
func (f *refineFile) lineStart(l int) int {
	if l < f.line {
		f.line, f.off = 1, 0
	}
	for f.line < l {
		nl := bytes.IndexByte(f.data[f.off:], '\n')
		if nl < 0 {
			return -1
		}
		f.off += nl + 1
		f.line++
	}
	return f.off
}

// newRefineFile reads a YAML input file, or returns nil (a JSON file, or
// one that cannot be read).
func newRefineFile(name string, src map[string][]byte) *refineFile {
	data, ok := src[name]
	if !ok {
		var err error
		if data, err = readFile(name); err != nil {
			return nil
		}
	}
	data, _, _, ok = fromUTF16(name, data)
	if !ok || isJSON(name, data) {
		return nil
	}
	return &refineFile{name: name, data: crlfToLF(data), line: 1}
}

// documentAt decodes the object that starts at line:col of data: a
// document (col 1), which ends at the next document marker, or a List item
// ("- " two columns before col), which ends at the next line indented less
// than col-1; its positions' lines count from line. The item's dash is
// blanked. It returns nil when the text does not decode to a mapping.
func (f *refineFile) documentAt(line, col int) *ast.StructLit {
	start := f.lineStart(line)
	if start < 0 {
		return nil
	}
	data := f.data
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
	// Whole lines keep the decoder's columns the file's; its lines are
	// line-1 less.
	doc := bytes.Clone(data[start:end])
	if col > 2 && col-3 < len(doc) && doc[col-3] == '-' {
		doc[col-3] = ' '
	}
	expr, err := extract(yamlExtract(f.name, doc))
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
