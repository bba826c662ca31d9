// Command kernelbench times kpc at cluster scale against the real kernel.
// For each size it generates a synthetic cluster with "kpc gen", times
// "kpc compile" (wall clock and peak memory), then loads each output into a
// fresh network namespace of its own and times the load:
//
//   - "nft -f" of kpc's nft script;
//   - "iptables-legacy-restore --noflush" and "iptables-nft-restore
//     --noflush" of kpc's iptables-restore file (IPv4);
//   - "kpc apply --netns NS" (netlink), when this kpc has it (this includes
//     loading and compiling the manifests; the table also shows it minus the
//     compile time);
//   - "nft -f" of kube-proxy's own nftables layout for the same cluster
//     (bench.KubeProxyNFT), at sizes up to -kube-proxy-max only: it loads
//     in minutes at 10,000 Services.
//
// Every measurement is repeated -runs times (a new namespace each time) and
// the table gives the median, the range and the median CPU time (user +
// system of the loading process, where the kernel's work on a netlink
// transaction is accounted). A load that exceeds -timeout is killed, and
// the remaining runs of that measurement are skipped. It needs root; it
// creates and deletes its namespaces ("kpcb-PID-N") and touches nothing in
// the namespace it runs in.
//
//	go build -o /tmp/kpc ./cmd/kpc
//	go run ./internal/bench/cmd/kernelbench -kpc /tmp/kpc -n 1000,10000
//
// scripts/bench-kernel.sh does both.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"kpc/internal/bench"
)

// config holds the flags.
type config struct {
	kpc          string
	sizes        []int
	endpoints    int
	mixed        bool
	runs         int
	timeout      time.Duration
	kubeProxyMax int
	keep         string
	// only, when not empty, selects the loads whose description contains
	// one of these strings.
	only []string
}

