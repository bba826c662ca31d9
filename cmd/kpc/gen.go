package main

import (
	"bufio"
	"fmt"
	"io"

	"kpc/internal/synth"
)

func runGen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("gen", "kpc gen --services N [--endpoints M] [--plain]", stderr)
	services := fs.Int("services", 1000, "number of Services")
	endpoints := fs.Int("endpoints", 5, "endpoints per Service")
	plain := fs.Bool("plain", false, "single-port IPv4 ClusterIP Services only (no NodePorts, policies, affinity or IPv6)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if *services < 0 || *services > 1_000_000 || *endpoints < 0 || *endpoints > 1000 {
		fmt.Fprintln(stderr, "kpc gen: --services must be 0-1000000 and --endpoints 0-1000")
		return exitUsage
	}
	w := bufio.NewWriterSize(stdout, 1<<20)
	if err := synth.Write(w, synth.Config{Services: *services, Endpoints: *endpoints, Plain: *plain}); err != nil {
		fmt.Fprintf(stderr, "kpc gen: %v\n", err)
		return exitInvalid
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "kpc gen: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
