package golden

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kpc/compiler/ir"
	"kpc/internal/netlab"
	"kpc/internal/nstest"
	"kpc/render"
	"kpc/render/netlink"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// requireKernel skips the test when it cannot reach a kernel it may change
// (not root, or a tool missing), except under CI, where that is a failure.
func requireKernel(t *testing.T, tools ...string) {
	t.Helper()
	nstest.Require(t, append([]string{"nft", "conntrack"}, tools...)...)
}

// backend loads a case's ruleset into a lab's node namespace.
type backend struct {
	name  string
	mode  ir.Mode
	tools []string
	load  func(ctx context.Context, lab *netlab.Lab, c goldenCase, res result) error
}

func backends() []backend {
	return []backend{
		{name: "nft", mode: ir.ModeNFT, tools: []string{"nft"}, load: loadNFTFile},
		{name: "iptables-nft", mode: ir.ModeIPTables, tools: []string{"iptables-nft-restore", "ip6tables-nft-restore"}, load: iptablesLoader("nft")},
		{name: "iptables-legacy", mode: ir.ModeIPTables, tools: []string{"iptables-legacy-restore", "ip6tables-legacy-restore"}, load: iptablesLoader("legacy")},
		{name: "netlink", mode: ir.ModeNFT, load: loadNetlink},
	}
}

// loadNetlink applies the case's program over netlink (the same table as
// want.nft, built without the nft tool).
func loadNetlink(_ context.Context, lab *netlab.Lab, _ goldenCase, res result) error {
	if _, err := netlink.Apply(res.prog, netlink.Options{NetNS: lab.NodeNSPath()}); err != nil {
		return fmt.Errorf("netlink apply: %w", err)
	}
	return nil
}

func loadNFTFile(ctx context.Context, lab *netlab.Lab, c goldenCase, _ result) error {
	out, err := lab.Exec(ctx, "nft", "-f", filepath.Join(c.dir, "want.nft"))
	if err != nil {
		return fmt.Errorf("nft -f want.nft: %v: %s", err, out)
	}
	return nil
}

func iptablesLoader(variant string) func(context.Context, *netlab.Lab, goldenCase, result) error {
	return func(ctx context.Context, lab *netlab.Lab, c goldenCase, res result) error {
		// iptables mode serves NodePorts on localhost, which needs route_localnet.
		if out, err := lab.Exec(ctx, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"); err != nil {
			return fmt.Errorf("sysctl route_localnet: %v: %s", err, out)
		}
		for _, f := range []struct {
			file, cmd string
			family    ir.Family
		}{{"want.iptables", "iptables", ir.IPv4}, {"want.ip6tables", "ip6tables", ir.IPv6}} {
			if _, ok := res.files[f.file]; !ok {
				continue
			}
			tool := f.cmd + "-" + variant
			if out, err := lab.Exec(ctx, tool+"-restore", "--noflush", filepath.Join(c.dir, f.file)); err != nil {
				return fmt.Errorf("%s-restore --noflush %s: %v: %s", tool, f.file, err, out)
			}
			// The file cannot hook the built-in chains idempotently; the
			// apply path adds one jump per built-in chain after the load.
			hooks, err := render.IPTables{Family: f.family}.Hooks(res.prog)
			if err != nil {
				return err
			}
			for _, h := range hooks {
				if _, err := lab.Exec(ctx, tool, h.CheckArgs()...); err == nil {
					continue
				}
				if out, err := lab.Exec(ctx, tool, h.InsertArgs()...); err != nil {
					return fmt.Errorf("%s %v: %v: %s", tool, h.InsertArgs(), err, out)
				}
			}
		}
		return nil
	}
}

// labConfig derives a lab from a program and its flows: the node's
// addresses, a server on every endpoint the ruleset can DNAT to, and every
// other flow source as a client.
func labConfig(t *testing.T, prog *ir.Program, flows []Flow) netlab.Config {
	t.Helper()
	cfg := netlab.Config{NodeIPs: NodeIPs(prog)}
	seen := map[netlab.Endpoint]bool{}
	epAddrs := map[netip.Addr]bool{}
	for _, rs := range prog.Rulesets {
		for _, ch := range rs.Chains {
			for _, r := range ch.RuleList() {
				if d, ok := r.Action.(*ir.DNAT); ok {
					ep := netlab.Endpoint{Addr: d.Addr, Port: d.Port, Protocol: string(d.Protocol)}
					if !seen[ep] && d.Protocol != ir.SCTP {
						seen[ep] = true
						cfg.Endpoints = append(cfg.Endpoints, ep)
					}
					epAddrs[d.Addr] = true
				}
			}
		}
	}
	clients := map[netip.Addr]bool{}
	for _, f := range flows {
		pkt, err := f.Resolve(cfg.NodeIPs)
		if err != nil {
			t.Fatal(err)
		}
		// Node-sourced flows (a node or loopback address) run in the node
		// namespace, endpoints' in the backend one: neither is a client.
		if !pkt.FromNode && !epAddrs[pkt.Src] && !clients[pkt.Src] {
			clients[pkt.Src] = true
			cfg.Clients = append(cfg.Clients, pkt.Src)
		}
	}
	return cfg
}

