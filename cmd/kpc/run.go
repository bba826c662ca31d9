package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Exit statuses, as diff(1) and most linters use them.
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

// command is one kpc subcommand.
type command struct {
	name  string
	short string
	run   func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"compile", "compile manifests to a ruleset (nft, iptables), the IR or a DNS zone", runCompile},
		{"apply", "program the kernel with the compiled ruleset (netlink, iptables), or remove it", runApply},
		{"validate", "validate manifests as the API server would", runValidate},
		{"trace", "show where a packet goes through the compiled rules", runTrace},
		{"diff", "compare two versions of the manifests: Services, traffic, ruleset lines", runDiff},
		{"env", "print the Service environment variables of a new pod", runEnv},
		{"gen", "generate a synthetic cluster's manifests (for benchmarks)", runGen},
		{"version", "print kpc's version", runVersion},
	}
}

// version is kpc's version; releases set it with -ldflags "-X main.version=...".
var version = "dev"

// run is kpc's testable entry point: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "--version":
		return runVersion(args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					return c.run([]string{"--help"}, stdin, stdout, stderr)
				}
			}
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "kpc: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kpc compiles Kubernetes Services and EndpointSlices into kernel rulesets.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: kpc COMMAND [flags] [PATH...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "kpc COMMAND --help" for a command's flags.`)
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "kpc version", stderr)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kpc version: takes no arguments, got %q\n", fs.Args())
		return exitUsage
	}
	fmt.Fprintf(stdout, "kpc %s\n", versionText(version, readBuildInfo()))
	return exitOK
}

// readBuildInfo is debug.ReadBuildInfo's answer, or nil.
func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// versionText is v, and for a build without a release version the
// commit it was built from (as go build records it in a git checkout)
// and the Go version, so that a report names what ran.
func versionText(v string, bi *debug.BuildInfo) string {
	if v != "dev" || bi == nil {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var parts []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		c := "commit " + rev
		if modified == "true" {
			c += " with local changes"
		}
		parts = append(parts, c)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	if len(parts) == 0 {
		return v
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
	}
	return fs
}

// parse parses args; done reports that the command must return code now
// (help was asked for, or the flags were wrong).
func parse(fs *pflag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	// pflag prints the usage itself on -h before returning ErrHelp: keep
	// it quiet, and print the usage once, to stdout, as help is asked for.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, pflag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	}
	if err != nil {
		fmt.Fprintf(fs.Output(), "kpc %s: %v\nSee 'kpc %s --help' for usage.\n", fs.Name(), err, fs.Name())
		return exitUsage, true
	}
	return exitOK, false
}

// writeOutput runs write on path's new contents, written atomically (a
// temporary file in the same directory renamed over path), or on stdout
// when path is "" or "-". A symbolic link is followed, and a path that is
// not a regular file (a device such as /dev/null, a FIFO) is written in
// place once write has succeeded: renaming over it would replace it. A
// directory is refused. An error of write is returned as it is.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(stdout)
	}
	st, err := stageOutput(path, write)
	if err != nil {
		return err
	}
	return commitAll([]*staged{st})
}

// staged is output written but not yet in place (see stageOutput).
type staged struct {
	path string
	tmp  string       // the temporary file to rename over path, or
	data bytes.Buffer // what to write in place when tmp is ""
}

// newFileMode is the mode of a file created as 0666 under the process's
// umask, which Linux gives in /proc/self/status (reading it there leaves
// it alone, where umask(2) would set it); 0644 where it cannot be read.
func newFileMode() fs.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o644
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(0o666 &^ m)
			}
		}
	}
	return 0o644
}

