//go:build linux

// Command nlload measures how long the kernel takes to load kpc's table
// through the netlink backend next to "nft -f" of the same Program's text.
// For each size it generates the manifests of a synthetic cluster (as "kpc
// gen" does), loads and compiles them, then, in fresh network namespaces
// of its own, times each way of loading, runs times each, and prints the
// medians: the netlink apply (batch building included, and separately),
// nft -f of the rendered script, and each again over the loaded table (a
// full replace). It needs root and nft; it never touches the root
// namespace's ruleset.
//
//	go run ./render/netlink/internal/nlload -n 10000 -endpoints 5 -runs 3
//
// With -sync it measures incremental applies instead (netlink.Sync): for
// each size, a full Sync into a fresh namespace, then, runs times, a Sync
// of the same cluster with one endpoint added to one Service and a Sync
// back, printing the medians of the time each took (building the batch
// and its state, reading the kernel's fingerprints and the cache and
// computing the difference, the kernel's transaction, writing the cache)
// and the number of netlink messages sent. -change says what changes: one
// endpoint's address (replace, the default) or the endpoint count (add).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"kpc/compiler/api"
	"kpc/internal/bench"
	"kpc/render/netlink"
)

func main() {
	sizes := flag.String("n", "1000,10000", "comma-separated numbers of Services")
	endpoints := flag.Int("endpoints", 5, "endpoints per Service")
	plain := flag.Bool("plain", true, "single-port IPv4 ClusterIP Services only (kpc gen --plain)")
	runs := flag.Int("runs", 3, "runs per measurement")
	chains := flag.Bool("chains", false, "keep every endpoint chain (render.NFT EndpointChains)")
	verify := flag.Bool("verify", true, "after the first netlink load, read the table back (netlink.Compare) and fail on any drift")
	syncMode := flag.Bool("sync", false, "measure incremental applies of a one-Service change (netlink.Sync)")
	flag.StringVar(&syncChange, "change", syncChange, "with -sync: replace (one endpoint gets a new address) or add (one endpoint more)")
	flag.Parse()
	run := run
	if *syncMode {
		run = runSync
	}
	if err := run(*sizes, *endpoints, *plain, *runs, *chains, *verify); err != nil {
		fmt.Fprintln(os.Stderr, "nlload:", err)
		os.Exit(1)
	}
}

// loadCluster generates and loads a synthetic cluster of n Services.
func loadCluster(dir string, n, endpoints int, plain bool) (*api.Input, error) {
	path, err := bench.WriteYAML(dir, bench.Shape{Services: n, Endpoints: endpoints, Plain: plain})
	if err != nil {
		return nil, err
	}
	return bench.Load(path)
}

func run(sizes string, endpoints int, plain bool, runs int, chains, verify bool) error {
	dir, err := os.MkdirTemp("", "nlload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-8s %-10s %8s %8s %8s %8s %10s %10s %10s %10s %10s\n", "services", "endpoints", "chains", "rules", "elements",
		"messages", "nl-build", "netlink", "nft -f", "nl-replace", "nft-replace")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("size %q: %w", s, err)
		}
		p, err := bench.Program(dir, bench.Shape{Services: n, Endpoints: endpoints, Plain: plain})
		if err != nil {
			return err
		}
		o := netlink.Options{EndpointChains: chains}
		var builds []time.Duration
		var b *netlink.Batch
		for i := 0; i < runs; i++ {
			start := time.Now()
			if b, err = netlink.Build(p, o); err != nil {
				return err
			}
			builds = append(builds, time.Since(start))
		}
		script := filepath.Join(dir, fmt.Sprintf("cluster-%d.nft", n))
		if err := os.WriteFile(script, b.Script(), 0o600); err != nil {
			return err
		}
		var nl, nft, nlRepl, nftRepl, nlCPU, nftCPU []time.Duration
		for i := 0; i < runs; i++ {
			check := func(ns string) error {
				if i > 0 || !verify {
					return nil
				}
				o := o
				o.NetNS = "/var/run/netns/" + ns
				start := time.Now()
				drift, err := netlink.Compare(p, o)
				if err != nil {
					return err
				}
				if !drift.Equal() {
					return fmt.Errorf("the kernel's table differs from the batch:\n%s", drift)
				}
				fmt.Printf("         verified: the kernel holds exactly the batch (%d elements); read back and compared in %s\n",
					b.Stats().Elements, time.Since(start).Round(time.Millisecond))
				return nil
			}
			var cpu time.Duration
			d, r, err := inFreshNS(func(ns string) error {
				o := o
				o.NetNS = "/var/run/netns/" + ns
				before := cpuTime(unix.RUSAGE_SELF)
				_, err := netlink.Apply(p, o)
				if cpu == 0 {
					cpu = cpuTime(unix.RUSAGE_SELF) - before
				}
				return err
			}, check)
			if err != nil {
				return fmt.Errorf("netlink: %w", err)
			}
			nl, nlRepl, nlCPU = append(nl, d), append(nlRepl, r), append(nlCPU, cpu)
			cpu = 0
			d, r, err = inFreshNS(func(ns string) error {
				before := cpuTime(unix.RUSAGE_CHILDREN)
				err := command("ip", "netns", "exec", ns, "nft", "-f", script)
				if cpu == 0 {
					cpu = cpuTime(unix.RUSAGE_CHILDREN) - before
				}
				return err
			}, nil)
			if err != nil {
				return fmt.Errorf("nft -f: %w", err)
			}
			nft, nftRepl, nftCPU = append(nft, d), append(nftRepl, r), append(nftCPU, cpu)
		}
		st := b.Stats()
		fmt.Printf("%-8d %-10d %8d %8d %8d %8d %10s %10s %10s %10s %10s\n", n, endpoints, st.Chains, st.Rules, st.Elements,
			st.Messages, median(builds), median(nl), median(nft), median(nlRepl), median(nftRepl))
		fmt.Printf("         runs: netlink %v, nft -f %v, netlink replace %v, nft replace %v\n",
			rounded(nl), rounded(nft), rounded(nlRepl), rounded(nftRepl))
		fmt.Printf("         CPU time of the first load (median): netlink %s (batch building included), nft -f %s\n",
			median(nlCPU), median(nftCPU))
	}
	return nil
}

// inFreshNS creates a namespace, times load into it (empty), times load
// again (a full replace of the loaded table), runs check (untimed) unless
// it is nil, and deletes the namespace.
func inFreshNS(load, check func(ns string) error) (first, again time.Duration, err error) {
	ns := fmt.Sprintf("kpcnlload-%d", os.Getpid())
	if err := command("ip", "netns", "add", ns); err != nil {
		return 0, 0, err
	}
	defer command("ip", "netns", "delete", ns)
	start := time.Now()
	if err := load(ns); err != nil {
		return 0, 0, err
	}
	first = time.Since(start)
	start = time.Now()
	if err := load(ns); err != nil {
		return 0, 0, err
	}
	again = time.Since(start)
	if check != nil {
		if err := check(ns); err != nil {
			return 0, 0, err
		}
	}
	return first, again, nil
}

// cpuTime is the user and system time used so far by the process (self)
// or by its waited-for children.
func cpuTime(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func command(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
