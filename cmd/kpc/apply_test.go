//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"kpc/internal/nstest"
)

// nodePortSeed is seed as a NodePort Service: served on localhost in
// iptables mode (the default nodePortAddresses), which needs
// route_localnet.
var nodePortSeed = strings.Replace(seed, "spec:\n", "spec:\n  type: NodePort\n", 1)

// otherSeed replaces my-service with another Service, so that an apply of
// it leaves my-service's chains stale.
const otherSeed = `apiVersion: v1
kind: Service
metadata:
  name: other
spec:
  clusterIP: 10.96.0.200
  ports:
    - port: 53
      protocol: UDP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: other-1
  labels:
    kubernetes.io/service-name: other
addressType: IPv4
ports:
  - port: 53
    protocol: UDP
endpoints:
  - addresses: ["10.9.9.9"]
`

// kpcRun runs kpc with args and returns exit status, stdout and stderr.
func kpcRun(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestApplyUsage checks the exit statuses that need no kernel access.
func TestApplyUsage(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	invalid := writeFile(t, dir, "bad.yaml", bad)
	tests := []cliCase{
		{name: "help", args: []string{"apply", "--help"}, code: exitOK, stdout: []string{"--backend", "--dry-run", "--netns", "--delete", "--full", "--state-dir", "--timings", "--watch"}},
		{name: "no input", args: []string{"apply"}, code: exitUsage, stderr: []string{"no input"}},
		{name: "bad backend", args: []string{"apply", "--backend", "pf", good}, code: exitUsage, stderr: []string{`--backend "pf"`}},
		{name: "missing netns", args: []string{"apply", "--netns", "kpc-no-such-ns", good}, code: exitUsage, stderr: []string{"no such network namespace"}},
		{name: "invalid input", args: []string{"apply", "--dry-run", invalid}, code: exitInvalid, stderr: []string{"spec.ports[0].port"}},
		{name: "watch iptables", args: []string{"apply", "--watch", "--backend", "iptables", good}, code: exitUsage, stderr: []string{"--watch needs --backend netlink"}},
		{name: "watch dry run", args: []string{"apply", "--watch", "--dry-run", good}, code: exitUsage, stderr: []string{"does not go with"}},
		{name: "watch stdin", args: []string{"apply", "--watch", "-"}, code: exitUsage, stderr: []string{"not stdin"}},
		{name: "dry run netlink", args: []string{"apply", "--dry-run", good}, code: exitOK,
			stdout: []string{"table ip kpc {", "10.96.0.100 . tcp . 80", "nothing was changed", "netlink messages"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t) })
	}
}

const foreignNFT = `table ip other {
	chain input {
		type filter hook input priority 10; policy accept;
		ip saddr 192.0.2.99 counter packets 0 bytes 0
	}
}
table inet kpc {
	chain c {
	}
}
`

