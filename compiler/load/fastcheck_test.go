package load

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"kpc/internal/synth"
)

// fastCheckValues are parameter values to check every translated
// constraint with: the memo test's replacements and values at the edges
// of the schema's patterns, lengths and bounds.
func fastCheckValues() []param {
	var ps []param
	for _, v := range sameKind[true] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ps = append(ps, param{kind: 'i', n: n})
	}
	for _, n := range []int64{-1, 2, 15, 63, 64, 253, 254, 2147483647, 1 << 40} {
		ps = append(ps, param{kind: 'i', n: n})
	}
	strs := append([]string(nil), sameKind[false]...)
	for i, v := range strs {
		strs[i] = strings.Trim(v, `"`)
	}
	label := func(n int) string { return "a" + strings.Repeat("b", n-2) + "c" }
	sub := func(n int) string { // dotted, n characters
		s := strings.Repeat("abcdefghi.", n/10+1)[:n-1]
		return strings.TrimSuffix(s, ".") + "z"
	}
	strs = append(strs, "default", "", "A", "a", "a.b", "a..b", ".a", "a.", "é", "aé", "a\nb", "0", "9a",
		label(63), label(64), sub(253), sub(254), sub(255), strings.Repeat("é", 253), "http-80", "abcdefghijklmno",
		"abcdefghijklmnop", "1", "80", "x--y", "xn--abc", "a_b", "A.b", "a/b/c", "example.com/name", "k8s.io/a_b.c")
	for _, s := range strs {
		ps = append(ps, param{kind: 's', s: s})
	}
	return append(ps, param{kind: 'b', n: 1}, param{kind: 'b'})
}

// translated is one translated constraint of a learnt template.
type translated struct {
	c cue.Value
	f paramCheck
	e *evaluator // whose context c belongs to
}

// learntChecks loads a mixed cluster and returns the translated
// constraints of the templates learnt, by their CUE spelling.
func learntChecks(tb testing.TB, strict bool) map[string]translated {
	tb.Helper()
	var in bytes.Buffer
	if err := synth.Write(&in, synth.Config{Services: 200, Endpoints: 3}); err != nil {
		tb.Fatal(err)
	}
	out := map[string]translated{}
	for _, e := range loadEvaluators(tb, in.Bytes(), Options{Strict: strict}) {
		for _, m := range e.memos {
			if m == nil {
				continue
			}
			for _, tpl := range m.templates {
				for i, f := range tpl.fast {
					if f != nil {
						out[fmt.Sprint(tpl.cons[i])] = translated{tpl.cons[i], f, e}
					}
				}
			}
		}
	}
	return out
}

// TestFastCheckMatchesCUE checks each translated constraint of the
// templates learnt from a mixed cluster against CUE's own check of the
// same values.
func TestFastCheckMatchesCUE(t *testing.T) {
	for _, strict := range []bool{false, true} {
		checks := learntChecks(t, strict)
		values := fastCheckValues()
		for name, tc := range checks {
			for _, p := range values {
				if got, want := tc.f(p), tc.e.checkParam(tc.c, p); got != want {
					t.Errorf("strict=%v: %s with %c %q %d: fast check %v, CUE %v", strict, name, p.kind, p.s, p.n, got, want)
				}
			}
		}
		// The schema's name, label, port and enumeration constraints
		// must all be translated.
		for _, want := range []string{
			`=~"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"`,
			`*"default" | =~"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"`,
			`*80 | uint & >=1 & <=65535`,
			`int32`,
		} {
			if _, ok := checks[want]; !ok {
				t.Errorf("strict=%v: constraint %s is not translated; translated: %q", strict, want, slices.Sorted(maps.Keys(checks)))
			}
		}
	}
}

// FuzzFastCheck compares the translated constraints of a mixed cluster's
// templates with CUE on arbitrary strings, integers and booleans.
func FuzzFastCheck(f *testing.F) {
	for _, p := range fastCheckValues() {
		f.Add(p.kind, p.s, p.n)
	}
	var checks map[string]translated
	f.Fuzz(func(t *testing.T, kind byte, s string, n int64) {
		if checks == nil {
			checks = learntChecks(t, false)
		}
		p := param{kind: 's', s: s}
		switch kind % 3 {
		case 1:
			p = param{kind: 'i', n: n}
		case 2:
			p = param{kind: 'b', n: n & 1}
		}
		for name, tc := range checks {
			if got, want := tc.f(p), tc.e.checkParam(tc.c, p); got != want {
				t.Errorf("%s with %c %q %d: fast check %v, CUE %v", name, p.kind, p.s, p.n, got, want)
			}
		}
	})
}

// TestFastCheckForms checks the translation of each form on constraints
// written for the test, against CUE.
func TestFastCheckForms(t *testing.T) {
	ctx := cuecontext.New()
	tests := []struct {
		src        string
		translated bool
	}{
		{`=~"^[a-z]+$"`, true},
		{`!~"--"`, true},
		{`=~"^[a-z]+$" & strings.MaxRunes(3)`, true},
		{`strings.MinRunes(2)`, true},
		{`*"x" | =~"^[0-9]+$"`, true},
		{`"TCP" | "UDP" | "SCTP"`, true},
		{`*"TCP" | "UDP" | "SCTP"`, true},
		{`int & >0 & <10`, true},
		{`*5 | uint & >=1 & <=9`, true},
		{`true`, true},
		{`bool`, true},
		{`string`, true},
		{`uint`, true},
		{`3`, true},
		{`string & net.IP()`, false},
		{`strings.HasPrefix("a")`, false},
		{`!=3`, false},
		{`number`, false},
	}
	values := fastCheckValues()
	e := &evaluator{ctx: ctx}
	for _, tc := range tests {
		src := "x: " + tc.src
		for _, pkg := range []string{"strings", "net"} {
			if strings.Contains(tc.src, pkg+".") {
				src = "import \"" + pkg + "\"\n" + src
			}
		}
		v := ctx.CompileString(src).LookupPath(cue.ParsePath("x"))
		if v.Err() != nil {
			t.Fatalf("%s: %v", tc.src, v.Err())
		}
		f := fastCheck(v, e.regexps())
		if (f != nil) != tc.translated {
			t.Errorf("%s: translated %v, want %v", tc.src, f != nil, tc.translated)
		}
		if f == nil {
			continue
		}
		for _, p := range values {
			if got, want := f(p), e.checkParam(v, p); got != want {
				t.Errorf("%s with %c %q %d: fast check %v, CUE %v", tc.src, p.kind, p.s, p.n, got, want)
			}
		}
	}
}

// loadEvaluators loads data with shape memoisation on and returns the
// evaluators that did it.
func loadEvaluators(t testing.TB, data []byte, opts Options) []*evaluator {
	t.Helper()
	evaluators.Lock()
	saved := evaluators.free
	evaluators.free = nil
	evaluators.Unlock()
	defer func() {
		evaluators.Lock()
		evaluators.free = saved
		evaluators.Unlock()
	}()
	if _, diags := Load([]string{"-"}, bytes.NewReader(data), opts); diags.Err() != nil {
		t.Fatal(diags.Err())
	}
	evaluators.Lock()
	defer evaluators.Unlock()
	if len(evaluators.free) == 0 {
		t.Fatal("Load kept no evaluator")
	}
	return evaluators.free
}
