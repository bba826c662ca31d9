//go:build linux

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/load"
	"kpc/internal/synth"
)

// TestSplitDocs checks where splitDocs cuts a YAML stream, and what it
// leaves to a whole load.
func TestSplitDocs(t *testing.T) {
	for _, c := range []struct {
		name, text string
		lines      []int // first lines of the documents; nil: not split
	}{
		{"a.yaml", "", []int{1}},
		{"a.yaml", "a: 1\n", []int{1}},
		{"a.yaml", "---\na: 1\n", []int{1}},
		{"a.yaml", "# c\n---\na: 1\n---\nb: 2\n", []int{1, 2, 4}},
		{"a.yaml", "a: |\n  ---\n---   # next\nb: 2\n--- {c: 3}\n", []int{1, 3, 5}},
		{"a.yaml", "a: 1\n----\nb: 2\n---x\n", []int{1}},
		{"a.yaml", "%YAML 1.2\n---\na: 1\n", nil},
		{"a.yaml", "a: 1\n...\n---\nb: 2\n", nil},
		{"a.yaml", "a: 1\r\n---\r\nb: 2\r\n", nil},
		{"a.yaml", "  {\"a\": 1}\n", nil},
		{"a.yaml", "\xef\xbb\xbfa: 1\n", nil},
		{"a.json", "a: 1\n", nil},
		{"l.yaml", "apiVersion: v1\nitems:\n- a: 1\n  b: 2\n# c\n- a: 3\nkind: List\nmetadata:\n  resourceVersion: \"\"\n", []int{1, 3, 6, 7}},
		{"l.yaml", "---\nkind: List\napiVersion: v1\nitems:\n- a: 1\n", []int{1, 5, 6}},
		{"l.yaml", "apiVersion: v1\nitems:\n- a: 1\nkind: List\nextra: 1\n", []int{1}},
		{"l.yaml", "apiVersion: v1\nitems:\n- a: 1\nkind: ServiceList\n", []int{1}},
		{"l.yaml", "apiVersion: v1\nkind: List\nitems: []\n", []int{1}},
		{"l.yaml", "apiVersion: v1\nitems:\n- a: 1\nfoo: 2\n- b: 3\nkind: List\n", nil},
		{"l.yaml", "- x\napiVersion: v1\nitems:\n- a: 1\nkind: List\n", []int{1}},
		{"l.yaml", "apiVersion: v1\nitems:\n- a: 1\n...\nkind: List\n", nil},
	} {
		spans, ok := splitDocs(c.name, []byte(c.text))
		var lines []int
		for _, s := range spans {
			lines = append(lines, s.line)
		}
		if ok != (c.lines != nil) || !slices.Equal(lines, c.lines) {
			t.Errorf("splitDocs(%s, %q) = %v, %v; want %v", c.name, c.text, lines, ok, c.lines)
		}
	}
}