// TestApplyNetlink applies, re-applies, dry-runs and deletes through the
// netlink backend in a namespace holding foreign tables.
func TestApplyNetlink(t *testing.T) {
	nstest.Require(t, "nft", "nsenter")
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	other := writeFile(t, dir, "other.yaml", otherSeed)
	ns := nstest.New(t, "kpcapply")
	nstest.Run(t, ns, foreignNFT, "nft", "-f", "-")
	foreign := nstest.Run(t, ns, "", "nft", "list", "table", "ip", "other") + nstest.Run(t, ns, "", "nft", "list", "table", "inet", "kpc")
	list := func() string { out, _ := nstest.Exec(ns, "", "nft", "list", "table", "ip", "kpc"); return out }

	state := t.TempDir()
	// more is seed with one endpoint more, for an incremental apply.
	more := writeFile(t, dir, "more.yaml", strings.Replace(seed, `["10.4.5.6"]`, `["10.4.5.6"]
  - addresses: ["10.4.5.7"]`, 1))
	steps := []struct {
		name      string
		foreign   string // an nft script run in the namespace first
		args      []string
		code      int
		stdout    string
		stdoutNot string
		timed     bool     // --timings: stderr holds the timings line
		has       []string // in the kpc table afterwards
		hasNot    []string
		noChange  bool
	}{
		{name: "apply", args: []string{"apply", "--netns", ns, "--state-dir", state, good},
			stdout: "replaced kpc's nftables tables", has: []string{"10.96.0.100 . tcp . 80", "10.4.5.6 . 9376"}},
		{name: "same again", args: []string{"apply", "--netns", ns, "--state-dir", state, good}, stdout: "nothing was sent",
			noChange: true},
		{name: "one endpoint more", args: []string{"apply", "--netns", ns, "--state-dir", state, more},
			stdout: "updated kpc's nftables tables", has: []string{"10.4.5.6 . 9376", "10.4.5.7 . 9376"}},
		{name: "back, timed", args: []string{"apply", "--netns", ns, "--state-dir", state, "--timings", good},
			stdout: "updated kpc's nftables tables", stdoutNot: "read back", has: []string{"10.4.5.6 . 9376"},
			hasNot: []string{"10.4.5.7"}, timed: true},
		{name: "a rule added by hand", foreign: "add rule ip kpc services counter comment \"by hand\"\n",
			args:   []string{"apply", "--netns", ns, "--state-dir", state, good},
			stdout: "replaced kpc's nftables tables in network namespace " + nstest.Path(ns) + " (kpc's tables were changed by something else: chain services of table ip kpc holds other rules)",
			hasNot: []string{"by hand"}},
		{name: "an element added by hand", foreign: "add element ip kpc cluster-ips { 192.0.2.99 }\n",
			args:   []string{"apply", "--netns", ns, "--state-dir", state, more},
			stdout: "(kpc's tables were changed by something else: set cluster-ips of table ip kpc holds other elements)",
			has:    []string{"10.4.5.7 . 9376"}, hasNot: []string{"192.0.2.99"}},
		{name: "another table", foreign: "add table ip third\n", args: []string{"apply", "--netns", ns, "--state-dir", state, good},
			stdout: "; something was committed to nftables since kpc's last commit: kpc's tables were read back and found unchanged",
			has:    []string{"10.4.5.6 . 9376"}, hasNot: []string{"10.4.5.7"}},
		{name: "another table, same manifests", foreign: "delete table ip third\n",
			args:     []string{"apply", "--netns", ns, "--state-dir", state, good},
			stdout:   "already hold these manifests; nothing was sent (something was committed to nftables since kpc's last commit: kpc's tables were read back and found unchanged)",
			noChange: true},
		{name: "dry run", args: []string{"apply", "--netns", ns, "--state-dir", state, "--dry-run", other},
			stdout: "table ip kpc {", noChange: true},
		{name: "replace", args: []string{"apply", "--netns", ns, "--state-dir", state, other}, stdout: "updated",
			has: []string{"10.96.0.200 . udp . 53"}, hasNot: []string{"10.96.0.100"}},
		{name: "full", args: []string{"apply", "--netns", ns, "--state-dir", state, "--full", other}, stdout: "replaced",
			has: []string{"10.96.0.200 . udp . 53"}},
		{name: "no cache", args: []string{"apply", "--netns", ns, "--state-dir", "", good}, stdout: "replaced",
			has: []string{"10.96.0.100 . tcp . 80"}},
		{name: "delete dry run", args: []string{"apply", "--netns", ns, "--delete", "--dry-run"}, stdout: "would remove 1", noChange: true},
		{name: "delete", args: []string{"apply", "--netns", ns, "--state-dir", state, "--delete"}, stdout: "removed 1"},
		{name: "delete again", args: []string{"apply", "--netns", ns, "--state-dir", state, "--delete"}, stdout: "removed 0"},
	}
	for _, st := range steps {
		if st.foreign != "" {
			nstest.Run(t, ns, st.foreign, "nft", "-f", "-")
		}
		before := list()
		code, stdout, stderr := kpcRun(st.args...)
		if code != st.code {
			t.Fatalf("%s: exit %d, want %d\n%s%s", st.name, code, st.code, stdout, stderr)
		}
		if !strings.Contains(stdout, st.stdout) {
			t.Errorf("%s: stdout lacks %q:\n%s", st.name, st.stdout, stdout)
		}
		if st.stdoutNot != "" && strings.Contains(stdout, st.stdoutNot) {
			t.Errorf("%s: stdout has %q:\n%s", st.name, st.stdoutNot, stdout)
		}
		if st.timed && !timingsLine.MatchString(stderr) {
			t.Errorf("%s: stderr lacks the timings:\n%q", st.name, stderr)
		}
		if !st.timed && strings.Contains(stderr, "kpc apply: took") {
			t.Errorf("%s: timings without --timings:\n%s", st.name, stderr)
		}
		after := list()
		if st.noChange && after != before {
			t.Errorf("%s changed the table", st.name)
		}
		for _, s := range st.has {
			if !strings.Contains(after, s) {
				t.Errorf("%s: table lacks %q:\n%s", st.name, s, after)
			}
		}
		for _, s := range st.hasNot {
			if strings.Contains(after, s) {
				t.Errorf("%s: table still has %q", st.name, s)
			}
		}
		if got := nstest.Run(t, ns, "", "nft", "list", "table", "ip", "other") + nstest.Run(t, ns, "", "nft", "list", "table", "inet", "kpc"); got != foreign {
			t.Errorf("%s changed the foreign tables:\n%s", st.name, got)
		}
	}
	if list() != "" {
		t.Error("kpc's table survived --delete")
	}
}

