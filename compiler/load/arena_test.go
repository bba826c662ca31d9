package load

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/internal/synth"
)

// TestNodeBlocks checks what take hands out: n adjacent zero values with
// no room to append, from the same blocks again after reset.
func TestNodeBlocks(t *testing.T) {
	tests := []struct {
		name  string
		takes []int
		// blocks is how many blocks the takes need.
		blocks int
	}{
		{"one", []int{1}, 1},
		{"a block's worth", []int{nodeBlockLen / 2, nodeBlockLen / 2}, 1},
		{"spill", []int{nodeBlockLen - 1, 2}, 2},
		{"longer than a block", []int{3, nodeBlockLen + 5, 1}, 3},
		{"many", []int{100, 200, 300, 400, 500, 1}, 4},
	}
	for _, tc := range tests {
		var s nodeBlocks[int]
		var firsts []*int
		for round := range 2 {
			for i, n := range tc.takes {
				vals := s.take(n)
				if len(vals) != n || cap(vals) != n {
					t.Fatalf("%s: take(%d) has len %d, cap %d", tc.name, n, len(vals), cap(vals))
				}
				for j, v := range vals {
					if v != 0 {
						t.Fatalf("%s, round %d: take(%d)[%d] = %d, want 0", tc.name, round, n, j, v)
					}
					vals[j] = 1 + j
				}
				if round == 0 {
					firsts = append(firsts, &vals[0])
				} else if &vals[0] != firsts[i] {
					t.Errorf("%s: take %d did not reuse its memory after reset", tc.name, i)
				}
			}
			if len(s.blocks) != tc.blocks {
				t.Errorf("%s, round %d: %d blocks, want %d", tc.name, round, len(s.blocks), tc.blocks)
			}
			s.reset()
		}
	}
}

// TestNilNodeArena checks that a parser without a workspace allocates its
// nodes one by one.
func TestNilNodeArena(t *testing.T) {
	var a *nodeArena
	f1, f2 := a.identField(), a.identField()
	l1, l2 := a.lit(), a.lit()
	s1, s2 := a.structLit(), a.structLit()
	li1, li2 := a.listLit(), a.listLit()
	if f1 == f2 || l1 == l2 || s1 == s2 || li1 == li2 {
		t.Error("a nil arena handed out a node twice")
	}
	if d, e := a.declSlice(3), a.exprSlice(2); len(d) != 3 || len(e) != 2 {
		t.Errorf("slices of len %d and %d, want 3 and 2", len(d), len(e))
	}
	if a.declSlice(0) != nil || new(nodeArena).exprSlice(0) != nil {
		t.Error("no elements, but not a nil slice")
	}
}

// TestRemember checks that a full memo is emptied before it takes more.
func TestRemember(t *testing.T) {
	var m map[string]int
	for i, k := range []string{"a", "b", "c", "d", "c"} {
		remember(&m, k, i, 3)
	}
	if d := cmp.Diff(map[string]int{"d": 3, "c": 4}, m); d != "" {
		t.Errorf("memo (-want +got):\n%s", d)
	}
}

// TestNodeReuseMatchesSequential loads large inputs whose chunks' nodes
// are handed out again, cleared as they are (so that a node still in use
// after its chunk would be seen empty), and checks the objects and
// diagnostics against the general decoder's. The inputs have, far into
// the file, documents CUE evaluates in full (invalid ones, a new shape)
// among the ones it does not.
func TestNodeReuseMatchesSequential(t *testing.T) {
	var b bytes.Buffer
	// One shape, but for the odd Services below, so that most chunks
	// have no document CUE evaluates.
	if err := synth.Write(&b, synth.Config{Services: 5000, Endpoints: 4, Plain: true}); err != nil {
		t.Fatal(err)
	}
	docs := b.String()
	// Every 700th Service has an invalid port, every 900th a new shape.
	docs = regexp.MustCompile(`(?m)^  name: (svc-\d*700)$`).ReplaceAllString(docs, "  name: $1\n  labels: {odd: \"yes\"}")
	docs = regexp.MustCompile(`(?m)^(  name: svc-\d*900\n(?:.*\n)*?    targetPort:) \d+$`).ReplaceAllString(docs, "$1 70000")
	if n := strings.Count(docs, "70000"); n < 3 {
		t.Fatalf("%d invalid ports, want 3 or more", n)
	}
	head, tail := "apiVersion: v1\n", "kind: List\nmetadata:\n  resourceVersion: \"\"\n"
	list := map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}}
	inputs := []struct{ name, in string }{
		{"documents", docs},
		{"YAML List", kubectlList(docs, head, tail)},
		{"JSON List", kubectlJSON(t, docs, list)},
	}
	defer func() { clearOnReuse = false }()
	for _, tc := range inputs {
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		fastYAMLEnabled, clearOnReuse = true, true
		before := nodeReuses.Load()
		got, gotDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		clearOnReuse = false
		reused := nodeReuses.Load() - before
		t.Logf("%s: nodes reused for %d chunks", tc.name, reused)
		if reused < 4 {
			t.Errorf("%s: nodes reused for %d chunks, want 4 or more", tc.name, reused)
		}
		if len(wantDiags.Errors()) == 0 {
			t.Errorf("%s: no errors, want the invalid ports'", tc.name)
		}
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%s: diagnostics differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: objects differ (-sequential +chunked):\n%s", tc.name, d)
		}
	}
}