// TestLoadFileChangedDocs edits a file of a synthetic cluster in many
// ways and checks that loadFile, which loads only the changed documents
// and moves the others, gives what a load of the whole new file gives:
// the same documents at the same positions, and the keys it reports as
// touched or moved.
func TestLoadFileChangedDocs(t *testing.T) {
	base := synthText(t, synth.Config{Services: 30, Endpoints: 2})
	svc := func(name string) string { return "  name: " + name + "\n" }
	edits := []struct {
		name     string
		edit     func(string) string
		touched  []string // keys that must be reported touched
		moved    bool     // whether later documents moved
		whole    bool     // loaded whole
		noChange bool
	}{
		{"an endpoint address changes", func(s string) string {
			return strings.Replace(s, `"10.128.0.11"`, `"10.129.0.11"`, 1)
		}, []string{"ns-5/svc-5"}, false, false, false},
		{"an endpoint is added near the top", func(s string) string {
			return strings.Replace(s, "- addresses: [\"10.128.0.1\"]\n", "- addresses: [\"10.128.0.1\"]\n  conditions: {ready: true}\n- addresses: [\"10.128.7.7\"]\n", 1)
		}, []string{"ns-0/svc-0"}, true, false, false},
		{"a Service is removed from the middle", func(s string) string {
			i := strings.Index(s, svc("svc-12"))
			start := strings.LastIndex(s[:i], "---\n")
			end := start + 4 + strings.Index(s[start+4:], "---\n")
			return s[:start] + s[end:]
		}, []string{"ns-12/svc-12"}, true, false, false},
		{"a document is added at the end", func(s string) string {
			return s + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: ns-1\nspec:\n  clusterIP: 10.96.200.1\n  ports:\n  - port: 53\n    protocol: UDP\n"
		}, []string{"ns-1/extra"}, false, false, false},
		{"a comment between documents", func(s string) string {
			return strings.Replace(s, svc("svc-20"), svc("svc-20")+"  # reviewed\n", 1)
		}, []string{"ns-20/svc-20"}, true, false, false},
		{"nothing but the first line", func(s string) string { return "# generated\n" + s }, nil, true, false, false},
		{"the file becomes JSON", func(s string) string {
			return `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "j", "namespace": "x"}, "spec": {"clusterIP": "10.96.200.2", "ports": [{"port": 80}]}}`
		}, nil, false, true, false},
		{"the same bytes", func(s string) string { return s }, nil, false, false, true},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			l, in, want := changeFile(t, "cluster.yaml", base, e.edit(base))
			if l.whole != e.whole {
				t.Fatalf("loaded whole: %v, want %v", l.whole, e.whole)
			}
			if e.whole {
				return
			}
			for _, id := range e.touched {
				if !l.touched[id] {
					t.Errorf("%s not reported touched (touched: %v)", id, l.touched)
				}
			}
			if e.noChange && (len(l.touched) > 0 || l.unshift != nil) {
				t.Errorf("the same bytes touched %v or moved documents", l.touched)
			}
			if e.moved != (l.unshift != nil) {
				t.Errorf("documents moved: %v, want %v", l.unshift != nil, e.moved)
			}
			// Every key whose documents differ between the two loads
			// (positions aside) is touched.
			old, now := keysOf(in), keysOf(want)
			for id, k := range now {
				if o := old[id]; o == nil || !o.same(k) {
					if !l.touched[id] {
						t.Errorf("%s changed but is not touched", id)
					}
				}
			}
			for id := range old {
				if now[id] == nil && !l.touched[id] {
					t.Errorf("%s went but is not touched", id)
				}
			}
			// The documents outside the change are the old ones (those
			// after it moved where they are), not copies; unshift puts
			// them back.
			kept := 0
			for _, s := range in.EndpointSlices {
				if slices.Contains(l.in.EndpointSlices, s) {
					kept++
				}
			}
			if kept < len(in.EndpointSlices)-2 {
				t.Errorf("%d of %d EndpointSlices are the old documents, want all but the changed", kept, len(in.EndpointSlices))
			}
			if l.unshift != nil {
				l.unshift()
				orig, diags := load.LoadFiles([]load.File{{Name: in.Services[0].Pos.File, Data: []byte(base)}}, load.Options{})
				if err := diags.Err(); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(orig, in); diff != "" {
					t.Errorf("unshift does not give the old load back (-old +unshifted):\n%s", diff)
				}
			}
		})
	}
}

// changeFile loads file name's text base as the watcher's full apply
// does, changes it to text and loads it as a change. It checks that the
// change's load equals a load of the whole new text, documents and
// positions, and that its split is a fresh one; it returns it, with the
// loads of base and of text.
func changeFile(t *testing.T, name, base, text string) (l *fileLoad, in, want *api.Input) {
	t.Helper()
	w, f, in := watchedFile(t, name, base)
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, diags := w.loadFile(f)
	if err := diags.Err(); err != nil || l == nil {
		t.Fatalf("loadFile: %v", diags)
	}
	want, diags = load.LoadFiles([]load.File{{Name: f, Data: []byte(text)}}, w.loadOptions())
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, l.in); diff != "" {
		t.Fatalf("loadFile differs from a load of the whole file (-whole +loadFile):\n%s", diff)
	}
	checkSpans(t, f, []byte(text), l.spans)
	return l, in, want
}

