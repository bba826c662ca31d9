package main

import (
	"bufio"
	"fmt"
	"io"

	"kpc/internal/synth"
)

func runGen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("gen", "kpc gen [--services N] [--endpoints M] [--plain] [--format manifests|kubectl-yaml|kubectl-json]", stderr)
	services := fs.Int("services", 1000, "number of Services")
	endpoints := fs.Int("endpoints", 5, "endpoints per Service")
	plain := fs.Bool("plain", false, "single-port IPv4 ClusterIP Services only (no NodePorts, policies, affinity or IPv6)")
	format := fs.String("format", "manifests", `"manifests": multi-document YAML with the node's Node and KubeProxyConfiguration; "kubectl-yaml", "kubectl-json": the Services and EndpointSlices as "kubectl get services,endpointslices -A -o yaml" (or -o json) prints them, fields the API server adds included`)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *services < 0 || *services > 1_000_000 || *endpoints < 0 || *endpoints > 1000 {
		fmt.Fprintln(stderr, "kpc gen: --services must be 0-1000000 and --endpoints 0-1000")
		return exitUsage
	}
	c := synth.Config{Services: *services, Endpoints: *endpoints, Plain: *plain}
	var write func(io.Writer) error
	switch *format {
	case "manifests":
		write = func(w io.Writer) error { return synth.Write(w, c) }
	case "kubectl-yaml", "kubectl-json":
		write = func(w io.Writer) error { return synth.WriteKubectl(w, c, *format == "kubectl-json") }
	default:
		fmt.Fprintf(stderr, "kpc gen: --format must be manifests, kubectl-yaml or kubectl-json, not %q\n", *format)
		return exitUsage
	}
	w := bufio.NewWriterSize(stdout, 1<<20)
	if err := write(w); err != nil {
		fmt.Fprintf(stderr, "kpc gen: %v\n", err)
		return exitInvalid
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "kpc gen: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
