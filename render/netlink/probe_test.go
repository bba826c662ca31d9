//go:build linux

package netlink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpc/internal/nstest"
)

// TestProbe checks what Probe finds before an apply: a namespace whose
// nftables can be read and a state directory that can be made and
// written, or the reason the apply would fail.
func TestProbe(t *testing.T) {
	nstest.Require(t, "nft")
	ns := nstest.Path(nstest.New(t, "kpcnl"))
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		o    Options
		want string // "" for no error, else a part of it
	}{
		{"a new state directory", Options{NetNS: ns, StateDir: filepath.Join(dir, "state")}, ""},
		{"no cache", Options{NetNS: ns}, ""},
		{"a state directory under a file", Options{NetNS: ns, StateDir: filepath.Join(file, "state")}, "netlink: state directory: mkdir " + file + ": not a directory"},
		{"no such namespace", Options{NetNS: filepath.Join(dir, "gone"), StateDir: dir}, "netlink: opening network namespace"},
	} {
		err := Probe(tt.o)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}