// synthText is kpc gen's manifests of a synthetic cluster.
func synthText(t *testing.T, c synth.Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := synth.Write(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// watchedFile writes text to file name in a new directory, and returns a
// watcher that holds its load and its split, as after a whole apply, the
// file's path and the load.
func watchedFile(t *testing.T, name, text string) (*watcher, string, *api.Input) {
	t.Helper()
	f := writeFile(t, t.TempDir(), name, text)
	w := &watcher{in: &inputFlags{}}
	in, diags := load.LoadFiles([]load.File{{Name: f, Data: []byte(text)}}, w.loadOptions())
	spans, ok := splitDocs(f, []byte(text))
	if diags.Err() != nil || !ok {
		t.Fatalf("%s: %v (split: %v)", name, diags, ok)
	}
	w.files = map[string]*api.Input{f: in}
	w.docs = map[string][]docSpan{f: spans}
	return w, f, in
}

// keysOf gathers an Input's documents by Service key.
func keysOf(in *api.Input) map[string]*watchKey {
	all := map[string]bool{}
	markKeys(in, all)
	keys := map[string]*watchKey{}
	for id := range all {
		keys[id] = &watchKey{}
	}
	collect(keys, in, all)
	return keys
}

// TestMiddleText checks that the changed documents are cut out with the
// number of lines before them, by which shiftLines moves their positions.
func TestMiddleText(t *testing.T) {
	data := []byte("a: 1\n---\nb: 2\nc: 3\n---\nd: 4\n")
	spans, _ := splitDocs("x.yaml", data)
	list := []byte("apiVersion: v1\nitems:\n- a: 1\n- b: 2\n  c: 3\nkind: List\n")
	items, _ := splitDocs("l.yaml", list)
	for _, c := range []struct {
		data   []byte
		spans  []docSpan
		lo, hi int
		want   string
		skip   int
	}{
		{data, spans, 0, 1, "a: 1\n", 0},
		{data, spans, 1, 2, "---\nb: 2\nc: 3\n", 1},
		{data, spans, 1, 3, "---\nb: 2\nc: 3\n---\nd: 4\n", 1},
		{data, spans, 2, 3, "---\nd: 4\n", 4},
		{list, items, 2, 3, "items:\n- b: 2\n  c: 3\napiVersion: v1\nkind: List\n", 2},
	} {
		got, skip := middleText(c.data, c.spans, c.lo, c.hi)
		if string(got) != c.want || skip != c.skip {
			t.Errorf("middleText(%d, %d) = %q, %d; want %q, %d", c.lo, c.hi, got, skip, c.want, c.skip)
		}
	}
}

// TestLoadFileChangedDocsInvalid checks that an error in a changed
// document is reported at its place in the file, as a load of the whole
// file reports it.
func TestLoadFileChangedDocsInvalid(t *testing.T) {
	base := synthText(t, synth.Config{Services: 20, Endpoints: 2})
	w, f, _ := watchedFile(t, "cluster.yaml", base)
	i := strings.Index(base, "  name: svc-15\n")
	text := base[:i] + strings.Replace(base[i:], "port: 80\n", "port: 99999\n", 1)
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	l, got := w.loadFile(f)
	if l != nil || got.Err() == nil {
		t.Fatalf("loadFile took the invalid port: %v", got)
	}
	_, want := load.LoadFiles([]load.File{{Name: f, Data: []byte(text)}}, w.loadOptions())
	if diff := cmp.Diff(want.Error(), got.Error()); diff != "" {
		t.Errorf("diagnostics differ (-whole load +loadFile):\n%s", diff)
	}
}

// FuzzChangedDocs checks, for any two versions of a file, that loading
// only the changed documents of the second gives what loading it whole
// gives (documents and positions), and fails where the whole load fails.
func FuzzChangedDocs(f *testing.F) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 4, Endpoints: 2}); err != nil {
		f.Fatal(err)
	}
	base := b.String()
	f.Add(base, strings.Replace(base, `"10.128.0.3"`, `"10.129.0.3"`, 1))
	f.Add(base, "# top\n"+base)
	f.Add(base, base+"---\napiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: y}\nspec: {clusterIP: 10.96.9.9, ports: [{port: 1}]}\n")
	f.Add(base, strings.Replace(base, "port: 80\n", "port: 80\n---\n", 1))
	f.Add(base, strings.Replace(base, "port: 80\n", "port: 80\r\n", 1)) // resplit looks for carriage returns in what changed only
	f.Add("a: 1\n---\nb: 2\n", "a: 1\n---\nb: \"x\n---\ny\"\n")
	f.Add("---\n", "--- |\n  x\n---\n")
	b.Reset()
	if err := synth.WriteKubectl(&b, synth.Config{Services: 3, Endpoints: 1}, false); err != nil {
		f.Fatal(err)
	}
	dump := b.String()
	f.Add(dump, strings.Replace(dump, "- 10.128.0.2\n", "- 10.128.0.9\n", 1))
	f.Add(dump, strings.Replace(dump, "\nkind: List\n", "\n- apiVersion: v1\n  kind: Service\n  metadata: {name: x, namespace: y}\n  spec: {clusterIP: 10.96.9.9, ports: [{port: 1}]}\nkind: List\n", 1))
	dir := f.TempDir()
	file := filepath.Join(dir, "f.yaml")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		w := &watcher{in: &inputFlags{}}
		in, diags := load.LoadFiles([]load.File{{Name: file, Data: []byte(v1)}}, w.loadOptions())
		spans, ok := splitDocs(file, []byte(v1))
		if diags.Err() != nil || !ok {
			return
		}
		w.files = map[string]*api.Input{file: in}
		w.docs = map[string][]docSpan{file: spans}
		if err := os.WriteFile(file, []byte(v2), 0o644); err != nil {
			t.Fatal(err)
		}
		l, ldiags := w.loadFile(file)
		want, wdiags := load.LoadFiles([]load.File{{Name: file, Data: []byte(v2)}}, w.loadOptions())
		if wdiags.Err() != nil {
			if l != nil {
				t.Fatalf("the whole load fails, the load of the changed documents does not:\n%v", wdiags)
			}
			return
		}
		if l == nil {
			t.Fatalf("the load of the changed documents fails, the whole load does not:\n%v", ldiags)
		}
		if diff := cmp.Diff(want, l.in); diff != "" {
			t.Fatalf("the load of the changed documents differs (-whole +changed):\n%s", diff)
		}
		checkSpans(t, file, []byte(v2), l.spans)
	})
}

