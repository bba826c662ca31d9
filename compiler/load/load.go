// Package load reads Kubernetes manifests (YAML or JSON files, directories,
// standard input), validates every document against the embedded CUE schema
// (package schema) plus the rules that need Go, applies the API server's
// defaults and returns the typed objects of package api.
//
// Pipeline, per input file:
//
//  1. read: at most MaxFileSize bytes, UTF-8 text without control
//     characters;
//  2. decode: one document per YAML document or JSON value; List,
//     ServiceList, EndpointSliceList (any kind ending in "List" with items)
//     are expanded; YAML aliases and merge keys are bounded (MaxNodes) and
//     nesting is limited to MaxDepth levels. The plain YAML that
//     Kubernetes tools write is parsed by a fast parser (yamlfast.go) that
//     builds the same syntax tree as CUE's YAML decoder, which takes over
//     for anything else; a large file is split at document markers (a
//     large List in kubectl's layout, between its items) and its parts
//     are parsed by the validation workers; MaxNodes also bounds each
//     document, and each item of a List;
//  3. normalise, as Go's JSON decoding of the Kubernetes types would: null
//     fields, empty lists, and the zero values ("", 0, false) of non-pointer
//     fields are unset; duplicate keys keep the last value (an error in
//     strict mode);
//  4. validate (in parallel with decoding, one CUE context per worker
//     goroutine): unify with the schema definition and validate
//     concretely; for Service, EndpointSlice and Endpoints the definition
//     is closed, and each field it does not declare is an error in strict
//     mode, a warning otherwise (the open definition then gives the
//     value); then run the Go checks (uniqueness, IPs, CIDRs, cluster IPs
//     and families, the optional cluster-configuration checks of Options).
//     Documents of a shape already validated are validated by shape
//     (memo.go): the shape's evaluation, and its unknown fields, are
//     shared and each of the document's own values is unified with the
//     schema's constraint at its path; any failure is evaluated in full
//     for the error messages;
//  5. decode the defaulted value into the api type and apply the defaults
//     CUE cannot express (sessionAffinityConfig dropped for None, clusterIPs
//     from clusterIP).
package load

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// Bounds on hostile input.
const (
	// MaxFileSize is the largest input file (or standard input) accepted:
	// kubectl prints a Service with an EndpointSlice of 10 endpoints in
	// about 4.3 KB, so this is a cluster of about 120,000 such Services
	// in one file.
	MaxFileSize = 512 << 20
	// MaxDepth is the deepest nesting of mappings and lists in a document.
	MaxDepth = 100
	// MaxNodes bounds the values of one document, counted after YAML alias
	// and merge-key expansion.
	MaxNodes = 1_000_000
	// MaxElements bounds the fields of one mapping and the items of one
	// list of a Service, EndpointSlice, Endpoints or node context
	// document, and MaxLargeElements the elements of all its mappings and
	// lists of more than 1,000 elements together: CUE validates one in
	// time quadratic in its size (20,000 externalIPs in 0.75 s, 40,000 in
	// 3.2 s, 500,000 in minutes). The largest the API server's validation
	// names is an EndpointSlice's 20,000 ports; its objects are at most
	// 1.5 MiB.
	MaxElements      = 25_000
	MaxLargeElements = 40_000
	// MaxObjectValues bounds the values of such a document (the largest
	// EndpointSlice the API server accepts, of 20,000 ports, has about
	// 80,000): the values under fields the schema does not declare are
	// each an error of CUE's closed evaluation, which takes time
	// quadratic in their number (60,000 in 4.4 s, 100,000 in 12 s).
	MaxObjectValues = 100_000
)

// Options configures Load. The zero value is the API server's default
// behaviour for checks that need no cluster state.
type Options struct {
	// Strict rejects unknown fields of Service, EndpointSlice and
	// Endpoints (and of their metadata) and duplicate keys, like kubectl
	// --validate=strict. By default each unknown field is ignored with a
	// warning and the last of duplicate keys wins with a warning (the API
	// server's Warn mode, kubectl's default). Of a KubeProxyConfiguration
	// every field kube-proxy does not know, and of a Node the misspellings
	// of the fields kpc reads, are warnings, or errors with Strict (see
	// lenientUnknown); their other fields are read leniently, as kube-proxy
	// reads them.
	Strict bool
	// ServiceCIDRs, when non-empty, enables rule S27: every clusterIPs
	// entry other than "None" must lie in one of these prefixes.
	ServiceCIDRs []netip.Prefix
	// NodePortRange, when non-zero, enables rule S12: every nodePort and
	// healthCheckNodePort must lie in it. A zero range means the cluster's
	// range is unknown (kube-apiserver's default is 30000-32767): they must
	// then only lie in 1-65535, as every range does.
	NodePortRange PortRange
	// KubeProxy reads the documents as kube-proxy receives them: what a
	// create is refused for but kube-proxy reads (an address with leading
	// zeros, a healthCheckNodePort without the Local policy, ...) is read
	// as kube-proxy reads it, with a warning, as it is in an object the
	// API server stored (see legacy.go). The commands that compile set
	// it; kpc validate, which judges a create, does not.
	KubeProxy bool
}