func main() {
	var c config
	sizes := flag.String("n", "1000,10000", "comma-separated numbers of Services")
	flag.StringVar(&c.kpc, "kpc", "", "the kpc binary to measure (required)")
	flag.IntVar(&c.endpoints, "endpoints", 10, "endpoints per Service")
	flag.BoolVar(&c.mixed, "mixed", false, "the mixed cluster of kpc gen (NodePorts, policies, affinity, IPv6) instead of --plain")
	flag.IntVar(&c.runs, "runs", 3, "runs per measurement (the median is reported)")
	flag.DurationVar(&c.timeout, "timeout", 300*time.Second, "time limit of each command")
	flag.IntVar(&c.kubeProxyMax, "kube-proxy-max", 1000, "largest size at which kube-proxy's layout is loaded (0: never)")
	flag.StringVar(&c.keep, "keep", "", "keep the generated files in this directory (default: a temporary one, removed)")
	only := flag.String("only", "", `comma-separated: run only the loads whose description contains one of these, e.g. "kube-proxy,legacy"`)
	flag.Parse()
	if *only != "" {
		c.only = strings.Split(*only, ",")
	}
	var err error
	if c.sizes, err = parseSizes(*sizes); err == nil {
		err = run(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kernelbench:", err)
		os.Exit(1)
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1_000_000 {
			return nil, fmt.Errorf("-n: %q is not a number of Services (1-1000000)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// tools are the external commands, found on PATH.
type tools struct {
	ip, nft, iptLegacy, iptNFT, time string
	apply                            bool // kpc apply --netns exists
}

func findTools(kpc string) (tools, error) {
	var t tools
	var err error
	for _, f := range []struct {
		dst  *string
		name string
	}{{&t.ip, "ip"}, {&t.nft, "nft"}, {&t.iptLegacy, "iptables-legacy-restore"}, {&t.iptNFT, "iptables-nft-restore"}} {
		if *f.dst, err = exec.LookPath(f.name); err != nil {
			return t, fmt.Errorf("%s is needed: %w", f.name, err)
		}
	}
	t.time, _ = exec.LookPath("/usr/bin/time")
	out, err := exec.Command(kpc, "apply", "--help").CombinedOutput()
	t.apply = err == nil && bytes.Contains(out, []byte("--netns"))
	return t, nil
}

// result is the measurements of one thing at one size.
type result struct {
	size     int
	what     string
	wall     []time.Duration
	cpu      []time.Duration
	rssKB    []int64
	note     string
	failed   string // why the measurement stopped ("" when every run ran)
	minusRef *result
}

func run(c config) error {
	if c.kpc == "" {
		return errors.New("-kpc is required (build it with: go build -o /tmp/kpc ./cmd/kpc)")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, nft, iptables)")
	}
	if c.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	t, err := findTools(c.kpc)
	if err != nil {
		return err
	}
	dir := c.keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kernelbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bencher{c: c, t: t, dir: dir}
	defer b.cleanup()

	shape := "plain"
	if c.mixed {
		shape = "mixed"
	}
	fmt.Printf("kernelbench: %s clusters, %d endpoints per Service, %d runs per measurement, timeout %v, apply (netlink): %v\n",
		shape, c.endpoints, c.runs, c.timeout, t.apply)
	var all []*result
	for _, n := range c.sizes {
		rs, err := b.size(ctx, n)
		all = append(all, rs...)
		if err != nil {
			printTable(os.Stdout, all)
			return err
		}
	}
	printTable(os.Stdout, all)
	return nil
}

// bencher runs the measurements.
type bencher struct {
	c   config
	t   tools
	dir string
	seq atomic.Int64
	// live holds the namespaces not yet deleted (for cleanup after an
	// interrupt).
	live []string
}

// size measures everything at n Services.
func (b *bencher) size(ctx context.Context, n int) ([]*result, error) {
	c := b.c
	base := filepath.Join(b.dir, fmt.Sprintf("cluster-%d", n))
	yaml, nftFile, iptFile, kpFile := base+".yaml", base+".nft", base+".ipt", base+".kube-proxy.nft"

	genArgs := []string{"gen", "--services", strconv.Itoa(n), "--endpoints", strconv.Itoa(c.endpoints)}
	if !c.mixed {
		genArgs = append(genArgs, "--plain")
	}
	if err := b.toFile(ctx, yaml, c.kpc, genArgs...); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "kernelbench: %d Services: generated %s\n", n, yaml)

	var out []*result
	compileNFT := &result{size: n, what: "kpc compile (nft)"}
	compileIPT := &result{size: n, what: "kpc compile (iptables)"}
	out = append(out, compileNFT, compileIPT)
	for range c.runs {
		if err := b.timed(ctx, compileNFT, "", c.kpc, "compile", yaml, "-o", nftFile); err != nil {
			return out, err
		}
		if err := b.timed(ctx, compileIPT, "", c.kpc, "compile", "--format", "iptables", "--family", "ipv4", yaml, "-o", iptFile); err != nil {
			return out, err
		}
	}
	compileNFT.note = fileNote(nftFile)
	compileIPT.note = fileNote(iptFile)
	progress(compileNFT)
	progress(compileIPT)

	kubeProxy := n <= c.kubeProxyMax
	if kubeProxy {
		if err := writeKubeProxy(yaml, kpFile); err != nil {
			return out, err
		}
	}

	loads := []struct {
		what string
		args func(ns string) []string
		skip string
		note string
	}{
		{"nft -f (kpc nft)", func(string) []string { return []string{b.t.nft, "-f", nftFile} }, "", ""},
		{"iptables-legacy-restore --noflush", func(string) []string {
			return []string{b.t.iptLegacy, "-w", "60", "--noflush", iptFile}
		}, "", ""},
		{"iptables-nft-restore --noflush", func(string) []string {
			return []string{b.t.iptNFT, "-w", "60", "--noflush", iptFile}
		}, "", ""},
		{"kpc apply --netns (netlink)", nil, skipUnless(b.t.apply, "kpc apply --netns not available"), "includes loading and compiling"},
		{"nft -f (kube-proxy layout)", func(string) []string { return []string{b.t.nft, "-f", kpFile} },
			skipUnless(kubeProxy, fmt.Sprintf("above -kube-proxy-max %d", c.kubeProxyMax)), fileNote(kpFile)},
	}
	for _, l := range loads {
		if len(c.only) > 0 && !slices.ContainsFunc(c.only, func(s string) bool { return strings.Contains(l.what, s) }) {
			continue
		}
		r := &result{size: n, what: l.what, note: l.note}
		out = append(out, r)
		if l.skip != "" {
			r.failed = "skipped: " + l.skip
			continue
		}
		for range c.runs {
			ns := b.newNS(ctx)
			if ns == "" {
				return out, errors.New("cannot create a network namespace")
			}
			var err error
			if l.args == nil { // kpc apply
				err = b.timed(ctx, r, "", c.kpc, "apply", "--netns", ns, "--state-dir", "", yaml)
			} else {
				args := l.args(ns)
				err = b.timed(ctx, r, ns, args[0], args[1:]...)
			}
			b.deleteNS(ns)
			if err != nil {
				r.failed = err.Error()
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				break
			}
		}
		if l.args == nil && r.failed == "" {
			r.minusRef = compileNFT
		}
		progress(r)
	}
	return out, nil
}

// progress reports a finished measurement on standard error.
func progress(r *result) {
	if len(r.wall) == 0 {
		fmt.Fprintf(os.Stderr, "kernelbench: %d Services: %s: %s\n", r.size, r.what, r.failed)
		return
	}
	fmt.Fprintf(os.Stderr, "kernelbench: %d Services: %s: median %s (%d runs)\n", r.size, r.what, fmtDur(median(r.wall)), len(r.wall))
}

func skipUnless(ok bool, why string) string {
	if ok {
		return ""
	}
	return why
}

// writeKubeProxy writes kube-proxy's layout of the cluster in yaml.
func writeKubeProxy(yaml, path string) error {
	in, err := bench.Load(yaml)
	if err != nil {
		return err
	}
	prog, err := bench.Compile(in)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := bench.KubeProxyNFT(w, prog); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileNote describes an output file: its size and number of lines.
func fileNote(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.1f MB, %d lines", float64(len(data))/1e6, bytes.Count(data, []byte("\n")))
}

// toFile runs a command with its standard output going to path.
func (b *bencher) toFile(ctx context.Context, path, name string, args ...string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s %s: %v: %.1000s", name, strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// timed runs a command (in network namespace ns when not "") and adds its
// wall-clock time, CPU time and (outside a namespace) peak memory to r.
// Peak memory comes from /usr/bin/time when it is installed, else from the
// kernel's accounting of the child.
func (b *bencher) timed(ctx context.Context, r *result, ns, name string, args ...string) error {
	full := append([]string{name}, args...)
	if ns != "" {
		full = append([]string{b.t.ip, "netns", "exec", ns}, full...)
	}
	var timeFile string
	if b.t.time != "" && ns == "" {
		timeFile = filepath.Join(b.dir, "time.out")
		full = append([]string{b.t.time, "-o", timeFile, "-f", "%M"}, full...)
	}
	ctx, cancel := context.WithTimeout(ctx, b.c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %v", b.c.timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %.2000s", strings.Join(full, " "), err, stderr.String())
	}
	r.wall = append(r.wall, wall)
	r.cpu = append(r.cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	if ns != "" {
		// The peak memory of a child started through "ip netns exec"
		// includes this process's (Go starts children with vfork).
		return nil
	}
	rss := int64(0)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	if timeFile != "" {
		if data, err := os.ReadFile(timeFile); err == nil {
			lines := strings.Fields(string(data))
			if len(lines) > 0 {
				if v, err := strconv.ParseInt(lines[len(lines)-1], 10, 64); err == nil {
					rss = v
				}
			}
		}
	}
	r.rssKB = append(r.rssKB, rss)
	return nil
}

// newNS creates a fresh network namespace and returns its name ("" on
// failure).
func (b *bencher) newNS(ctx context.Context) string {
	name := fmt.Sprintf("kpcb-%d-%d", os.Getpid(), b.seq.Add(1))
	if err := exec.CommandContext(ctx, b.t.ip, "netns", "add", name).Run(); err != nil {
		return ""
	}
	b.live = append(b.live, name)
	return name
}

// deleteNS deletes a namespace made by newNS.
func (b *bencher) deleteNS(name string) {
	if err := exec.Command(b.t.ip, "netns", "delete", name).Run(); err != nil {
		fmt.Fprintf(os.Stderr, "kernelbench: ip netns delete %s: %v\n", name, err)
		return
	}
	b.live = slices.DeleteFunc(b.live, func(s string) bool { return s == name })
}

// cleanup deletes the namespaces left behind by an interrupted run.
func (b *bencher) cleanup() {
	for _, ns := range slices.Clone(b.live) {
		b.deleteNS(ns)
	}
}

// median returns the median of ds (the lower middle of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// printTable writes the results as a Markdown table.
func printTable(w io.Writer, rs []*result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Services | measurement | median | range | median CPU | peak RSS | runs | note |")
	fmt.Fprintln(w, "|---:|---|---:|---|---:|---:|---:|---|")
	for _, r := range rs {
		if len(r.wall) == 0 {
			fmt.Fprintf(w, "| %d | %s | – | | | | 0 | %s |\n", r.size, r.what, strings.TrimSpace(r.failed+" "+r.note))
			continue
		}
		lo, hi := slices.Min(r.wall), slices.Max(r.wall)
		rss := ""
		if len(r.rssKB) > 0 && slices.Max(r.rssKB) > 0 {
			rss = fmt.Sprintf("%d MiB", slices.Max(r.rssKB)/1024)
		}
		note := r.note
		if r.minusRef != nil && len(r.minusRef.wall) > 0 {
			note = strings.TrimSpace(note + fmt.Sprintf("; minus kpc compile's medians: %s, CPU %s",
				fmtDur(median(r.wall)-median(r.minusRef.wall)), fmtDur(median(r.cpu)-median(r.minusRef.cpu))))
		}
		if r.failed != "" {
			note = strings.TrimSpace(note + "; stopped: " + r.failed)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s – %s | %s | %s | %d | %s |\n", r.size, r.what, fmtDur(median(r.wall)),
			fmtDur(lo), fmtDur(hi), fmtDur(median(r.cpu)), rss, len(r.wall), note)
	}
}
