// Package schema embeds kpc's input contract: CUE definitions of the
// Kubernetes objects kpc reads, with the API server's defaults and the
// validation rules that can be checked from one document.
//
// The definitions are #Service (v1), #EndpointSlice (discovery.k8s.io/v1),
// #Endpoints (v1, for Services without a selector), #Node (v1),
// #KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) and
// #ServiceCIDR (networking.k8s.io/v1). A document unified with its
// definition and validated with cue.Concrete(true) either fails with errors
// at API field paths or yields the defaulted object. Service and
// EndpointSlice are modelled field by field; Node and
// KubeProxyConfiguration type only the fields kpc reads.
//
// All files form one CUE package ("schema") and must be built together,
// for example with cue/build.Instance.AddSyntax and
// cue.Context.BuildInstance. Rules that need Go (uniqueness over lists,
// strict IP parsing, cluster IP families, CIDRs) live in compiler/load.
package schema

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.cue
var files embed.FS

// The top-level definitions, as CUE paths.
const (
	Service                = "#Service"
	EndpointSlice          = "#EndpointSlice"
	Endpoints              = "#Endpoints"
	ServiceCIDR            = "#ServiceCIDR"
	Node                   = "#Node"
	KubeProxyConfiguration = "#KubeProxyConfiguration"
)

// File is one CUE source file of the schema.
type File struct {
	// Name is the file name, used in CUE positions ("service.cue").
	Name string
	// Source is the file's CUE text.
	Source []byte
}

// Files returns the schema's CUE files, sorted by name. The result is a
// fresh slice; the sources are shared and must not be modified.
func Files() []File {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		// The embedded file system is fixed at build time; ReadDir of its
		// root cannot fail.
		return nil
	}
	var out []File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cue") {
			continue
		}
		src, err := files.ReadFile(e.Name())
		if err != nil {
			continue
		}
		out = append(out, File{Name: e.Name(), Source: src})
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// extraFile is the file that defines #Extra.
const extraFile = "extra.cue"

// strictExtra is extra.cue with #Extra closed.
const strictExtra = `package schema

// #Extra is closed: fields of Service and EndpointSlice (and of metadata)
// that the schema does not declare fail with "field not allowed".
#Extra: {}
`

// StrictFiles returns Files with #Extra closed: fields of Service,
// EndpointSlice and Endpoints (and of their metadata) that the schema does
// not declare fail with "field not allowed", the unknown fields that the
// API server's Strict field validation rejects and its Warn field
// validation warns of. Node and KubeProxyConfiguration stay open.
func StrictFiles() []File {
	fs := Files()
	for i := range fs {
		if fs[i].Name == extraFile {
			fs[i].Source = []byte(strictExtra)
		}
	}
	return fs
}

// Source returns every file of Files concatenated, each preceded by a
// "// file: NAME" line: the schema as one text for reading (it is not one
// valid CUE file, as each file repeats the package clause and imports).
func Source() string {
	var b strings.Builder
	for i, f := range Files() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("// file: " + f.Name + "\n")
		b.Write(f.Source)
	}
	return b.String()
}
