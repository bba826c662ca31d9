package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// corpusDir is the loader's corpus of manifests with their expected
// outcome (see compiler/load/corpus_test.go for the header format).
const corpusDir = "../../compiler/load/testdata/corpus"

// corpusExpect is what a corpus header says kpc validate must do.
type corpusExpect struct {
	flags  []string // from "# opts:"
	valid  bool     // "# want: valid"
	paths  []string // the field paths of "# want: PATH: TYPE"
	warns  int      // "# warn:" lines
	strict bool
}

func readCorpusExpect(t *testing.T, file string) corpusExpect {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var e corpusExpect
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "#") {
			break
		}
		key, val, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), ":")
		val = strings.TrimSpace(val)
		switch key {
		case "opts":
			e.flags = strings.Fields(val)
			e.strict = slices.Contains(e.flags, "--strict")
		case "want":
			if val == "valid" {
				e.valid = true
			} else {
				p, _, _ := strings.Cut(val, ": ")
				e.paths = append(e.paths, p)
			}
		case "warn":
			e.warns++
		}
	}
	return e
}

func corpusManifests(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 150 {
		t.Fatalf("corpus has %d manifests, want at least 150", len(files))
	}
	return files
}

// jsonReport is kpc validate -o json's output.
type jsonReport struct {
	Valid       bool `json:"valid"`
	Diagnostics []struct {
		File, Field, Message, Severity string
		Line                           int
	} `json:"diagnostics"`
}

// TestValidateCorpus runs kpc validate -o json on every corpus manifest
// and checks the exit status (0 valid, 1 invalid: errors, or warnings under
// --strict), the report's verdict and the reported field paths.
func TestValidateCorpus(t *testing.T) {
	for _, file := range corpusManifests(t) {
		name := strings.TrimSuffix(strings.TrimPrefix(file, corpusDir+"/"), ".yaml")
		t.Run(name, func(t *testing.T) {
			e := readCorpusExpect(t, file)
			args := append(append([]string{"validate", "-o", "json"}, e.flags...), file)
			var stdout, stderr bytes.Buffer
			code := run(args, nil, &stdout, &stderr)
			want := exitOK
			if !e.valid || (e.strict && e.warns > 0) {
				want = exitInvalid
			}
			if code != want {
				t.Errorf("kpc %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
			}
			var rep jsonReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("json report: %v\n%s", err, stdout.String())
			}
			if rep.Valid != (want == exitOK) {
				t.Errorf("report valid=%v, want %v", rep.Valid, want == exitOK)
			}
			for _, p := range e.paths {
				found := false
				for _, d := range rep.Diagnostics {
					found = found || (d.Field == p && d.Severity == "error" && d.Line > 0)
				}
				if !found {
					t.Errorf("no error at %s in the report:\n%s", p, stdout.String())
				}
			}
		})
	}
}

// acrossFiles matches the compiler's errors of a conflict between objects.
var acrossFiles = regexp.MustCompile(`^duplicate (Service|EndpointSlice|Endpoints) \(first defined at |is already (allocated to|used by) Service `)

// TestValidateCorpusReports validates the whole corpus at once: exit 1,
// and JSON and JUnit reports that parse; and checks the usage errors.
func TestValidateCorpusReports(t *testing.T) {
	files := corpusManifests(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-o", "json", corpusDir}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("validate corpus: exit %d, want %d\n%s", code, exitInvalid, stderr.String())
	}
	var rep jsonReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("json report: %v", err)
	}
	withErrors := map[string]bool{}
	for _, d := range rep.Diagnostics {
		if d.Severity == "error" && !acrossFiles.MatchString(d.Message) {
			withErrors[d.File] = true
		}
	}
	// Without flags, the files that need none have errors exactly when
	// they are invalid, besides the conflicts between files: read as one
	// input, they reuse names, and the valid ones are still checked
	// across documents.
	for _, f := range files {
		if e := readCorpusExpect(t, f); len(e.flags) == 0 && withErrors[f] == e.valid {
			t.Errorf("%s: errors reported: %v, want %v", f, withErrors[f], !e.valid)
		}
	}

	stdout.Reset()
	if code := run([]string{"validate", "-o", "junit", corpusDir}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("validate -o junit: exit %d, want %d", code, exitInvalid)
	}
	var suites junitSuites
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Failures == 0 || suites.Suites[0].Tests != len(suites.Suites[0].Cases) {
		t.Errorf("unexpected junit summary: %d suites", len(suites.Suites))
	}

	valid := filepath.Join(corpusDir, "apiserver", "service-create", "valid-1.yaml")
	stdout.Reset()
	if code := run([]string{"validate", "-o", "junit", valid}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("validate -o junit %s: exit %d", valid, code)
	}
	suites = junitSuites{}
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Failures != 0 || suites.Suites[0].Tests != 1 {
		t.Errorf("junit of a valid file: %+v", suites)
	}

	for _, args := range [][]string{
		{"validate", "-o", "json"},
		{"validate", "-o", "yaml", valid},
		{"validate", "--service-cidr", "nope", valid},
		{"validate", "--service-cidr", "10.96.0.1/12", valid},
		{"validate", "--service-node-port-range", "32767-30000", valid},
		{"validate", "--no-such-flag", valid},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(args, nil, &stdout, &stderr); code != exitUsage {
			t.Errorf("kpc %s: exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
}
