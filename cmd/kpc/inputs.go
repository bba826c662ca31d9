package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"kpc/compiler"
	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
	"kpc/compiler/load"
)

// inputFlags are the flags that name the manifests to read.
type inputFlags struct {
	files  []string
	strict bool
	// nodePortRange is --service-node-port-range ("" = not checked).
	nodePortRange string
	// objectsRequired, set by kpc apply, makes an input without a
	// Service, EndpointSlice or Endpoints an error, as kubectl apply
	// refuses one ("no objects passed to apply"); elsewhere it is a
	// warning.
	objectsRequired bool
	// validating, set by kpc validate, judges every document as a create
	// (the API server's verdict); the other commands read them as
	// kube-proxy reads them (load.Options.KubeProxy).
	validating bool
}

func (f *inputFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.files, "filename", "f", nil, "manifest file, directory (read recursively) or - for stdin; repeatable, comma-separated allowed; positional paths work too")
	fs.VarPF(recursiveFlag{}, "recursive", "R", "accepted as kubectl takes it: directories are always read recursively").NoOptDefVal = "true"
	fs.VarPF(kustomizeFlag{command: fs.Name()}, "kustomize", "k", "").Hidden = true
	fs.BoolVar(&f.strict, "strict", false, "make every warning an error (unknown fields, duplicate keys, cross-document checks, ...), but for skipped documents of other kinds")
	fs.StringVar(&f.nodePortRange, "service-node-port-range", "", "check nodePorts against this range, e.g. 30000-32767")
}

// recursiveFlag is kubectl's -R: kpc reads directories recursively
// always, so only its default value is taken.
type recursiveFlag struct{}

func (recursiveFlag) String() string { return "true" }
func (recursiveFlag) Type() string   { return "bool" }
func (recursiveFlag) Set(s string) error {
	if v, err := strconv.ParseBool(s); err != nil || !v {
		return errors.New("kpc reads directories recursively always; name the files to read fewer")
	}
	return nil
}

// kustomizeFlag is kubectl's -k, which kpc does not take: the error
// says how to render the kustomization first.
type kustomizeFlag struct{ command string }

func (kustomizeFlag) String() string { return "" }
func (kustomizeFlag) Type() string   { return "string" }
func (k kustomizeFlag) Set(s string) error {
	return fmt.Errorf("kpc reads no kustomizations: render it first, kubectl kustomize %s | kpc %s -f -", s, k.command)
}

// paths returns the -f values followed by positional arguments. A -f
// value that names no file but holds commas is a list of paths, as
// kubectl's -f takes one (-f svc.yaml,slices.yaml).
func (f *inputFlags) paths(fs *pflag.FlagSet) []string {
	var out []string
	for _, p := range f.files {
		if _, err := os.Stat(p); err != nil && strings.Contains(p, ",") && p != "-" {
			out = append(out, slices.DeleteFunc(strings.Split(p, ","), func(s string) bool { return s == "" })...)
			continue
		}
		out = append(out, p)
	}
	return append(out, fs.Args()...)
}

// nodeFlags carry the node context and cluster configuration; they win over
// Node and KubeProxyConfiguration documents in the input.
type nodeFlags struct {
	nodeName          string
	nodeIPs           []string
	clusterCIDRs      []string
	detectLocalMode   string
	bridgeInterface   string
	ifaceNamePrefix   string
	serviceCIDRs      []string
	nodePortAddresses []string
	masqueradeAll     bool
	masqueradeBit     int
}

func (f *nodeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.nodeName, "node-name", "", "the node to compile for (endpoints with this nodeName are local)")
	fs.StringArrayVar(&f.nodeIPs, "node-ip", nil, "the node's IP address; repeatable, comma-separated allowed")
	fs.StringArrayVar(&f.clusterCIDRs, "cluster-cidr", nil, "pod CIDR of the cluster (kube-proxy --cluster-cidr); repeatable")
	fs.StringVar(&f.detectLocalMode, "detect-local-mode", "", "how the node tells its pods' traffic (kube-proxy --detect-local-mode): ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix")
	fs.StringVar(&f.bridgeInterface, "pod-bridge-interface", "", "the pods' bridge, for --detect-local-mode BridgeInterface (kube-proxy --pod-bridge-interface)")
	fs.StringVar(&f.ifaceNamePrefix, "pod-interface-name-prefix", "", "the prefix of the pods' interface names, for --detect-local-mode InterfaceNamePrefix (kube-proxy --pod-interface-name-prefix)")
	fs.StringArrayVar(&f.serviceCIDRs, "service-cidr", nil, "Service CIDR (default: the input's ServiceCIDR documents, else 10.96.0.0/12 and fd00:10:96::/108); repeatable, comma-separated allowed")
	fs.StringArrayVar(&f.nodePortAddresses, "nodeport-addresses", nil, `CIDRs or "primary" whose node addresses serve NodePorts; repeatable`)
	fs.BoolVar(&f.masqueradeAll, "masquerade-all", false, "masquerade all traffic sent to cluster IPs")
	fs.IntVar(&f.masqueradeBit, "masquerade-bit", 14, "packet-mark bit used to mark traffic for masquerade (0-31)")
}

