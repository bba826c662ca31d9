package main

import (
	"bytes"
	"fmt"
	"io"

	"kpc/internal/envvars"
)

// runEnv prints the Service environment variables the kubelet gives a new
// pod of a namespace (see package envvars), as shell export lines.
func runEnv(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("env", "kpc env [-n NAMESPACE] [-f FILE|DIR|-]... [PATH...] [flags]", stderr)
	var in inputFlags
	var nf nodeFlags
	in.register(fs)
	nf.register(fs)
	ns := fs.StringP("namespace", "n", "default", "the namespace of the pod")
	out := fs.StringP("output", "o", "", "write to this file atomically instead of stdout")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *ns == "" {
		fmt.Fprintln(stderr, "kpc env: --namespace must not be empty")
		return exitUsage
	}
	prog, code := build(fs, &in, &nf, uses{services: true, settingsOnly: true}, nil, stdin, stderr)
	if prog == nil {
		return code
	}
	vars, warnings := envvars.ForNamespace(prog.Services, *ns)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "kpc env: warning: %s\n", w)
	}
	var b bytes.Buffer
	if err := envvars.WriteShell(&b, vars); err != nil {
		fmt.Fprintf(stderr, "kpc env: %v\n", err)
		return exitInvalid
	}
	if err := writeOutput(*out, stdout, writeBytes(b.Bytes())); err != nil {
		fmt.Fprintf(stderr, "kpc env: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
