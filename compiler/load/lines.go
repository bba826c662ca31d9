package load

import (
	"bytes"
	"runtime"
	"slices"
	"sync"
	"weak"

	"cuelang.org/go/cue/token"

	"kpc/compiler/diag"
)

// lineTables holds the line tables of the files the fast parsers make
// (weak pointers to their token.Files as keys, *lineTable values). CUE's
// own table for a file is an int for every line, and at 50,000 Services
// the 474 MB of a kubectl JSON List has 13 million lines: the parsers'
// tables, half the size, are the only ones, and toPos reads them. A
// file's entry goes when the file is collected.
var lineTables sync.Map

// lineTable is where the lines of a file start, and for a dedented text
// (see text) how many spaces each line left out.
type lineTable struct {
	starts []int32
	indent []uint16 // nil, or one for each line
}

// setLines makes starts, the offsets at which each line of f starts (the
// first 0), the table toPos reads for f's positions, with indent, when not
// nil, the spaces each line of a dedented text left out. Neither may
// change afterwards.
func setLines(f *token.File, starts []int32, indent []uint16) {
	k := weak.Make(f)
	lineTables.Store(k, &lineTable{starts, indent})
	runtime.AddCleanup(f, func(k weak.Pointer[token.File]) { lineTables.Delete(k) }, k)
}

// linesOf returns f's table as setLines made it, or nil.
func linesOf(f *token.File) *lineTable {
	if f == nil {
		return nil
	}
	v, ok := lineTables.Load(weak.Make(f))
	if !ok {
		return nil
	}
	return v.(*lineTable)
}

// lineStarts returns the offsets at which each line of data starts.
func lineStarts(data []byte) []int32 {
	starts := make([]int32, 1, bytes.Count(data, []byte{'\n'})+1)
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return starts
		}
		off += i + 1
		starts = append(starts, int32(off))
	}
}

// toPos converts a CUE position: with the fast parsers' table of its
// file (setLines), else with CUE's. The end of a text that ends with a
// line break is the end of its last line, as in CUE's table (an empty
// value there, "?" at the end, is at that line's end).
func toPos(p token.Pos) diag.Pos {
	if !p.IsValid() {
		return diag.Pos{}
	}
	if t := linesOf(p.File()); t != nil {
		off := p.Offset()
		l, found := slices.BinarySearch(t.starts, int32(off))
		if !found {
			l-- // the line that starts before off
		} else if l > 0 && l == len(t.starts)-1 && off >= p.File().Size()-1 {
			l-- // the end of the text, after its last line break
		}
		col := off - int(t.starts[l]) + 1
		if t.indent != nil {
			col += int(t.indent[l])
		}
		return diag.Pos{File: p.Filename(), Line: l + 1, Col: col}
	}
	return diag.Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}
