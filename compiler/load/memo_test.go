package load

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	"kpc/compiler/diag"
	"kpc/internal/synth"
)

// loadBoth loads data with shape memoisation off and on and fails if the
// results differ in any object or diagnostic.
func loadBoth(t *testing.T, name string, data []byte, opts Options) {
	t.Helper()
	shapeMemo = false
	want, wantDiags := Load([]string{"-"}, bytes.NewReader(data), opts)
	shapeMemo = true
	got, gotDiags := Load([]string{"-"}, bytes.NewReader(data), opts)
	if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
		t.Errorf("%s: diagnostics differ (-full +memo):\n%s", name, d)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s: objects differ (-full +memo):\n%s", name, d)
	}
}

// TestMemoMatchesFull checks that memoised validation gives exactly the
// results of full evaluation, on valid clusters and on clusters where
// documents of known shapes carry invalid values.
func TestMemoMatchesFull(t *testing.T) {
	var base bytes.Buffer
	if err := synth.Write(&base, synth.Config{Services: 60, Endpoints: 3}); err != nil {
		t.Fatal(err)
	}
	base.WriteString("---\n")
	base.Write(genServices(40))
	docs := strings.Split(base.String(), "\n---\n")
	seeds := uint64(2)
	if n, err := strconv.Atoi(os.Getenv("KPC_MEMO_SEEDS")); err == nil {
		seeds = uint64(n) // a longer campaign
	}
	for _, strict := range []bool{false, true} {
		opts := Options{Strict: strict}
		loadBoth(t, fmt.Sprintf("valid strict=%v", strict), base.Bytes(), opts)
		for seed := range seeds {
			data := mutate(docs, rand.New(rand.NewPCG(seed, 7)))
			loadBoth(t, fmt.Sprintf("mutated seed=%d strict=%v", seed, strict), data, opts)
		}
	}
	// The corpus, each file's documents three times so that their shapes
	// are learnt, loaded as one input.
	files, _ := filepath.Glob("testdata/corpus/*/*/*.yaml")
	more, _ := filepath.Glob("testdata/corpus/*/*.yaml")
	dir := t.TempDir()
	var paths []string
	for i, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%04d.yaml", i))
		if err := os.WriteFile(p, bytes.Repeat(append(data, "\n---\n"...), 3), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	shapeMemo = false
	want, wantDiags := Load(paths, nil, Options{})
	shapeMemo = true
	got, gotDiags := Load(paths, nil, Options{})
	if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
		t.Errorf("corpus: diagnostics differ (-full +memo):\n%s", d)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("corpus: objects differ (-full +memo):\n%s", d)
	}
}

// mutations are values substituted for scalars.
var mutations = []string{
	`""`, "None", "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "-1", "0", "1", "70000", "65535",
	"30000", "Bad_Name", "a-b", "10.0.0.1", "10.96.0.1", "fd00::1", "1.2.3", "UDP", "SCTP", "TCP", "true",
	"false", "null", "[]", "{}", "IPv4", "IPv6", "FQDN", "Local", "Cluster", "ClientIP", "x.example.com",
	"0x10", "1.5", `"80"`, "[a, b]", "{a: 1}", "-", "PreferDualStack", "RequireDualStack", "10.0.0.0/8",
}

// sameKind are replacements of the same YAML type as the value they
// replace, so that the document keeps its shape.
var sameKind = map[bool][]string{
	true: {"0", "1", "65535", "65536", "70000", "29999", "30000", "32767", "32768", "86400", "86401", "99999999999", "8080", "2147483648"},
	false: {`""`, "a", "Bad_Name", "bad name", "a-", "-a", "a--b", "x.example.com", "10.0.0.1", "10.0.0.256", "fd00::1",
		"fd00::01", "::ffff:10.0.0.1", "127.0.0.1", "0.0.0.0", "169.254.1.1", "None", "node-1", "ns-1", "p0", "P0",
		"http", "toolongtoolongtoolongtoolongtoolongtoolongtoolongtoolongtoolong", "10.96.0.0/12", "IPv4", "IPv6",
		"ready", "a/b", "kubernetes.io/x", "Local", "Cluster", "TCP", "UDP", "SCTP", "ClientIP", "FQDN"},
}

