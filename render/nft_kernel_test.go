package render_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// These tests load rendered scripts into network namespaces they create
// and delete. They need root and nft; without them they skip, except when
// CI is set, where they fail.

// nftRequireKernel skips or fails t when namespaces and nft are missing.
func nftRequireKernel(t *testing.T, tools ...string) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	}
	for _, tool := range append([]string{"nft", "ip"}, tools...) {
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

var nftNSCount atomic.Int32

// nftNetns creates a network namespace that is deleted when t ends.
func nftNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("kpcnft-%d-%d", os.Getpid(), nftNSCount.Add(1))
	nftRun(t, "", "ip", "netns", "add", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// nftExec runs a command, inside namespace ns when ns is not empty, with
// stdin, and returns its output.
func nftExec(ns, stdin string, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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

// nftRun is nftExec that fails t on error.
func nftRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := nftExec(ns, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nftForeign is a ruleset that does not belong to kpc; loading kpc's
// script must leave it alone, including a table named kpc in another
// family.
const nftForeign = `table ip other {
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

// nftNormalize makes a ruleset listing comparable: the kernel lists the
// elements of hash sets in an order that changes from load to load, so
// every "elements = { ... }" block is put on one line with its elements
// sorted.
func nftNormalize(listing string) string {
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
		out.WriteString("elements = { " + strings.Join(elems, ", ") + " }")
		rest = body[end+1:]
	}
}

func TestNFTNormalize(t *testing.T) {
	in := "set s {\n\t\telements = { b . 1 comment \"x, }\" : goto c,\n\t\t\t     a . 2 : drop }\n\t}\n"
	want := "set s {\n\t\telements = { a . 2 : drop, b . 1 comment \"x, }\" : goto c }\n\t}\n"
	if got := nftNormalize(in); got != want {
		t.Errorf("nftNormalize =\n%q\nwant\n%q", got, want)
	}
}

// TestNFTKernel loads every golden case with nft -c -f and nft -f into a
// fresh namespace holding foreign tables, and checks that: loading the
// same file again gives the same ruleset (an idempotent replace); the
// foreign tables survive untouched; the kernel's listing loads back to
// itself; and loading the cases one after another into one namespace gives
// each case's ruleset (replacement from any previous state).
func TestNFTKernel(t *testing.T) {
	nftRequireKernel(t)
	dir := t.TempDir()
	seq := nftNetns(t)
	if _, err := nftExec(seq, nftForeign, "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	for _, c := range nftCases() {
		var script bytes.Buffer
		if err := c.r.Render(&script, c.p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		file := filepath.Join(dir, c.name+".nft")
		if err := os.WriteFile(file, script.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var want string
		t.Run(c.name, func(t *testing.T) {
			ns := nftNetns(t)
			if _, err := nftExec(ns, nftForeign, "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			foreign := nftForeignTables(t, ns)
			nftRun(t, ns, "nft", "-c", "-f", file)
			nftRun(t, ns, "nft", "-f", file)
			first := nftRun(t, ns, "nft", "list", "ruleset")
			want = nftNormalize(first)
			nftRun(t, ns, "nft", "-f", file)
			if got := nftNormalize(nftRun(t, ns, "nft", "list", "ruleset")); got != want {
				t.Errorf("ruleset changed when the file was loaded again:\n%s", nftLineDiff(want, got))
			}
			if got := nftForeignTables(t, ns); got != foreign {
				t.Errorf("foreign tables changed:\n%s", nftLineDiff(foreign, got))
			}
			// The listing loads back to the same ruleset.
			back := nftNetns(t)
			if _, err := nftExec(back, first, "nft", "-f", "-"); err != nil {
				t.Fatalf("loading the listing back: %v", err)
			}
			if got := nftNormalize(nftRun(t, back, "nft", "list", "ruleset")); got != want {
				t.Errorf("listing does not round-trip:\n%s", nftLineDiff(want, got))
			}
		})
		if want == "" {
			continue
		}
		if _, err := nftExec(seq, "", "nft", "-f", file); err != nil {
			t.Errorf("%s: loading after the previous case: %v", c.name, err)
			continue
		}
		if got := nftNormalize(nftRun(t, seq, "nft", "list", "ruleset")); got != want {
			t.Errorf("%s: loaded after the previous case, ruleset differs:\n%s", c.name, nftLineDiff(want, got))
		}
	}
}

// nftForeignTables lists the tables of nftForeign.
func nftForeignTables(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range [][]string{{"ip", "other"}, {"ip6", "other"}, {"inet", "kpc"}} {
		b.WriteString(nftRun(t, ns, "nft", "list", "table", tbl[0], tbl[1]))
	}
	return b.String()
}

// nftLineDiff shows the lines only in want (-) and only in got (+).
func nftLineDiff(want, got string) string {
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
	return b.String()
}
