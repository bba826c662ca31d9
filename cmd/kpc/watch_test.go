//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
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
	var b bytes.Buffer
	if err := synth.Write(&b, c); err != nil {
		t.Fatal(err)
	}
	kind := regexp.MustCompile(`(?m)^kind: (\S+)`)
	name := regexp.MustCompile(`(?m)^  name: (\S+)`)
	label := regexp.MustCompile(`kubernetes.io/service-name: (\S+)`)
	files := map[string][]string{}
	var order []string
	for _, doc := range strings.Split(b.String(), "\n---\n") {
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
	ns, fresh := nstest.New(t, "kpcw"), nstest.New(t, "kpcw")
	dir := t.TempDir()
	splitCluster(t, dir, synth.Config{Services: 24, Endpoints: 3})

	var mu sync.Mutex
	var out, errs bytes.Buffer
	done := make(chan string, 16)
	w := &watcher{paths: []string{dir}, in: &inputFlags{},
		out: &lockedWriter{mu: &mu, w: &out}, errw: &lockedWriter{mu: &mu, w: &errs},
		applied: func(what string) { done <- what }}
	w.copts.SkipSelfCheck = true
	w.nl.NetNS = nstest.Path(ns)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	wait := func(step, want string) {
		t.Helper()
		select {
		case got := <-done:
			if got != want {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: applied as %q, want %q\nstdout:\n%s\nstderr:\n%s", step, got, want, out.String(), errs.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: nothing applied in 20 s", step)
		}
	}
	// check compares the kernel with a fresh load of kpc compile's output.
	check := func(step string) {
		t.Helper()
		code, script, stderr := kpcRun("compile", "-f", dir)
		if code != exitOK {
			t.Fatalf("%s: kpc compile: exit %d: %s", step, code, stderr)
		}
		nstest.Run(t, fresh, script, "nft", "-f", "-")
		if diff := cmp.Diff(watchListing(t, fresh), watchListing(t, ns)); diff != "" {
			t.Fatalf("%s: the kernel differs from a fresh load (-fresh +watched):\n%s", step, diff)
		}
	}
	wait("start", "full")
	check("start")

	steps := []struct {
		name string
		do   func()
		want string
	}{
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
	}
	last := watchListing(t, ns)
	for _, s := range steps {
		s.do()
		wait(s.name, s.want)
		if s.want == "invalid" {
			// The kernel keeps the last valid input's tables.
			if diff := cmp.Diff(last, watchListing(t, ns)); diff != "" {
				t.Fatalf("%s: the kernel changed (-before +after):\n%s", s.name, diff)
			}
			continue
		}
		check(s.name)
		last = watchListing(t, ns)
	}
	mu.Lock()
	t.Logf("kpc apply --watch said:\n%s", out.String())
	mu.Unlock()
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
