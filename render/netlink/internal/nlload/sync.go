//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"kpc/compiler/api"
	"kpc/compiler/ir"
	"kpc/internal/bench"
	"kpc/render/netlink"
)

// syncChange is what the -sync measurement changes in the middle
// Service: "replace" gives one endpoint a new address (a pod replaced: the
// Service keeps its endpoint count), "add" adds an endpoint.
var syncChange = "replace"

// runSync measures incremental applies of a one-Service change.
func runSync(sizes string, endpoints int, plain bool, runs int, chains, verify bool) error {
	dir, err := os.MkdirTemp("", "nlload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-8s %10s %10s %10s %10s %10s %10s %10s %9s %9s\n", "services", "full", "build", "diff", "kernel", "cache",
		"apply", "msgs", "added", "deleted")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("size %q: %w", s, err)
		}
		input, err := loadCluster(dir, n, endpoints, plain)
		if err != nil {
			return err
		}
		base, err := bench.Compile(input)
		if err != nil {
			return err
		}
		// The same cluster with one endpoint of the middle Service moved
		// to a new address, or one endpoint more.
		slice := input.EndpointSlices[len(input.EndpointSlices)/2]
		ep := slice.Endpoints[0]
		ep.Addresses = []string{"10.127.255.254"}
		if slice.AddressType == "IPv6" {
			ep.Addresses = []string{"2001:db8:ffff::fe"}
		}
		if syncChange == "add" {
			slice.Endpoints = append(slice.Endpoints, ep)
		} else {
			slice.Endpoints = append([]api.Endpoint{ep}, slice.Endpoints[1:]...)
		}
		changed, err := bench.Compile(input)
		if err != nil {
			return err
		}
		ns := fmt.Sprintf("kpcnlsync-%d", os.Getpid())
		if err := command("ip", "netns", "add", ns); err != nil {
			return err
		}
		o := netlink.Options{NetNS: "/var/run/netns/" + ns, StateDir: dir, EndpointChains: chains}
		start := time.Now()
		rep, err := netlink.Sync(base, o)
		full := time.Since(start)
		if err == nil && rep.Mode != netlink.SyncFull {
			err = fmt.Errorf("first Sync was %s", rep)
		}
		var builds, diffs, kernels, caches []time.Duration
		var last *netlink.SyncReport
		for i := 0; i < runs && err == nil; i++ {
			for _, p := range []*ir.Program{changed, base} {
				rep, err = netlink.Sync(p, o)
				if err != nil {
					break
				}
				if rep.Mode != netlink.SyncIncremental {
					err = fmt.Errorf("the Sync was %s, want incremental", rep)
					break
				}
				builds, diffs = append(builds, rep.Build), append(diffs, rep.Diff)
				kernels, caches = append(kernels, rep.Kernel), append(caches, rep.Cache)
				last = rep
			}
		}
		if err == nil && verify {
			drift, derr := netlink.Compare(base, o)
			if derr != nil {
				err = derr
			} else if !drift.Equal() {
				err = fmt.Errorf("after the incremental applies the kernel differs:\n%s", drift)
			}
		}
		command("ip", "netns", "delete", ns)
		if err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}
		apply := make([]time.Duration, len(builds))
		for i := range builds {
			apply[i] = builds[i] + diffs[i] + kernels[i]
		}
		fmt.Printf("%-8d %10s %10s %10s %10s %10s %10s %10d %9d %9d\n", n, full.Round(time.Millisecond), median(builds),
			median(diffs), median(kernels), median(caches), median(apply), last.Sent.Messages, last.Sent.Elements, last.DeletedElements)
		fmt.Printf("         one Sync back to the original: %s\n", last)
	}
	return nil
}
