// Package nstest holds what kpc's kernel tests share: a check that the
// test can reach a kernel it may change, network namespaces that the test
// creates and deletes, commands run inside them, and a normalization that
// makes nft listings comparable.
//
// A test that cannot run (not root, a tool missing) is skipped, except
// when the CI environment variable is set: then it fails, so that CI never
// passes by skipping.
package nstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Timeout bounds every command Exec runs.
const Timeout = 5 * time.Minute

// Require skips t (fails it under CI) unless the process is root and ip
// and every one of tools is on PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("kernel test cannot run (missing %s) and CI is set", strings.Join(missing, ", "))
	}
	t.Skipf("kernel test needs %s", strings.Join(missing, ", "))
}

var count atomic.Int32

// New creates a network namespace named prefix-PID-N, deleted when t
// ends, and returns its name.
func New(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), count.Add(1))
	Run(t, "", "", "ip", "netns", "add", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// Path is the path of the named namespace name, as `ip netns` keeps it.
func Path(name string) string { return "/var/run/netns/" + name }

// Exec runs a command in namespace ns (here when ns is ""), with stdin,
// and returns its standard output; the error carries the command and its
// standard error.
func Exec(ns, stdin string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// Run is Exec that fails t on error.
func Run(t testing.TB, ns, stdin string, args ...string) string {
	t.Helper()
	out, err := Exec(ns, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Foreign is a ruleset that does not belong to kpc, for tests that check
// that loading, applying and deleting kpc's tables leave everything else
// alone: a set and a base chain in "ip other", a base chain in "ip6
// other", and a table named kpc in another family ("inet kpc").
const Foreign = `table ip other {
	set s {
		type ipv4_addr
		elements = { 192.0.2.99 }
	}
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr @s counter packets 0 bytes 0
	}
}
table ip6 other {
	chain output {
		type filter hook output priority 0; policy accept;
	}
}
table inet kpc {
	chain c {
	}
}
`

// ForeignTables are the tables of Foreign, for ListTables.
var ForeignTables = []string{"ip other", "ip6 other", "inet kpc"}

// ListTables lists the nftables tables of namespace ns, each given as
// "FAMILY NAME" ("ip other"), one after the other; it fails t when one is
// missing.
func ListTables(t testing.TB, ns string, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range tables {
		b.WriteString(Run(t, ns, "", append([]string{"nft", "list", "table"}, strings.Fields(tbl)...)...))
	}
	return b.String()
}

// SortElements makes nft listings comparable: every "elements = { ... }"
// block is put on one line with its elements sorted and without repeats.
// The kernel lists hash set elements in an order that changes from load
// to load, and lists an element twice when the listing runs while the
// set's hash table is being resized (a set cannot hold one key twice).
// Nothing else is rewritten.
func SortElements(listing string) string {
	var out strings.Builder
	rest := listing
	for {
		i := strings.Index(rest, "elements = {")
		if i < 0 {
			out.WriteString(rest)
			return out.String()
		}
		out.WriteString(rest[:i])
		body := rest[i+len("elements = {"):]
		depth, quoted, end := 1, false, -1
		var elems []string
		start := 0
		for k := 0; k < len(body) && end < 0; k++ {
			switch c := body[k]; {
			case c == '"':
				quoted = !quoted
			case quoted:
			case c == '{':
				depth++
			case c == '}':
				depth--
				if depth == 0 {
					elems = append(elems, body[start:k])
					end = k
				}
			case c == ',' && depth == 1:
				elems = append(elems, body[start:k])
				start = k + 1
			}
		}
		if end < 0 {
			out.WriteString(rest[i:])
			return out.String()
		}
		for k := range elems {
			elems[k] = strings.Join(strings.Fields(elems[k]), " ")
		}
		sort.Strings(elems)
		elems = slices.Compact(elems)
		out.WriteString("elements = { " + strings.Join(elems, ", ") + " }")
		rest = body[end+1:]
	}
}

// SortBlocks puts the tables of a listing, and the chains, sets and maps
// of every table, in name order: the kernel lists them in the order they
// were created, and an incremental update creates new ones after the old
// ones, where a full load creates them in the text's order. The order has
// no effect on packets.
func SortBlocks(listing string) string {
	var tables, blocks, cur []string
	var table []string
	for _, l := range strings.Split(listing, "\n") {
		switch {
		case cur != nil:
			cur = append(cur, l)
			if l == "\t}" {
				blocks = append(blocks, strings.Join(cur, "\n"))
				cur = nil
			}
		case strings.HasPrefix(l, "\tchain ") || strings.HasPrefix(l, "\tset ") || strings.HasPrefix(l, "\tmap "):
			cur = []string{l}
		case strings.HasPrefix(l, "table "):
			table = []string{l}
		case l == "}":
			sort.Strings(blocks)
			table = append(append(table, blocks...), l)
			tables = append(tables, strings.Join(table, "\n"))
			blocks, table = nil, nil
		case l == "":
			// Blank lines separate blocks in nft's listing.
		default:
			table = append(table, l)
		}
	}
	sort.Strings(tables)
	return strings.Join(tables, "\n")
}
