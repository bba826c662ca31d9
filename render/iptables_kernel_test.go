package render

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
	"kpc/internal/nstest"
	"kpc/render/internal/nftperf"
)

// iptBackends are the iptables variants whose restore must accept the
// output.
var iptBackends = []string{"nft", "legacy"}

// iptNetns is a network namespace the test created.
type iptNetns struct{ name string }

// iptNewNetns creates a namespace deleted when the test ends.
func iptNewNetns(t *testing.T) *iptNetns {
	t.Helper()
	return &iptNetns{name: nstest.New(t, "kpcipt")}
}

// iptRun runs a command with a timeout and returns its combined output.
func iptRun(stdin []byte, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs argv inside the namespace.
func (n *iptNetns) run(stdin []byte, argv ...string) (string, error) {
	return iptRun(stdin, append([]string{"ip", "netns", "exec", n.name}, argv...)...)
}

// must runs argv inside the namespace and fails the test on error.
func (n *iptNetns) must(t *testing.T, stdin []byte, argv ...string) string {
	t.Helper()
	out, err := n.run(stdin, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// hook runs the check-or-insert of every hook, as the apply path does.
func (n *iptNetns) hook(t *testing.T, cmd string, hooks []IPTablesHook) {
	t.Helper()
	for _, h := range hooks {
		out, err := n.run(nil, append([]string{cmd}, h.CheckArgs()...)...)
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			n.must(t, nil, append([]string{cmd}, h.InsertArgs()...)...)
		default:
			t.Fatalf("%s %s: %v\n%s", cmd, strings.Join(h.CheckArgs(), " "), err, out)
		}
	}
}

// iptSaved is an iptables-save listing split by table.
type iptSaved map[string][]string

func iptParseSave(text string) iptSaved {
	s := iptSaved{}
	table := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, ":"):
			// Drop the counters: ":NAME POLICY [packets:bytes]".
			if i := strings.LastIndex(line, " ["); i > 0 {
				line = line[:i]
			}
			s[table] = append(s[table], line)
		default:
			s[table] = append(s[table], line)
		}
	}
	return s
}

// kpc returns the declarations and rules of kpc's chains.
func (s iptSaved) kpc(prefix string) string {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		for _, l := range s[table] {
			if strings.HasPrefix(l, ":"+prefix+"-") || strings.HasPrefix(l, "-A "+prefix+"-") {
				b.WriteString(table + " " + l + "\n")
			}
		}
	}
	return b.String()
}