// scalarKind reports whether a YAML value is a plain integer (true), a
// plain string (false), or neither (ok false).
func scalarKind(v string) (isInt, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || strings.ContainsAny(v, "[]{}:#&*!|>'") || v == "true" || v == "false" || v == "null" {
		return false, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false, true
		}
	}
	return true, true
}

// mutate returns the documents, each four times, followed by copies
// with one or two scalar values replaced.
func mutate(docs []string, r *rand.Rand) []byte {
	var b strings.Builder
	for _, d := range docs {
		for range 4 {
			b.WriteString(d)
			b.WriteString("\n---\n")
		}
	}
	for _, d := range docs {
		lines := strings.Split(d, "\n")
		for range 3 {
			out := append([]string(nil), lines...)
			for range 1 + r.IntN(2) {
				i := r.IntN(len(out))
				l := out[i]
				k := strings.Index(l, ": ")
				pick := func(old string) string {
					if isInt, ok := scalarKind(old); ok && r.IntN(4) != 0 {
						pool := sameKind[isInt]
						return pool[r.IntN(len(pool))]
					}
					return mutations[r.IntN(len(mutations))]
				}
				switch {
				case k > 0 && !strings.HasSuffix(l, ":"):
					out[i] = l[:k+2] + pick(l[k+2:])
				case strings.HasPrefix(strings.TrimSpace(l), "- ") && !strings.Contains(l, ":"):
					j := strings.Index(l, "- ")
					out[i] = l[:j+2] + pick(l[j+2:])
				}
			}
			b.WriteString(strings.Join(out, "\n"))
			b.WriteString("\n---\n")
		}
	}
	return []byte(b.String())
}

// TestManagedFieldsShareShape checks that documents kept with their
// managedFields, which name each object's owner by its uid, share a shape
// (so that a dump of a cluster is validated by shape), and that an entry
// that is not a mapping is still refused.
func TestManagedFieldsShareShape(t *testing.T) {
	doc := func(i int, entry string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: s%d\n  managedFields:\n  - %s\n"+
			"spec:\n  ports: [{port: 80}]\n---\n", i, entry)
	}
	var in strings.Builder
	for i := range 5 {
		in.WriteString(doc(i, fmt.Sprintf(`{manager: kube-controller-manager, fieldsType: FieldsV1, fieldsV1: {f:metadata: {f:ownerReferences: {'k:{"uid":"%08d-0000"}': {}}}}}`, i)))
	}
	docs, e := decodeForShapes(t, in.String(), 5)
	for i, d := range docs {
		if !e.validate(d, Options{}) || d.out == nil || len(d.diags) != 0 {
			t.Fatalf("document %d: not valid: %v", i, d.diags)
		}
		if want := i < 2; d.evaluated != want {
			t.Errorf("document %d: evaluated in full: %v, want %v", i, d.evaluated, want)
		}
	}
	_, diags := Load([]string{"-"}, strings.NewReader(doc(0, "just a string")), Options{})
	if diags.Err() == nil || !strings.Contains(diags.Error(), "metadata.managedFields[0]") {
		t.Errorf("an entry that is not a mapping: diagnostics %v", diags)
	}
}

// decodeForShapes decodes text, which must hold n documents and decode
// without a diagnostic, and returns them with an evaluator to validate
// them one at a time.
func decodeForShapes(t *testing.T, text string, n int) ([]*document, *evaluator) {
	t.Helper()
	var diags diag.List
	var docs []*document
	decodeFile("-", []byte(text), false, Options{}, &diags, func(d *document) { docs = append(docs, d) })
	if len(docs) != n || len(diags) != 0 {
		t.Fatalf("decoded %d documents, diagnostics %v", len(docs), diags)
	}
	return docs, &evaluator{ctx: cuecontext.New()}
}
