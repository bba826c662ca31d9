package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// The corpus (testdata/corpus) holds small manifests, each with a header of
// comment lines that give the API server's verdict on creating it:
//
//	# source: where the case comes from (an API server test table case, or
//	#         a rule of the validation notes)
//	# rules:  the rules it exercises (M6 S14 ...), for the coverage check
//	# opts:   kpc validate flags: --strict, --service-cidr=A,B,
//	#         --service-node-port-range=MIN-MAX
//	# want:   valid
//	# want:   PATH: TYPE[: FRAGMENT]   one line per expected error
//	# warn:   PATH[: FRAGMENT]         one line per expected warning
//	# default: PATH = JSON             a defaulted field of the (first)
//	#                                  object, or <absent>
//	# note:   free text
//
// TYPE is the API server's error type (Required, Invalid, NotSupported,
// Duplicate, Forbidden, TooMany, TooLong); kpc's message must start like the
// API server's ("required value", "invalid value", ...). The errors must be
// exactly the wanted ones. So must the warnings of CrossCheck (run on the
// valid documents also when others are invalid, like kpc does) in the
// cross directory and in files with warn lines; elsewhere only the
// warnings of unknown fields are checked, and there must be none (a lone
// EndpointSlice draws a warning for its missing Service).

// corpusDir is the corpus root.
const corpusDir = "testdata/corpus"

type corpusWant struct{ path, typ, frag string }

type corpusDefault struct{ path, json string }

type corpusCase struct {
	file     string
	source   string
	rules    []string
	opts     Options
	valid    bool
	wants    []corpusWant
	warns    []corpusWant
	defaults []corpusDefault
}

// parseCorpusHeader reads a corpus file's header.
func parseCorpusHeader(file string) (*corpusCase, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c := &corpusCase{file: file}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		key, val, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "source":
			c.source = val
		case "rules":
			c.rules = append(c.rules, strings.Fields(strings.ReplaceAll(val, ",", " "))...)
		case "opts":
			if err := c.parseOpts(val); err != nil {
				return nil, err
			}
		case "want":
			if val == "valid" {
				c.valid = true
				continue
			}
			w, err := parseWant(val, true)
			if err != nil {
				return nil, err
			}
			c.wants = append(c.wants, w)
		case "warn":
			w, err := parseWant(val, false)
			if err != nil {
				return nil, err
			}
			c.warns = append(c.warns, w)
		case "default":
			p, j, ok := strings.Cut(val, " = ")
			if !ok {
				return nil, fmt.Errorf("default %q: want PATH = JSON", val)
			}
			c.defaults = append(c.defaults, corpusDefault{strings.TrimSpace(p), strings.TrimSpace(j)})
		case "note", "differs":
		default:
			return nil, fmt.Errorf("unknown header key %q", key)
		}
	}
	if c.valid == (len(c.wants) > 0) {
		return nil, fmt.Errorf("want either valid or errors (valid=%v, %d errors)", c.valid, len(c.wants))
	}
	return c, nil
}

// wantRE splits "PATH: TYPE[: FRAGMENT]"; paths may contain ": " only
// inside brackets, which they do not.
var wantRE = regexp.MustCompile(`^(\S+): (Required|Invalid|NotSupported|Duplicate|Forbidden|TooMany|TooLong|Unknown)(?:: (.*))?$`)

func parseWant(s string, typed bool) (corpusWant, error) {
	if !typed {
		p, frag, _ := strings.Cut(s, ": ")
		return corpusWant{path: p, frag: frag}, nil
	}
	m := wantRE.FindStringSubmatch(s)
	if m == nil {
		return corpusWant{}, fmt.Errorf("want %q: want PATH: TYPE[: FRAGMENT]", s)
	}
	return corpusWant{path: m[1], typ: m[2], frag: m[3]}, nil
}

