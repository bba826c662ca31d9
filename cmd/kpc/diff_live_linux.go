//go:build linux

package main

import (
	"kpc/compiler/ir"
	"kpc/render/netlink"
)

// liveDrift compares kpc's tables in the kernel with prog's.
func liveDrift(prog *ir.Program, nsPath string) ([]string, error) {
	d, err := netlink.Compare(prog, netlink.Options{NetNS: nsPath})
	if err != nil {
		return nil, err
	}
	return d.Lines, nil
}
