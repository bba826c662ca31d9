package render_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/internal/nstest"
)

// These tests load rendered scripts into network namespaces they create
// and delete. They need root and nft; without them they skip, except when
// CI is set, where they fail.

// TestNFTKernel loads every golden case with nft -c -f and nft -f into a
// fresh namespace holding foreign tables, and checks that: loading the
// same file again gives the same ruleset (an idempotent replace); the
// foreign tables survive untouched; the kernel's listing loads back to
// itself; and loading the cases one after another into one namespace gives
// each case's ruleset (replacement from any previous state).
func TestNFTKernel(t *testing.T) {
	nstest.Require(t, "nft")
	dir := t.TempDir()
	seq := nstest.New(t, "kpcnft")
	if _, err := nstest.Exec(seq, nstest.Foreign, "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	for _, c := range nftCases() {
		var script bytes.Buffer
		if err := c.r.Render(&script, c.p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		file := filepath.Join(dir, c.name+".nft")
		if err := os.WriteFile(file, script.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var want string
		t.Run(c.name, func(t *testing.T) {
			ns := nstest.New(t, "kpcnft")
			if _, err := nstest.Exec(ns, nstest.Foreign, "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			foreign := nstest.ListTables(t, ns, nstest.ForeignTables...)
			nstest.Run(t, ns, "", "nft", "-c", "-f", file)
			nstest.Run(t, ns, "", "nft", "-f", file)
			first := nstest.Run(t, ns, "", "nft", "list", "ruleset")
			want = nstest.SortElements(first)
			nstest.Run(t, ns, "", "nft", "-f", file)
			if got := nstest.SortElements(nstest.Run(t, ns, "", "nft", "list", "ruleset")); got != want {
				t.Errorf("ruleset changed when the file was loaded again:\n%s", cmp.Diff(want, got))
			}
			if got := nstest.ListTables(t, ns, nstest.ForeignTables...); got != foreign {
				t.Errorf("foreign tables changed:\n%s", cmp.Diff(foreign, got))
			}
			// The listing loads back to the same ruleset.
			back := nstest.New(t, "kpcnft")
			if _, err := nstest.Exec(back, first, "nft", "-f", "-"); err != nil {
				t.Fatalf("loading the listing back: %v", err)
			}
			if got := nstest.SortElements(nstest.Run(t, back, "", "nft", "list", "ruleset")); got != want {
				t.Errorf("listing does not round-trip:\n%s", cmp.Diff(want, got))
			}
		})
		if want == "" {
			continue
		}
		if _, err := nstest.Exec(seq, "", "nft", "-f", file); err != nil {
			t.Errorf("%s: loading after the previous case: %v", c.name, err)
			continue
		}
		if got := nstest.SortElements(nstest.Run(t, seq, "", "nft", "list", "ruleset")); got != want {
			t.Errorf("%s: loaded after the previous case, ruleset differs:\n%s", c.name, cmp.Diff(want, got))
		}
	}
}