// TestIPTablesKernelLoad loads every golden case with iptables-nft-restore
// and iptables-legacy-restore (ip6tables for IPv6) in a fresh network
// namespace, three times, hooking after each load as the apply path does:
// the load must pass --test, leave exactly one jump per hooked built-in
// chain (first in the chain), give the same kpc chains each time, declare
// what the file declares, and keep another program's chains, rules and
// policies.
func TestIPTablesKernelLoad(t *testing.T) {
	for _, tc := range iptCases {
		for _, be := range iptBackends {
			t.Run(tc.name+"/"+be, func(t *testing.T) {
				r := IPTables{Family: tc.family}
				cmd := r.Command() + "-" + be
				nstest.Require(t, "ip", cmd, cmd+"-restore", cmd+"-save")
				p := tc.prog()
				var file bytes.Buffer
				if err := r.Render(&file, p); err != nil {
					t.Fatal(err)
				}
				hooks, err := r.Hooks(p)
				if err != nil {
					t.Fatal(err)
				}
				prefix, _ := iptPrefixOf(p)
				ns := iptNewNetns(t)

				foreign := map[string][]string{
					"nat":    {":FOREIGN -", "-A PREROUTING -j FOREIGN", "-A FOREIGN -p tcp -m tcp --dport 2222 -j RETURN"},
					"filter": {":FORWARD DROP", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"},
				}
				ns.must(t, nil, cmd, "-w", "60", "-t", "nat", "-N", "FOREIGN")
				ns.must(t, nil, cmd, "-w", "60", "-t", "nat", "-A", "FOREIGN", "-p", "tcp", "--dport", "2222", "-j", "RETURN")
				ns.must(t, nil, cmd, "-w", "60", "-t", "nat", "-A", "PREROUTING", "-j", "FOREIGN")
				ns.must(t, nil, cmd, "-w", "60", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
				ns.must(t, nil, cmd, "-w", "60", "-t", "filter", "-P", "FORWARD", "DROP")

				ns.must(t, file.Bytes(), cmd+"-restore", "-w", "60", "--test", "--noflush")
				if got := iptParseSave(ns.must(t, nil, cmd+"-save")).kpc(prefix); got != "" {
					t.Fatalf("--test changed the kernel's rules:\n%s", got)
				}

				declared := iptDeclared(file.Bytes())
				prev := ""
				for load := 1; load <= 3; load++ {
					ns.must(t, file.Bytes(), cmd+"-restore", "-w", "60", "--noflush")
					ns.hook(t, cmd, hooks)
					saved := iptParseSave(ns.must(t, nil, cmd+"-save"))

					for _, h := range hooks {
						jump := "-A " + h.BuiltIn + " -j " + h.Target
						var first string
						n := 0
						for _, l := range saved[h.Table] {
							if strings.HasPrefix(l, "-A "+h.BuiltIn+" ") && first == "" {
								first = l
							}
							if l == jump {
								n++
							}
						}
						if n != 1 || first != jump {
							t.Errorf("load %d: %s %s has %d jumps to %s (first rule %q), want 1, first", load, h.Table, h.BuiltIn, n, h.Target, first)
						}
					}
					for table, lines := range foreign {
						for _, want := range lines {
							if !slices.ContainsFunc(saved[table], func(l string) bool { return strings.HasPrefix(l, want) }) {
								t.Errorf("load %d: %s lost %q", load, table, want)
							}
						}
					}
					for _, table := range []string{"filter", "nat"} {
						var have []string
						for _, l := range saved[table] {
							if strings.HasPrefix(l, ":"+prefix+"-") {
								have = append(have, strings.Fields(l[1:])[0])
							}
						}
						want := slices.Clone(declared[table])
						slices.Sort(have)
						slices.Sort(want)
						if diff := cmp.Diff(want, have); diff != "" {
							t.Errorf("load %d: %s chains (-declared +kernel):\n%s", load, table, diff)
						}
					}
					kpc := saved.kpc(prefix)
					if load > 1 {
						if diff := cmp.Diff(prev, kpc); diff != "" {
							t.Errorf("load %d changed kpc's chains (-load %d +load %d):\n%s", load, load-1, load, diff)
						}
					}
					prev = kpc
				}
			})
		}
	}
}

// TestIPTablesKernelPrune loads Programs one after the other, each followed
// by its Prune output: only the last Program's chains remain. Then it
// removes the hooks with DeleteArgs.
func TestIPTablesKernelPrune(t *testing.T) {
	for _, be := range iptBackends {
		t.Run(be, func(t *testing.T) {
			r := IPTables{}
			cmd := r.Command() + "-" + be
			nstest.Require(t, "ip", cmd, cmd+"-restore", cmd+"-save")
			ns := iptNewNetns(t)
			hooks, err := r.Hooks(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, prog := range []*ir.Program{iptEdges(), iptAffinity(), iptClusterIP(), {}} {
				var file bytes.Buffer
				if err := r.Render(&file, prog); err != nil {
					t.Fatal(err)
				}
				ns.must(t, file.Bytes(), cmd+"-restore", "-w", "60", "--noflush")
				ns.hook(t, cmd, hooks)
				prune, err := r.Prune([]byte(ns.must(t, nil, cmd+"-save")), prog)
				if err != nil {
					t.Fatal(err)
				}
				if len(prune) > 0 {
					ns.must(t, prune, cmd+"-restore", "-w", "60", "--noflush")
				}
				saved := iptParseSave(ns.must(t, nil, cmd+"-save"))
				declared := iptDeclared(file.Bytes())
				for _, table := range []string{"filter", "nat"} {
					var have []string
					for _, l := range saved[table] {
						if strings.HasPrefix(l, ":KPC-") {
							have = append(have, strings.Fields(l[1:])[0])
						}
					}
					want := slices.Clone(declared[table])
					slices.Sort(have)
					slices.Sort(want)
					if diff := cmp.Diff(want, have); diff != "" {
						t.Errorf("%s chains after prune (-want +got):\n%s", table, diff)
					}
				}
			}
			// Unhooking removes every jump into kpc's chains.
			for _, h := range hooks {
				ns.must(t, nil, append([]string{cmd}, h.DeleteArgs()...)...)
			}
			saved := iptParseSave(ns.must(t, nil, cmd+"-save"))
			for _, table := range []string{"filter", "nat"} {
				for _, l := range saved[table] {
					if strings.HasPrefix(l, "-A ") && !strings.HasPrefix(l, "-A KPC-") && strings.Contains(l, "-j KPC-") {
						t.Errorf("after DeleteArgs, %s still has %q", table, l)
					}
				}
			}
		})
	}
}

// TestIPTablesDialHelper is not a test: TestIPTablesKernelDNAT runs the
// test binary inside a namespace with KPC_IPT_DIAL="SRC DST:PORT" to open
// one TCP connection from SRC.
func TestIPTablesDialHelper(t *testing.T) {
	spec := os.Getenv("KPC_IPT_DIAL")
	if spec == "" {
		return // not run as the helper process
	}
	src, dst, _ := strings.Cut(spec, " ")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 300 * time.Millisecond}
	if c, err := d.Dial("tcp", dst); err == nil {
		c.Close()
	}
}

// TestIPTablesKernelDNAT sends the first packet of TCP connections from the
// node itself (the output hook) in a namespace where a case is loaded, and
// reads the kernel's decision from conntrack: the endpoint it DNATed to,
// "untouched", or "none" when the packet was dropped or rejected (no
// connection is confirmed).
func TestIPTablesKernelDNAT(t *testing.T) {
	tests := []struct {
		prog  func() *ir.Program
		src   string
		dst   string
		reply string
	}{
		{iptClusterIP, "203.0.113.2", "198.51.100.10:80", "192.0.2.10:8080"},
		{iptClusterIP, "203.0.113.2", "198.51.100.10:81", "untouched"},
		{iptLoadBalancer, "203.0.113.2", "203.0.113.40:443", "192.0.2.41:8443"},
		{iptLoadBalancer, "192.0.2.200", "203.0.113.40:443", "none"},
		{iptLoadBalancer, "203.0.113.2", "203.0.113.2:30443", "192.0.2.41:8443"},
		{iptLoadBalancer, "127.0.0.1", "127.0.0.1:30443", "192.0.2.41:8443"},
		{iptLoadBalancer, "203.0.113.2", "198.51.100.40:443", "192.0.2.41:8443"},
		{iptLocalPolicy, "203.0.113.2", "203.0.113.30:80", "192.0.2.31:80|192.0.2.32:80"},
		{iptNoEndpoints, "203.0.113.2", "198.51.100.50:80", "none"},
		{iptNoEndpoints, "203.0.113.2", "198.51.100.52:80", "none"},
		// kube-proxy checks external IPs on the input and forward paths:
		// from the node, the packet leaves it.
		{iptNoEndpoints, "203.0.113.2", "203.0.113.50:80", "untouched"},
		{iptNoEndpoints, "203.0.113.2", "203.0.113.51:80", "192.0.2.51:80"},
	}
	for _, be := range iptBackends {
		t.Run(be, func(t *testing.T) {
			r := IPTables{}
			cmd := r.Command() + "-" + be
			nstest.Require(t, "ip", "conntrack", cmd, cmd+"-restore")
			ns := iptNewNetns(t)
			for _, c := range [][]string{
				{"ip", "link", "set", "lo", "up"},
				{"ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
				{"ip", "addr", "add", "203.0.113.2/24", "dev", "d0"},
				{"ip", "addr", "add", "192.0.2.200/24", "dev", "d0"},
				{"ip", "link", "set", "d0", "up"},
				{"ip", "link", "set", "d1", "up"},
				{"ip", "route", "add", "198.51.100.0/24", "dev", "d0"},
				{"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"},
			} {
				ns.must(t, nil, c...)
			}
			hooks, err := r.Hooks(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range tests {
				var file bytes.Buffer
				if err := r.Render(&file, tc.prog()); err != nil {
					t.Fatal(err)
				}
				ns.must(t, file.Bytes(), cmd+"-restore", "-w", "60", "--noflush")
				ns.hook(t, cmd, hooks)
				ns.run(nil, "conntrack", "-F")
				dial := exec.Command("ip", "netns", "exec", ns.name, os.Args[0], "-test.run=^TestIPTablesDialHelper$")
				dial.Env = append(os.Environ(), "KPC_IPT_DIAL="+tc.src+" "+tc.dst)
				if out, err := dial.CombinedOutput(); err != nil {
					t.Fatalf("dial helper: %v\n%s", err, out)
				}
				dst := netip.MustParseAddrPort(tc.dst)
				out, _ := ns.run(nil, "conntrack", "-L", "-p", "tcp", "--orig-dst", dst.Addr().String())
				got := "none"
				for line := range strings.Lines(out) {
					f := strings.Fields(line)
					var srcs, sports []string
					for _, w := range f {
						if v, ok := strings.CutPrefix(w, "src="); ok {
							srcs = append(srcs, v)
						}
						if v, ok := strings.CutPrefix(w, "sport="); ok {
							sports = append(sports, v)
						}
					}
					if len(srcs) < 2 || len(sports) < 2 || !slices.Contains(f, "dport="+strconv.Itoa(int(dst.Port()))) {
						continue
					}
					got = net.JoinHostPort(srcs[1], sports[1])
					if got == tc.dst {
						got = "untouched"
					}
				}
				if !slices.Contains(strings.Split(tc.reply, "|"), got) {
					t.Errorf("%s -> %s: kernel says %s, want %s\n%s", tc.src, tc.dst, got, tc.reply, out)
				}
			}
		})
	}
}

// TestIPTablesKernelLargeCluster loads a ruleset in kube-proxy's large
// cluster mode (no comments on the per-endpoint rules) with both
// backends: the kernel holds every rule of the file.
func TestIPTablesKernelLargeCluster(t *testing.T) {
	p := nftperf.Program(1000)
	r := IPTables{Family: ir.IPv4}
	var file bytes.Buffer
	if err := r.Render(&file, p); err != nil {
		t.Fatal(err)
	}
	want := strings.Count(file.String(), "\n-A KPC-SEP-")
	for _, be := range iptBackends {
		t.Run(be, func(t *testing.T) {
			cmd := r.Command() + "-" + be
			nstest.Require(t, "ip", cmd+"-restore", cmd+"-save")
			ns := iptNewNetns(t)
			ns.must(t, file.Bytes(), cmd+"-restore", "-w", "60", "--noflush")
			saved := ns.must(t, nil, cmd+"-save", "-t", "nat")
			if got := strings.Count(saved, "\n-A KPC-SEP-"); got != want {
				t.Errorf("the kernel holds %d endpoint chain rules, the file %d", got, want)
			}
		})
	}
}
