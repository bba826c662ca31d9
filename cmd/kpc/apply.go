package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"kpc/compiler/ir"
)

// applyBackends are the --backend values of kpc apply.
var applyBackends = []string{"netlink", "iptables", "iptables-legacy"}

// defaultNetnsDir is where `ip netns` keeps named network namespaces.
const defaultNetnsDir = "/var/run/netns/"

// defaultStateDir is where the netlink backend keeps its cache of the
// tables it applied last.
const defaultStateDir = "/run/kpc"

// applyOptions are the parsed flags of kpc apply.
type applyOptions struct {
	backend string
	dryRun  bool
	delete  bool
	// netns is the path of the target network namespace ("" = ours).
	netns string
	// full forces a full replace (netlink); stateDir is where the netlink
	// backend caches what it applied ("" = no cache).
	full     bool
	stateDir string
	// timings, when set, receives how long each step took (--timings).
	timings io.Writer
}

// report writes the steps to o.timings, if set, on one line.
func (o applyOptions) report(s steps) {
	if o.timings != nil {
		s.report(o.timings, "apply")
	}
}

// runApply programs the kernel with the compiled manifests, or removes
// what kpc programmed (--delete). Exit status: 0 when done (or, with
// --dry-run, when it would be done), 1 when the input is invalid or the
// kernel or a tool refused, 2 on a usage error.
func runApply(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("apply", "kpc apply -f FILE|DIR|- [flags]   (needs CAP_NET_ADMIN; --delete needs no manifests)", stderr)
	var in inputFlags
	var nf nodeFlags
	in.register(fs)
	nf.register(fs)
	var o applyOptions
	fs.StringVar(&o.backend, "backend", "netlink",
		"netlink: replace kpc's nftables tables in one transaction; iptables (iptables-nft) or iptables-legacy: "+
			"iptables-restore --noflush of kpc's chains, then the jumps from the built-in chains")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be applied (or deleted) and change nothing")
	fs.BoolVar(&o.delete, "delete", false, "remove kpc's tables (netlink) or kpc's chains and jumps (iptables) instead of applying")
	fs.BoolVar(&o.full, "full", false, "netlink: replace kpc's tables whole instead of sending only the difference from the last apply")
	fs.StringVar(&o.stateDir, "state-dir", defaultStateDir,
		"netlink: where to cache the tables last applied, for incremental applies (\"\" keeps none: an apply then replaces kpc's tables whole, unless they already hold the manifests)")
	netns := fs.String("netns", "", "work in this network namespace: a name from \"ip netns\" or a path such as /proc/PID/ns/net")
	timings := fs.Bool("timings", false, "print to stderr how long each step took (load and compile, build, diff, reading back, kernel, cache)")
	watch := fs.Bool("watch", false, "netlink: apply, then keep applying as the files change, sending only the changed Services "+
		"(a line per change; interrupt to stop)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if !isOneOf(o.backend, applyBackends) {
		fmt.Fprintf(stderr, "kpc apply: --backend %q: want %s\n", o.backend, strings.Join(applyBackends, ", "))
		return exitUsage
	}
	if *netns != "" {
		o.netns = *netns
		if !strings.Contains(o.netns, "/") {
			o.netns = defaultNetnsDir + o.netns
		}
		if _, err := os.Stat(o.netns); err != nil {
			fmt.Fprintf(stderr, "kpc apply: --netns %q: no such network namespace\n", *netns)
			return exitUsage
		}
	}

	if *timings {
		o.timings = stderr
	}
	if *watch {
		return runWatch(fs, &in, &nf, o, stdout, stderr)
	}
	if code := probe(o, stderr); code != exitOK {
		return code
	}
	var prog *ir.Program
	var loaded steps
	if !o.delete || len(in.paths(fs)) > 0 {
		in.objectsRequired = !o.delete
		var code int
		// The netlink backend renders both families before it sends
		// anything; the iptables backends restore one family after the
		// other, so the compiler checks both first.
		if prog, code = build(fs, &in, &nf, uses{rendered: o.backend == "netlink"}, &loaded, stdin, stderr); prog == nil {
			return code
		}
	}
	start := time.Now()
	var err error
	var done steps
	switch {
	case o.backend == "netlink" && o.delete:
		err = netlinkDelete(prog, o, stdout)
	case o.backend == "netlink":
		done, err = netlinkApply(prog, o, stdout)
	case o.delete:
		err = iptablesDelete(prog, o, stdout)
	default:
		err = iptablesApply(prog, o, stdout)
	}
	if done == nil {
		what := "to apply"
		if o.delete {
			what = "to delete"
		}
		done = steps{{what, time.Since(start)}}
	}
	if err == nil {
		o.report(append(loaded, done...))
	}
	if err != nil {
		fmt.Fprintf(stderr, "kpc apply: %v\n", permissionHint(err, o.backend))
		return exitInvalid
	}
	return exitOK
}

