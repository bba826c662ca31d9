package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"kpc/compiler"
	"kpc/compiler/diag"
	"kpc/compiler/load"
)

func runValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "kpc validate [-f FILE|DIR|-]... [PATH...] [-o text|json|junit]", stderr)
	in := inputFlags{validating: true}
	in.register(fs)
	serviceCIDRs := fs.StringArray("service-cidr", nil, "check cluster IPs and IP families against these Service CIDRs; repeatable, comma-separated allowed")
	format := fs.StringP("output", "o", "text", "report format: text, json or junit")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	paths := in.paths(fs)
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "kpc validate: no input: give -f FILE|DIR|- or a path")
		return exitUsage
	}
	switch *format {
	case "text", "json", "junit":
	default:
		fmt.Fprintf(stderr, "kpc validate: -o %q: want text, json or junit\n", *format)
		return exitUsage
	}
	if in.nodePortRange != "" {
		if _, err := parsePortRange(in.nodePortRange); err != nil {
			fmt.Fprintf(stderr, "kpc validate: %v\n", err)
			return exitUsage
		}
	}
	var cidrs []netip.Prefix
	var err error
	if fs.Changed("service-cidr") {
		if cidrs, err = parsePrefixes("--service-cidr", *serviceCIDRs); err != nil {
			fmt.Fprintf(stderr, "kpc validate: %v\n", err)
			return exitUsage
		}
	}
	// The checks across Services that the API server makes as it
	// allocates (a cluster IP or nodePort taken twice, a Service given
	// twice) are the compiler's: an input that validates compiles.
	opts := compiler.Options{ServiceCIDRs: cidrs, SkipServices: true, SkipRulesetBodies: true}
	if in.nodePortRange != "" {
		opts.NodePortRange, _ = parsePortRange(in.nodePortRange) // checked above
	}
	input, diags, ok := loadInputs(paths, &in, opts, stdin, stderr)
	if ok {
		// (loadInputs makes them itself when the input is invalid.)
		_, cdiags := compiler.Compile(input, opts)
		diags = append(diags, load.Refine(cdiags)...)
		diags.Sort()
	}
	if in.strict {
		diags.Strict()
	}
	code := exitOK
	if diags.Err() != nil {
		code = exitInvalid
	}
	switch *format {
	case "text":
		printDiags(stdout, diags)
	case "json":
		err = writeJSONReport(stdout, diags)
	case "junit":
		err = writeJUnitReport(stdout, paths, diags)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kpc validate: %v\n", err)
		return exitInvalid
	}
	return code
}

// jsonDiag is one diagnostic in the JSON report.
type jsonDiag struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Object   string `json:"object,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

func writeJSONReport(w io.Writer, diags diag.List) error {
	report := struct {
		Valid       bool       `json:"valid"`
		Diagnostics []jsonDiag `json:"diagnostics"`
	}{Valid: diags.Err() == nil, Diagnostics: []jsonDiag{}}
	for _, d := range diags {
		sev := "error"
		if d.Severity == diag.SevWarning {
			sev = "warning"
		}
		report.Diagnostics = append(report.Diagnostics, jsonDiag{
			File: d.Pos.File, Line: d.Pos.Line, Column: d.Pos.Col,
			Object: d.Object, Field: d.Path, Message: d.Msg, Severity: sev,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnitReport writes one test case per object (or file) that has an
// error, and one passing case per input path when it has none, so that CI
// systems show a green suite for valid input.
func writeJUnitReport(w io.Writer, paths []string, diags diag.List) error {
	suite := junitSuite{Name: "kpc validate"}
	for _, d := range diags.Errors() {
		name := d.Object
		if name == "" {
			name = d.Pos.File
		}
		msg := d.Msg
		if d.Path != "" {
			msg = d.Path + ": " + msg
		}
		suite.Cases = append(suite.Cases, junitCase{
			Name: name, ClassName: d.Pos.File,
			Failure: &junitFailure{Message: msg, Type: "invalid", Text: d.Error()},
		})
		suite.Failures++
	}
	// An input path (a file, a directory, "-") without errors passes.
	for _, p := range paths {
		clean := filepath.Clean(p)
		failed := slices.ContainsFunc(diags.Errors(), func(d *diag.Error) bool {
			f := filepath.Clean(d.Pos.File)
			return d.Pos.File == "" || f == clean || clean == "." || strings.HasPrefix(f, strings.TrimSuffix(clean, string(filepath.Separator))+string(filepath.Separator))
		})
		if !failed {
			suite.Cases = append(suite.Cases, junitCase{Name: p, ClassName: p})
		}
	}
	suite.Tests = len(suite.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
