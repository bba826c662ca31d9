package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

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
	family := fs.String("family", "", "iptables: the family to write (ipv4 or ipv6); default ipv4, or the only family present")
	domain := fs.String("cluster-domain", "cluster.local", "dns: the cluster domain (the zone's origin)")
	out := fs.StringP("output", "o", "", "write to this file atomically instead of stdout")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	prog, code := build(fs, &in, &nf, stdin, stderr)
	if prog == nil {
		return code
	}
	if strings.EqualFold(*format, "iptables") && *family == "" && *out != "" && *out != "-" && len(prog.Rulesets) > 1 {
		return writeFamilyFiles(prog, *out, stderr)
	}
	data, err := renderProgram(prog, *format, *family, *domain)
	if err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		return exitUsage
	}
	if err := writeOutput(*out, data, stdout); err != nil {
		fmt.Fprintf(stderr, "kpc compile: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// renderProgram renders prog in the named format; domain is the cluster
// domain of the dns format.
func renderProgram(prog *ir.Program, format, family, domain string) ([]byte, error) {
	var r render.Renderer
	switch strings.ToLower(format) {
	case "nft":
		r = render.NFT{}
	case "iptables":
		fam, err := pickFamily(prog, family)
		if err != nil {
			return nil, err
		}
		r = render.IPTables{Family: fam}
	case "dns":
		r = render.DNS{Domain: domain}
	case "ir":
		var b bytes.Buffer
		if err := ir.Dump(&b, prog); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	default:
		return nil, fmt.Errorf("--format %q: want nft, iptables, ir or dns", format)
	}
	var b bytes.Buffer
	if err := r.Render(&b, prog); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", format, err)
	}
	return b.Bytes(), nil
}

// pickFamily chooses the family of an iptables file: the named one, else
// the only one present, else IPv4 with both present being an error.
func pickFamily(prog *ir.Program, name string) (ir.Family, error) {
	switch strings.ToLower(name) {
	case "ipv4", "4", "ip":
		return ir.IPv4, nil
	case "ipv6", "6", "ip6":
		return ir.IPv6, nil
	case "":
	default:
		return 0, fmt.Errorf("--family %q: want ipv4 or ipv6", name)
	}
	if len(prog.Rulesets) > 1 {
		return 0, fmt.Errorf("the input has IPv4 and IPv6 Services: choose one with --family ipv4|ipv6, or give -o PATH to get PATH.ipv4 and PATH.ipv6 (iptables-restore and ip6tables-restore take one family each)")
	}
	if len(prog.Rulesets) == 1 {
		return prog.Rulesets[0].Family, nil
	}
	return ir.IPv4, nil
}

// writeFamilyFiles writes one iptables-restore file per family, PATH.ipv4
// and PATH.ipv6, for input with Services of both families: each family has
// its own restore tool.
func writeFamilyFiles(prog *ir.Program, path string, stderr io.Writer) int {
	files := map[string][]byte{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		data, err := renderProgram(prog, "iptables", fam, "")
		if err != nil {
			fmt.Fprintf(stderr, "kpc compile: %v\n", err)
			return exitUsage
		}
		files[path+"."+fam] = data
	}
	for _, name := range []string{path + ".ipv4", path + ".ipv6"} {
		if err := writeOutput(name, files[name], nil); err != nil {
			fmt.Fprintf(stderr, "kpc compile: %v\n", err)
			return exitInvalid
		}
		fmt.Fprintf(stderr, "kpc: wrote %s\n", name)
	}
	return exitOK
}