// options converts the flags to compiler options; only flags the user set
// override the documents.
func (f *nodeFlags) options(fs *pflag.FlagSet) (compiler.Options, error) {
	var o compiler.Options
	o.NodeName = f.nodeName
	for _, s := range splitList(f.nodeIPs) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return o, fmt.Errorf("--node-ip %q: not an IP address", s)
		}
		o.NodeIPs = append(o.NodeIPs, a.Unmap())
	}
	var err error
	if o.ClusterCIDRs, err = parsePrefixes("--cluster-cidr", f.clusterCIDRs); err != nil {
		return o, err
	}
	if o.ServiceCIDRs, err = parsePrefixes("--service-cidr", f.serviceCIDRs); err != nil {
		return o, err
	}
	switch f.detectLocalMode {
	case "", "ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix":
		o.DetectLocalMode = f.detectLocalMode
	default:
		return o, fmt.Errorf("--detect-local-mode %q: want ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix", f.detectLocalMode)
	}
	for _, n := range []struct {
		flag, v string
		prefix  bool
		to      *string
	}{{"--pod-bridge-interface", f.bridgeInterface, false, &o.PodBridgeInterface}, {"--pod-interface-name-prefix", f.ifaceNamePrefix, true, &o.PodInterfaceNamePrefix}} {
		if why := ir.IfaceNameProblem(n.v, n.prefix); n.v != "" && why != "" {
			return o, fmt.Errorf("%s %q: %s", n.flag, n.v, why)
		}
		*n.to = n.v
	}
	o.NodePortAddresses = splitList(f.nodePortAddresses)
	for _, s := range o.NodePortAddresses {
		if s == "primary" {
			continue
		}
		if _, err := netip.ParsePrefix(s); err != nil {
			return o, fmt.Errorf("--nodeport-addresses %q: not a CIDR or \"primary\"", s)
		}
	}
	if fs.Changed("masquerade-all") {
		v := f.masqueradeAll
		o.MasqueradeAll = &v
	}
	if fs.Changed("masquerade-bit") {
		if f.masqueradeBit < 0 || f.masqueradeBit > 31 {
			return o, fmt.Errorf("--masquerade-bit %d: must be between 0 and 31", f.masqueradeBit)
		}
		v := f.masqueradeBit
		o.MasqueradeBit = &v
	}
	return o, nil
}

func parsePrefixes(flag string, vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(vals) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: not a CIDR", flag, s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%s %q: host bits set (did you mean %s?)", flag, s, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePortRange(s string) ([2]int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return [2]int{}, fmt.Errorf("--service-node-port-range %q: want MIN-MAX", s)
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return [2]int{}, fmt.Errorf("--service-node-port-range %q: want MIN-MAX within 1-65535", s)
	}
	return [2]int{a, b}, nil
}

// loadInputs reads and validates the manifests and runs the checks across
// their documents (checkAcross) with the compiler options opts. It returns
// the diagnostics, sorted, and ok=false when there were errors; it prints
// nothing.
func loadInputs(paths []string, in *inputFlags, opts compiler.Options, stdin io.Reader, stderr io.Writer) (*api.Input, diag.List, bool) {
	lopts := load.Options{Strict: in.strict, ServiceCIDRs: opts.ServiceCIDRs, KubeProxy: !in.validating}
	if in.nodePortRange != "" {
		r, _ := parsePortRange(in.nodePortRange) // checked by the caller
		lopts.NodePortRange = load.PortRange{Min: r[0], Max: r[1]}
	}
	input, diags := load.Load(paths, stdin, lopts)
	if diags.Err() == nil && len(input.Services)+len(input.EndpointSlices)+len(input.Endpoints) == 0 {
		noObjects(&diags, paths, in.objectsRequired)
	}
	diags = checkAcross(input, diags, opts)
	return input, diags, diags.Err() == nil
}

// checkAcross adds to diags, the diagnostics of loading input, those of
// the checks across its documents, and sorts them: CrossCheck's warnings
// (the callers make them errors under --strict), and, when some documents
// are invalid, the compile's checks across Services (compiled with opts,
// as far as the invalid documents cannot change them: see api.Invalid).
// No command compiles an invalid input, and one run is to report every
// problem of the documents, as the API server judges each object on its
// own, not only those of the documents to fix first.
func checkAcross(input *api.Input, diags diag.List, opts compiler.Options) diag.List {
	invalid := diags.Err() != nil
	diags = append(diags, load.Refine(load.CrossCheck(input))...)
	if invalid {
		opts.SkipServices, opts.SkipSelfCheck, opts.SkipRulesetBodies = true, true, true
		_, cdiags := compiler.Compile(input, opts)
		diags = append(diags, load.Refine(cdiags)...)
	}
	diags.Sort()
	return diags
}

