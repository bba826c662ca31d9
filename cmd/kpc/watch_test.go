//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/internal/nstest"
	"kpc/internal/synth"
)

// splitCluster writes a synthetic cluster to dir as kubectl users keep
// manifests: the node context in context.yaml, and each Service with its
// EndpointSlices in a file named after the Service.
func splitCluster(t *testing.T, dir string, c synth.Config) {
	t.Helper()
	text := synthText(t, c)
	kind := regexp.MustCompile(`(?m)^kind: (\S+)`)
	name := regexp.MustCompile(`(?m)^  name: (\S+)`)
	label := regexp.MustCompile(`kubernetes.io/service-name: (\S+)`)
	files := map[string][]string{}
	var order []string
	for _, doc := range strings.Split(text, "\n---\n") {
		file := "context"
		switch kind.FindStringSubmatch(doc)[1] {
		case "Service":
			file = name.FindStringSubmatch(doc)[1]
		case "EndpointSlice":
			file = label.FindStringSubmatch(doc)[1]
		}
		if files[file] == nil {
			order = append(order, file)
		}
		files[file] = append(files[file], strings.Trim(doc, "\n"))
	}
	for _, f := range order {
		writeFile(t, dir, f+".yaml", strings.Join(files[f], "\n---\n")+"\n")
	}
}

