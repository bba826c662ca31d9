// Package bench measures kpc at the scale of large clusters. Its Go
// benchmarks (bench_test.go) time load, compile, validation and both text
// renderers over synthetic clusters of 1,000, 10,000 and 50,000 Services
// from package synth:
//
//	go test ./internal/bench -run '^$' -bench . -benchmem
//	go test ./internal/bench -run '^$' -bench 'Compile|Render' -short   # without 50k
//
// The benchmarks run under the kpc command's garbage-collector policy
// (package gcpolicy: GOGC=400 under a soft memory limit), so that they
// time what the command does; set GOGC=100 for Go's default.
//
// KubeProxyNFT writes the reference that kpc's nft output is compared
// with: kube-proxy's own nftables layout for the same compiled Program.
// The kernel measurements live in the commands kernelbench (load times in
// fresh network namespaces) and connrate (new connections per second
// through a node), run by scripts/bench-kernel.sh.
package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"kpc/compiler"
	"kpc/compiler/api"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/synth"
)

// Sizes are the cluster sizes (numbers of Services) benchmarked.
var Sizes = []int{1000, 10000, 50000}

// Endpoints is the number of endpoints of every synthetic Service
// (kube-proxy's own scale benchmarks use 10).
const Endpoints = 10

// Shape is one synthetic cluster.
type Shape struct {
	Services  int
	Endpoints int
	// Plain: single-port IPv4 ClusterIP Services only (see synth.Config).
	Plain bool
}

// Name is "plain/N" or "mixed/N", for sub-benchmark names.
func (s Shape) Name() string {
	if s.Plain {
		return fmt.Sprintf("plain/%d", s.Services)
	}
	return fmt.Sprintf("mixed/%d", s.Services)
}

// YAML returns the cluster's manifests.
func YAML(s Shape) ([]byte, error) {
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: s.Services, Endpoints: s.Endpoints, Plain: s.Plain}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteYAML writes the cluster's manifests to a file in dir and returns
// its path.
func WriteYAML(dir string, s Shape) (string, error) {
	data, err := YAML(s)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("cluster-%s-%d.yaml", map[bool]string{true: "plain", false: "mixed"}[s.Plain], s.Services))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// Load reads and validates the manifests at path.
func Load(path string) (*api.Input, error) {
	in, diags := load.Load([]string{path}, nil, load.Options{})
	if err := diags.Err(); err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return in, nil
}

// Compile compiles in with default options.
func Compile(in *api.Input) (*ir.Program, error) {
	prog, diags := compiler.Compile(in, compiler.Options{})
	if err := diags.Err(); err != nil {
		return nil, fmt.Errorf("compiling: %w", err)
	}
	return prog, nil
}

// Program generates, loads and compiles the cluster s, using dir for the
// manifest file.
func Program(dir string, s Shape) (*ir.Program, error) {
	path, err := WriteYAML(dir, s)
	if err != nil {
		return nil, err
	}
	in, err := Load(path)
	if err != nil {
		return nil, err
	}
	return Compile(in)
}
