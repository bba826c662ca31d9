package load

import (
	"bytes"
	"fmt"
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

// TestFastCheckMatchesCUE checks each translated constraint of the
// templates learnt from a mixed cluster against CUE's own check of the
// same values.
func TestFastCheckMatchesCUE(t *testing.T) {
	var in bytes.Buffer
	if err := synth.Write(&in, synth.Config{Services: 200, Endpoints: 3}); err != nil {
		t.Fatal(err)
	}
	for _, strict := range []bool{false, true} {
		used := loadEvaluators(t, in.Bytes(), Options{Strict: strict})
		values := fastCheckValues()
		translated, checked := map[string]bool{}, 0
		for _, e := range used {
			for _, m := range e.memos {
				if m == nil {
					continue
				}
				for _, tpl := range m.templates {
					for i, f := range tpl.fast {
						c := tpl.cons[i]
						if f == nil {
							continue
						}
						translated[fmt.Sprint(c)] = true
						for _, p := range values {
							checked++
							if got, want := f(p), e.checkParam(c, p); got != want {
								t.Errorf("strict=%v: %v with %c %q %d: fast check %v, CUE %v", strict, c, p.kind, p.s, p.n, got, want)
							}
						}
					}
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
			if !translated[want] {
				t.Errorf("strict=%v: constraint %s is not translated; translated: %q", strict, want, keys(translated))
			}
		}
		if checked == 0 {
			t.Fatalf("strict=%v: no translated constraint was learnt", strict)
		}
	}
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
func loadEvaluators(t *testing.T, data []byte, opts Options) []*evaluator {
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

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
