package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// liveReport is the JSON form of kpc diff --live.
type liveReport struct {
	SchemaVersion int      `json:"schemaVersion"`
	Equal         bool     `json:"equal"`
	Namespace     string   `json:"namespace,omitempty"`
	Lines         []string `json:"lines"`
}

// runDiffLive compiles the manifests, reads kpc's nftables tables back
// from the kernel over netlink and prints the drift (see netlink.Drift for
// what is compared). Exit status: 0 without drift, 1 with drift, 2 on any
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
		fmt.Fprintf(stderr, "kpc diff: %v\n", err)
		return exitUsage
	}
	if output == "json" {
		if lines == nil {
			lines = []string{}
		}
		b, err := json.MarshalIndent(liveReport{SchemaVersion: 1, Equal: len(lines) == 0, Namespace: nsPath, Lines: lines}, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "kpc diff: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else if len(lines) > 0 {
		where := "the current network namespace"
		if nsPath != "" {
			where = nsPath
		}
		fmt.Fprintf(stdout, "--- kernel (%s)\n+++ kpc apply (the manifests)\n", where)
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
	}
	if len(lines) > 0 {
		return exitInvalid
	}
	return exitOK
}