// PortRange is an inclusive range of ports, like --service-node-port-range.
type PortRange struct {
	Min, Max int
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r.Min == 0 && r.Max == 0 }

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p int) bool { return p >= r.Min && p <= r.Max }

// Load reads the documents of paths and returns the Service, EndpointSlice,
// Node and KubeProxyConfiguration objects among them, validated and
// defaulted, in input order (paths in the order given, directories walked
// in lexical order, documents in file order, List items in list order).
//
// A path is a file (read whatever its extension), a directory (searched
// recursively for *.yaml, *.yml and *.json files) or "-" for stdin, which
// may be given at most once and is named "-" in positions. Files named
// *.json, and stdin when it is a stream of JSON objects, are read as JSON;
// everything else as YAML (possibly several documents).
//
// The returned list holds every problem found, sorted by position: errors
// (diag.SevError) and warnings (diag.SevWarning: an unknown field or a
// duplicate key outside Strict mode, and documents of a kind kpc does not
// read, which are skipped, one warning per kind and file). An object with
// an error is left out of the result and named in its Invalid, as is each
// place where the input could not be read into documents (see
// api.Invalid), so callers must check diags.Err() before compiling it;
// the result is never nil. Load does not panic on any input.
func Load(paths []string, stdin io.Reader, opts Options) (*api.Input, diag.List) {
	var diags diag.List
	out := &sink{v: startValidation(opts)}
	readAll(paths, stdin, opts, &diags, out)
	return finish(out, diags)
}

// LoadFiles loads files already read (ReadFiles), as Load loads the
// files it reads: positions name each File's Name. It leaves the files'
// Data as they are.
func LoadFiles(files []File, opts Options) (*api.Input, diag.List) {
	var diags diag.List
	out := &sink{v: startValidation(opts)}
	for _, f := range files {
		data := f.Data
		if bytes.IndexByte(data, '\r') >= 0 {
			data = bytes.Clone(data) // crlfToLF rewrites it in place
		}
		decodeData(f.Name, data, opts, &diags, out)
	}
	return finish(out, diags)
}

// finish waits for the validation of what out received and gathers the
// Input and the diagnostics.
func finish(out *sink, diags diag.List) (*api.Input, diag.List) {
	out.v.wait()
	docs, chunkDiags := out.documents()
	diags = append(diags, chunkDiags...)
	in := &api.Input{}
	// The diagnostics so far are of the input not read into documents;
	// the documents' own are appended after them.
	unread := diags
	for _, d := range docs {
		diags = append(diags, d.diags...)
		switch o := d.out.(type) {
		case *api.Service:
			in.Services = append(in.Services, o)
		case *api.EndpointSlice:
			in.EndpointSlices = append(in.EndpointSlices, o)
		case *api.Endpoints:
			in.Endpoints = append(in.Endpoints, o)
		case *api.ServiceCIDR:
			in.ServiceCIDRs = append(in.ServiceCIDRs, o)
		case *api.Node:
			in.Nodes = append(in.Nodes, o)
		case *api.KubeProxyConfiguration:
			in.ProxyConfigs = append(in.ProxyConfigs, o)
		case *api.Invalid:
			in.Invalid = append(in.Invalid, *o)
		}
	}
	AddUnread(in, unread)
	hintYAML11(diags)
	hintTemplates(diags)
	diags.Sort()
	compactInput(in)
	return in, foldSkipped(diags)
}

// AddUnread adds to in.Invalid the places of the errors of diags, which
// are where the input was not read into documents (see api.Invalid), and
// sorts it by position. Load adds its own; a caller of LoadFiles adds
// those of ReadFiles.
func AddUnread(in *api.Input, diags diag.List) {
	for _, d := range diags {
		if d.Severity == diag.SevError {
			in.Invalid = append(in.Invalid, api.Invalid{Pos: d.Pos})
		}
	}
	slices.SortStableFunc(in.Invalid, func(a, b api.Invalid) int { return a.Pos.Compare(b.Pos) })
}

// foldSkipped keeps, of the warnings that documents were skipped (sorted),
// the first of each kind in each file, which then counts the others: a
// kubectl dump of a namespace's Pods would otherwise give a line each.
func foldSkipped(diags diag.List) diag.List {
	type key struct{ file, kind string }
	first := map[key]*diag.Error{}
	more := map[key]int{}
	out := diags[:0]
	for _, d := range diags {
		if d.Skipped != "" {
			k := key{d.Pos.File, d.Skipped}
			if first[k] != nil {
				more[k]++
				continue
			}
			first[k] = d
		}
		out = append(out, d)
	}
	for k, n := range more {
		if n == 1 {
			first[k].Msg += fmt.Sprintf("; so is 1 more %s document in this file", k.kind)
		} else {
			first[k].Msg += fmt.Sprintf("; so are %d more %s documents in this file", n, k.kind)
		}
	}
	return out
}