// stageOutput runs write on path's new contents as writeOutput does, but
// leaves them aside: in a temporary file beside path, or in memory when
// path exists and is not a regular file, and refuses a directory. The
// temporary file gets the permission bits of the file it is to replace,
// or, when there is none, those a shell's redirection would give a new
// file (newFileMode). commitAll puts staged files in place; discard drops
// them.
func stageOutput(path string, write func(io.Writer) error) (*staged, error) {
	wrap := func(err error) error {
		var rerr renderError
		if errors.As(err, &rerr) {
			return err
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	mode := newFileMode()
	if st, err := os.Stat(path); err == nil {
		switch {
		case st.IsDir():
			return nil, wrap(errors.New("is a directory"))
		case !st.Mode().IsRegular():
			s := &staged{path: path}
			if err := write(&s.data); err != nil {
				return nil, wrap(err)
			}
			return s, nil
		}
		mode = st.Mode().Perm()
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, wrap(err)
	}
	fail := func(err error) (*staged, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, wrap(err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return nil, wrap(err)
	}
	return &staged{path: path, tmp: tmp.Name()}, nil
}

// commitAll puts every staged file in place, or, on an error, leaves
// every target as it was: the temporary files are renamed over their
// targets first, then what is not a regular file is written in place, and
// if a step fails the targets already renamed over are put back and the
// temporary files left are removed. Until every step has succeeded, each
// old file that a later failure would have to put back is kept under a
// hard link beside it (its temporary file's name with ".old"); that the
// link can be made is checked before anything is renamed. Each rename is
// atomic and the set is not: a process killed between two renames leaves
// the first target new, its old file under the ".old" link, and the next
// temporary file beside its target; and what was written in place (a
// device, a FIFO) cannot be taken back.
func commitAll(files []*staged) error {
	var renames, inPlace []*staged
	for _, s := range files {
		if s.tmp != "" {
			renames = append(renames, s)
		} else {
			inPlace = append(inPlace, s)
		}
	}
	// olds[i] is the link to renames[i]'s old file; "" when the last step
	// needs none or there was no old file (putting back is removing).
	olds := make([]string, len(renames))
	removeOlds := func() {
		for _, old := range olds {
			if old != "" {
				os.Remove(old)
			}
		}
	}
	for i, s := range renames {
		if i == len(files)-1 {
			break // the last step: no later one can fail
		}
		old := s.tmp + ".old"
		if err := os.Link(s.path, old); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			removeOlds()
			for _, s := range renames {
				s.discard()
			}
			return fmt.Errorf("writing %s: keeping the old file until every file is in place: %w", s.path, err)
		}
		olds[i] = old
	}
	done := 0
	var err error
	for ; done < len(renames); done++ {
		s := renames[done]
		if rerr := os.Rename(s.tmp, s.path); rerr != nil {
			err = fmt.Errorf("writing %s: %w", s.path, rerr)
			break
		}
	}
	if err == nil {
		for _, s := range inPlace {
			if err = s.writeInPlace(); err != nil {
				break
			}
		}
	}
	if err == nil {
		removeOlds()
		return nil
	}
	for _, s := range renames[done:] {
		s.discard()
	}
	errs := []error{err}
	for i := done - 1; i >= 0; i-- {
		s := renames[i]
		if olds[i] == "" {
			if rerr := os.Remove(s.path); rerr != nil {
				errs = append(errs, fmt.Errorf("removing the new %s: %w", s.path, rerr))
			}
			continue
		}
		if rerr := os.Rename(olds[i], s.path); rerr != nil {
			errs = append(errs, fmt.Errorf("putting back the old %s (it is kept as %s): %w", s.path, olds[i], rerr))
		}
		olds[i] = ""
	}
	removeOlds()
	return errors.Join(errs...)
}

// writeInPlace writes the staged contents of a path that is not a
// regular file into it.
func (s *staged) writeInPlace() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	if _, err := f.Write(s.data.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", s.path, err)
	}
	return nil
}

// discard drops the staged contents.
func (s *staged) discard() {
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}

// writeBytes returns a writeOutput function that writes data.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// splitList splits comma-separated flag values and drops blanks.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
