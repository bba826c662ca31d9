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
