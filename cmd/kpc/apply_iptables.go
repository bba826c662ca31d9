package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"kpc/compiler/ir"
	"kpc/render"
)

// iptablesTimeout bounds each iptables tool run.
const iptablesTimeout = 10 * time.Minute

// routeLocalnet is the sysctl that lets NodePorts be served on 127.0.0.0/8.
const routeLocalnet = "/proc/sys/net/ipv4/conf/all/route_localnet"

// maxHookDeletes bounds the deletion of repeated jumps into one hook chain.
const maxHookDeletes = 16

// iptTools runs one family's iptables tools of one variant ("nft" or
// "legacy") in the target namespace.
type iptTools struct {
	family  ir.Family
	command string // "iptables-nft", "ip6tables-legacy", ...
	netns   string
}

func newIPTTools(f ir.Family, o applyOptions) iptTools {
	variant := "nft"
	if o.backend == "iptables-legacy" {
		variant = "legacy"
	}
	return iptTools{family: f, command: render.IPTables{Family: f}.Command() + "-" + variant, netns: o.netns}
}

// run runs the tool named by suffix ("", "-restore", "-save") with args
// and stdin, inside the namespace through nsenter, and returns its
// standard output.
func (t iptTools) run(stdin []byte, suffix string, args ...string) ([]byte, error) {
	name := t.command + suffix
	argv := append([]string{name}, args...)
	if t.netns != "" {
		argv = append([]string{"nsenter", "--net=" + t.netns, "--"}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), iptablesTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// rulesetOf returns prog's Ruleset of family f, or nil when it has none
// that holds a Service (see servingRulesets).
func rulesetOf(prog *ir.Program, f ir.Family) *ir.Ruleset {
	if prog == nil {
		return nil
	}
	for _, rs := range servingRulesets(prog) {
		if rs.Family == f {
			return rs
		}
	}
	return nil
}

// iptablesApply loads prog with iptables-restore --noflush, family by
// family: kpc's chains (the file flushes and refills them), then the
// deletion of kpc's chains of an earlier load that the file no longer
// declares, then the jumps from the built-in chains, each added only when
// missing. A family without a Ruleset has kpc's chains and jumps removed.
// Finally route_localnet is set when IPv4 NodePorts are served on
// localhost. Each restore is atomic; the sequence is not.
func iptablesApply(prog *ir.Program, o applyOptions, stdout io.Writer) error {
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		t := newIPTTools(f, o)
		r := render.IPTables{Family: f}
		if rulesetOf(prog, f) == nil {
			if err := iptablesRemove(t, prog, o.dryRun, stdout, fmt.Sprintf("kpc apply: no %s Service in the input", f)); err != nil {
				return err
			}
			continue
		}
		var file bytes.Buffer
		if err := r.Render(&file, prog); err != nil {
			return err
		}
		hooks, err := r.Hooks(prog)
		if err != nil {
			return err
		}
		if o.dryRun {
			fmt.Fprintf(stdout, "# kpc apply --dry-run: %s-restore --noflush would load:\n", t.command)
			stdout.Write(file.Bytes())
			cmds, err := r.HookCommands(prog)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "# then stale %s chains would be deleted and these jumps ensured:\n", r.Command())
			for _, c := range cmds {
				fmt.Fprintf(stdout, "#   %s\n", strings.Replace(c, r.Command()+" ", t.command+" ", 2))
			}
			continue
		}
		if _, err := t.run(file.Bytes(), "-restore", "--noflush"); err != nil {
			return err
		}
		saved, err := t.run(nil, "-save")
		if err != nil {
			return err
		}
		prune, err := r.Prune(saved, prog)
		if err != nil {
			return err
		}
		if len(prune) > 0 {
			if _, err := t.run(prune, "-restore", "--noflush"); err != nil {
				return fmt.Errorf("deleting stale chains: %w", err)
			}
		}
		added := 0
		for _, h := range hooks {
			if _, err := t.run(nil, "", h.CheckArgs()...); err == nil {
				continue
			}
			if _, err := t.run(nil, "", h.InsertArgs()...); err != nil {
				return err
			}
			added++
		}
		fmt.Fprintf(stdout, "kpc apply: loaded kpc's %s chains in %s (%d jumps added)\n", t.command, o.where(), added)
	}
	if rs := rulesetOf(prog, ir.IPv4); rs != nil && rs.Node.LocalhostNodePorts {
		if o.dryRun {
			fmt.Fprintf(stdout, "# and net.ipv4.conf.all.route_localnet=1 would be set (NodePorts on localhost)\n")
			return nil
		}
		if err := writeSysctl(o.netns, routeLocalnet, "1"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kpc apply: set net.ipv4.conf.all.route_localnet=1 (NodePorts on localhost)\n")
	}
	return nil
}

// iptablesDelete removes kpc's chains and jumps of both families.
func iptablesDelete(prog *ir.Program, o applyOptions, stdout io.Writer) error {
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		if err := iptablesRemove(newIPTTools(f, o), prog, o.dryRun, stdout, "kpc apply --delete"); err != nil {
			return err
		}
	}
	return nil
}

