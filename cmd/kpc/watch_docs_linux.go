//go:build linux

package main

import (
	"bytes"
	"hash/maphash"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/load"
)

// The watcher reads a changed file again, but loads only the YAML
// documents of it that changed (or the items, of a List as kubectl
// prints it): a file of 50,000 Services costs the loading of one
// document, not of 100,000. It keeps, per file, the span of each document
// (docSpan). Of a new version, the spans whose bytes are still at the
// start and at the end are kept (those at the end moved by as many lines
// as the changed middle grew), only the middle is split again (resplit),
// and it is loaded alone, behind as many empty lines as precede it, so
// that its positions are the file's own.

// docSpan is one YAML document of a file, or one item of a List (list):
// where it starts (byte offset and 1-based line) and a hash of its bytes.
// A List's split is its head, its items and its tail. The first span of a
// split also holds the file's size.
type docSpan struct {
	off, line, size int
	sum             uint64
	list            bool
}

// docSeed hashes documents; sums are compared within one process only.
var docSeed = maphash.MakeSeed()

// splitDocs splits a YAML stream at its "---" lines, or a file that is
// one List in kubectl's layout into its items (splitItems). It reports
// false for what it does not split (JSON, a byte order mark, carriage
// returns, YAML directives or "..." document ends, a List whose items do
// not keep to the layout): such a file is loaded whole.
func splitDocs(name string, data []byte) ([]docSpan, bool) {
	spans, ok := splitFast(name, data)
	if ok && spans[0].list && !validItems(data, spans, 1, len(spans)-1) {
		return nil, false
	}
	return spans, ok
}

// splitFast is splitDocs without looking inside a List's items, which
// validItems does for those that changed.
func splitFast(name string, data []byte) ([]docSpan, bool) {
	if !plainYAML(name, data) {
		return nil, false
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
	items, list := []docSpan(nil), false
	if len(spans) == 1 {
		items, list = splitItems(data)
	}
	if list {
		spans = items
	} else {
		for _, bad := range []string{"%", "..."} { // a directive, a document end
			if bytes.HasPrefix(data, []byte(bad)) || bytes.Contains(data, []byte("\n"+bad)) {
				return nil, false
			}
		}
	}
	hashSpans(data, spans)
	spans[0].size = len(data)
	return spans, true
}

// plainYAML reports whether file name is YAML that splitDocs may split:
// not JSON, no byte order mark, no carriage return.
func plainYAML(name string, data []byte) bool {
	return plainStart(name, data) && bytes.IndexByte(data, '\r') < 0
}

// plainStart is plainYAML but for the carriage returns: resplit looks for
// those only in the bytes that changed.
func plainStart(name string, data []byte) bool {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		return false
	}
	t := bytes.TrimLeft(data, " \t\n")
	return len(t) == 0 || t[0] != '{' && t[0] != '[' && t[0] < 0x80
}

// hashSpans sets the sum of each span of data.
func hashSpans(data []byte, spans []docSpan) {
	for i := range spans {
		end := len(data)
		if i+1 < len(spans) {
			end = spans[i+1].off
		}
		spans[i].sum = maphash.Bytes(docSeed, data[spans[i].off:end])
	}
}