func (c *corpusCase) parseOpts(s string) error {
	for _, f := range strings.Fields(s) {
		name, val, _ := strings.Cut(f, "=")
		switch name {
		case "--strict":
			c.opts.Strict = true
		case "--service-cidr":
			for _, p := range strings.Split(val, ",") {
				pfx, err := netip.ParsePrefix(p)
				if err != nil {
					return fmt.Errorf("opts: %w", err)
				}
				c.opts.ServiceCIDRs = append(c.opts.ServiceCIDRs, pfx)
			}
		case "--service-node-port-range":
			lo, hi, _ := strings.Cut(val, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("opts: bad range %q", val)
			}
			c.opts.NodePortRange = PortRange{a, b}
		default:
			return fmt.Errorf("opts: unknown flag %q", name)
		}
	}
	return nil
}

// errorType classifies a kpc message by the API server's error type.
func errorType(msg string) string {
	for _, t := range []struct{ prefix, typ string }{
		{"required value", "Required"},
		{"unsupported value", "NotSupported"},
		{"duplicate value", "Duplicate"},
		{"forbidden", "Forbidden"},
		{"too many", "TooMany"},
		{"too long", "TooLong"},
		{"unknown field", "Unknown"},
	} {
		if strings.HasPrefix(msg, t.prefix) {
			return t.typ
		}
	}
	return "Invalid"
}

// corpusFiles lists the corpus, sorted.
func corpusFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// matchDiags matches diagnostics to wants one to one; it returns the
// unmatched of each.
func matchDiags(ds diag.List, wants []corpusWant, typed bool) (missing []corpusWant, extra diag.List) {
	used := make([]bool, len(ds))
	for _, w := range wants {
		found := false
		for i, d := range ds {
			if used[i] || d.Path != w.path || (typed && errorType(d.Msg) != w.typ) || !strings.Contains(d.Msg, w.frag) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			missing = append(missing, w)
		}
	}
	for i, d := range ds {
		if !used[i] {
			extra = append(extra, d)
		}
	}
	return missing, extra
}

func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	if len(files) < 150 {
		t.Errorf("corpus has %d manifests, want at least 150", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(file, corpusDir+"/"), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := parseCorpusHeader(file)
			if err != nil {
				t.Fatalf("%s: header: %v", file, err)
			}
			in, diags := Load([]string{file}, nil, c.opts)
			diags = append(diags, CrossCheck(in)...)
			for _, d := range diags {
				if d.Pos.File != file || d.Pos.Line < 1 {
					t.Errorf("diagnostic without a position in the file: %s", d)
				}
			}
			missing, extra := matchDiags(diags.Errors(), c.wants, true)
			for _, w := range missing {
				t.Errorf("missing error %s: %s: %s", w.path, w.typ, w.frag)
			}
			for _, d := range extra {
				t.Errorf("unexpected error (%s): %s", errorType(d.Msg), d)
			}
			if len(c.defaults) > 0 {
				checkDefaults(t, in, c.defaults)
			}
			if len(c.warns) == 0 && !strings.HasPrefix(name, "cross/") {
				for _, d := range diags.Warnings() {
					if strings.HasPrefix(d.Msg, "unknown field") {
						t.Errorf("unexpected warning: %s", d)
					}
				}
				return
			}
			missing, extra = matchDiags(diags.Warnings(), c.warns, false)
			for _, w := range missing {
				t.Errorf("missing warning %s: %s", w.path, w.frag)
			}
			for _, d := range extra {
				t.Errorf("unexpected warning: %s", d)
			}
		})
	}
}

