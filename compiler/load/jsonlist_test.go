package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"kpc/internal/synth"
)

// kubectlJSON returns the documents of a multi-document YAML text as one
// List in kubectl's JSON layout (four spaces of indentation, keys
// sorted), with the List's own keys.
func kubectlJSON(t *testing.T, docs string, list map[string]any) string {
	t.Helper()
	var items []any
	dec := yaml.NewDecoder(strings.NewReader(docs))
	for {
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			break
		}
		items = append(items, v)
	}
	list["items"] = items
	out, err := json.MarshalIndent(list, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + "\n"
}

// TestChunkedJSONListMatchesSequential checks the parallel decoding of a
// large List in kubectl's JSON layout against the general decoder, and
// which inputs take that path.
func TestChunkedJSONListMatchesSequential(t *testing.T) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: 1500, Endpoints: 4}); err != nil {
		t.Fatal(err)
	}
	docs := b.String()
	list := func() map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}}
	}
	valid := kubectlJSON(t, docs, list())
	if len(valid) < 3*chunkBytes {
		t.Fatalf("input of %d bytes is too small to be chunked", len(valid))
	}
	mid := strings.Index(valid[len(valid)/2:], "\n        {\n") + len(valid)/2 + 1
	item := "        {\n            \"apiVersion\": \"v1\",\n            \"kind\": \"Service\",\n            \"metadata\": {\"name\": \"\u00e9\", \"namespace\": \"x\"},\n            \"spec\": {\"ports\": [{\"name\": \"\u00e9\", \"port\": 0}]}\n        },\n"
	typed := list()
	typed["kind"] = "ServiceList"
	other := list()
	other["extra"] = 1
	notList := list()
	notList["kind"] = "Service"
	cases := []struct {
		name   string
		in     string
		layout bool // taken in parts
		whole  bool // taken in parts, then given back to the general decoder
	}{
		{"valid", valid, true, false},
		{"typed list", kubectlJSON(t, strings.ReplaceAll(docs, "apiVersion: v1\nkind: Service\n", ""), typed), true, false},
		{"invalid", strings.ReplaceAll(valid, `"targetPort": 8082`, `"targetPort": 70000`), true, false},
		{"invalid after non-ASCII", valid[:mid] + item + valid[mid:], true, false},
		{"multi-line strings", kubectlJSON(t, regexp.MustCompile(`(?m)^  name: (svc-\d*1)$`).ReplaceAllString(docs,
			"  name: $1\n  annotations: {last-applied: \"{\\\"a\\\": 1}\\n\", b: \"x\\ny\\tz \\u00e9\"}"), list()), true, false},
		{"CRLF", strings.ReplaceAll(strings.ReplaceAll(valid, `"targetPort": 8082`, `"targetPort": 70000`), "\n", "\r\n"), true, false},
		{"invalid UTF-8", strings.Replace(valid, `"name": "svc-3"`, "\"name\": \"svc-3\xff\"", 1), true, false},
		{"not an object", valid[:mid] + "        {\n        \"a\"\n        },\n" + valid[mid:], true, true},
		{"syntax error", valid[:mid] + "        {\n            \"a\": [\n        },\n" + valid[mid:], true, true},
		{"missing comma", strings.Replace(valid, "\n        },\n", "\n        }\n", 1), false, false},
		{"other key", kubectlJSON(t, docs, other), false, false},
		{"not a List", kubectlJSON(t, docs, notList), false, false},
		{"second value", valid + "{}\n", false, false},
		{"leading space", " " + valid, false, false},
		{"two spaces", strings.ReplaceAll(valid, "    ", "  "), false, false},
		{"two spaces, CRLF", strings.ReplaceAll(strings.ReplaceAll(valid, "    ", "  "), "\n", "\r\n"), false, false},
	}
	file := filepath.Join(t.TempDir(), "list.json")
	for _, tc := range cases {
		if err := os.WriteFile(file, []byte(tc.in), 0o644); err != nil {
			t.Fatal(err)
		}
		p := newYParser(file, crlfToLF([]byte(tc.in))) // as Load reads it
		if _, got := p.jsonListLayout(); got != tc.layout {
			t.Errorf("%s: jsonListLayout %v, want %v", tc.name, got, tc.layout)
		}
		fastYAMLEnabled = false
		want, wantDiags := Load([]string{file}, nil, Options{})
		fastYAMLEnabled = true
		before := wholeFallbacks.Load()
		got, gotDiags := Load([]string{file}, nil, Options{})
		if whole := wholeFallbacks.Load() > before; whole != tc.whole {
			t.Errorf("%s: given back whole %v, want %v", tc.name, whole, tc.whole)
		}
		if d := cmp.Diff(wantDiags.Error(), gotDiags.Error()); d != "" {
			t.Errorf("%s: diagnostics differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: objects differ (-sequential +chunked):\n%s", tc.name, d)
		}
		// Standard input, JSON when it is valid JSON.
		fastYAMLEnabled = false
		wantIn, wantInDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		fastYAMLEnabled = true
		gotIn, gotInDiags := Load([]string{"-"}, strings.NewReader(tc.in), Options{})
		if d := cmp.Diff(wantInDiags.Error(), gotInDiags.Error()); d != "" {
			t.Errorf("%s: stdin: diagnostics differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if d := cmp.Diff(wantIn, gotIn); d != "" {
			t.Errorf("%s: stdin: objects differ (-sequential +chunked):\n%s", tc.name, d)
		}
		if tc.name == "multi-line strings" && !strings.Contains(tc.in, `"last-applied": "{\"a\": 1}\n"`) {
			t.Errorf("%s: no multi-line strings", tc.name)
		}
		if tc.name == "valid" && (len(wantDiags) != 0 || len(want.Services) != 1500) {
			t.Errorf("%s: %d Services, diagnostics %v", tc.name, len(want.Services), wantDiags)
		}
		if invalid := strings.Contains(tc.name, "invalid"); invalid && (len(gotDiags.Errors()) == 0 || len(gotInDiags.Errors()) == 0) {
			t.Errorf("%s: no errors", tc.name)
		}
	}
}