// resplit splits data, the new contents of a file whose last split is
// old, as splitDocs would, but looks only at what changed: the spans of
// old whose bytes are still there at the start, and those still there at
// the end (moved by the change in length), are kept after a hash of their
// bytes, and only the bytes between them are split again. dc says which
// spans changed. It reports false where the file is to be split whole.
// The new split is made in buf when it has room (and is not old's array):
// a file of 100,000 documents would otherwise take a new 4 MB split at
// every change.
func resplit(name string, data []byte, old, buf []docSpan) ([]docSpan, docChange, bool) {
	// The kept spans hold the old bytes, which have no carriage return
	// (see below for the others): a scan of a file of 45 MB for them took
	// 3-4 ms of each change.
	if !plainStart(name, data) {
		return nil, docChange{}, false
	}
	n, list := len(old), old[0].list
	end := func(i int) int { // of old span i
		if i+1 < n {
			return old[i+1].off
		}
		return old[0].size
	}
	// The spans still at the end are those after the last span (but the
	// first) that is not at its place counted from the end, its bytes
	// moved by d. That last one is looked for in the second half of the
	// spans on another core while those still at the start are hashed
	// here, then, when the second half has none, in the rest of the first
	// half after those still at the start. Both go forward: a walk back
	// from the end of a file larger than the caches defeats the
	// prefetcher (in a file of 45 MB, 19 ms against 2.5 ms forward).
	d := len(data) - old[0].size
	lastMoved := func(from, to int) int {
		last := -1
		for i := max(from, 1); i < to; i++ {
			if a, b := old[i].off+d, end(i)+d; a < 0 || maphash.Bytes(docSeed, data[a:b]) != old[i].sum {
				last = i
			}
		}
		return last
	}
	m := n / 2
	tail := make(chan int, 1)
	go func() { tail <- lastMoved(m, n) }()
	lo := 0
	for lo < n {
		a, b := old[lo].off, end(lo)
		if b > len(data) || lo == n-1 && b != len(data) || maphash.Bytes(docSeed, data[a:b]) != old[lo].sum {
			break
		}
		lo++
	}
	moved := <-tail
	if moved < 0 {
		moved = lastMoved(lo, m)
	}
	hi := max(moved+1, 1, lo)
	for lo < n && hi < n && old[hi].off+d < old[lo].off {
		hi++
	}
	if lo == n {
		return old, docChange{lo: n, hiOld: n, hiNew: n}, true // the same bytes
	}
	// The changed bytes must start and end where spans may start (a
	// List's tail starts at any line).
	for lo > 0 && !spanStart(data, old[lo].off, list) {
		lo--
	}
	for hi < n && !(list && hi == n-1 && lineStart(data, old[hi].off+d)) && !spanStart(data, old[hi].off+d, list) {
		hi++
	}
	from, to := old[lo].off, len(data)
	if hi < n {
		to = old[hi].off + d
	}
	if bytes.IndexByte(data[from:to], '\r') >= 0 {
		return nil, docChange{}, false
	}
	if list && (lo == 0 || hi == n) {
		return nil, docChange{}, false // the List's head or tail changed
	}
	var mid []docSpan
	line := old[lo].line
	last := from
	add := func(p int) {
		line += bytes.Count(data[last:p], []byte{'\n'})
		last = p
		mid = append(mid, docSpan{off: p, line: line, list: list})
	}
	if from < to {
		add(from)
		if l := data[from:]; !list && (l[0] == '%' || bytes.HasPrefix(l, []byte("..."))) {
			return nil, docChange{}, false
		}
	}
	for i := from; ; {
		k := bytes.IndexByte(data[i:to], '\n')
		if k < 0 || i+k+1 >= to {
			break
		}
		p := i + k + 1
		if l := data[p:]; spanStart(data, p, list) {
			add(p)
		} else if !list && (l[0] == '%' || bytes.HasPrefix(l, []byte("..."))) {
			return nil, docChange{}, false
		}
		i = p
	}
	delta := line + bytes.Count(data[last:to], []byte{'\n'})
	if !list && lo+len(mid)+n-hi == 1 {
		// One document, which may now be a List in kubectl's layout:
		// split afresh, and a List is loaded whole (its head changed).
		spans, ok := splitDocs(name, data)
		if !ok || spans[0].list {
			return nil, docChange{}, false
		}
		return spans, docChange{lo: 0, hiOld: n, hiNew: len(spans)}, true
	}
	now := buf[:0]
	if size := lo + len(mid) + n - hi; cap(now) < size || cap(now) > 0 && &now[:1][0] == &old[0] {
		now = make([]docSpan, 0, size)
	}
	now = append(now, old[:lo]...)
	now = append(now, mid...)
	if hi < n {
		delta -= old[hi].line
	}
	for _, s := range old[hi:] {
		s.off += d
		s.line += delta
		now = append(now, s)
	}
	hashSpans(data[:to], now[lo:lo+len(mid)])
	now[0].size = len(data)
	if list && !validItems(data, now, lo, lo+len(mid)) {
		return nil, docChange{}, false
	}
	return now, docChange{lo: lo, hiOld: hi, hiNew: lo + len(mid)}, true
}

