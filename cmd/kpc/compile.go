package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"kpc/compiler/ir"
	"kpc/render"
)

func runCompile(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("compile", "kpc compile [-f FILE|DIR|-]... [PATH...] [flags]", stderr)
	var in inputFlags
	var nf nodeFlags
	in.register(fs)
	nf.register(fs)
	format := fs.String("format", "nft", "output format: nft, iptables, ir, dns (a zone file of the cluster domain)")
	family := fs.String("family", "", "iptables: the family to write (ipv4 or ipv6); default the only family that holds a Service (with both, -o PATH writes PATH.ipv4 and PATH.ipv6)")
	domain := fs.String("cluster-domain", "cluster.local", "dns: the cluster domain (the zone's origin)")
	out := fs.StringP("output", "o", "", "write to this file atomically instead of stdout")
	timings := fs.Bool("timings", false, "print to stderr how long each step took (load, compile, render and write)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	// The flags' values are checked before the input is read.
	if err := checkFormat(*format, *family); err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		return exitUsage
	}
	var timed steps
	dns := strings.EqualFold(*format, "dns")
	prog, code := build(fs, &in, &nf, uses{services: dns, rendered: !strings.EqualFold(*format, "ir"), settingsOnly: dns}, &timed, stdin, stderr)
	if prog == nil {
		return code
	}
	start := time.Now()
	report := func(code int) int {
		if *timings && code == exitOK {
			timed.add("to render and write", start)
			timed.report(stderr, "compile")
		}
		return code
	}
	if strings.EqualFold(*format, "iptables") && *family == "" && *out != "" && *out != "-" && len(servingRulesets(prog)) > 1 {
		return report(writeFamilyFiles(prog, *out, stderr))
	}
	render, err := renderer(prog, *format, *family, *domain, *out != "" && *out != "-")
	if err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		return exitUsage
	}
	if err := writeOutput(*out, stdout, render); err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		var rerr renderError
		if errors.As(err, &rerr) {
			return exitUsage
		}
		return exitInvalid
	}
	return report(exitOK)
}

// renderError is an error of a renderer (not of writing its output).
type renderError struct{ error }

func (e renderError) Unwrap() error { return e.error }

// renderer returns the function that renders prog in the named format to
// a writer; domain is the cluster domain of the dns format. Every
// renderer that can refuse a Program builds its whole output before
// writing any of it, so an invalid Program leaves the destination
// untouched (ir, which refuses none, writes as it goes), except that with
// staged set (the writer's output is dropped on error: see stageOutput)
// iptables writes its chains' rules as it makes them (IPTables.Stream).
// The function's rendering errors are renderErrors.
func renderer(prog *ir.Program, format, family, domain string, staged bool) (func(io.Writer) error, error) {
	var r render.Renderer
	switch strings.ToLower(format) {
	case "nft":
		r = render.NFT{}
	case "iptables":
		fam, err := pickFamily(prog, family)
		if err != nil {
			return nil, err
		}
		r = render.IPTables{Family: fam, Stream: staged}
	case "dns":
		r = render.DNS{Domain: domain}
	case "ir":
		// Dump fails only when its writer does, so it writes as it goes:
		// its output is several times the nft ruleset's, which a buffer
		// of the whole would hold twice over while it grows.
		return func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<16)
			if err := ir.Dump(bw, prog); err != nil {
				return err
			}
			return bw.Flush()
		}, nil
	default:
		return nil, formatError(format)
	}
	return func(w io.Writer) error {
		// An error of the writer is returned as it is; any other is the
		// renderer's own.
		ew := &errWriter{w: w}
		err := r.Render(ew, prog)
		switch {
		case err == nil:
			return nil
		case ew.err != nil:
			return ew.err
		}
		return renderError{fmt.Errorf("rendering %s: %w", format, err)}
	}, nil
}

// errWriter remembers the first error of its writer.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// pickFamily chooses the family of an iptables file: the named one, else
// the only one present, else IPv4 with both present being an error.
func pickFamily(prog *ir.Program, name string) (ir.Family, error) {
	if name != "" {
		return parseFamily(name)
	}
	serving := servingRulesets(prog)
	if len(serving) > 1 {
		return 0, fmt.Errorf("the input has IPv4 and IPv6 Services: choose one with --family ipv4|ipv6, or give -o PATH to get PATH.ipv4 and PATH.ipv6 (iptables-restore and ip6tables-restore take one family each)")
	}
	if len(serving) == 1 {
		return serving[0].Family, nil
	}
	if len(prog.Rulesets) > 0 {
		return prog.Rulesets[0].Family, nil
	}
	return ir.IPv4, nil
}

// parseFamily reads --family.
func parseFamily(name string) (ir.Family, error) {
	switch strings.ToLower(name) {
	case "ipv4", "4", "ip":
		return ir.IPv4, nil
	case "ipv6", "6", "ip6":
		return ir.IPv6, nil
	}
	return 0, fmt.Errorf("--family %q: want ipv4 or ipv6", name)
}

// formatError is the error of an unknown --format.
func formatError(format string) error {
	return fmt.Errorf("--format %q: want nft, iptables, ir or dns", format)
}

// checkFormat checks --format and --family before anything is read.
func checkFormat(format, family string) error {
	switch strings.ToLower(format) {
	case "nft", "iptables", "ir", "dns":
	default:
		return formatError(format)
	}
	if family != "" {
		_, err := parseFamily(family)
		return err
	}
	return nil
}

// servingRulesets returns prog's Rulesets that hold a Service. A family's
// Ruleset without one (kept for its service CIDRs) does nothing in
// iptables, which, as kube-proxy's iptables mode, drops no unallocated
// address.
func servingRulesets(prog *ir.Program) []*ir.Ruleset {
	var out []*ir.Ruleset
	for _, rs := range prog.Rulesets {
		if rs != nil && rs.HoldsServices() {
			out = append(out, rs)
		}
	}
	return out
}

// writeFamilyFiles writes one iptables-restore file per family, PATH.ipv4
// and PATH.ipv6, for input with Services of both families: each family has
// its own restore tool.
func writeFamilyFiles(prog *ir.Program, path string, stderr io.Writer) int {
	// Each family is rendered straight into its staged file, so that the
	// first family's text (300 MB at 50,000 mixed Services x 10
	// endpoints) is not held while the second is rendered; the files are
	// put in place only when both are written, and either both or neither
	// (see commitAll).
	var files []*staged
	discard := func() {
		for _, f := range files {
			f.discard()
		}
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		render, err := renderer(prog, "iptables", fam, "", true)
		if err != nil {
			discard()
			fmt.Fprintf(stderr, "kpc compile: %v\n", err)
			return exitUsage
		}
		f, err := stageOutput(path+"."+fam, render)
		if err != nil {
			discard()
			fmt.Fprintf(stderr, "kpc compile: %v\n", err)
			var rerr renderError
			if errors.As(err, &rerr) {
				return exitUsage
			}
			return exitInvalid
		}
		files = append(files, f)
	}
	if err := commitAll(files); err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		return exitInvalid
	}
	for _, f := range files {
		fmt.Fprintf(stderr, "kpc: wrote %s\n", f.path)
	}
	return exitOK
}
