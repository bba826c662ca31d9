//go:build linux

package main

import (
	"bytes"
	"hash/maphash"
	"math"
	"path/filepath"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/load"
)

// The watcher reads a changed file again, but loads only the YAML
// documents of it that changed: a file of 50,000 Services costs the
// loading of one document, not of 100,000. It keeps, per file, the span
// of each document (docSpan); a new version is split the same way, the
// documents equal at the start and at the end of both versions are kept
// (those at the end moved by as many lines as the changed middle grew),
// and the middle is loaded alone, behind as many empty lines as precede
// it, so that its positions are the file's own.

// docSpan is one YAML document of a file: where it starts (byte offset
// and 1-based line) and a hash of its bytes.
type docSpan struct {
	off, line int
	sum       uint64
}

// docSeed hashes documents; sums are compared within one process only.
var docSeed = maphash.MakeSeed()

// splitDocs splits a YAML stream at its "---" lines. It reports false for
// what it does not split (JSON, a byte order mark, carriage returns, YAML
// directives or "..." document ends): such a file is loaded whole.
func splitDocs(name string, data []byte) ([]docSpan, bool) {
	if strings.EqualFold(filepath.Ext(name), ".json") || bytes.IndexByte(data, '\r') >= 0 {
		return nil, false
	}
	if t := bytes.TrimLeft(data, " \t\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] >= 0x80) {
		return nil, false // JSON, or a byte order mark
	}
	for _, bad := range []string{"%", "..."} { // a directive, a document end
		if bytes.HasPrefix(data, []byte(bad)) || bytes.Contains(data, []byte("\n"+bad)) {
			return nil, false
		}
	}
	spans := []docSpan{{off: 0, line: 1}}
	line, last := 1, 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("\n---"))
		if j < 0 {
			break
		}
		p := i + j + 1
		if p+3 == len(data) || data[p+3] == '\n' || data[p+3] == ' ' || data[p+3] == '\t' {
			line += bytes.Count(data[last:p], []byte{'\n'})
			last = p
			spans = append(spans, docSpan{off: p, line: line})
		}
		i = p
	}
	for i := range spans {
		end := len(data)
		if i+1 < len(spans) {
			end = spans[i+1].off
		}
		spans[i].sum = maphash.Bytes(docSeed, data[spans[i].off:end])
	}
	return spans, true
}

// docChange is the part of a file that changed between two splits: the
// documents [lo, hiOld) of the old version became [lo, hiNew) of the new.
type docChange struct {
	lo, hiOld, hiNew int
}

// diffDocs finds the documents that changed: the longest equal prefix and
// suffix of the two splits are kept.
func diffDocs(old, now []docSpan) docChange {
	p := 0
	for p < len(old) && p < len(now) && old[p].sum == now[p].sum {
		p++
	}
	q := 0
	for q < len(old)-p && q < len(now)-p && old[len(old)-1-q].sum == now[len(now)-1-q].sum {
		q++
	}
	return docChange{lo: p, hiOld: len(old) - q, hiNew: len(now) - q}
}

// lineOf is the first line of document i of a split, or for i =
// len(spans) a line after every line.
func lineOf(spans []docSpan, i int) int {
	if i < len(spans) {
		return spans[i].line
	}
	return math.MaxInt
}

// middleText is data's documents [lo, hi) behind lo's line count of empty
// lines, so that they are loaded at their own lines.
func middleText(data []byte, spans []docSpan, lo, hi int) []byte {
	from, to := len(data), len(data)
	if lo < len(spans) {
		from = spans[lo].off
	}
	if hi < len(spans) {
		to = spans[hi].off
	}
	skip := 0
	if lo < len(spans) {
		skip = spans[lo].line - 1
	}
	out := make([]byte, skip, skip+to-from)
	for i := range out {
		out[i] = '\n'
	}
	return append(out, data[from:to]...)
}