// spanStart reports whether a span may start at offset p of data: a "---"
// line of a YAML stream, a "- " line of a List's items.
func spanStart(data []byte, p int, list bool) bool {
	if !lineStart(data, p) {
		return false
	}
	l := data[p:]
	if list {
		return len(l) > 0 && l[0] == '-' && (len(l) == 1 || l[1] == ' ' || l[1] == '\n')
	}
	return bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == '\n' || l[3] == ' ' || l[3] == '\t')
}

// lineStart reports whether offset p of data starts a line.
func lineStart(data []byte, p int) bool { return p == 0 || data[p-1] == '\n' }

// splitItems splits a file that is one List as kubectl prints it: at
// column 0 only the keys apiVersion: v1, kind: List, metadata and items
// (and comments, and a first "---"), every item a "- " line at column 0
// whose other lines are indented (which validItems checks). The spans are
// the head (up to the first item), each item, and the tail (from the
// first of the List's keys after the items).
func splitItems(data []byte) ([]docSpan, bool) {
	it := -1
	if bytes.HasPrefix(data, []byte("items:\n")) {
		it = 0
	} else if k := bytes.Index(data, []byte("\nitems:\n")); k >= 0 {
		it = k + 1
	}
	if it < 0 {
		return nil, false
	}
	tail := len(data)
	for _, key := range []string{"\napiVersion: v1\n", "\nkind: List\n", "\nmetadata:\n", "\nmetadata: {}\n"} {
		if k := bytes.Index(data[it:tail], []byte(key)); k >= 0 {
			tail = it + k + 1
		}
	}
	var starts []int
	for i := it; ; {
		k := bytes.Index(data[i:tail], []byte("\n-"))
		if k < 0 {
			break
		}
		p := i + k + 1
		if p+1 == len(data) || data[p+1] == ' ' || data[p+1] == '\n' {
			starts = append(starts, p)
		}
		i = p
	}
	if len(starts) == 0 {
		return nil, false
	}
	api1, kind1, ok1 := listKeys(data[:starts[0]])
	api2, kind2, ok2 := listKeys(data[tail:])
	if !ok1 || !ok2 || !(api1 || api2) || !(kind1 || kind2) {
		return nil, false
	}
	spans := []docSpan{{off: 0, line: 1, list: true}}
	line, last := 1, 0
	for _, p := range append(starts, tail) {
		line += bytes.Count(data[last:p], []byte{'\n'})
		last = p
		spans = append(spans, docSpan{off: p, line: line, list: true})
	}
	return spans, true
}

// listKeys checks the lines of a List's head or tail: at column 0 only
// its keys, comments and a first "---". It reports whether apiVersion: v1
// and kind: List are among them.
func listKeys(b []byte) (apiVersion, kind, ok bool) {
	for n, l := range bytes.SplitAfter(b, []byte{'\n'}) {
		l = bytes.TrimSuffix(l, []byte{'\n'})
		if len(l) == 0 || l[0] == ' ' || l[0] == '#' {
			continue
		}
		switch string(l) {
		case "apiVersion: v1":
			apiVersion = true
		case "kind: List":
			kind = true
		case "items:", "metadata:", "metadata: {}":
		case "---":
			if n > 0 {
				return false, false, false
			}
		default:
			return false, false, false
		}
	}
	return apiVersion, kind, true
}

