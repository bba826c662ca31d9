// Command nftload measures how long the kernel takes to load kpc's nft
// rendering of synthetic Programs: for each size and layout it renders the
// script, then, in fresh network namespaces of its own, times "nft -f" into
// an empty namespace and again over the loaded table (a full replace), and
// prints the medians. It needs root and nft; it never touches the root
// namespace's ruleset.
//
//	go run ./render/internal/nftperf/nftload -n 1000,10000 -runs 3
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"kpc/render"
	"kpc/render/internal/nftperf"
)

func main() {
	sizes := flag.String("n", "1000,10000", "comma-separated numbers of Services")
	runs := flag.Int("runs", 3, "runs per measurement")
	layouts := flag.String("layout", "lowered,chains", "comma-separated layouts: lowered, chains")
	replace := flag.Bool("replace", true, "also time a reload over the loaded table")
	o := nftperf.Mixed
	flag.IntVar(&o.AffinityEvery, "affinity", o.AffinityEvery, "every Nth Service has session affinity (0: none)")
	flag.IntVar(&o.LocalEvery, "local", o.LocalEvery, "every Nth Service has externalTrafficPolicy Local (0: none)")
	flag.IntVar(&o.NoEndpointsEvery, "noendpoints", o.NoEndpointsEvery, "every Nth Service has no endpoints (0: none)")
	flag.Parse()
	if err := run(*sizes, *layouts, *runs, *replace, o); err != nil {
		fmt.Fprintln(os.Stderr, "nftload:", err)
		os.Exit(1)
	}
}

func run(sizes, layouts string, runs int, replace bool, o nftperf.Options) error {
	dir, err := os.MkdirTemp("", "nftload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-8s %-8s %10s %10s %8s %10s %10s %10s %10s\n", "services", "layout", "render", "bytes", "chains",
		"load", "load-cpu", "replace", "repl-cpu")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("size %q: %w", s, err)
		}
		p := nftperf.Generate(n, o)
		for _, layout := range strings.Split(layouts, ",") {
			r := render.NFT{EndpointChains: layout == "chains"}
			start := time.Now()
			var buf bytes.Buffer
			if err := r.Render(&buf, p); err != nil {
				return err
			}
			renderTime := time.Since(start)
			file := filepath.Join(dir, fmt.Sprintf("%d-%s.nft", n, layout))
			if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
				return err
			}
			var ts [4][]time.Duration
			for k := 0; k < runs; k++ {
				t, err := measure(file, fmt.Sprintf("kpcload-%d-%d", os.Getpid(), k), replace)
				if err != nil {
					return fmt.Errorf("%d services, %s: %w", n, layout, err)
				}
				for i, d := range []time.Duration{t.load, t.loadCPU, t.again, t.againCPU} {
					ts[i] = append(ts[i], d)
				}
			}
			fmt.Printf("%-8d %-8s %10s %10d %8d %10s %10s %10s %10s\n", n, layout, renderTime.Round(time.Millisecond), buf.Len(),
				bytes.Count(buf.Bytes(), []byte("\tchain ")), median(ts[0]), median(ts[1]), median(ts[2]), median(ts[3]))
		}
	}
	return nil
}

// times are the wall-clock and CPU times of a fresh load and a replace.
type times struct{ load, loadCPU, again, againCPU time.Duration }

// measure loads file into a fresh namespace, then again over itself.
func measure(file, ns string, replace bool) (t times, err error) {
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return t, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	t.load, t.loadCPU, err = timeNFT(ns, file)
	if err != nil || !replace {
		return t, err
	}
	t.again, t.againCPU, err = timeNFT(ns, file)
	return t, err
}

// timeNFT runs nft -f and returns its wall-clock time and its CPU time
// (user + system; the kernel's work on the transaction is system time of
// the nft process, and less disturbed by other load on the machine).
func timeNFT(ns, file string) (wall, cpu time.Duration, err error) {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", file)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("nft -f: %v: %.2000s", err, out)
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func median(ds []time.Duration) string {
	if len(ds) == 0 || ds[0] == 0 {
		return "-"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Round(time.Millisecond).String()
}
