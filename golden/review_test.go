package golden

// The review tools' golden cases:
//
//   - testdata-diff/<case>/: old.yaml and new.yaml, and the "kpc diff" report
//     of old.yaml -> new.yaml (nft format) as text (want.txt, empty when
//     the two are equal) and JSON (want.json).
//   - testdata-dns-env/<case>/: input.yaml, its cluster DNS zone
//     (want.dns, "kpc compile --format dns") and the pod environment of
//     every namespace that has a Service (want.env: per namespace a
//     "# kpc env -n NS" line, the export lines, then "# warning: ..."
//     lines for variables that several Services set).
//
// Every zone, of these cases and of the cases under testdata, is checked
// with named-checkzone. "go test ./golden -update" rewrites the want files.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/envvars"
	"kpc/internal/irdiff"
	"kpc/render"
)

// reviewCases lists the case directories under root.
func reviewCases(t *testing.T, root string) []goldenCase {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []goldenCase
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, goldenCase{name: e.Name(), dir: filepath.Join(root, e.Name())})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no cases under %s", root)
	}
	return out
}

// compileFile loads and compiles one manifest file with default options.
// It returns nil and the errors when the input is invalid.
func compileFile(t *testing.T, path string) (*ir.Program, diag.List) {
	t.Helper()
	input, diags := load.Load([]string{path}, nil, load.Options{KubeProxy: true}) // as kpc compile reads it
	if diags.Err() != nil {
		return nil, diags.Errors()
	}
	prog, cd := compiler.Compile(input, compiler.Options{})
	if cd.Err() != nil {
		return nil, cd.Errors()
	}
	return prog, nil
}

func mustCompileFile(t *testing.T, path string) *ir.Program {
	t.Helper()
	prog, errs := compileFile(t, path)
	if prog == nil {
		t.Fatalf("%s is invalid:\n%v", path, errs)
	}
	return prog
}

// checkWant compares got with the want file, or rewrites it with -update.
func checkWant(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: missing want file (run go test ./golden -update)", path)
		return
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

// TestReviewDiff checks "kpc diff" reports against want.txt and want.json.
func TestReviewDiff(t *testing.T) {
	for _, c := range reviewCases(t, "testdata-diff") {
		t.Run(c.name, func(t *testing.T) {
			oldP := mustCompileFile(t, filepath.Join(c.dir, "old.yaml"))
			newP := mustCompileFile(t, filepath.Join(c.dir, "new.yaml"))
			rep, err := irdiff.Compare(oldP, newP, irdiff.Options{Format: "nft", OldName: "old.yaml", NewName: "new.yaml"})
			if err != nil {
				t.Fatal(err)
			}
			var text, js bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if rep.Equal != (text.Len() == 0) {
				t.Errorf("equal=%v but the text report has %d bytes", rep.Equal, text.Len())
			}
			checkWant(t, filepath.Join(c.dir, "want.txt"), text.Bytes())
			checkWant(t, filepath.Join(c.dir, "want.json"), js.Bytes())
			// The reverse comparison agrees on equality.
			back, err := irdiff.Compare(newP, oldP, irdiff.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if back.Equal != rep.Equal {
				t.Errorf("new -> old equal=%v, old -> new equal=%v", back.Equal, rep.Equal)
			}
		})
	}
}

// TestReviewDNSEnv checks the zone and the pod environments of every case.
func TestReviewDNSEnv(t *testing.T) {
	for _, c := range reviewCases(t, "testdata-dns-env") {
		t.Run(c.name, func(t *testing.T) {
			prog := mustCompileFile(t, filepath.Join(c.dir, "input.yaml"))
			var zone bytes.Buffer
			if err := (render.DNS{}).Render(&zone, prog); err != nil {
				t.Fatal(err)
			}
			checkWant(t, filepath.Join(c.dir, "want.dns"), zone.Bytes())
			checkWant(t, filepath.Join(c.dir, "want.env"), envReport(t, prog))
		})
	}
}

// envReport is the environment of a pod in every namespace with a Service.
func envReport(t *testing.T, prog *ir.Program) []byte {
	t.Helper()
	var namespaces []string
	for _, s := range prog.Services {
		if !slices.Contains(namespaces, s.Namespace) {
			namespaces = append(namespaces, s.Namespace)
		}
	}
	slices.Sort(namespaces)
	var b bytes.Buffer
	for _, ns := range namespaces {
		b.WriteString("# kpc env -n " + ns + "\n")
		vars, warnings := envvars.ForNamespace(prog.Services, ns)
		if err := envvars.WriteShell(&b, vars); err != nil {
			t.Fatal(err)
		}
		for _, w := range warnings {
			b.WriteString("# warning: " + w + "\n")
		}
	}
	return b.Bytes()
}

// TestZonesCheck loads the zone of every valid case (testdata and
// testdata-dns-env) with named-checkzone. Without named-checkzone the test
// is skipped, except in CI (CI set), where it fails.
func TestZonesCheck(t *testing.T) {
	tool, err := exec.LookPath("named-checkzone")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("named-checkzone is required in CI (install bind9-utils): %v", err)
		}
		t.Skipf("named-checkzone not installed: %v", err)
	}
	all := append(reviewCases(t, "testdata"), reviewCases(t, "testdata-dns-env")...)
	dir := t.TempDir()
	checked := 0
	for _, c := range all {
		for _, domain := range []string{"cluster.local", "k8s.example.org"} {
			prog, _ := compileFile(t, filepath.Join(c.dir, "input.yaml"))
			if prog == nil {
				continue // an invalid case: no zone
			}
			var zone bytes.Buffer
			if err := (render.DNS{Domain: domain}).Render(&zone, prog); err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			file := filepath.Join(dir, c.name+"."+domain+".zone")
			if err := os.WriteFile(file, zone.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, tool, domain, file).CombinedOutput()
			cancel()
			if err != nil || !strings.Contains(string(out), "OK") {
				t.Errorf("%s (%s): named-checkzone: %v\n%s\nzone:\n%s", c.name, domain, err, out, zone.String())
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no zone checked")
	}
	t.Logf("named-checkzone: %d zones OK", checked)
}