// validItems reports whether items [lo, hi) of a List's split keep to
// kubectl's layout: after its "- " line, an item's lines are indented,
// comments or empty.
func validItems(data []byte, spans []docSpan, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		b := data[spans[i].off:spans[i+1].off]
		for off := bytes.IndexByte(b, '\n') + 1; off > 0 && off < len(b); {
			if c := b[off]; c != ' ' && c != '#' && c != '\n' {
				return false
			}
			k := bytes.IndexByte(b[off:], '\n')
			if k < 0 {
				break
			}
			off += k + 1
		}
	}
	return true
}

// docChange is the part of a file that changed between two splits
// (resplit): the documents [lo, hiOld) of the old version became [lo,
// hiNew) of the new.
type docChange struct {
	lo, hiOld, hiNew int
}

// lineOf is the first line of document i of a split, or for i =
// len(spans) a line after every line.
func lineOf(spans []docSpan, i int) int {
	if i < len(spans) {
		return spans[i].line
	}
	return math.MaxInt
}

// middleText is data's documents [lo, hi), and the number of lines
// before them in data: loaded alone, their positions are the file's once
// moved down by as many lines (shiftLines). List items go in a List of
// their own, whose "items:" is the line before the first.
func middleText(data []byte, spans []docSpan, lo, hi int) ([]byte, int) {
	if spans[0].list {
		from, to := spans[lo].off, spans[hi].off
		out := make([]byte, 0, to-from+32)
		out = append(out, "items:\n"...)
		out = append(out, data[from:to]...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, "apiVersion: v1\nkind: List\n"...), spans[lo].line - 2
	}
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
	// A copy: data is the watcher's read buffer, which the next read
	// overwrites.
	return append([]byte(nil), data[from:to]...), skip
}

// shiftLines moves the positions in file f of in's documents and of diags
// down by n lines: a load of a file's middle text (middleText) then
// gives the positions a load of the whole file gives.
func shiftLines(f string, n int, in *api.Input, diags diag.List) {
	if n == 0 {
		return
	}
	shift := func(p *diag.Pos) {
		if p.File == f && p.Line > 0 {
			p.Line += n
		}
	}
	for _, d := range diags {
		shift(&d.Pos)
	}
	if in == nil {
		return
	}
	shiftDocs(in.Services, func(s *api.Service) *diag.Pos { return &s.Pos }, shift)
	shiftDocs(in.EndpointSlices, func(s *api.EndpointSlice) *diag.Pos { return &s.Pos }, shift)
	shiftDocs(in.Endpoints, func(e *api.Endpoints) *diag.Pos { return &e.Pos }, shift)
	shiftDocs(in.Nodes, func(n *api.Node) *diag.Pos { return &n.Pos }, shift)
	shiftDocs(in.ProxyConfigs, func(c *api.KubeProxyConfiguration) *diag.Pos { return &c.Pos }, shift)
	shiftDocs(in.ServiceCIDRs, func(c *api.ServiceCIDR) *diag.Pos { return &c.Pos }, shift)
}

// shiftDocs applies shift to the position of each of docs.
func shiftDocs[T any](docs []*T, pos func(*T) *diag.Pos, shift func(*diag.Pos)) {
	for _, d := range docs {
		shift(pos(d))
	}
}

