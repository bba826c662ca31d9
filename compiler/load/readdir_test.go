//go:build unix

package load

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// TestReadDirectoryOddFiles checks that a directory's manifests that are
// not regular files (nor links to one) are named, not read: a named pipe
// would wait for a writer, /dev/zero would be read to the size limit.
// Links to regular files are read; links that go nowhere or round in a
// loop name the problem; a loop of directory links is not followed.
func TestReadDirectoryOddFiles(t *testing.T) {
	dir := t.TempDir()
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(svc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{
		"zero.yaml": "/dev/zero", "dir.yaml": ".", "loop.yaml": "loop.yaml", "gone.yml": "nowhere.yaml",
		"up": "..", "b.yml": "a.yaml",
	} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	var in *api.Input
	var diags diag.List
	go func() {
		in, diags = Load([]string{dir}, nil, Options{})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Load did not return")
	}
	odd := ": cannot read input: not a regular file: a directory's manifests must be regular files (or links to them)"
	want := []string{
		dir + "/dir.yaml" + odd,
		dir + "/fifo.yaml" + odd,
		dir + "/gone.yml: cannot read input: open " + dir + "/gone.yml: no such file or directory",
		dir + "/loop.yaml: cannot read input: open " + dir + "/loop.yaml: too many levels of symbolic links",
		dir + "/zero.yaml" + odd,
	}
	if diff := cmp.Diff(want, diagStrings(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if len(in.Services) != 2 {
		t.Errorf("%d Services, want a.yaml's and its link's", len(in.Services))
	}
}

// TestReadDirectoryHidden checks that a directory's hidden files and
// directories are left out: a ConfigMap mounted as a directory reads once
// (its files are links through the hidden "..data" to a hidden directory),
// and a repository's ".github" workflows, an editor's lock file, are not
// manifests. A hidden path given itself is read.
func TestReadDirectoryHidden(t *testing.T) {
	dir := t.TempDir()
	svc := func(name string) []byte {
		return []byte("apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: {ports: [{port: 80}]}\n")
	}
	write := func(name string, data []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("..2026_11_28_01_00_00.1/web.yaml", svc("web"))
	write(".github/workflows/ci.yml", []byte("on: push\njobs: {}\n"))
	write(".hidden.yaml", svc("hidden"))
	for link, to := range map[string]string{"..data": "..2026_11_28_01_00_00.1", "web.yaml": "..data/web.yaml", ".#web.yaml": "root@host.1234"} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{dir, []string{"web"}},
		{filepath.Join(dir, ".hidden.yaml"), []string{"hidden"}},
		{filepath.Join(dir, "..data"), []string{"web"}},
	} {
		in, diags := Load([]string{tt.path}, nil, Options{})
		if len(diags) != 0 {
			t.Errorf("%s: %v", tt.path, diagStrings(diags))
		}
		var got []string
		for _, s := range in.Services {
			got = append(got, s.Metadata.Name)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Services (-want +got):\n%s", tt.path, diff)
		}
	}
}