// iptablesRemove removes kpc's jumps from the built-in chains, then every
// chain named with kpc's prefix (in one restore: all are flushed, then
// deleted). It changes nothing when there is nothing of kpc's. what
// starts the line that says what was removed.
func iptablesRemove(t iptTools, prog *ir.Program, dryRun bool, stdout io.Writer, what string) error {
	hooks, err := render.IPTables{Family: t.family}.Hooks(prog)
	if err != nil {
		return err
	}
	if len(hooks) == 0 {
		return errors.New("no hook chains")
	}
	prefix := strings.TrimSuffix(hooks[0].Target, "HOOK-"+hooks[0].BuiltIn)
	removed := 0
	for _, h := range hooks {
		for i := 0; i < maxHookDeletes; i++ {
			if _, err := t.run(nil, "", h.CheckArgs()...); err != nil {
				break
			}
			removed++
			if dryRun {
				break
			}
			if _, err := t.run(nil, "", h.DeleteArgs()...); err != nil {
				return err
			}
		}
	}
	saved, err := t.run(nil, "-save")
	if err != nil {
		return err
	}
	chains := ownChains(saved, prefix)
	n := 0
	var tables []string
	for table, cs := range chains {
		n += len(cs)
		tables = append(tables, table)
	}
	sort.Strings(tables)
	if n > 0 && !dryRun {
		var buf bytes.Buffer
		for _, table := range tables {
			buf.WriteString("*" + table + "\n")
			for _, c := range chains[table] {
				buf.WriteString(":" + c + " - [0:0]\n")
			}
			for _, c := range chains[table] {
				buf.WriteString("-X " + c + "\n")
			}
			buf.WriteString("COMMIT\n")
		}
		if _, err := t.run(buf.Bytes(), "-restore", "--noflush"); err != nil {
			return fmt.Errorf("deleting kpc's chains: %w", err)
		}
	}
	if removed+n > 0 {
		verb := "removed"
		if dryRun {
			verb = "dry run, nothing was changed; would remove"
		}
		fmt.Fprintf(stdout, "%s: %s %d jumps and %d %s chains named %s*\n", what, verb, removed, n, t.command, prefix)
	}
	return nil
}

// ownChains returns, per table, the chains of iptables-save output whose
// names start with prefix, sorted.
func ownChains(saved []byte, prefix string) map[string][]string {
	out := map[string][]string{}
	table := ""
	for _, line := range strings.Split(string(saved), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":") && table != "":
			name, _, _ := strings.Cut(line[1:], " ")
			if strings.HasPrefix(name, prefix) {
				out[table] = append(out[table], name)
			}
		}
	}
	for _, cs := range out {
		sort.Strings(cs)
	}
	return out
}