// spliceDocs makes a file's new Input from its old one and the load of
// its changed middle: the old documents before line lo stay, those from
// line hi on move by delta lines (as copies), and mid's come between. It
// reports false when the old documents are not at known lines in order.
// dropped receives the keys of the old middle's documents, moved those of
// the documents that moved.
func spliceDocs(old, mid *api.Input, lo, hi, delta int, dropped, moved map[string]bool) (*api.Input, bool) {
	if old == nil {
		old = &api.Input{}
	}
	in := &api.Input{}
	ok := true
	in.Services, ok = spliceKind(old.Services, mid.Services, lo, hi, delta, ok, func(s *api.Service) *diag.Pos { return &s.Pos },
		func(s *api.Service) string { return s.ID() }, dropped, moved)
	in.EndpointSlices, ok = spliceKind(old.EndpointSlices, mid.EndpointSlices, lo, hi, delta, ok, func(s *api.EndpointSlice) *diag.Pos { return &s.Pos },
		sliceKey, dropped, moved)
	in.Endpoints, ok = spliceKind(old.Endpoints, mid.Endpoints, lo, hi, delta, ok, func(e *api.Endpoints) *diag.Pos { return &e.Pos },
		func(e *api.Endpoints) string { return e.ID() }, dropped, moved)
	in.Nodes, ok = spliceKind(old.Nodes, mid.Nodes, lo, hi, delta, ok, func(n *api.Node) *diag.Pos { return &n.Pos }, nil, nil, nil)
	in.ProxyConfigs, ok = spliceKind(old.ProxyConfigs, mid.ProxyConfigs, lo, hi, delta, ok,
		func(c *api.KubeProxyConfiguration) *diag.Pos { return &c.Pos }, nil, nil, nil)
	in.ServiceCIDRs, ok = spliceKind(old.ServiceCIDRs, mid.ServiceCIDRs, lo, hi, delta, ok,
		func(c *api.ServiceCIDR) *diag.Pos { return &c.Pos }, nil, nil, nil)
	return in, ok
}

// spliceKind is spliceDocs for one kind of document, in file order. The
// old documents must be at known lines, in order.
func spliceKind[T any](old, mid []*T, lo, hi, delta int, ok bool, pos func(*T) *diag.Pos, key func(*T) string, dropped, moved map[string]bool) ([]*T, bool) {
	out := make([]*T, 0, len(old)+len(mid))
	last := 1
	i := 0
	for ; i < len(old) && pos(old[i]).Line < lo; i++ {
		ok = ok && pos(old[i]).Line >= last
		last = pos(old[i]).Line
		out = append(out, old[i])
	}
	for ; i < len(old) && pos(old[i]).Line < hi; i++ {
		ok = ok && pos(old[i]).Line >= last
		last = pos(old[i]).Line
		if key != nil {
			dropped[key(old[i])] = true
		}
	}
	out = append(out, mid...)
	for ; i < len(old); i++ {
		d := old[i]
		ok = ok && pos(d).Line >= last
		last = pos(d).Line
		if delta != 0 {
			c := *d
			pos(&c).Line += delta
			d = &c
			if key != nil {
				moved[key(d)] = true
			}
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, ok // as a load gives none
	}
	return out, ok
}

// fileLoad is a changed file, loaded.
type fileLoad struct {
	in *api.Input
	// spans is the split of what was read (nil: load it whole next time).
	spans []docSpan
	// whole: the file was loaded whole. Otherwise touched holds the keys
	// of the documents that left or came, moved those of the documents
	// that only moved.
	whole          bool
	touched, moved map[string]bool
}

// loadFile loads a changed file: only its changed documents when the
// watcher holds the split of its last version, else whole. The
// diagnostics are those of what was loaded.
func (w *watcher) loadFile(f string) (*fileLoad, diag.List) {
	files, diags := load.ReadFiles([]string{f})
	if diags.Err() != nil || len(files) != 1 {
		return nil, diags
	}
	data := files[0].Data
	now, split := splitDocs(f, data)
	if old := w.docs[f]; split && old != nil && w.files[f] != nil {
		dc := diffDocs(old, now)
		delta := 0
		if dc.hiOld < len(old) {
			delta = now[dc.hiNew].line - old[dc.hiOld].line
		}
		mid := &api.Input{}
		if dc.hiNew > dc.lo {
			text := middleText(data, now, dc.lo, dc.hiNew)
			mid, diags = load.LoadFiles([]load.File{{Name: f, Data: text}}, w.loadOptions())
			load.DropCaches()
			if diags.Err() != nil {
				return nil, diags
			}
		}
		l := &fileLoad{spans: now, touched: map[string]bool{}, moved: map[string]bool{}}
		in, ok := spliceDocs(w.files[f], mid, lineOf(old, dc.lo), lineOf(old, dc.hiOld), delta, l.touched, l.moved)
		if ok {
			markKeys(mid, l.touched)
			l.in = in
			return l, diags
		}
	}
	in, diags := load.LoadFiles(files, w.loadOptions())
	load.DropCaches()
	if diags.Err() != nil {
		return nil, diags
	}
	l := &fileLoad{in: in, whole: true}
	if split {
		l.spans = now
	}
	return l, diags
}