// TestLargeJSONSyntaxErrors checks the position of a syntax error in a
// List in kubectl's JSON layout large enough to be read dedented and
// decoded in parts, in a file and on standard input, with the fast
// parsers and without: just past the last byte of a truncated List, at
// the offending byte of one with a stray character.
func TestLargeJSONSyntaxErrors(t *testing.T) {
	var b bytes.Buffer
	if err := synth.WriteKubectl(&b, synth.Config{Services: 250, Endpoints: 4}, true); err != nil {
		t.Fatal(err)
	}
	valid := b.String()
	if len(valid) < 3*chunkBytes {
		t.Fatalf("input of %d bytes is too small to be chunked", len(valid))
	}
	// at is the line:column of offset i of s.
	at := func(s string, i int) string {
		return fmt.Sprintf("%d:%d", strings.Count(s[:i], "\n")+1, i-strings.LastIndexByte(s[:i], '\n'))
	}
	mid := len(valid) / 2
	line := strings.IndexByte(valid[mid:], '\n') + mid + 1 // a line's start
	str := strings.Index(valid[mid:], `"name": "`) + mid + 5
	comma := strings.Index(valid[mid:], ",\n") + mid + 1
	eoi := "JSON syntax error: unexpected end of input"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"truncated", valid[:mid], at(valid, mid) + ": " + eoi},
		{"truncated at a line's start", valid[:line], at(valid, line) + ": " + eoi},
		{"truncated in its indentation", valid[:line+6], at(valid, line+6) + ": " + eoi},
		{"truncated in a string", valid[:str], at(valid, str) + ": " + eoi},
		{"truncated before the List's end", valid[:len(valid)-2], at(valid, len(valid)-2) + ": " + eoi},
		{"truncated CRLF", strings.ReplaceAll(valid[:line+6], "\n", "\r\n"), at(valid, line+6) + ": " + eoi},
		{"stray character", valid[:comma] + "x" + valid[comma:], at(valid, comma) + ": JSON syntax error: invalid character 'x' looking for beginning of object key string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "list.json")
			if err := os.WriteFile(file, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			defer func(on bool) { fastYAMLEnabled = on }(fastYAMLEnabled)
			for _, fast := range []bool{true, false} {
				fastYAMLEnabled = fast
				_, diags := Load([]string{file}, nil, Options{})
				if diff := cmp.Diff([]string{file + ":" + tc.want}, diagStrings(diags)); diff != "" {
					t.Errorf("file, fast %v: diagnostics (-want +got):\n%s", fast, diff)
				}
				_, diags = Load([]string{"-"}, strings.NewReader(tc.in), Options{})
				if diff := cmp.Diff([]string{"-:" + tc.want}, diagStrings(diags)); diff != "" {
					t.Errorf("stdin, fast %v: diagnostics (-want +got):\n%s", fast, diff)
				}
			}
		})
	}
}
