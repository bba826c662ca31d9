package main

import (
	"fmt"
	"io"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/irdiff"
)

// runDiff compiles two versions of the manifests for the same node and
// prints what changes (see package irdiff); with --live it compares the
// kernel's tables with the manifests instead (see runDiffLive). Exit
// status as diff(1): 0 when they are equal, 1 when they differ, 2 on any
// error (usage, invalid input on either side, rendering).
func runDiff(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", "kpc diff OLD NEW [flags]   (OLD and NEW: a manifest file, a directory, or - for stdin)\n       kpc diff --live -f FILE|DIR|- [flags]", stderr)
	var in inputFlags
	var nf nodeFlags
	fs.BoolVar(&in.strict, "strict", false, "make every warning an error (unknown fields, duplicate keys, cross-document checks, ...), but for skipped documents of other kinds")
	fs.StringVar(&in.nodePortRange, "service-node-port-range", "", "check nodePorts against this range, e.g. 30000-32767")
	nf.register(fs)
	format := fs.String("format", "nft", "ruleset format whose lines are compared and whose semantics traffic is traced in: nft or iptables")
	output := fs.StringP("output", "o", "text", "report format: text or json")
	live := fs.Bool("live", false, "compare kpc's nftables tables in the kernel (read over netlink) with what \"kpc apply\" would install from the manifests (-f or PATH...)")
	netns := fs.String("netns", "", "with --live: the network namespace to read, a name from \"ip netns\" or a path")
	fs.StringArrayVarP(&in.files, "filename", "f", nil, "with --live: manifest file, directory or - for stdin; repeatable")
	fs.VarPF(recursiveFlag{}, "recursive", "R", "accepted as kubectl takes it: directories are always read recursively").NoOptDefVal = "true"
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *live {
		return runDiffLive(fs, &in, &nf, *netns, *output, stdin, stdout, stderr)
	}
	if len(in.files) > 0 {
		fmt.Fprintln(stderr, "kpc diff: -f is for --live; give OLD and NEW as arguments")
		return exitUsage
	}
	paths := fs.Args()
	if len(paths) != 2 {
		fmt.Fprintf(stderr, "kpc diff: want two inputs, OLD and NEW; got %d\n", len(paths))
		return exitUsage
	}
	if paths[0] == "-" && paths[1] == "-" {
		fmt.Fprintln(stderr, "kpc diff: only one side can be read from stdin")
		return exitUsage
	}
	switch *format {
	case "nft", "iptables":
	default:
		fmt.Fprintf(stderr, "kpc diff: --format %q: want nft or iptables\n", *format)
		return exitUsage
	}
	switch *output {
	case "text", "json":
	default:
		fmt.Fprintf(stderr, "kpc diff: -o %q: want text or json\n", *output)
		return exitUsage
	}
	opts, err := nf.options(fs)
	if err != nil {
		fmt.Fprintf(stderr, "kpc diff: %v\n", err)
		return exitUsage
	}
	if in.nodePortRange != "" {
		r, err := parsePortRange(in.nodePortRange)
		if err != nil {
			fmt.Fprintf(stderr, "kpc diff: %v\n", err)
			return exitUsage
		}
		opts.NodePortRange = r
	}
	var progs [2]*ir.Program
	for i, side := range []string{"old", "new"} {
		progs[i] = compileSide(paths[i], &in, opts, stdin, stderr)
		if progs[i] == nil {
			fmt.Fprintf(stderr, "kpc diff: the %s side (%s) is invalid\n", side, paths[i])
			return exitUsage
		}
	}
	rep, err := irdiff.Compare(progs[0], progs[1], irdiff.Options{Format: *format, OldName: paths[0], NewName: paths[1]})
	if err != nil {
		fmt.Fprintf(stderr, "kpc diff: %v\n", err)
		return exitUsage
	}
	if *output == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kpc diff: %v\n", err)
		return exitUsage
	}
	if rep.Equal {
		return exitOK
	}
	return exitInvalid
}

// compileSide loads, validates and compiles one side of a diff. It prints
// the diagnostics (not the allocation notes: they show in the diff when
// they change) and returns nil when the side is invalid.
func compileSide(path string, in *inputFlags, opts compiler.Options, stdin io.Reader, stderr io.Writer) *ir.Program {
	input, diags, ok := loadInputs([]string{path}, in, opts, stdin, stderr)
	if !ok {
		if in.strict {
			diags.Strict()
		}
		printDiags(stderr, diags)
		return nil
	}
	prog, cdiags := compiler.Compile(input, opts)
	diags = append(diags, load.Refine(cdiags)...)
	diags.Sort()
	if in.strict {
		diags.Strict()
	}
	printDiags(stderr, diags)
	if diags.Err() != nil {
		return nil
	}
	return prog
}
