//go:build linux

package main

import (
	"fmt"
	"io"

	"kpc/compiler/ir"
	"kpc/render/netlink"
)

// netlinkOptions are the netlink options of an apply.
func netlinkOptions(o applyOptions) netlink.Options {
	return netlink.Options{NetNS: o.netns, StateDir: o.stateDir, Full: o.full, DryRun: o.dryRun}
}

// netlinkProbe checks that the netlink backend can do its work (see
// netlink.Probe) before the input is loaded.
func netlinkProbe(o applyOptions) error { return netlink.Probe(netlinkOptions(o)) }

// netlinkApply brings kpc's nftables tables to prog in one netlink
// transaction: only the difference from the last apply when the kernel
// still holds what it applied (see netlink.Sync), else a full replace. With
// --dry-run it prints the equivalent nft script and what would be sent. It
// returns how long Sync's steps took.
func netlinkApply(prog *ir.Program, o applyOptions, stdout io.Writer) (steps, error) {
	opts := netlinkOptions(o)
	if o.dryRun {
		b, err := netlink.Build(prog, opts)
		if err != nil {
			return nil, err
		}
		if _, err := stdout.Write(b.Script()); err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(stdout, "# kpc apply --dry-run: nothing was changed; the netlink batch would create %s in %s\n",
			b.Stats(), o.where()); err != nil {
			return nil, err
		}
		// What an apply would send depends on the kernel's tables; without
		// the right to read them, say so rather than fail.
		rep, err := netlink.Sync(prog, opts)
		if err != nil {
			_, err = fmt.Fprintf(stdout, "# kpc apply --dry-run: could not read the kernel's tables to plan the apply: %v\n", err)
			return nil, err
		}
		_, err = fmt.Fprintf(stdout, "# kpc apply --dry-run: the apply would be %s\n", rep)
		return syncSteps(rep), err
	}
	rep, err := netlink.Sync(prog, opts)
	if err != nil {
		return nil, err
	}
	switch rep.Mode {
	case netlink.SyncFull:
		_, err = fmt.Fprintf(stdout, "kpc apply: replaced kpc's nftables tables in %s (%s): %s\n", o.where(), rep.Reason, rep.Sent)
	case netlink.SyncIncremental:
		_, err = fmt.Fprintf(stdout, "kpc apply: updated kpc's nftables tables in %s: %s\n", o.where(), rep)
	default:
		checked := ""
		if rep.Verified {
			checked = " (" + rep.Checked + ")"
		}
		_, err = fmt.Fprintf(stdout, "kpc apply: kpc's nftables tables in %s already hold these manifests; nothing was sent%s\n", o.where(), checked)
	}
	return syncSteps(rep), err
}

// syncSteps are the steps of a Sync, as its report times them; reading
// kpc's tables back is one when the Sync did.
func syncSteps(rep *netlink.SyncReport) steps {
	s := steps{
		{"to build the tables", rep.Build},
		{"to read the kernel's tables and compute the difference", rep.Diff},
	}
	if rep.Verify > 0 {
		s = append(s, step{"to read kpc's tables back and check them", rep.Verify})
	}
	return append(s, steps{
		{"in the kernel", rep.Kernel},
		{"to write the cache", rep.Cache},
	}...)
}

// netlinkDelete removes kpc's nftables tables (and the cache of them).
func netlinkDelete(prog *ir.Program, o applyOptions, stdout io.Writer) error {
	opts := netlinkOptions(o)
	opts.Table = tableName(prog)
	st, err := netlink.Delete(opts)
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