// edit rewrites a file of dir as an editor saves it: a new file renamed
// over the old one.
func edit(t *testing.T, dir, name string, change func(string) string) {
	t.Helper()
	path := filepath.Join(dir, name)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := change(string(old))
	if text == string(old) {
		t.Fatalf("%s: the edit changes nothing", name)
	}
	tmp := filepath.Join(dir, "."+name+".swp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fingerprintElem matches the fingerprint element of a listing, which
// differs between an update and a full load.
var fingerprintElem = regexp.MustCompile(`1 comment "[^"]*"`)

// watchListing is the normalized listing of a namespace's ruleset.
func watchListing(t *testing.T, ns string) string {
	t.Helper()
	l := nstest.SortElements(nstest.SortBlocks(nstest.Run(t, ns, "", "nft", "list", "ruleset")))
	return fingerprintElem.ReplaceAllString(l, "FP")
}

// TestApplyWatch runs kpc apply --watch on a directory of manifests in a
// namespace of its own and changes the files: after each change it waits
// for the apply and checks how it was applied (an update of the changed
// Services, or the whole input) and that the kernel's tables list exactly
// as a fresh nft -f of kpc compile's output of the same files.
func TestApplyWatch(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	splitCluster(t, dir, synth.Config{Services: 24, Endpoints: 3})
	h := startWatch(t, dir)
	h.wait("start", "full")
	h.check("start")

	steps := []watchStep{
		{"an endpoint moves", func() {
			edit(t, dir, "svc-1.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.129.`, 1) })
		}, "update"},
		{"a port changes", func() {
			edit(t, dir, "svc-2.yaml", func(s string) string { return strings.Replace(s, "port: 80\n", "port: 8888\n", 1) })
		}, "update"},
		{"a Service goes", func() {
			if err := os.Remove(filepath.Join(dir, "svc-3.yaml")); err != nil {
				t.Fatal(err)
			}
		}, "update"},
		{"a Service comes", func() {
			edit(t, dir, "svc-4.yaml", func(s string) string {
				return s + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: ns-4\nspec:\n" +
					"  clusterIP: 10.96.200.1\n  ports:\n  - port: 53\n    protocol: UDP\n"
			})
		}, "update"},
		{"only a comment changes", func() {
			edit(t, dir, "svc-5.yaml", func(s string) string { return "# reviewed\n" + s })
		}, "unchanged"},
		{"a file breaks", func() {
			edit(t, dir, "svc-6.yaml", func(s string) string { return strings.Replace(s, "port: 80\n", "port: 99999\n", 1) })
		}, "invalid"},
		{"the file is mended", func() {
			edit(t, dir, "svc-6.yaml", func(s string) string { return strings.Replace(s, "port: 99999\n", "port: 81\n", 1) })
		}, "full"},
		{"a Service takes another's cluster IP", func() {
			edit(t, dir, "svc-4.yaml", func(s string) string { return strings.Replace(s, "10.96.200.1", "10.96.0.8", 1) })
		}, "invalid"},
		{"the cluster IP is given back", func() {
			edit(t, dir, "svc-4.yaml", func(s string) string { return strings.Replace(s, "10.96.0.8", "10.96.200.2", 1) })
		}, "full"},
		{"the node context moves down a line", func() {
			edit(t, dir, "context.yaml", func(s string) string { return "# the node this applies to\n" + s })
		}, "unchanged"},
		{"the node context changes", func() {
			edit(t, dir, "context.yaml", func(s string) string { return strings.Replace(s, "10.128.0.0/9", "10.128.0.0/10", 1) })
		}, "full"},
		{"a Service without a cluster IP comes", func() {
			writeFile(t, dir, "alloc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: alloc\n  namespace: ns-1\nspec:\n  ports:\n  - port: 80\n")
		}, "full"},
		{"a change while kpc allocates", func() {
			edit(t, dir, "svc-7.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.130.`, 1) })
		}, "full"},
		{"the allocated Service goes", func() {
			if err := os.Remove(filepath.Join(dir, "alloc.yaml")); err != nil {
				t.Fatal(err)
			}
		}, "full"},
		{"updates again", func() {
			edit(t, dir, "svc-8.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.131.`, 1) })
		}, "update"},
		// svc-14 is the last Service with affinity: without it the filter
		// chains no longer jump to sticky-update, which an update cannot
		// change; the full apply keeps the Services' parts.
		{"the last Service with affinity drops it", func() {
			edit(t, dir, "svc-14.yaml", func(s string) string { return strings.Replace(s, "  sessionAffinity: ClientIP\n", "", 1) })
		}, "full-kept"},
		{"affinity comes back", func() {
			edit(t, dir, "svc-14.yaml", func(s string) string { return strings.Replace(s, "spec:\n", "spec:\n  sessionAffinity: ClientIP\n", 1) })
		}, "full-kept"},
		{"updates after a full apply that kept the parts", func() {
			edit(t, dir, "svc-9.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.132.`, 1) })
		}, "update"},
		// A commit to kpc's table that is not the watcher's makes the next
		// change a full apply, which replaces what was changed by hand;
		// then changes are updates again. Commits to other tables, which
		// the watcher follows, leave its updates alone.
		{"a change after a rule was added by hand", func() {
			nstest.Run(t, h.ns, "add rule ip kpc services counter comment \"by hand\"\n", "nft", "-f", "-")
			edit(t, dir, "svc-10.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.133.`, 1) })
		}, "full-kept"},
		{"a change after commits to another table", func() {
			nstest.Run(t, h.ns, "add table ip other\n", "nft", "-f", "-")
			nstest.Run(t, h.ns, "delete table ip other\n", "nft", "-f", "-")
			edit(t, dir, "svc-11.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.134.`, 1) })
		}, "update"},
		{"a change after an element was added by hand", func() {
			nstest.Run(t, h.ns, "add element ip kpc cluster-ips { 192.0.2.99 }\n", "nft", "-f", "-")
			edit(t, dir, "svc-12.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.135.`, 1) })
		}, "full-kept"},
		{"updates after the commits by others", func() {
			edit(t, dir, "svc-13.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.136.`, 1) })
		}, "update"},
	}
	h.run(steps)
}

// TestApplyWatchServiceRanges runs the watcher on IPv4 Services with
// Service ranges of both families: each Service's share holds the IPv6
// table kept for its range (Union.Share keeps one copy), and an IPv6
// Service that comes and goes is an update of that table.
func TestApplyWatchServiceRanges(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	splitCluster(t, dir, synth.Config{Services: 8, Endpoints: 2, Plain: true})
	writeFile(t, dir, "ranges.yaml", "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: kubernetes\n"+
		"spec:\n  cidrs: [10.96.0.0/12, \"fd00:10:96::/108\"]\n")
	h := startWatch(t, dir)
	h.wait("start", "full")
	h.check("start")
	if !strings.Contains(watchListing(t, h.ns), "ip6 daddr fd00:10:96::/108 drop") {
		t.Fatal("start: no IPv6 table dropping the IPv6 range")
	}
	v6 := "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: six\n  namespace: ns-1\nspec:\n" +
		"  clusterIP: fd00:10:96::60\n  ipFamilies: [IPv6]\n  ports:\n  - port: 53\n    protocol: UDP\n"
	h.run([]watchStep{
		{"an endpoint moves", func() {
			edit(t, dir, "svc-1.yaml", func(s string) string { return strings.Replace(s, `"10.128.`, `"10.129.`, 1) })
		}, "update"},
		{"an IPv6 Service comes", func() {
			edit(t, dir, "svc-2.yaml", func(s string) string { return s + v6 })
		}, "update"},
		{"the IPv6 Service goes", func() {
			edit(t, dir, "svc-2.yaml", func(s string) string { return strings.Replace(s, v6, "", 1) })
		}, "update"},
	})
}

// watchStep is one change of a watch test and what it must cause.
type watchStep struct {
	name string
	do   func()
	want string
}

// watchHarness runs kpc apply --watch on paths in a namespace of its own.
type watchHarness struct {
	t         *testing.T
	ns, fresh string
	path      string
	mu        sync.Mutex
	out, errs bytes.Buffer
	done      chan string
}

// startWatch starts kpc apply --watch on path; it stops with the test.
func startWatch(t *testing.T, path string) *watchHarness {
	h := &watchHarness{t: t, ns: nstest.New(t, "kpcw"), fresh: nstest.New(t, "kpcw"), path: path, done: make(chan string, 16)}
	w := &watcher{paths: []string{path}, in: &inputFlags{},
		out: &lockedWriter{mu: &h.mu, w: &h.out}, errw: &lockedWriter{mu: &h.mu, w: &h.errs}}
	w.applied = func(what string) {
		if err := keysConsistent(w); err != nil {
			t.Errorf("after an apply done as %q: %v", what, err)
		}
		if w.u != nil {
			for f, spans := range w.docs {
				if cap(w.readBuf) <= spans[0].size {
					t.Errorf("after an apply done as %q: a read buffer of %d bytes for %s of %d", what, cap(w.readBuf), f, spans[0].size)
				}
			}
		}
		h.done <- what
	}
	w.copts.SkipSelfCheck = true
	w.nl.NetNS = nstest.Path(h.ns)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("run: %v", err)
		}
		h.mu.Lock()
		t.Logf("kpc apply --watch said:\n%s", h.out.String())
		h.mu.Unlock()
	})
	return h
}

// wait waits for the next apply and checks how it was done.
func (h *watchHarness) wait(step, want string) {
	h.t.Helper()
	select {
	case got := <-h.done:
		if got != want {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("%s: applied as %q, want %q\nstdout:\n%s\nstderr:\n%s", step, got, want, h.out.String(), h.errs.String())
		}
	case <-time.After(20 * time.Second):
		h.t.Fatalf("%s: nothing applied in 20 s", step)
	}
}

// check compares the kernel with a fresh load of kpc compile's output.
func (h *watchHarness) check(step string) {
	h.t.Helper()
	code, script, stderr := kpcRun("compile", "-f", h.path)
	if code != exitOK {
		h.t.Fatalf("%s: kpc compile: exit %d: %s", step, code, stderr)
	}
	nstest.Run(h.t, h.fresh, script, "nft", "-f", "-")
	if diff := cmp.Diff(watchListing(h.t, h.fresh), watchListing(h.t, h.ns)); diff != "" {
		h.t.Fatalf("%s: the kernel differs from a fresh load (-fresh +watched):\n%s", step, diff)
	}
}

// run makes each change and checks it: the kernel lists as a fresh load,
// or, for an invalid step, as it did before.
func (h *watchHarness) run(steps []watchStep) {
	h.t.Helper()
	last := watchListing(h.t, h.ns)
	for _, s := range steps {
		s.do()
		h.wait(s.name, s.want)
		if s.want == "invalid" {
			if diff := cmp.Diff(last, watchListing(h.t, h.ns)); diff != "" {
				h.t.Fatalf("%s: the kernel changed (-before +after):\n%s", s.name, diff)
			}
			continue
		}
		h.check(s.name)
		last = watchListing(h.t, h.ns)
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// watchOneFile starts the watcher on one file of a synthetic cluster in a
// directory of its own, and checks its first, whole apply.
func watchOneFile(t *testing.T, c synth.Config) (h *watchHarness, dir, file, text string) {
	t.Helper()
	nstest.Require(t, "nft")
	text = synthText(t, c)
	dir = t.TempDir()
	file = writeFile(t, dir, "cluster.yaml", text)
	h = startWatch(t, file)
	h.wait("start", "full")
	h.check("start")
	return h, dir, file, text
}

// TestApplyWatchOneFile watches one file of a whole synthetic cluster,
// node context included, as kpc gen writes it: each change loads only
// the documents that changed, and the kernel must still list as a fresh
// load of the whole file.
func TestApplyWatchOneFile(t *testing.T) {
	h, dir, file, _ := watchOneFile(t, synth.Config{Services: 40, Endpoints: 3})
	change := func(f func(string) string) func() {
		return func() { edit(t, dir, "cluster.yaml", f) }
	}
	after := func(s, name, old, new string) string {
		i := strings.Index(s, "  name: "+name+"\n")
		return s[:i] + strings.Replace(s[i:], old, new, 1)
	}
	h.run([]watchStep{
		{"an endpoint moves", change(func(s string) string { return after(s, "svc-30-1", `"10.128.`, `"10.129.`) }), "update"},
		{"a second EndpointSlice comes after the first", change(func(s string) string {
			i := strings.Index(s, "  name: svc-31-1\n")
			start := strings.LastIndex(s[:i], "---\n")
			end := i + strings.Index(s[i:], "---\n")
			second := strings.Replace(s[start:end], "name: svc-31-1", "name: svc-31-2", 1)
			second = regexp.MustCompile(`"10\.[0-9]+\.`).ReplaceAllString(second, `"10.77.`)
			return s[:end] + second + s[end:]
		}), "update"},
		{"the first of the two changes", change(func(s string) string { return after(s, "svc-31-1", `"10.129.`, `"10.132.`) }), "update"},
		{"an endpoint is added near the top", change(func(s string) string {
			return after(s, "svc-1-1", "- addresses: [", "- addresses: [\"10.130.0.1\"]\n  conditions: {ready: true}\n- addresses: [")
		}), "update"},
		{"a port changes after it", change(func(s string) string { return after(s, "svc-35", "port: 80\n", "port: 8888\n") }), "update"},
		{"a comment above the node", change(func(s string) string { return "# the cluster\n" + s }), "unchanged"},
		{"a Service breaks", change(func(s string) string { return after(s, "svc-20", "port: 80\n", "port: 99999\n") }), "invalid"},
		{"it is mended", change(func(s string) string { return after(s, "svc-20", "port: 99999\n", "port: 90\n") }), "full"},
		{"a Service is appended", change(func(s string) string {
			return s + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: ns-1\nspec:\n" +
				"  clusterIP: 10.96.200.1\n  ports:\n  - port: 53\n    protocol: UDP\n"
		}), "update"},
		{"the node context changes", change(func(s string) string { return strings.Replace(s, "10.128.0.0/9", "10.128.0.0/10", 1) }), "full"},
		{"updates again", change(func(s string) string { return after(s, "svc-10-1", `"10.128.`, `"10.131.`) }), "update"},
		{"an address twice in a slice draws a warning", change(func(s string) string {
			i := strings.Index(s, "  name: svc-12-1\n")
			a := i + strings.Index(s[i:], "- addresses: [") + len("- addresses: [")
			first := s[a : a+strings.Index(s[a:], "]")]
			b := a + strings.Index(s[a:], "- addresses: [") + len("- addresses: [")
			return s[:b] + first + s[b+strings.Index(s[b:], "]"):]
		}), "update"},
	})
	// The warning is placed at its field from the bytes the watcher read,
	// as kpc compile places it reading the file.
	_, _, stderr := kpcRun("compile", "-f", file)
	i := strings.Index(stderr, "warning: EndpointSlice ns-")
	if i < 0 {
		t.Fatalf("kpc compile gives no warning:\n%s", stderr)
	}
	want := stderr[strings.LastIndexByte(stderr[:i], '\n')+1 : i+strings.IndexByte(stderr[i:], '\n')]
	h.mu.Lock()
	defer h.mu.Unlock()
	if !strings.Contains(h.errs.String(), want) {
		t.Errorf("kpc apply --watch did not say %q:\n%s", want, h.errs.String())
	}
}

// TestApplyWatchBareName watches a file named without a directory, in
// the working directory, whose events the file watcher names "./f".
func TestApplyWatchBareName(t *testing.T) {
	nstest.Require(t, "nft")
	text := synthText(t, synth.Config{Services: 10, Endpoints: 2})
	dir := t.TempDir()
	writeFile(t, dir, "cluster.yaml", text)
	t.Chdir(dir)
	h := startWatch(t, "cluster.yaml")
	h.wait("start", "full")
	h.check("start")
	h.run([]watchStep{
		{"an endpoint moves", func() {
			edit(t, dir, "cluster.yaml", func(s string) string {
				i := strings.Index(s, "  name: svc-3-1\n")
				return s[:i] + strings.Replace(s[i:], `"10.128.`, `"10.129.`, 1)
			})
		}, "update"},
	})
}

// TestApplyWatchTruncated checks that a watched file emptied to be
// written again (a shell's "kubectl get ... > file" truncates it first)
// does not remove every Service from the kernel: an input without a
// Service, EndpointSlice or Endpoints is refused, as kpc apply refuses it.
func TestApplyWatchTruncated(t *testing.T) {
	h, dir, _, text := watchOneFile(t, synth.Config{Services: 10, Endpoints: 2})
	h.run([]watchStep{
		{"the file is emptied", func() { writeFile(t, dir, "cluster.yaml", "") }, "invalid"},
		{"and written again", func() { writeFile(t, dir, "cluster.yaml", text) }, "unchanged"},
		{"it is emptied but for a comment", func() { writeFile(t, dir, "cluster.yaml", "# soon\n") }, "invalid"},
		{"an endpoint moves", func() { writeFile(t, dir, "cluster.yaml", strings.Replace(text, `"10.128.`, `"10.129.`, 1)) }, "update"},
	})
}

// TestApplyWatchWriter checks that a file written in place in several
// writes is applied once its writer closes it, not half-written: here
// its first half is a valid input of fewer Services.
func TestApplyWatchWriter(t *testing.T) {
	h, _, file, text := watchOneFile(t, synth.Config{Services: 10, Endpoints: 2})
	next := strings.Replace(text, `"10.128.`, `"10.129.`, 1)
	half := strings.Index(next, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-5\n")
	h.run([]watchStep{{"the file is written in two halves", func() {
		fh, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.WriteString(next[:half]); err != nil {
			t.Fatal(err)
		}
		select {
		case what := <-h.done:
			t.Fatalf("applied as %q while the file was half written", what)
		case <-time.After(300 * time.Millisecond):
		}
		if !beingWritten(file) {
			t.Error("beingWritten: false for a file open for writing")
		}
		if _, err := fh.WriteString(next[half:]); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
		if beingWritten(file) {
			t.Error("beingWritten: true for a file closed")
		}
	}, "update"}})
}

// TestApplyWatchConfigMap watches a directory mounted from a ConfigMap:
// its file is a link through the hidden link "..data" to a hidden
// directory, and the kubelet updates it by making a new hidden directory
// and replacing "..data" (its atomic writer); the file's own link does not
// change. The directory is also given through "..data", a link to a
// directory.
func TestApplyWatchConfigMap(t *testing.T) {
	nstest.Require(t, "nft")
	text := synthText(t, synth.Config{Services: 10, Endpoints: 2})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..2026_11_28_01_00_00.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "..2026_11_28_01_00_00.1/cluster.yaml", text)
	for link, to := range map[string]string{"..data": "..2026_11_28_01_00_00.1", "cluster.yaml": "..data/cluster.yaml"} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// update writes the ConfigMap's next version as the kubelet does.
	version := 1
	update := func(change func(string) string) func() {
		return func() {
			old := fmt.Sprintf("..2026_11_28_01_00_00.%d", version)
			version++
			next := fmt.Sprintf("..2026_11_28_01_00_00.%d", version)
			text, err := os.ReadFile(filepath.Join(dir, old, "cluster.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, next), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, next+"/cluster.yaml", change(string(text)))
			if err := os.Symlink(next, filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	moved := func(svc, to string) func(string) string {
		return func(s string) string {
			i := strings.Index(s, "  name: "+svc+"\n")
			return s[:i] + strings.Replace(s[i:], `"10.128.`, to, 1)
		}
	}
	for _, path := range []string{dir, filepath.Join(dir, "..data")} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			h := startWatch(t, path)
			h.wait("start", "full")
			h.check("start")
			if path != dir {
				// Through "..data" the file is not a link: edit it there.
				h.run([]watchStep{{"an endpoint moves", func() {
					edit(t, path, "cluster.yaml", moved("svc-4-1", `"10.130.`))
				}, "update"}})
				return
			}
			h.run([]watchStep{
				{"the ConfigMap is updated", update(moved("svc-3-1", `"10.129.`)), "update"},
				{"and again", update(moved("svc-5-1", `"10.129.`)), "update"},
			})
		})
	}
}

// keysConsistent checks that the watcher's Service keys hold what its
// files do: for every key, the documents of the files, in file order
// (as a gathering of every file gives them), and the files they are in.
func keysConsistent(w *watcher) error {
	if w.u == nil {
		return nil // the next change reads the whole input again
	}
	all := map[string]bool{}
	for _, in := range w.files {
		markKeys(in, all)
	}
	want := map[string]*watchKey{}
	for id := range all {
		want[id] = &watchKey{}
	}
	for _, f := range sortedFiles(w.files) {
		collect(want, w.files[f], all)
	}
	if len(want) != len(w.keys) {
		return fmt.Errorf("%d Service keys, the files hold %d", len(w.keys), len(want))
	}
	for id, k := range want {
		got := w.keys[id]
		if got == nil {
			return fmt.Errorf("key %s is missing", id)
		}
		if !slices.Equal(got.svcs, k.svcs) || !slices.Equal(got.slices, k.slices) || !slices.Equal(got.eps, k.eps) {
			return fmt.Errorf("key %s holds other documents than the files", id)
		}
		files := map[string]bool{}
		for _, s := range k.svcs {
			files[s.Pos.File] = true
		}
		for _, s := range k.slices {
			files[s.Pos.File] = true
		}
		for _, e := range k.eps {
			files[e.Pos.File] = true
		}
		if !maps.Equal(files, w.where[id]) {
			return fmt.Errorf("key %s is in files %v, recorded in %v", id, files, w.where[id])
		}
	}
	return nil
}

// TestApplyWatchRandomEdits makes 30 random edits of one file of a whole
// synthetic cluster, each applied by the watcher as soon as it is saved:
// endpoint addresses changed, endpoints added and removed (which move
// every later document down or up), comment lines put in. After each,
// the kernel must list as a fresh load of the file, and every Service key
// must hold what the file does (keysConsistent, in the harness).
func TestApplyWatchRandomEdits(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	file := writeFile(t, dir, "cluster.yaml", synthText(t, synth.Config{Services: 40, Endpoints: 3}))
	h := startWatch(t, file)
	h.wait("start", "full")
	entry := regexp.MustCompile(`- addresses: \["10\.[0-9.]+"\]\n  nodeName: node-[0-9]+\n  conditions: \{ready: true\}\n`)
	rng := rand.New(rand.NewPCG(7, 11))
	modes := map[string]int{}
	for i := range 30 {
		var what string
		edit(t, dir, "cluster.yaml", func(s string) string {
			all := entry.FindAllStringIndex(s, -1)
			at := all[rng.IntN(len(all))]
			addr := fmt.Sprintf("10.200.%d.%d", i/200, i%200+1)
			switch k := rng.IntN(4); {
			case k == 0:
				what = "an address changes"
				return s[:at[0]] + `- addresses: ["` + addr + `"]` + s[at[0]+strings.Index(s[at[0]:], "]")+1:]
			case k == 1:
				what = "an endpoint is added"
				return s[:at[1]] + `- addresses: ["` + addr + "\"]\n  nodeName: node-1\n  conditions: {ready: true}\n" + s[at[1]:]
			case k == 2 && strings.HasPrefix(s[at[1]:], "- addresses: "):
				what = "an endpoint is removed"
				return s[:at[0]] + s[at[1]:]
			default:
				what = "a comment line comes"
				return s[:at[0]] + "# edit " + addr + "\n" + s[at[0]:]
			}
		})
		step := fmt.Sprintf("edit %d (%s)", i, what)
		select {
		case got := <-h.done:
			if got == "invalid" {
				h.mu.Lock()
				errs := h.errs.String()
				h.mu.Unlock()
				t.Fatalf("%s: the input did not load or compile:\n%s", step, errs)
			}
			modes[got]++
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing applied in 20 s", step)
		}
		h.check(step)
	}
	if modes["update"] == 0 {
		t.Errorf("no edit was sent as an update: %v", modes)
	}
	t.Logf("applied as: %v", modes)
}

// TestSymlinked checks which files the watcher reads again when a hidden
// name of their directory changes: the links whose target goes through
// that name.
func TestSymlinked(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "plain.yaml", "")
	links := map[string]string{
		"cm.yaml":    "..data/cm.yaml",
		"store.yaml": "./.store/store.yaml",
		"up.yaml":    "../up.yaml",
		"abs.yaml":   "/etc/abs.yaml",
		"sub.yaml":   "sub/sub.yaml",
	}
	var files []string
	for link, to := range links {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, link))
	}
	files = append(files, filepath.Join(dir, "plain.yaml"), filepath.Join(dir, "cm.yaml"))
	want := map[string][]viaLink{dir: {{filepath.Join(dir, "cm.yaml"), "..data"}, {filepath.Join(dir, "store.yaml"), ".store"}}}
	if diff := cmp.Diff(want, symlinked(files), cmp.AllowUnexported(viaLink{})); diff != "" {
		t.Errorf("symlinked (-want +got):\n%s", diff)
	}
}
