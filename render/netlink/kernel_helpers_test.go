//go:build linux

package netlink

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

// These helpers run tests in network namespaces the tests create and
// delete. The tests need root, ip and nft; without them they skip, except
// when CI is set, where they fail.

func requireKernel(t *testing.T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil && missing == "" {
			missing = tool
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but %s is not available", missing)
	}
	t.Skipf("needs %s", missing)
}

var nsCount atomic.Int32

// netns creates a network namespace that is deleted when t ends, and
// returns its name.
func netns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("kpcnl-%d-%d", os.Getpid(), nsCount.Add(1))
	run(t, "", "", "ip", "netns", "add", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// nsPath is the path of a named namespace, for Options.NetNS.
func nsPath(name string) string { return "/var/run/netns/" + name }

// execIn runs a command in namespace ns (or here when ns is "") with
// stdin and returns its standard output.
func execIn(ns, stdin string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// run is execIn that fails t on error.
func run(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	out, err := execIn(ns, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// normalize makes two listings comparable: every "elements = { ... }"
// block is put on one line with its elements sorted and without repeats,
// since the kernel lists hash set elements in an order that changes from
// load to load, and lists an element twice when the listing runs while the
// set's hash table is being resized (which right after a large load it
// can be; a set cannot hold one key twice). Nothing else is rewritten:
// the typeof declarations, in particular, list the same from netlink as
// from the text (see typeof.go).
func normalize(listing string) string { return sortElements(listing) }

// sortElements puts each "elements = { ... }" block on one line, sorted.
func sortElements(listing string) string {
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

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			b.WriteString("-" + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			b.WriteString("+" + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}

// foreign is a ruleset that does not belong to kpc: applying and deleting
// kpc's tables must leave it alone, including a table named kpc in
// another family.
const foreign = `table ip other {
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

// foreignTables lists the tables of foreign.
func foreignTables(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range [][]string{{"ip", "other"}, {"ip6", "other"}, {"inet", "kpc"}} {
		b.WriteString(run(t, ns, "", "nft", "list", "table", tbl[0], tbl[1]))
	}
	return b.String()
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\t\ttypeof numgen random mod 1 : verdict\n", "\t\ttypeof numgen random mod 1 : verdict\n"},
		{"\t\ttype ipv4_addr\n", "\t\ttype ipv4_addr\n"},
		{"set s {\n\t\telements = { b . 1 comment \"x, }\" : goto c,\n\t\t\t     a . 2 : drop }\n\t}\n",
			"set s {\n\t\telements = { a . 2 : drop, b . 1 comment \"x, }\" : goto c }\n\t}\n"},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
