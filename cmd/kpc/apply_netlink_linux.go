//go:build linux

package main

import (
	"fmt"
	"io"

	"kpc/compiler/ir"
	"kpc/render/netlink"
)

// netlinkApply replaces kpc's nftables tables with prog's in one netlink
// transaction, or with --dry-run prints the equivalent nft script.
func netlinkApply(prog *ir.Program, o applyOptions, stdout io.Writer) error {
	opts := netlink.Options{NetNS: o.netns}
	if o.dryRun {
		b, err := netlink.Build(prog, opts)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(b.Script()); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "# kpc apply --dry-run: nothing was changed; the netlink batch would create %s in %s\n",
			b.Stats(), o.where())
		return err
	}
	st, err := netlink.Apply(prog, opts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "kpc apply: replaced kpc's nftables tables in %s: %s\n", o.where(), st)
	return err
}

// netlinkDelete removes kpc's nftables tables.
func netlinkDelete(prog *ir.Program, o applyOptions, stdout io.Writer) error {
	st, err := netlink.Delete(netlink.Options{NetNS: o.netns, DryRun: o.dryRun, Table: tableName(prog)})
	if err != nil {
		return err
	}
	verb := "removed"
	if o.dryRun {
		verb = "dry run, nothing was changed; would remove"
	}
	_, err = fmt.Fprintf(stdout, "kpc apply --delete: %s %d nftables tables named %s in %s\n", verb, st.Tables, tableName(prog), o.where())
	return err
}