// checkSpans checks that spans, a split kept up to date, is the split of
// data made afresh.
func checkSpans(t *testing.T, name string, data []byte, spans []docSpan) {
	t.Helper()
	want, ok := splitDocs(name, data)
	if !ok {
		want = nil
	}
	if diff := cmp.Diff(want, spans, cmp.AllowUnexported(docSpan{})); diff != "" {
		t.Fatalf("the split kept differs from a fresh one (-fresh +kept):\n%s", diff)
	}
}

// TestLoadFileChangedItems is TestLoadFileChangedDocs for a List as
// kubectl prints it: only the changed items are loaded, unless the List's
// head or tail changed.
func TestLoadFileChangedItems(t *testing.T) {
	var b bytes.Buffer
	if err := synth.WriteKubectl(&b, synth.Config{Services: 30, Endpoints: 2}, false); err != nil {
		t.Fatal(err)
	}
	base := b.String()
	if spans, ok := splitDocs("dump.yaml", []byte(base)); !ok || !spans[0].list || len(spans) != 62 {
		t.Fatalf("the dump splits into %d spans (list: %v), want a head, 60 items and a tail", len(spans), ok && spans[0].list)
	}
	// item returns the bounds of the item that holds text.
	item := func(s, text string) (int, int) {
		i := strings.Index(s, text)
		start := strings.LastIndex(s[:i], "\n- ") + 1
		end := i + strings.Index(s[i:], "\n- ") + 1
		return start, end
	}
	for _, e := range []struct {
		name    string
		edit    func(string) string
		touched []string
		moved   bool
		whole   bool
	}{
		{"an endpoint address changes", func(s string) string {
			return strings.Replace(s, "- 10.128.0.11\n", "- 10.129.0.11\n", 1)
		}, []string{"ns-5/svc-5"}, false, false},
		{"an endpoint is added near the top", func(s string) string {
			return strings.Replace(s, "  - addresses:\n    - 10.128.0.1\n", "  - addresses:\n    - 10.128.7.7\n  - addresses:\n    - 10.128.0.1\n", 1)
		}, []string{"ns-0/svc-0"}, true, false},
		{"an item goes", func(s string) string {
			start, end := item(s, "    name: svc-12\n")
			return s[:start] + s[end:]
		}, []string{"ns-12/svc-12"}, true, false},
		{"an item comes last", func(s string) string {
			return strings.Replace(s, "\nkind: List\n", "\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: extra\n    namespace: ns-1\n"+
				"  spec:\n    clusterIP: 10.96.200.1\n    ports:\n    - port: 53\n      protocol: UDP\nkind: List\n", 1)
		}, []string{"ns-1/extra"}, false, false},
		{"the List's tail changes", func(s string) string {
			return strings.Replace(s, "resourceVersion: \"\"", "resourceVersion: \"7\"", 1)
		}, nil, false, true},
	} {
		t.Run(e.name, func(t *testing.T) {
			text := e.edit(base)
			if text == base {
				t.Fatal("the edit changes nothing")
			}
			l, _, _ := changeFile(t, "dump.yaml", base, text)
			if l.whole != e.whole {
				t.Fatalf("loaded whole: %v, want %v", l.whole, e.whole)
			}
			for _, id := range e.touched {
				if !l.touched[id] {
					t.Errorf("%s not reported touched (touched: %v)", id, l.touched)
				}
			}
			if !e.whole && e.moved != (l.unshift != nil) {
				t.Errorf("documents moved: %v, want %v", l.unshift != nil, e.moved)
			}
		})
	}
}