// TestFormatDuration checks the spelling of --timings.
func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 ms"},
		{300 * time.Microsecond, "under 1 ms"},
		{700 * time.Microsecond, "1 ms"},
		{25 * time.Millisecond, "25 ms"},
		{999 * time.Millisecond, "999 ms"},
		{time.Second, "1.00 s"},
		{2437 * time.Millisecond, "2.44 s"},
	}
	for _, tc := range tests {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// timingsLine matches the line of --timings for a netlink apply.
var timingsLine = func() *regexp.Regexp {
	d := `([0-9]+ ms|[0-9]+\.[0-9]{2} s|under 1 ms)`
	return regexp.MustCompile(`(?m)^kpc apply: took ` + d + ` to load, ` + d + ` to compile, ` + d + ` to build the tables, ` + d +
		` to read the kernel's tables and compute the difference, ` + d + ` in the kernel, ` + d + ` to write the cache$`)
}()

// hookLine matches a jump from a built-in chain into kpc's hook chains in
// iptables-save output.
var hookLine = regexp.MustCompile(`(?m)^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) -j KPC-HOOK-`)

// TestApplyIPTables applies, re-applies, replaces and deletes through both
// iptables backends in a namespace holding a foreign rule.
func TestApplyIPTables(t *testing.T) {
	for _, variant := range []string{"nft", "legacy"} {
		t.Run(variant, func(t *testing.T) {
			nstest.Require(t, "nft", "nsenter", "iptables-"+variant, "iptables-"+variant+"-restore", "iptables-"+variant+"-save",
				"ip6tables-"+variant)
			backend := "iptables"
			if variant == "legacy" {
				backend = "iptables-legacy"
			}
			dir := t.TempDir()
			good := writeFile(t, dir, "seed.yaml", nodePortSeed)
			other := writeFile(t, dir, "other.yaml", otherSeed)
			ns := nstest.New(t, "kpcapply")
			ipt := "iptables-" + variant
			nstest.Run(t, ns, "", ipt, "-w", "60", "-A", "INPUT", "-s", "192.0.2.99", "-j", "ACCEPT")
			// save lists the rules without iptables-save's comment lines,
			// which hold the time.
			save := func() string {
				var b strings.Builder
				for _, l := range strings.Split(nstest.Run(t, ns, "", ipt+"-save"), "\n") {
					if !strings.HasPrefix(l, "#") {
						b.WriteString(l + "\n")
					}
				}
				return b.String()
			}
			apply := func(args ...string) string {
				t.Helper()
				code, stdout, stderr := kpcRun(append([]string{"apply", "--backend", backend, "--netns", ns}, args...)...)
				if code != exitOK {
					t.Fatalf("kpc apply %v: exit %d\n%s%s", args, code, stdout, stderr)
				}
				return stdout
			}
			checkForeign := func(step string) {
				t.Helper()
				if !strings.Contains(save(), "-A INPUT -s 192.0.2.99/32 -j ACCEPT") {
					t.Errorf("%s removed the foreign rule", step)
				}
			}

			apply(good)
			first := save()
			if n := len(hookLine.FindAllString(first, -1)); n != 6 {
				t.Errorf("after apply: %d jumps into kpc's hook chains, want 6:\n%s", n, first)
			}
			if !strings.Contains(first, "10.96.0.100/32") {
				t.Errorf("after apply: no rule for the cluster IP:\n%s", first)
			}
			if v := strings.TrimSpace(nstest.Run(t, ns, "", "cat", "/proc/sys/net/ipv4/conf/all/route_localnet")); v != "1" {
				t.Errorf("route_localnet = %s, want 1 (NodePorts on localhost)", v)
			}
			checkForeign("apply")

			apply(good)
			if again := save(); again != first {
				t.Errorf("re-apply changed the rules:\n%s\nwant\n%s", again, first)
			}

			out := apply("--dry-run", other)
			if !strings.Contains(out, "would load") || save() != first {
				t.Errorf("dry run: output %q, or the rules changed", out)
			}

			apply(other)
			replaced := save()
			if strings.Contains(replaced, "10.96.0.100") || !strings.Contains(replaced, "10.96.0.200/32") {
				t.Errorf("replace: old Service still there or new one missing:\n%s", replaced)
			}
			if n := len(hookLine.FindAllString(replaced, -1)); n != 6 {
				t.Errorf("after replace: %d jumps, want 6", n)
			}
			code, file, stderr := kpcRun("compile", "--format", "iptables", other)
			if code != exitOK {
				t.Fatal(stderr)
			}
			if got, wantChains := kpcChains(replaced), kpcChains(file); got != wantChains {
				t.Errorf("after replace, kpc's chains are\n%s\nwant (the file's)\n%s", got, wantChains)
			}
			checkForeign("replace")

			// A family left without a Service has kpc's chains and jumps
			// removed, and the line says why.
			apply(filepath.Join("..", "..", "examples"))
			if out := apply(other); !strings.Contains(out, "kpc apply: no IPv6 Service in the input: removed 6 jumps and") {
				t.Errorf("apply after a dual-stack input: %q, want the IPv6 chains' removal said of the input", out)
			}
			checkForeign("dual-stack and back")

			apply("--delete")
			if s := save(); strings.Contains(s, "KPC-") {
				t.Errorf("kpc's chains or jumps survived --delete:\n%s", s)
			}
			checkForeign("delete")
			if out := apply("--delete"); strings.Contains(out, "removed") {
				t.Errorf("second delete removed something: %s", out)
			}
		})
	}
}

// kpcChains lists the KPC- chains declared in iptables-save or -restore
// text, one "table chain" per line, sorted.
func kpcChains(text string) string {
	chains := ownChains([]byte(text), "KPC-")
	var lines []string
	for table, cs := range chains {
		for _, c := range cs {
			lines = append(lines, table+" "+c)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestDiffLive compares the kernel's tables with manifests after applies
// of the same and of other manifests.
func TestDiffLive(t *testing.T) {
	nstest.Require(t, "nft", "nsenter")
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	other := writeFile(t, dir, "other.yaml", otherSeed)
	invalid := writeFile(t, dir, "bad.yaml", bad)
	ns := nstest.New(t, "kpcapply")
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		empty  bool
	}{
		{name: "nothing applied", args: []string{"diff", "--live", "--netns", ns, "-f", good}, code: exitInvalid,
			stdout: []string{"--- kernel", "+++ kpc apply (the manifests)", "\n+ table ip kpc (not in the kernel)"}},
		{name: "apply", args: []string{"apply", "--netns", ns, "--state-dir", t.TempDir(), "-f", good}, code: exitOK},
		{name: "no drift", args: []string{"diff", "--live", "--netns", ns, "-f", good}, code: exitOK, empty: true},
		{name: "no drift json", args: []string{"diff", "--live", "--netns", ns, "-o", "json", good}, code: exitOK,
			stdout: []string{`"equal": true`}},
		// The kernel holds seed (my-service, 10.96.0.100, two endpoints:
		// chain dnat-2), the manifests are other (10.96.0.200, one
		// endpoint: chain dnat-1). A diff from the kernel to the
		// manifests: "-" for seed's objects, "+" for other's.
		{name: "other manifests", args: []string{"diff", "--live", "--netns", ns, "-f", other}, code: exitInvalid,
			stdout: []string{"--- kernel", "+++ kpc apply (the manifests)", "~ ip kpc set service-ips",
				"    - element 10.96.0.100 . tcp . 80", "    + element 10.96.0.200 . udp . 53",
				"\n+ ip kpc chain dnat-1 (1 rules)", "\n- ip kpc chain dnat-2 (1 rules)",
				"    - element 10.96.0.100 . tcp . 80 . 1 : 10.4.5.6 . 9376", "    + element 10.96.0.200 . udp . 53 . 0 : 10.9.9.9 . 53"}},
		{name: "other manifests json", args: []string{"diff", "--live", "--netns", ns, "-o", "json", "-f", other}, code: exitInvalid,
			stdout: []string{`"schemaVersion": 2`, `"equal": false`, `"old": "kernel (`, `"new": "kpc apply (the manifests)"`, `"lines": [`,
				`"    - element 10.96.0.100 . tcp . 80 . 1 : 10.4.5.6 . 9376"`, `"    + element 10.96.0.200 . udp . 53 . 0 : 10.9.9.9 . 53"`}},
		{name: "invalid input", args: []string{"diff", "--live", "--netns", ns, "-f", invalid}, code: exitUsage, empty: true},
		{name: "missing netns", args: []string{"diff", "--live", "--netns", "kpc-no-such-ns", "-f", good}, code: exitUsage, empty: true},
		{name: "format iptables", args: []string{"diff", "--live", "--format", "iptables", "-f", good}, code: exitUsage, empty: true},
		{name: "-f without --live", args: []string{"diff", "-f", good, good}, code: exitUsage, empty: true},
	}
	for _, st := range steps {
		code, stdout, stderr := kpcRun(st.args...)
		if code != st.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", st.name, code, st.code, stdout, stderr)
		}
		for _, s := range st.stdout {
			if !strings.Contains(stdout, s) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.name, s, stdout)
			}
		}
		if st.empty && stdout != "" {
			t.Errorf("%s: stdout not empty:\n%s", st.name, stdout)
		}
	}
}

// TestPermissionHint checks that an error the kernel gave for a missing
// privilege says what kpc needs, and that other errors are left alone.
func TestPermissionHint(t *testing.T) {
	eperm := fmt.Errorf("netlink: reading the nftables generation: %w", syscall.EPERM)
	for _, tt := range []struct {
		name    string
		err     error
		backend string
		want    string
	}{
		{"netlink, EPERM", eperm, "netlink", eperm.Error() + " (the netlink backend needs CAP_NET_ADMIN and a writable --state-dir: run kpc as root)"},
		{"netlink, EACCES", fmt.Errorf("locking state cache: %w", syscall.EACCES), "netlink", "locking state cache: permission denied (the netlink backend needs CAP_NET_ADMIN and a writable --state-dir: run kpc as root)"},
		{"iptables, EPERM", eperm, "iptables", eperm.Error() + " (iptables-restore needs CAP_NET_ADMIN: run kpc as root)"},
		{"another error", errors.New("no such table"), "netlink", "no such table"},
	} {
		got := permissionHint(tt.err, tt.backend)
		if got.Error() != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("%s: the hint does not wrap the error", tt.name)
		}
	}
}