// probe checks, before the input is loaded, that the netlink backend can
// reach the kernel and its state directory (a dry run needs neither):
// without CAP_NET_ADMIN, a large input would be loaded and compiled for
// seconds before the kernel refused it.
func probe(o applyOptions, stderr io.Writer) int {
	if o.backend != "netlink" || o.dryRun {
		return exitOK
	}
	if err := netlinkProbe(o); err != nil {
		fmt.Fprintf(stderr, "kpc apply: %v\n", permissionHint(err, o.backend))
		return exitInvalid
	}
	return exitOK
}

// permissionHint adds to an error whose cause is a refused permission
// what the backend needs: kpc's own errors name the step, the kernel's
// only say "operation not permitted".
func permissionHint(err error, backend string) error {
	if backend == "netlink" {
		return needs(err, "the netlink backend needs CAP_NET_ADMIN and a writable --state-dir")
	}
	return needs(err, backend+"-restore needs CAP_NET_ADMIN")
}

// needs adds what, a privilege the step needs, to an error whose cause
// is a refused permission.
func needs(err error, what string) error {
	if !errors.Is(err, os.ErrPermission) {
		return err
	}
	return fmt.Errorf("%w (%s: run kpc as root)", err, what)
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

// tableName is the name of kpc's nftables tables for prog ("kpc" without
// a program or a Ruleset).
func tableName(prog *ir.Program) string {
	if prog != nil {
		for _, rs := range prog.Rulesets {
			if rs != nil && rs.Table != "" {
				return rs.Table
			}
		}
	}
	return "kpc"
}

// where describes the target namespace for messages.
func (o applyOptions) where() string {
	if o.netns == "" {
		return "the current network namespace"
	}
	return "network namespace " + o.netns
}

// runWatch runs kpc apply --watch: it checks that the other flags go with
// it, then applies and follows the files until interrupted.
func runWatch(fs *pflag.FlagSet, in *inputFlags, nf *nodeFlags, o applyOptions, stdout, stderr io.Writer) int {
	switch {
	case o.backend != "netlink":
		fmt.Fprintf(stderr, "kpc apply: --watch needs --backend netlink\n")
		return exitUsage
	case o.delete || o.dryRun || o.full:
		fmt.Fprintf(stderr, "kpc apply: --watch does not go with --delete, --dry-run or --full\n")
		return exitUsage
	}
	if code := probe(o, stderr); code != exitOK {
		return code
	}
	paths, copts, code := compileSetup(fs, in, nf, uses{rendered: true}, stderr)
	if code != exitOK {
		return code
	}
	if slices.Contains(paths, "-") {
		fmt.Fprintf(stderr, "kpc apply: --watch reads files and directories, not stdin\n")
		return exitUsage
	}
	if err := watchApply(paths, in, copts, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "kpc apply: %v\n", permissionHint(err, o.backend))
		return exitInvalid
	}
	return exitOK
}