// TestLoadFileChangesInSequence changes a file of more than spareMin
// documents again and again, as the watcher does, so that each new split
// is made in the array of the one before the last (spare): after every
// change, what was loaded and the split kept are those of a load of the
// whole file. A YAML stream and a kubectl List, with edits that keep the
// number of documents, add one, remove one, and fail.
func TestLoadFileChangesInSequence(t *testing.T) {
	addr := regexp.MustCompile(`10\.128\.[0-9]+\.[0-9]+`)
	// move changes the first endpoint address after fraction k/8 of text.
	move := func(k int) func(string) string {
		return func(text string) string {
			at := len(text) * k / 8
			m := addr.FindStringIndex(text[at:])
			return text[:at+m[0]] + "10.129.9." + strconv.Itoa(k) + text[at+m[1]:]
		}
	}
	extra := map[bool]string{
		false: "---\napiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: ns-x}\nspec: {clusterIP: 10.96.200.1, ports: [{port: 81}]}\n",
		true:  "- apiVersion: v1\n  kind: Service\n  metadata: {name: extra, namespace: ns-x}\n  spec: {clusterIP: 10.96.200.1, ports: [{port: 81}]}\n",
	}
	for _, kubectl := range []bool{false, true} {
		var b bytes.Buffer
		cfg := synth.Config{Services: 520, Endpoints: 2}
		var err error
		if kubectl {
			err = synth.WriteKubectl(&b, cfg, false)
		} else {
			err = synth.Write(&b, cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		text := b.String()
		// add puts the extra document before the first document (or
		// item) that starts after the middle.
		sep := map[bool]string{false: "\n---\n", true: "\n- "}[kubectl]
		add := func(s string) string {
			at := len(s)/2 + strings.Index(s[len(s)/2:], sep) + 1
			return s[:at] + extra[kubectl] + s[at:]
		}
		f := writeFile(t, t.TempDir(), "cluster.yaml", text)
		w := &watcher{in: &inputFlags{}}
		in, diags := load.LoadFiles([]load.File{{Name: f, Data: []byte(text)}}, w.loadOptions())
		spans, ok := splitDocs(f, []byte(text))
		if diags.Err() != nil || !ok || len(spans) < spareMin {
			t.Fatalf("kubectl %v: %d spans, %v", kubectl, len(spans), diags)
		}
		w.files = map[string]*api.Input{f: in}
		w.docs = map[string][]docSpan{f: spans}
		reused := 0
		for i, edit := range []struct {
			change  func(string) string
			invalid bool
		}{
			{change: move(1)},
			{change: move(5)},
			{change: add},
			{change: move(3)},
			{change: func(s string) string { return strings.Replace(s, extra[kubectl], "", 1) }},
			{change: func(s string) string { return strings.Replace(s, "port: 80\n", "port: 99999\n", 1) }, invalid: true},
			{change: move(7)},
			{change: move(2)},
		} {
			next := edit.change(text)
			if next == text {
				t.Fatalf("kubectl %v: edit %d changes nothing", kubectl, i)
			}
			if err := os.WriteFile(f, []byte(next), 0o644); err != nil {
				t.Fatal(err)
			}
			spare := w.spare[f]
			l, diags := w.loadFile(f)
			if edit.invalid {
				if l != nil || diags.Err() == nil {
					t.Fatalf("kubectl %v: edit %d: the invalid change loaded", kubectl, i)
				}
				continue // the watcher keeps the last valid version
			}
			if l == nil || diags.Err() != nil {
				t.Fatalf("kubectl %v: edit %d: %v", kubectl, i, diags)
			}
			want, _ := load.LoadFiles([]load.File{{Name: f, Data: []byte(next)}}, w.loadOptions())
			if diff := cmp.Diff(want, l.in); diff != "" {
				t.Fatalf("kubectl %v: edit %d: loadFile differs from a whole load (-whole +loadFile):\n%s", kubectl, i, diff)
			}
			checkSpans(t, f, []byte(next), l.spans)
			if cap(spare) > 0 && &spare[:1][0] == &l.spans[0] {
				reused++
			}
			w.commit(map[string]*fileLoad{f: l}, map[string]*watchKey{}, nil)
			text = next
		}
		if reused < 4 {
			t.Errorf("kubectl %v: the spare array was reused for %d changes, want at least 4", kubectl, reused)
		}
	}
}

// TestLoadFileChangedDocsSyntaxError checks that a YAML syntax error in a
// changed document is reported at its line in the file, as a load of the
// whole file reports it, also when it is on the document's first line
// (where the YAML parser gives no line).
func TestLoadFileChangedDocsSyntaxError(t *testing.T) {
	doc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: {ports: [{port: 80}]}\n"
	}
	base := doc("a") + "---\n" + doc("b") + "---\n" + doc("c")
	for _, text := range []string{
		doc("a") + "--- !<x\n" + doc("b") + "---\n" + doc("c"),
		doc("a") + "---\n" + doc("b") + "--- " + strings.Repeat("- ", 10001) + "1\n",
		doc("a") + "---\n" + strings.Replace(doc("b"), "name: b", "name: !<x b", 1) + "---\n" + doc("c"),
	} {
		w, f, _ := watchedFile(t, "f.yaml", base)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		l, got := w.loadFile(f)
		if l != nil || got.Err() == nil {
			t.Fatalf("%q: loadFile took it: %v", text, got)
		}
		_, want := load.LoadFiles([]load.File{{Name: f, Data: []byte(text)}}, w.loadOptions())
		if diff := cmp.Diff(want.Error(), got.Error()); diff != "" {
			t.Errorf("%q: diagnostics differ (-whole load +loadFile):\n%s", text, diff)
		}
	}
}

// TestLoadFileNotRegular checks that a changed manifest that is not a
// regular file (a named pipe, a link to a device) is named, not read: the
// watcher would wait for a writer, or read /dev/zero to the size limit.
func TestLoadFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{fifo, zero} {
		w := &watcher{in: &inputFlags{}}
		done := make(chan struct{})
		var l *fileLoad
		var diags diag.List
		go func() {
			l, diags = w.loadFile(f)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: loadFile did not return", f)
		}
		want := f + ": cannot read input: not a regular file: a watched manifest must be a regular file (or a link to one)"
		if l != nil || diags.Error() != want {
			t.Errorf("%s: loaded %v, diagnostics %q; want %q", f, l != nil, diags.Error(), want)
		}
	}
}