// spliceDocs makes a file's new Input from its old one and the load of
// its changed middle: the old documents before line lo stay, those from
// line hi on move by delta lines, and mid's come between. It reports
// false when the old documents are not at known lines in order. dropped
// receives the keys of the old middle's documents.
//
// The documents that move are moved where they are, not copied: they are
// also the old Input's and the watcher's Service keys', which thus stay
// the same documents, and a change near the top of a file of 100,000
// documents costs no copy of the 100,000 and no update of their keys. The
// returned unshift moves them back, for a change that is given up (the
// old Input is then the file's again); it is nil when nothing moved. gone
// receives the old middle's documents.
func spliceDocs(old, mid *api.Input, lo, hi, delta int, dropped map[string]bool, gone map[any]bool) (in *api.Input, unshift func(), ok bool) {
	if old == nil {
		old = &api.Input{}
	}
	in = &api.Input{}
	var undo []func()
	ok = true
	in.Services, undo, ok = spliceKind(old.Services, mid.Services, lo, hi, delta, ok, undo, func(s *api.Service) *diag.Pos { return &s.Pos },
		func(s *api.Service) string { return s.ID() }, dropped, gone)
	in.EndpointSlices, undo, ok = spliceKind(old.EndpointSlices, mid.EndpointSlices, lo, hi, delta, ok, undo,
		func(s *api.EndpointSlice) *diag.Pos { return &s.Pos }, sliceKey, dropped, gone)
	in.Endpoints, undo, ok = spliceKind(old.Endpoints, mid.Endpoints, lo, hi, delta, ok, undo, func(e *api.Endpoints) *diag.Pos { return &e.Pos },
		func(e *api.Endpoints) string { return e.ID() }, dropped, gone)
	in.Nodes, undo, ok = spliceKind(old.Nodes, mid.Nodes, lo, hi, delta, ok, undo, func(n *api.Node) *diag.Pos { return &n.Pos }, nil, nil, gone)
	in.ProxyConfigs, undo, ok = spliceKind(old.ProxyConfigs, mid.ProxyConfigs, lo, hi, delta, ok, undo,
		func(c *api.KubeProxyConfiguration) *diag.Pos { return &c.Pos }, nil, nil, gone)
	in.ServiceCIDRs, undo, ok = spliceKind(old.ServiceCIDRs, mid.ServiceCIDRs, lo, hi, delta, ok, undo,
		func(c *api.ServiceCIDR) *diag.Pos { return &c.Pos }, nil, nil, gone)
	if len(undo) > 0 {
		unshift = func() {
			for _, u := range undo {
				u()
			}
		}
	}
	return in, unshift, ok
}

// spliceKind is spliceDocs for one kind of document, in file order. The
// old documents must be at known lines, in order. The moved documents'
// unshift is appended to undo.
func spliceKind[T any](old, mid []*T, lo, hi, delta int, ok bool, undo []func(), pos func(*T) *diag.Pos, key func(*T) string,
	dropped map[string]bool, gone map[any]bool) ([]*T, []func(), bool) {
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
		gone[old[i]] = true
	}
	out = append(out, mid...)
	rest := old[i:]
	for _, d := range rest {
		ok = ok && pos(d).Line >= last
		last = pos(d).Line
		out = append(out, d)
	}
	if delta != 0 && len(rest) > 0 {
		for _, d := range rest {
			pos(d).Line += delta
		}
		undo = append(undo, func() {
			for _, d := range rest {
				pos(d).Line -= delta
			}
		})
	}
	if len(out) == 0 {
		return nil, undo, ok // as a load gives none
	}
	return out, undo, ok
}

// fileLoad is a changed file, loaded.
type fileLoad struct {
	in *api.Input
	// spans is the split of what was read (nil: load it whole next time).
	spans []docSpan
	// whole: the file was loaded whole. Otherwise touched holds the keys
	// of the documents that left or came, and unshift, when documents
	// moved, moves them back (spliceDocs): the watcher calls it when it
	// gives the change up, and commit drops it.
	whole   bool
	touched map[string]bool
	unshift func()
	// mid holds the documents of the changed middle, gone those of the
	// old version that they replace (unless whole).
	mid  *api.Input
	gone map[any]bool
}

// loadFile loads a changed file: only its changed documents when the
// watcher holds the split of its last version, else whole. The
// diagnostics are those of what was loaded.
func (w *watcher) loadFile(f string) (*fileLoad, diag.List) {
	if st, err := os.Stat(f); err == nil && !st.Mode().IsRegular() {
		// Not opened: a named pipe would wait for a writer, a device
		// such as /dev/zero has no end.
		var diags diag.List
		diags.Add(diag.Pos{File: f}, "", "", "cannot read input: not a regular file: a watched manifest must be a regular file (or a link to one)")
		return nil, diags
	}
	if old := w.docs[f]; old != nil && w.files[f] != nil {
		if data, ok := w.readReused(f); ok {
			if l, diags, done := w.loadChanged(f, data, old); done {
				return l, diags
			}
		}
	}
	files, diags := load.ReadFiles([]string{f})
	if diags.Err() != nil || len(files) != 1 {
		return nil, diags
	}
	in, diags := load.LoadFiles(files, w.loadOptions())
	load.DropCaches()
	if diags.Err() != nil {
		return nil, diags
	}
	l := &fileLoad{in: in, whole: true}
	if spans, ok := splitDocs(f, files[0].Data); ok {
		l.spans = spans
	}
	return l, diags
}

