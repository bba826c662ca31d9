package main

import (
	"bytes"
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
	file := func(name, data string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { writeFile(t, dir, name, data) }
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
	}{
		{"directory in the way of the second file", []func(*testing.T, string){file("x.ipv4", "OLD4\n"), directory("x.ipv6")}, exitInvalid},
		{"directory in the way of the first file", []func(*testing.T, string){directory("x.ipv4"), file("x.ipv6", "OLD6\n")}, exitInvalid},
		{"second file immutable", []func(*testing.T, string){file("x.ipv4", "OLD4\n"), immutable("x.ipv6", "OLD6\n")}, exitInvalid},
		{"second file immutable, no first file", []func(*testing.T, string){immutable("x.ipv6", "OLD6\n")}, exitInvalid},
		{"first file immutable", []func(*testing.T, string){immutable("x.ipv4", "OLD4\n"), file("x.ipv6", "OLD6\n")}, exitInvalid},
		{"both replaced", []func(*testing.T, string){file("x.ipv4", "OLD4\n"), file("x.ipv6", "OLD6\n")}, exitOK},
		{"both new", nil, exitOK},
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
			}
		})
	}
}

// snapshot describes each entry of dir: its type and, for a regular file,
// its contents.
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
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}