// checkDefaults compares fields of the first Service (or EndpointSlice, or
// Endpoints) of in, as JSON, with the wanted values.
func checkDefaults(t *testing.T, in *api.Input, defaults []corpusDefault) {
	t.Helper()
	var obj any
	switch {
	case len(in.Services) > 0:
		obj = in.Services[0]
	case len(in.EndpointSlices) > 0:
		obj = in.EndpointSlices[0]
	case len(in.Endpoints) > 0:
		obj = in.Endpoints[0]
	default:
		t.Fatalf("no object to check defaults on")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var root any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	for _, d := range defaults {
		got := "<absent>"
		if v, ok := jsonLookup(root, d.path); ok {
			g, _ := json.Marshal(v)
			got = string(g)
		}
		want := d.json
		if want != "<absent>" {
			var v any
			if err := json.Unmarshal([]byte(want), &v); err != nil {
				t.Fatalf("default %s: bad JSON %q: %v", d.path, want, err)
			}
			w, _ := json.Marshal(v)
			want = string(w)
		}
		if got != want {
			t.Errorf("default %s = %s, want %s", d.path, got, want)
		}
	}
}

// jsonLookup follows a path like spec.ports[0].targetPort or
// metadata.labels[kubernetes.io/service-name] through decoded JSON.
func jsonLookup(v any, path string) (any, bool) {
	for path != "" {
		var key string
		switch {
		case strings.HasPrefix(path, "["):
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return nil, false
			}
			key, path = path[1:end], path[end+1:]
			if i, err := strconv.Atoi(key); err == nil {
				l, ok := v.([]any)
				if !ok || i < 0 || i >= len(l) {
					return nil, false
				}
				v = l[i]
				continue
			}
		default:
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			key, path = path[:end], path[end:]
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// corpusRules are the rules of the validation notes that the corpus must
// cover: every single-document (D) rule with a valid and an invalid case,
// except where a v1 create cannot fail it (noInvalid); the defaults and the
// cross-document rules with at least one case.
var (
	corpusRules = func() []string {
		var r []string
		for i := 1; i <= 9; i++ {
			r = append(r, fmt.Sprintf("M%d", i))
		}
		for i := 1; i <= 38; i++ {
			if i != 12 && i != 26 && i != 27 { // C rules, covered below
				r = append(r, fmt.Sprintf("S%d", i))
			}
		}
		for i := 1; i <= 15; i++ {
			r = append(r, fmt.Sprintf("E%d", i))
		}
		// N: ValidateEndpoints' rules (schema/endpoints.cue).
		for i := 1; i <= 7; i++ {
			r = append(r, fmt.Sprintf("N%d", i))
		}
		return r
	}()
	// noInvalid: S17 (defaulting drops sessionAffinityConfig with None
	// first) and E9 (the strategy clears deprecatedTopology first).
	noInvalid = map[string]bool{"S17": true, "E9": true}
	// clusterRules need --service-cidr or --service-node-port-range.
	clusterRules = []string{"S12", "S26", "S27"}
	// anyCaseRules need at least one case.
	anyCaseRules = []string{"D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9", "D10", "D11", "D12", "D13", "D17", "D18", "D19",
		"X1", "X2", "X3", "X6", "X7", "X-managed-by", "X-size", "X-endpoints"}
)

// TestCorpusCoverage checks that the corpus covers every rule.
func TestCorpusCoverage(t *testing.T) {
	valid, invalid := map[string]int{}, map[string]int{}
	for _, file := range corpusFiles(t) {
		c, err := parseCorpusHeader(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(c.rules) == 0 {
			t.Errorf("%s: no rules", file)
		}
		for _, r := range c.rules {
			if c.valid {
				valid[r]++
			} else {
				invalid[r]++
			}
		}
	}
	for _, r := range append(slices.Clone(corpusRules), clusterRules...) {
		if valid[r] == 0 {
			t.Errorf("rule %s has no valid case", r)
		}
		if invalid[r] == 0 && !noInvalid[r] {
			t.Errorf("rule %s has no invalid case", r)
		}
	}
	for _, r := range anyCaseRules {
		if valid[r]+invalid[r] == 0 {
			t.Errorf("rule %s has no case", r)
		}
	}
	t.Logf("%d rules covered", len(corpusRules)+len(clusterRules)+len(anyCaseRules))
}