// TestLoadFileGivenUp checks that a change the watcher gives up after
// loading it (giveUp) leaves the file's documents at their old lines, so
// that the next change is loaded as only its changed documents, and
// right.
func TestLoadFileGivenUp(t *testing.T) {
	base := synthText(t, synth.Config{Services: 30, Endpoints: 2})
	w, f, in := watchedFile(t, "cluster.yaml", base)

	// Two lines near the top: every later document moves down.
	given := strings.Replace(base, "- addresses: [\"10.128.0.1\"]\n", "- addresses: [\"10.128.0.1\"]\n  conditions: {ready: true}\n- addresses: [\"10.128.7.7\"]\n", 1)
	if err := os.WriteFile(f, []byte(given), 0o644); err != nil {
		t.Fatal(err)
	}
	l, diags := w.loadFile(f)
	if l == nil || diags.Err() != nil || l.whole || l.unshift == nil {
		t.Fatalf("the first change: %v (want its documents moved)", diags)
	}
	w.giveUp(map[string]*fileLoad{f: l})
	orig, _ := load.LoadFiles([]load.File{{Name: f, Data: []byte(base)}}, w.loadOptions())
	if diff := cmp.Diff(orig, in); diff != "" {
		t.Fatalf("after giveUp the documents are not the old load's (-old +kept):\n%s", diff)
	}

	// The next change, made to the version the watcher kept.
	next := strings.Replace(base, "port: 80\n", "port: 8080\n", 2)
	if err := os.WriteFile(f, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	l, diags = w.loadFile(f)
	if l == nil || diags.Err() != nil || l.whole {
		t.Fatalf("the next change is not loaded as its changed documents: %v", diags)
	}
	want, _ := load.LoadFiles([]load.File{{Name: f, Data: []byte(next)}}, w.loadOptions())
	if diff := cmp.Diff(want, l.in); diff != "" {
		t.Fatalf("the next change differs from a whole load (-whole +loadFile):\n%s", diff)
	}
	checkSpans(t, f, []byte(next), l.spans)
}

// TestResplit checks resplit, whose two ends are hashed at once, against
// a fresh split: edits of a stream of identical documents (where the
// spans still at the start and those still at the end overlap) and 300
// random edits of a stream of numbered ones.
func TestResplit(t *testing.T) {
	same := strings.Repeat("a: 1\n---\n", 50)
	var numbered strings.Builder
	for i := range 40 {
		fmt.Fprintf(&numbered, "---\nn: %d\nv: [%d, %d]\n", i, i*i, i%7)
	}
	check := func(t *testing.T, base, next string) {
		t.Helper()
		old, ok := splitDocs("f.yaml", []byte(base))
		if !ok {
			t.Fatalf("%q does not split", base)
		}
		now, dc, ok := resplit("f.yaml", []byte(next), old, nil)
		want, wok := splitDocs("f.yaml", []byte(next))
		if !ok {
			if wok {
				t.Fatalf("resplit of %q gave up; a fresh split does not", next)
			}
			return
		}
		if diff := cmp.Diff(want, now, cmp.AllowUnexported(docSpan{})); diff != "" {
			t.Fatalf("resplit of %q differs from a fresh split (-fresh +resplit):\n%s", next, diff)
		}
		if dc.lo > dc.hiOld || dc.lo > dc.hiNew || len(old)-dc.hiOld != len(now)-dc.hiNew {
			t.Fatalf("resplit of %q: change %+v of %d spans to %d", next, dc, len(old), len(now))
		}
	}
	for _, c := range []struct{ name, base, next string }{
		{"a document added in the middle", same, same[:9*25] + "a: 1\n---\n" + same[9*25:]},
		{"a document removed from the middle", same, same[:9*25] + same[9*26:]},
		{"a document added at the end", same, same + "a: 1\n---\n"},
		{"the first document changed", same, "a: 2\n" + same[5:]},
		{"the last document changed", same, same[:len(same)-9] + "a: 2\n---\n"},
		{"the same bytes", same, same},
		{"all but one document gone", same, same[:9]},
	} {
		t.Run(c.name, func(t *testing.T) { check(t, c.base, c.next) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	base := numbered.String()
	for i := range 300 {
		at := rng.IntN(len(base) + 1)
		cut := min(len(base)-at, rng.IntN(40))
		ins := []string{"", "x", "\n", "---\n", "n: 99\n", "---\nm: 1\n", "7"}[rng.IntN(7)]
		next := base[:at] + ins + base[at+cut:]
		t.Run(fmt.Sprint("random ", i), func(t *testing.T) { check(t, base, next) })
		if _, ok := splitDocs("f.yaml", []byte(next)); ok && rng.IntN(2) == 0 {
			base = next
		}
	}
}

// TestReadHalves checks readHalves on both sides of halvesMin: the bytes
// of the file, and false when it holds more or fewer than expected.
func TestReadHalves(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{10, halvesMin - 1, halvesMin, halvesMin + 7} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + i>>11)
		}
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			size int
			ok   bool
		}{{n, true}, {n + 1, false}, {n - 1, false}} {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, tc.size+1)
			ok := readHalves(fh, b)
			fh.Close()
			if ok != tc.ok {
				t.Errorf("file of %d bytes read as %d: ok %v, want %v", n, tc.size, ok, tc.ok)
			}
			if ok && !bytes.Equal(b[:tc.size], data) {
				t.Errorf("file of %d bytes: other bytes read", n)
			}
		}
	}
}
