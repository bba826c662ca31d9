//go:build linux

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestNewFileMode checks that a file -o creates gets 0666 less the umask,
// as a shell's redirection gives it, and that a file it replaces keeps its
// mode whatever the umask.
func TestNewFileMode(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	for _, tc := range []struct {
		name   string
		before fs.FileMode // of the file -o replaces; 0: none
		umask  int
		want   fs.FileMode
	}{
		{"new, umask 022", 0, 0o022, 0o644},
		{"new, umask 077", 0, 0o077, 0o600},
		{"new, umask 002", 0, 0o002, 0o664},
		{"new, umask 0", 0, 0, 0o666},
		{"replaced, umask 077", 0o644, 0o077, 0o644},
		{"replaced, umask 0", 0o600, 0, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.nft")
			if tc.before != 0 {
				writeFile(t, filepath.Dir(out), "out.nft", "previous\n")
				if err := os.Chmod(out, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			old := syscall.Umask(tc.umask)
			if got := newFileMode(); got != 0o666&^fs.FileMode(tc.umask) {
				t.Errorf("newFileMode() = %v under umask %03o", got, tc.umask)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"compile", "-f", good, "-o", out}, nil, &stdout, &stderr)
			syscall.Umask(old)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != tc.want {
				t.Errorf("mode %v, want %v", st.Mode(), tc.want)
			}
		})
	}
}