// loadChanged loads the documents of data, file f's new contents, that
// differ from those of old, its last split. It reports false when f is
// to be loaded whole instead.
func (w *watcher) loadChanged(f string, data []byte, old []docSpan) (*fileLoad, diag.List, bool) {
	now, dc, ok := resplit(f, data, old, w.spare[f])
	if !ok {
		return nil, nil, false
	}
	delta := 0
	if dc.hiOld < len(old) {
		delta = now[dc.hiNew].line - old[dc.hiOld].line
	}
	mid := &api.Input{}
	var diags diag.List
	if dc.hiNew > dc.lo {
		text, skip := middleText(data, now, dc.lo, dc.hiNew)
		// The load keeps its CUE evaluators, schema compiled, for the
		// next change (without them each change compiled the schema
		// again: 3-4 ms of the 5 of loading one document). What they
		// keep of the documents they validated is bounded: each is
		// dropped after validating load's recycleAfter documents.
		mid, diags = load.LoadFiles([]load.File{{Name: f, Data: text}}, w.loadOptions())
		shiftLines(f, skip, mid, diags)
		if diags.Err() != nil {
			return nil, diags, true
		}
	}
	l := &fileLoad{spans: now, touched: map[string]bool{}, mid: mid, gone: map[any]bool{}}
	in, unshift, ok := spliceDocs(w.files[f], mid, lineOf(old, dc.lo), lineOf(old, dc.hiOld), delta, l.touched, l.gone)
	if !ok {
		if unshift != nil {
			unshift()
		}
		return nil, nil, false
	}
	l.unshift = unshift
	markKeys(mid, l.touched)
	l.in = in
	return l, diags, true
}

// readReused reads a regular file into the watcher's read buffer, which
// the next read overwrites: reading a file of 150 MB at each change into
// a new buffer would have the collector mark the whole heap about every
// other change. It reports false for anything but a plain read of a file
// no larger than load.MaxFileSize (the caller then reads it as Load
// does, which names the problem).
func (w *watcher) readReused(f string) ([]byte, bool) {
	fh, err := os.Open(f)
	if err != nil {
		return nil, false
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > load.MaxFileSize {
		return nil, false
	}
	n := int(st.Size())
	if cap(w.readBuf) < n+1 {
		w.readBuf = make([]byte, n+n/8+1)
	}
	w.justRead = nil // the buffer is overwritten
	if !readHalves(fh, w.readBuf[:n+1]) {
		return nil, false // it grew or shrank while read
	}
	w.justRead = map[string][]byte{f: w.readBuf[:n]}
	return w.readBuf[:n], true
}

// halvesMin is the smallest file readHalves reads on two CPUs.
const halvesMin = 4 << 20

// readHalves reads the len(b)-1 bytes of file fh into b, and reports
// whether they are all it holds. A file of halvesMin bytes or more is read
// as two halves at once, on two CPUs: the copy from the page cache is
// most of a read, and a file of 45 MB took 6-8 ms to read on one.
func readHalves(fh *os.File, b []byte) bool {
	n := len(b) - 1
	if n < halvesMin {
		m, err := io.ReadFull(fh, b)
		return err == io.ErrUnexpectedEOF && m == n
	}
	h := n / 2
	first := make(chan bool, 1)
	go func() {
		m, err := fh.ReadAt(b[:h], 0)
		first <- err == nil && m == h
	}()
	m, err := fh.ReadAt(b[h:], int64(h))
	return <-first && err == io.EOF && m == n-h
}
