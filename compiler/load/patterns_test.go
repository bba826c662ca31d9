package load

import (
	"maps"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"kpc/schema"
)

// TestPatternMatchers compares each matcher with its pattern's regexp on
// edge cases and on random strings over the characters that matter.
func TestPatternMatchers(t *testing.T) {
	edges := []string{"", "a", "-", ".", "/", "a-", "-a", "a.b", "a..b", ".a", "a.", "a/b", "/a", "a/", "a//b",
		"a.b/c", "A", "a_b", "_a", "a_", "a.b.c/d-e_f.g", "ab\n", "a\nb", "é", "a\x00",
		strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a", 64),
		strings.Repeat("a", 63) + "/" + strings.Repeat("b", 63), strings.Repeat("a", 63) + "/" + strings.Repeat("b", 64),
		strings.Repeat("a.", 126) + "a", strings.Repeat("a", 300)}
	const alphabet = "aAz09-_./\n"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		edges = append(edges, string(b))
	}
	matchers := map[string]func(string) bool{
		// The patterns of the API server's own checks (meta.go).
		`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`:               rfc1123Part,
		`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`:    nameBody,
		`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`: isLabelValueBody,
	}
	maps.Copy(matchers, patternMatchers)
	for pat, match := range matchers {
		re := regexp.MustCompile(pat)
		for _, s := range edges {
			if got, want := match(s), re.MatchString(s); got != want {
				t.Errorf("pattern %s, %q: matcher %v, regexp %v", pat, s, got, want)
			}
		}
	}
}

// isLabelValueBody is isLabelValue without its length limit.
func isLabelValueBody(s string) bool { return s == "" || nameBody(s) }

// TestPatternMatchersCoverSchema checks that the schema's patterns for
// names, label keys and label values still have matchers: a pattern
// changed in the schema alone would fall back to regexp.
func TestPatternMatchersCoverSchema(t *testing.T) {
	text := schema.Source()
	for _, def := range []string{"#DNSLabel:", "#OptDNSLabel:", "#DNSSubdomain:", "#LabelValue:", "#qualifiedNameRE:"} {
		i := strings.Index(text, def)
		if i < 0 {
			t.Errorf("%s is not in the schema", def)
			continue
		}
		line, _, _ := strings.Cut(text[i:], "\n")
		found := false
		for pat := range patternMatchers {
			if strings.Contains(line, `"`+pat+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no matcher for the pattern of %s", line)
		}
	}
}