// probeCount is how many connections a flow sends: enough that every one of
// n equally likely endpoints is reached with overwhelming probability.
func probeCount(want Expect) int {
	switch {
	case want.Verdict == "dnat" && want.Affinity:
		return 10
	case want.Verdict == "dnat":
		return 8*len(want.Endpoints) + 4
	default:
		return 2
	}
}

// probeTimeout is how long a connection may take. An expected drop must
// wait it out, so it is short; anything else answers at once when the
// ruleset is right, so a generous bound only guards against a loaded machine
// (CI runs several kernel test packages at once).
func probeTimeout(want Expect) time.Duration {
	if want.Verdict == "drop" {
		return 500 * time.Millisecond
	}
	return 3 * time.Second
}

// checkOutcome compares what the kernel did with the expectation.
func checkOutcome(want Expect, pkt Packet, out netlab.Outcome, count int) []string {
	var diffs []string
	var reached []string
	for ep := range out.Reached {
		reached = append(reached, ep.String())
	}
	slices.Sort(reached)
	switch want.Verdict {
	case "dnat":
		if failed := count - total(out.Reached); failed > 0 {
			diffs = append(diffs, fmt.Sprintf("%d of %d connections failed (refused %d, timed out %d, unreachable %d, other %d)",
				failed, count, out.Refused, out.TimedOut, out.Unreachable, out.Other))
		}
		if want.Affinity {
			if len(reached) != 1 || !slices.Contains(want.Endpoints, reached[0]) {
				diffs = append(diffs, fmt.Sprintf("affinity: reached %v, want exactly one of %v", reached, want.Endpoints))
			}
		} else if !slices.Equal(reached, want.Endpoints) {
			diffs = append(diffs, fmt.Sprintf("reached %v, want %v", reached, want.Endpoints))
		}
		for src, n := range out.SeenFrom {
			if pkt.FromNode {
				// A node's own traffic is masqueraded to the node's own
				// address: the kernel shows no difference, so the tracer
				// alone judges masquerade for these flows.
				break
			}
			if masq := src != pkt.Src; masq != want.Masquerade {
				diffs = append(diffs, fmt.Sprintf("%d connections seen from %s: masquerade %v, want %v", n, src, masq, want.Masquerade))
			}
		}
	case "reject":
		if out.Refused != count {
			diffs = append(diffs, fmt.Sprintf("want %d refused, got %s", count, describe(out, reached)))
		}
	case "drop":
		if out.TimedOut != count {
			diffs = append(diffs, fmt.Sprintf("want %d timed out (dropped), got %s", count, describe(out, reached)))
		}
	case "untouched", "accept":
		// An accepted packet, like an untouched one, is delivered to
		// the node as addressed (where nothing listens).
		if len(reached) > 0 || out.TimedOut > 0 {
			diffs = append(diffs, fmt.Sprintf("want no endpoint and no drop, got %s", describe(out, reached)))
		}
	}
	return diffs
}

// missedOnly reports whether a DNAT flow without affinity had every
// connection answered by an expected endpoint, but not by all of them.
func missedOnly(want Expect, out netlab.Outcome, count int) bool {
	if want.Verdict != "dnat" || want.Affinity || total(out.Reached) != count || len(out.Reached) >= len(want.Endpoints) {
		return false
	}
	for ep := range out.Reached {
		if !slices.Contains(want.Endpoints, ep.String()) {
			return false
		}
	}
	return true
}

// merge returns the outcome of the connections of a and b together.
func merge(a, b netlab.Outcome) netlab.Outcome {
	out := a
	out.Reached, out.SeenFrom = maps.Clone(a.Reached), maps.Clone(a.SeenFrom)
	for ep, n := range b.Reached {
		out.Reached[ep] += n
	}
	for src, n := range b.SeenFrom {
		out.SeenFrom[src] += n
	}
	out.Refused += b.Refused
	out.TimedOut += b.TimedOut
	out.Unreachable += b.Unreachable
	out.Other += b.Other
	out.OtherErrors = maps.Clone(a.OtherErrors)
	for what, n := range b.OtherErrors {
		if out.OtherErrors == nil {
			out.OtherErrors = map[string]int{}
		}
		out.OtherErrors[what] += n
	}
	return out
}