// noObjects reports an input of paths that holds no Service, EndpointSlice
// or Endpoints: its ruleset would serve no Service (and, loaded, remove
// every Service rule kpc had made), which is rarely what was meant: a
// directory of other files, an empty file, or a command in front of a
// pipe that failed. An error when required, else a warning.
func noObjects(diags *diag.List, paths []string, required bool) {
	pos := diag.Pos{File: strings.Join(paths, ", ")}
	if required {
		diags.Add(pos, "", "", "no objects passed to apply: the input holds no Service, EndpointSlice or Endpoints (kpc apply --delete removes kpc's rules)")
		return
	}
	diags.Warn(pos, "", "", "the input holds no Service, EndpointSlice or Endpoints: the ruleset serves no Service")
}

// printDiags writes diagnostics to w, one per line.
func printDiags(w io.Writer, diags diag.List) {
	for _, d := range diags {
		fmt.Fprintln(w, d.Error())
	}
}

// uses says what a command does with the Program, so that build leaves
// out of the compile what the command does not need.
type uses struct {
	// services: the command reads the Service catalog (Program.Services).
	services bool
	// rendered: the command only hands the Program to renderers, which
	// validate it themselves (compiler.Options.SkipSelfCheck).
	rendered bool
	// settingsOnly: the command reads the rulesets' settings, not their
	// chains, entries and sets (compiler.Options.SkipRulesetBodies).
	settingsOnly bool
}

// build loads, validates and compiles for a command that uses the Program
// as u says, and appends to timed, when not nil, how long loading and
// compiling took. On failure it has printed the reason to stderr and
// returns the exit status to use.
func build(fs *pflag.FlagSet, in *inputFlags, nf *nodeFlags, u uses, timed *steps, stdin io.Reader, stderr io.Writer) (*ir.Program, int) {
	paths, opts, code := compileSetup(fs, in, nf, u, stderr)
	if code != exitOK {
		return nil, code
	}
	prog, ok := loadCompile(paths, in, opts, timed, stdin, stderr)
	if !ok {
		return nil, exitInvalid
	}
	return prog, exitOK
}

// compileSetup returns the input paths and the compiler options of a
// command's flags; on a usage error it has printed the reason to stderr
// and returns the exit status to use.
func compileSetup(fs *pflag.FlagSet, in *inputFlags, nf *nodeFlags, u uses, stderr io.Writer) ([]string, compiler.Options, int) {
	paths := in.paths(fs)
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "kpc %s: no input: give -f FILE|DIR|- or a path\n", fs.Name())
		return nil, compiler.Options{}, exitUsage
	}
	opts, err := nf.options(fs)
	if err != nil {
		fmt.Fprintf(stderr, "kpc %s: %v\n", fs.Name(), err)
		return nil, opts, exitUsage
	}
	if in.nodePortRange != "" {
		r, err := parsePortRange(in.nodePortRange)
		if err != nil {
			fmt.Fprintf(stderr, "kpc %s: %v\n", fs.Name(), err)
			return nil, opts, exitUsage
		}
		opts.NodePortRange = r
	}
	opts.SkipServices = !u.services
	opts.SkipSelfCheck = u.rendered
	opts.SkipRulesetBodies = u.settingsOnly
	return paths, opts, exitOK
}

// loadCompile loads, validates and compiles paths (and stdin for "-"),
// printing the diagnostics and the compiler's notes to stderr, and appends
// to timed, when not nil, how long loading and compiling took. ok is false
// when the input is invalid. The input is not kept: the compile drops it
// as it goes (it is a fifth of the peak at 50,000 Services).
func loadCompile(paths []string, in *inputFlags, opts compiler.Options, timed *steps, stdin io.Reader, stderr io.Writer) (*ir.Program, bool) {
	start := time.Now()
	input, diags, ok := loadInputs(paths, in, opts, stdin, stderr)
	load.DropCaches() // the commands that build load once
	timed.add("to load", start)
	if !ok {
		if in.strict {
			diags.Strict()
		}
		printDiags(stderr, diags)
		return nil, false
	}
	return compileInput(input, diags, in, opts, timed, stderr)
}

// compileInput compiles a valid input whose loading gave diags, prints
// every diagnostic and note, and reports whether it compiled.
func compileInput(input *api.Input, diags diag.List, in *inputFlags, opts compiler.Options, timed *steps, stderr io.Writer) (*ir.Program, bool) {
	start := time.Now()
	prog, cdiags := compiler.Compile(input, opts)
	timed.add("to compile", start)
	diags = append(diags, load.Refine(cdiags)...)
	diags.Sort()
	if in.strict {
		diags.Strict()
	}
	printDiags(stderr, diags)
	if diags.Err() != nil || prog == nil {
		return nil, false
	}
	for _, n := range prog.Notes {
		fmt.Fprintf(stderr, "kpc: %s\n", n)
	}
	return prog, true
}
