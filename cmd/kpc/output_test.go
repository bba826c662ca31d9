package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompileFamilyFilesAtomic checks that -o PATH with Services of both
// families puts PATH.ipv4 and PATH.ipv6 in place both or neither: when
// either cannot be, both targets keep what they held (or stay absent) and
// no temporary file is left; when both can, both are replaced.
func TestCompileFamilyFilesAtomic(t *testing.T) {
	dual, err := filepath.Abs(filepath.Join("..", "..", "golden", "testdata", "dual-stack", "input.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := func(name, data string, mode fs.FileMode) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Chmod(writeFile(t, dir, name, data), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	directory := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	immutable := func(name, data string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := writeFile(t, dir, name, data)
			if err := setImmutable(p, true); err != nil {
				t.Skipf("cannot make %s immutable: %v", name, err)
			}
			t.Cleanup(func() { setImmutable(p, false) })
		}
	}
	tests := []struct {
		name  string
		setup []func(t *testing.T, dir string) // what the directory holds before
		code  int
		modes map[string]fs.FileMode // on success, of x.ipv4 and x.ipv6
	}{
		{"directory in the way of the second file", []func(*testing.T, string){file("x.ipv4", "OLD4\n", 0o640), directory("x.ipv6")}, exitInvalid, nil},
		{"directory in the way of the first file", []func(*testing.T, string){directory("x.ipv4"), file("x.ipv6", "OLD6\n", 0o600)}, exitInvalid, nil},
		{"second file immutable", []func(*testing.T, string){file("x.ipv4", "OLD4\n", 0o640), immutable("x.ipv6", "OLD6\n")}, exitInvalid, nil},
		{"second file immutable, no first file", []func(*testing.T, string){immutable("x.ipv6", "OLD6\n")}, exitInvalid, nil},
		{"first file immutable", []func(*testing.T, string){immutable("x.ipv4", "OLD4\n"), file("x.ipv6", "OLD6\n", 0o600)}, exitInvalid, nil},
		{"both replaced, their modes kept", []func(*testing.T, string){file("x.ipv4", "OLD4\n", 0o640), file("x.ipv6", "OLD6\n", 0o600)}, exitOK,
			map[string]fs.FileMode{"x.ipv4": 0o640, "x.ipv6": 0o600}},
		{"both new", nil, exitOK, map[string]fs.FileMode{"x.ipv4": 0o644, "x.ipv6": 0o644}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, setup := range tc.setup {
				setup(t, dir)
			}
			before := snapshot(t, dir)
			var stdout, stderr bytes.Buffer
			code := run([]string{"compile", "--format", "iptables", "-f", dual, "-o", filepath.Join(dir, "x")}, nil, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr.String())
			}
			after := snapshot(t, dir)
			if code != exitOK {
				if !maps.Equal(before, after) {
					t.Errorf("after a failure the directory holds\n%v\nwant, as before,\n%v", after, before)
				}
				return
			}
			if names := slices.Sorted(maps.Keys(after)); !slices.Equal(names, []string{"x.ipv4", "x.ipv6"}) {
				t.Errorf("the directory holds %v, want x.ipv4 and x.ipv6 alone", names)
			}
			for name, family := range map[string]string{"x.ipv4": "(IPv4)", "x.ipv6": "(IPv6)"} {
				if !strings.Contains(after[name], family) {
					t.Errorf("%s was not replaced: %q", name, after[name])
				}
				if want := fmt.Sprintf("%v\n", tc.modes[name]); !strings.HasPrefix(after[name], want) {
					t.Errorf("%s has mode %s, want %s", name, strings.SplitN(after[name], "\n", 2)[0], tc.modes[name])
				}
			}
		})
	}
}

// snapshot describes each entry of dir: its type and, for a regular file,
// its mode and contents (a line of the mode, then the contents).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			m[e.Name()] = "directory"
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%v\n%s", st.Mode(), b)
	}
	return m
}

// TestCompileOutputMode checks that -o keeps the permission bits of the
// file it replaces (of a symbolic link's target, when it names one), and
// gives a new file those newFileMode gives (TestNewFileMode).
func TestCompileOutputMode(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	tests := []struct {
		name   string
		setup  func(t *testing.T) (out, file string) // -o, and the file it writes
		before fs.FileMode                           // of file, when it exists
		want   fs.FileMode
	}{
		{"replaced", func(t *testing.T) (string, string) {
			p := writeFile(t, dir, "replaced.nft", "previous\n")
			return p, p
		}, 0o640, 0o640},
		{"replaced through a symbolic link", func(t *testing.T) (string, string) {
			target := writeFile(t, dir, "target.nft", "previous\n")
			link := filepath.Join(dir, "link.nft")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link, target
		}, 0o600, 0o600},
		{"new", func(t *testing.T) (string, string) {
			p := filepath.Join(dir, "new.nft")
			return p, p
		}, 0, newFileMode()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, file := tc.setup(t)
			if tc.before != 0 {
				if err := os.Chmod(file, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"compile", "-f", good, "-o", out}, nil, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(file); !strings.Contains(string(b), "table ip kpc") {
				t.Errorf("not written: %q", b)
			}
			if st.Mode() != tc.want {
				t.Errorf("mode %v, want %v", st.Mode(), tc.want)
			}
		})
	}
}