func total(m map[netip.AddrPort]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func describe(out netlab.Outcome, reached []string) string {
	return fmt.Sprintf("reached %v, refused %d, timed out %d, unreachable %d, other %d",
		reached, out.Refused, out.TimedOut, out.Unreachable, out.Other)
}

// TestKernel replays every golden case's flows as real packets through the
// ruleset each backend loads into a fresh network namespace.
func TestKernel(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			requireKernel(t, b.tools...)
			flowsRun, conns, sctp := 0, 0, 0
			for _, c := range cases(t) {
				flows := readFlows(t, c)
				if flows == nil {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					res := compileCase(t, c)
					if res.prog == nil {
						t.Fatalf("invalid input: %s", res.err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					lab, err := netlab.New(labConfig(t, res.prog, flows))
					if err != nil {
						t.Fatalf("netlab: %v", err)
					}
					defer lab.Close()
					if err := b.load(ctx, lab, c, res); err != nil {
						t.Fatal(err)
					}
					nodeIPs := NodeIPs(res.prog)
					for _, f := range flows {
						pkt, err := f.Resolve(nodeIPs)
						if err != nil {
							t.Fatal(err)
						}
						if pkt.Protocol == ir.SCTP {
							t.Logf("flow %q: SCTP is checked by the tracer only (no SCTP sockets in this kernel)", f.Name)
							sctp++
							continue
						}
						want := f.For(b.mode)
						n := probeCount(want)
						probe := netlab.Probe{Src: pkt.Src, Dst: pkt.Dst, Port: pkt.Port, Protocol: string(pkt.Protocol), Count: n, Timeout: probeTimeout(want), FirstAlone: want.Affinity}
						out, err := lab.Send(probe)
						if err != nil {
							t.Fatalf("flow %q: %v", f.Name, err)
						}
						if missedOnly(want, out, n) {
							// A uniform choice may miss an endpoint by
							// chance (2^-19 for two endpoints and 20
							// connections); a rule that never chooses it
							// misses it again. One more round, not more.
							more, err := lab.Send(probe)
							if err != nil {
								t.Fatalf("flow %q: %v", f.Name, err)
							}
							t.Logf("flow %q: reached %d of %d endpoints in %d connections; %d more reached %d", f.Name, len(out.Reached), len(want.Endpoints), n, n, len(more.Reached))
							out = merge(out, more)
							n *= 2
						}
						if d := checkOutcome(want, pkt, out, n); len(d) > 0 {
							t.Errorf("flow %q (%s): %s", f.Name, f.To, strings.Join(d, "; "))
						}
						flowsRun++
						conns += n
					}
				})
			}
			t.Logf("kernel (%s): %d flows ran as %d real connections; %d SCTP flows checked by the tracer only", b.name, flowsRun, conns, sctp)
		})
	}
}

// TestMissedOnly checks when a flow gets a second round of connections: a
// DNAT flow without affinity whose connections all reached expected
// endpoints, but not all of them; and merge, which adds the rounds up.
func TestMissedOnly(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.180.0.1:80"), netip.MustParseAddrPort("10.180.1.1:80")
	two := Expect{Verdict: "dnat", Endpoints: []string{a.String(), b.String()}}
	reached := func(m map[netip.AddrPort]int) netlab.Outcome { return netlab.Outcome{Reached: m} }
	tests := []struct {
		name  string
		want  Expect
		out   netlab.Outcome
		count int
		retry bool
	}{
		{"one of two", two, reached(map[netip.AddrPort]int{a: 20}), 20, true},
		{"both", two, reached(map[netip.AddrPort]int{a: 9, b: 11}), 20, false},
		{"a failure too", two, netlab.Outcome{Reached: map[netip.AddrPort]int{a: 19}, Refused: 1}, 20, false},
		{"an unexpected endpoint", two, reached(map[netip.AddrPort]int{netip.MustParseAddrPort("10.180.2.1:80"): 20}), 20, false},
		{"affinity", Expect{Verdict: "dnat", Affinity: true, Endpoints: two.Endpoints}, reached(map[netip.AddrPort]int{a: 10}), 10, false},
		{"reject", Expect{Verdict: "reject"}, netlab.Outcome{Refused: 2}, 2, false},
	}
	for _, tc := range tests {
		if got := missedOnly(tc.want, tc.out, tc.count); got != tc.retry {
			t.Errorf("%s: missedOnly = %v, want %v", tc.name, got, tc.retry)
		}
	}
	first := netlab.Outcome{Reached: map[netip.AddrPort]int{a: 20}, SeenFrom: map[netip.Addr]int{a.Addr(): 20}}
	second := netlab.Outcome{Reached: map[netip.AddrPort]int{a: 12, b: 7}, SeenFrom: map[netip.Addr]int{a.Addr(): 19}, TimedOut: 1,
		OtherErrors: map[string]int{"x": 1}, Other: 1}
	got := merge(first, second)
	want := netlab.Outcome{Reached: map[netip.AddrPort]int{a: 32, b: 7}, SeenFrom: map[netip.Addr]int{a.Addr(): 39}, TimedOut: 1,
		OtherErrors: map[string]int{"x": 1}, Other: 1}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{})); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if first.Reached[a] != 20 {
		t.Errorf("merge changed its first argument: %v", first.Reached)
	}
}
