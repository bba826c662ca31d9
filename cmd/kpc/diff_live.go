package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// liveReport is the JSON form of kpc diff --live. Old and New name the
// sides as the text's --- and +++ lines do (and as kpc diff OLD NEW's
// report does): the kernel's tables are the old side, what kpc apply
// would install from the manifests the new one. Lines are the text's
// (see netlink.Drift): "- " what only the kernel holds, "+ " what only
// the manifests would install. Schema version 1 had no Old and New and
// gave the signs of Lines the other way round.
type liveReport struct {
	SchemaVersion int      `json:"schemaVersion"`
	Equal         bool     `json:"equal"`
	Namespace     string   `json:"namespace,omitempty"`
	Old           string   `json:"old"`
	New           string   `json:"new"`
	Lines         []string `json:"lines"`
}

// liveNew names the new side of kpc diff --live.
const liveNew = "kpc apply (the manifests)"

// liveOld names the old side of kpc diff --live: the kernel of network
// namespace nsPath, or of the current one when nsPath is empty.
func liveOld(nsPath string) string {
	if nsPath == "" {
		return "kernel (the current network namespace)"
	}
	return "kernel (" + nsPath + ")"
}

// runDiffLive compiles the manifests, reads kpc's nftables tables back
// from the kernel over netlink and prints the drift as a diff from the
// kernel to the manifests (see netlink.Drift for what is compared and
// for the signs). Exit status: 0 without drift, 1 with drift, 2 on any
// error (usage, invalid input, no access to the kernel).
func runDiffLive(fs *pflag.FlagSet, in *inputFlags, nf *nodeFlags, netns, output string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch output {
	case "text", "json":
	default:
		fmt.Fprintf(stderr, "kpc diff: -o %q: want text or json\n", output)
		return exitUsage
	}
	if f := fs.Lookup("format"); f != nil && f.Changed && f.Value.String() != "nft" {
		fmt.Fprintln(stderr, "kpc diff: --live compares the nftables tables of the netlink backend; --format must be nft")
		return exitUsage
	}
	nsPath := ""
	if netns != "" {
		nsPath = netns
		if !strings.Contains(nsPath, "/") {
			nsPath = defaultNetnsDir + nsPath
		}
		if _, err := os.Stat(nsPath); err != nil {
			fmt.Fprintf(stderr, "kpc diff: --netns %q: no such network namespace\n", netns)
			return exitUsage
		}
	}
	prog, code := build(fs, in, nf, uses{}, nil, stdin, stderr)
	if prog == nil {
		if code == exitInvalid {
			code = exitUsage
		}
		return code
	}
	lines, err := liveDrift(prog, nsPath)
	if err != nil {
		fmt.Fprintf(stderr, "kpc diff: %v\n", needs(err, "reading kpc's tables needs CAP_NET_ADMIN"))
		return exitUsage
	}
	if output == "json" {
		if lines == nil {
			lines = []string{}
		}
		b, err := json.MarshalIndent(liveReport{SchemaVersion: 2, Equal: len(lines) == 0, Namespace: nsPath,
			Old: liveOld(nsPath), New: liveNew, Lines: lines}, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "kpc diff: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else if len(lines) > 0 {
		fmt.Fprintf(stdout, "--- %s\n+++ %s\n", liveOld(nsPath), liveNew)
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
	}
	if len(lines) > 0 {
		return exitInvalid
	}
	return exitOK
}
