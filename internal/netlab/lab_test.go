package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"kpc/internal/nstest"
)

// requireLab skips the test when it cannot build namespaces (not root, a tool
// missing), except under CI, where that is a failure.
func requireLab(t *testing.T) {
	t.Helper()
	nstest.Require(t, "nft", "conntrack")
}

// TestMain fails the run if any test leaves a namespace of this process
// behind (and removes it).
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
		prefix := fmt.Sprintf("%s%d-", NamePrefix, os.Getpid())
		for _, line := range strings.Split(string(out), "\n") {
			if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, prefix) {
				fmt.Fprintf(os.Stderr, "namespace %s left behind\n", name)
				_ = exec.Command("ip", "netns", "delete", name).Run()
				code = 1
			}
		}
	}
	os.Exit(code)
}

// ownNamespaces lists the namespaces of this process's labs.
func ownNamespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	prefix := fmt.Sprintf("%s%d-", NamePrefix, os.Getpid())
	var own []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, prefix) {
			own = append(own, name)
		}
	}
	return own
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// family is the address plan of one IP family in the traffic test.
type family struct {
	name             string
	table            string // nft family
	l3               string // nft payload keyword ("ip" or "ip6")
	node, client     netip.Addr
	ep1, ep2         netip.Addr
	vip              netip.Addr // DNAT to ep1/ep2 :8080 (random), masqueraded; UDP 53 -> ep1:53
	vipReject        netip.Addr
	vipDrop          netip.Addr
	vipNoMasq        netip.Addr // DNAT to ep2:8080 only, not masqueraded
	unmatched        netip.Addr
	unmatchedPortEP1 uint16 // a port of ep1 with no server
}

var (
	fam4 = family{
		name: "ipv4", table: "ip", l3: "ip",
		node: mustAddr("198.51.100.1"), client: mustAddr("198.51.100.50"),
		ep1: mustAddr("192.0.2.10"), ep2: mustAddr("192.0.2.11"),
		vip: mustAddr("203.0.113.10"), vipReject: mustAddr("203.0.113.11"), vipDrop: mustAddr("203.0.113.12"),
		vipNoMasq: mustAddr("203.0.113.20"), unmatched: mustAddr("203.0.113.99"), unmatchedPortEP1: 9999,
	}
	fam6 = family{
		name: "ipv6", table: "ip6", l3: "ip6",
		node: mustAddr("2001:db8:1::1"), client: mustAddr("2001:db8:4::50"),
		ep1: mustAddr("2001:db8:2::10"), ep2: mustAddr("2001:db8:2::11"),
		vip: mustAddr("2001:db8:3::10"), vipReject: mustAddr("2001:db8:3::11"), vipDrop: mustAddr("2001:db8:3::12"),
		vipNoMasq: mustAddr("2001:db8:3::20"), unmatched: mustAddr("2001:db8:3::99"), unmatchedPortEP1: 9999,
	}
)

// hp formats a for an nft "addr:port" (brackets for IPv6).
func hp(a netip.Addr, port int) string { return netip.AddrPortFrom(a, uint16(port)).String() }

// ruleset is a tiny hand-written kube-proxy-like ruleset for one family:
// DNAT in prerouting and output, masquerade of the masqueraded VIP in
// postrouting, reject and drop in filter chains of prerouting and output.
func (f family) ruleset() string {
	return fmt.Sprintf(`table %[1]s lab
delete table %[1]s lab
table %[1]s lab {
	chain ep1 { meta l4proto tcp dnat to %[3]s; }
	chain ep2 { meta l4proto tcp dnat to %[4]s; }
	chain services {
		%[2]s daddr %[5]s tcp dport 80 numgen random mod 2 vmap { 0 : goto ep1, 1 : goto ep2 }
		%[2]s daddr %[5]s udp dport 53 dnat to %[6]s
		%[2]s daddr %[7]s tcp dport 80 goto ep2
	}
	chain nat-prerouting { type nat hook prerouting priority -100; policy accept; jump services; }
	chain nat-output { type nat hook output priority -100; policy accept; jump services; }
	chain nat-postrouting { type nat hook postrouting priority 100; policy accept; ct original %[2]s daddr %[5]s masquerade; }
	chain firewall {
		%[2]s daddr %[8]s reject
		%[2]s daddr %[9]s drop
	}
	chain filter-prerouting { type filter hook prerouting priority -110; policy accept; jump firewall; }
	chain filter-output { type filter hook output priority -110; policy accept; jump firewall; }
}
`, f.table, f.l3, hp(f.ep1, 8080), hp(f.ep2, 8080), f.vip, hp(f.ep1, 53), f.vipNoMasq, f.vipReject, f.vipDrop)
}

// want is the expected Outcome of a probe; unset maps mean "nothing".
type want struct {
	reached                                []netip.AddrPort // each reached at least once, nothing else
	seen                                   []netip.Addr     // the only source addresses seen
	refused, timedOut, unreachable, others int
}

func (w want) check(out Outcome, count int) error {
	var problems []string
	var reached []netip.AddrPort
	for ap := range out.Reached {
		reached = append(reached, ap)
	}
	slices.SortFunc(reached, netip.AddrPort.Compare)
	if !slices.Equal(reached, w.reached) {
		problems = append(problems, fmt.Sprintf("reached %v, want %v", reached, w.reached))
	}
	var seen []netip.Addr
	for a := range out.SeenFrom {
		seen = append(seen, a)
	}
	slices.SortFunc(seen, netip.Addr.Compare)
	if !slices.Equal(seen, w.seen) {
		problems = append(problems, fmt.Sprintf("seen from %v, want %v", seen, w.seen))
	}
	answered := 0
	if len(w.reached) > 0 {
		answered = count
	}
	got := [5]int{out.Answered(), out.Refused, out.TimedOut, out.Unreachable, out.Other}
	exp := [5]int{answered, w.refused, w.timedOut, w.unreachable, w.others}
	if got != exp {
		problems = append(problems, fmt.Sprintf("answered/refused/timed-out/unreachable/other %v, want %v", got, exp))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s (outcome %s)", strings.Join(problems, "; "), out)
	}
	return nil
}

type trafficCase struct {
	name     string
	src, dst netip.Addr
	port     uint16
	proto    string
	count    int
	want     want
}

// trafficCases are the flows of one family, against f.ruleset().
func (f family) trafficCases() []trafficCase {
	ep1, ep2 := netip.AddrPortFrom(f.ep1, 8080), netip.AddrPortFrom(f.ep2, 8080)
	both := []netip.AddrPort{ep1, ep2}
	dns := []netip.AddrPort{netip.AddrPortFrom(f.ep1, 53)}
	only := func(n int) []netip.Addr { return []netip.Addr{[]netip.Addr{f.node, f.client, f.ep1, f.ep2}[n]} }
	const node, client, fromEP1 = 0, 1, 2
	return []trafficCase{
		{"client/tcp/dnat-random-masq", f.client, f.vip, 80, "TCP", 20, want{reached: both, seen: only(node)}},
		{"client/udp/dnat-masq", f.client, f.vip, 53, "UDP", 5, want{reached: dns, seen: only(node)}},
		{"client/tcp/reject", f.client, f.vipReject, 80, "TCP", 3, want{refused: 3}},
		{"client/udp/reject", f.client, f.vipReject, 53, "UDP", 3, want{refused: 3}},
		{"client/tcp/drop", f.client, f.vipDrop, 80, "TCP", 3, want{timedOut: 3}},
		{"client/udp/drop", f.client, f.vipDrop, 53, "UDP", 3, want{timedOut: 3}},
		{"client/tcp/unmatched", f.client, f.unmatched, 80, "TCP", 3, want{unreachable: 3}},
		{"client/udp/unmatched", f.client, f.unmatched, 53, "UDP", 3, want{unreachable: 3}},
		{"client/tcp/no-masq", f.client, f.vipNoMasq, 80, "TCP", 3, want{reached: []netip.AddrPort{ep2}, seen: only(client)}},
		{"client/tcp/direct-endpoint", f.client, f.ep1, 8080, "TCP", 3, want{reached: []netip.AddrPort{ep1}, seen: only(client)}},
		{"client/tcp/endpoint-port-closed", f.client, f.ep1, f.unmatchedPortEP1, "TCP", 3, want{refused: 3}},
		{"client/udp/endpoint-port-closed", f.client, f.ep1, f.unmatchedPortEP1, "UDP", 3, want{refused: 3}},
		{"node/tcp/dnat", f.node, f.vip, 80, "TCP", 20, want{reached: both, seen: only(node)}},
		{"node/udp/dnat", f.node, f.vip, 53, "UDP", 3, want{reached: dns, seen: only(node)}},
		{"node/tcp/reject", f.node, f.vipReject, 80, "TCP", 3, want{refused: 3}},
		{"node/udp/reject", f.node, f.vipReject, 53, "UDP", 3, want{refused: 3}},
		{"node/tcp/drop", f.node, f.vipDrop, 80, "TCP", 3, want{timedOut: 3}},
		{"node/udp/drop", f.node, f.vipDrop, 53, "UDP", 3, want{timedOut: 3}},
		{"node/tcp/unmatched", f.node, f.unmatched, 80, "TCP", 3, want{unreachable: 3}},
		{"node/udp/unmatched", f.node, f.unmatched, 53, "UDP", 3, want{unreachable: 3}},
		{"hairpin/tcp/masq", f.ep1, f.vip, 80, "TCP", 20, want{reached: both, seen: only(node)}},
		{"hairpin/udp/masq-self", f.ep1, f.vip, 53, "UDP", 3, want{reached: dns, seen: only(node)}},
		{"pod-to-pod/tcp/service-no-masq", f.ep1, f.vipNoMasq, 80, "TCP", 3, want{reached: []netip.AddrPort{ep2}, seen: only(fromEP1)}},
		{"pod-to-pod/tcp/direct", f.ep1, f.ep2, 8080, "TCP", 3, want{reached: []netip.AddrPort{ep2}, seen: only(fromEP1)}},
		// An endpoint reaching itself through a Service without masquerade
		// fails as in a real pod: the reply never leaves the namespace.
		{"hairpin/tcp/self-no-masq", f.ep2, f.vipNoMasq, 80, "TCP", 2, want{timedOut: 2}},
		// A client whose own address is the VIP (a load balancer that
		// hairpins a packet back with its IP as source) still goes
		// through the node's ruleset.
		{"client-owns-vip/tcp/dnat-masq", f.vip, f.vip, 80, "TCP", 20, want{reached: both, seen: only(node)}},
		{"client-owns-vip/udp/dnat-masq", f.vip, f.vip, 53, "UDP", 3, want{reached: dns, seen: only(node)}},
	}
}

// TestTraffic builds one lab with both families, loads the ruleset of each
// and checks every flow's fate.
func TestTraffic(t *testing.T) {
	requireLab(t)
	fams := []family{fam4, fam6}
	cfg := Config{NodeIPs: []netip.Addr{fam4.node, fam6.node}}
	for _, f := range fams {
		// f.vip is a client too: the client namespace owns it, and must
		// still send the other clients' packets to it through the node.
		cfg.Clients = append(cfg.Clients, f.client, f.vip)
		cfg.Endpoints = append(cfg.Endpoints,
			Endpoint{Addr: f.ep1, Port: 8080, Protocol: "TCP"},
			Endpoint{Addr: f.ep2, Port: 8080, Protocol: "TCP"},
			Endpoint{Addr: f.ep1, Port: 53, Protocol: "UDP"},
			Endpoint{Addr: f.ep2, Port: 8080, Protocol: "SCTP"}, // ignored
		)
	}
	start := time.Now()
	lab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("New: %v", time.Since(start))
	t.Cleanup(func() {
		start := time.Now()
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("Close: %v", time.Since(start))
		if left := ownNamespaces(t); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range fams {
		if out, err := lab.ExecInput(ctx, []byte(f.ruleset()), "nft", "-f", "-"); err != nil {
			t.Fatalf("load %s ruleset: %v: %s", f.name, err, out)
		}
	}
	for _, f := range fams {
		for _, tc := range f.trafficCases() {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				start := time.Now()
				out, err := lab.Send(Probe{Src: tc.src, Dst: tc.dst, Port: tc.port, Protocol: tc.proto, Count: tc.count})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d x %s %s -> %s: %v: %s", tc.count, tc.proto, tc.src, netip.AddrPortFrom(tc.dst, tc.port), time.Since(start).Round(time.Millisecond), out)
				if err := tc.want.check(out, tc.count); err != nil {
					t.Error(err)
				}
			})
		}
	}
	if err := lab.FlushConntrack(ctx); err != nil {
		t.Error(err)
	}
}

// TestCloseRemovesEverything checks that Close deletes the namespaces, is
// idempotent, and that a closed lab refuses probes.
func TestCloseRemovesEverything(t *testing.T) {
	requireLab(t)
	lab, err := New(Config{
		Endpoints: []Endpoint{{Addr: mustAddr("192.0.2.10"), Port: 8080}, {Addr: mustAddr("198.51.100.1"), Port: 6443}},
		Clients:   []netip.Addr{mustAddr("192.0.2.100")},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{lab.NodeNS(), lab.ClientNS(), lab.BackendNS(), lab.UpstreamNS()}
	for _, n := range names {
		if !slices.Contains(ownNamespaces(t), n) {
			t.Errorf("namespace %s missing while the lab runs", n)
		}
	}
	if _, err := os.Stat(lab.NodeNSPath()); err != nil {
		t.Errorf("NodeNSPath: %v", err)
	}
	if got := lab.NodeIPs(); !slices.Equal(got, DefaultNodeIPs) {
		t.Errorf("NodeIPs = %v, want the defaults %v", got, DefaultNodeIPs)
	}
	// The host-network endpoint answers on the node IP (no ruleset needed).
	out, err := lab.Send(Probe{Src: mustAddr("192.0.2.100"), Dst: mustAddr("198.51.100.1"), Port: 6443, Protocol: "tcp", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := (want{reached: []netip.AddrPort{mustAP("198.51.100.1:6443")}, seen: []netip.Addr{mustAddr("192.0.2.100")}}).check(out, 2); err != nil {
		t.Error(err)
	}
	for i := range 2 {
		if err := lab.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if left := ownNamespaces(t); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
	if _, err := lab.Send(Probe{Src: mustAddr("192.0.2.100"), Dst: mustAddr("192.0.2.10"), Port: 8080}); err == nil {
		t.Error("Send on a closed lab succeeded")
	}
}

// TestBadProbes checks that invalid probes are errors, not outcomes.
func TestBadProbes(t *testing.T) {
	requireLab(t)
	lab, err := New(Config{Clients: []netip.Addr{mustAddr("192.0.2.100")}})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	c, v6 := mustAddr("192.0.2.100"), mustAddr("2001:db8::1")
	for _, tc := range []struct {
		name string
		p    Probe
	}{
		{"sctp", Probe{Src: c, Dst: c, Port: 80, Protocol: "SCTP"}},
		{"unknown protocol", Probe{Src: c, Dst: c, Port: 80, Protocol: "ICMP"}},
		{"no source", Probe{Dst: c, Port: 80}},
		{"port 0", Probe{Src: c, Dst: c}},
		{"mixed families", Probe{Src: c, Dst: v6, Port: 80}},
		{"foreign source", Probe{Src: mustAddr("192.0.2.200"), Dst: c, Port: 80}},
		{"count too large", Probe{Src: c, Dst: c, Port: 80, Count: MaxCount + 1}},
		{"timeout too large", Probe{Src: c, Dst: c, Port: 80, Timeout: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lab.Send(tc.p); err == nil {
				t.Errorf("Send(%+v) succeeded", tc.p)
			}
		})
	}
}

// TestLocalhostNodePort checks a probe from 127.0.0.1 (node namespace) to a
// NodePort on localhost, DNATed in output and masqueraded, as kube-proxy's
// iptables mode does with route_localnet.
func TestLocalhostNodePort(t *testing.T) {
	requireLab(t)
	ep := mustAP("192.0.2.10:8080")
	lab, err := New(Config{Endpoints: []Endpoint{{Addr: ep.Addr(), Port: ep.Port(), Protocol: "TCP"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := lab.Exec(ctx, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	rules := `table ip lab {
	chain nat-output { type nat hook output priority -100; policy accept; ip daddr 127.0.0.1 tcp dport 30080 dnat to 192.0.2.10:8080; }
	chain nat-postrouting { type nat hook postrouting priority 100; policy accept; ip saddr 127.0.0.0/8 masquerade; }
}
`
	if out, err := lab.ExecInput(ctx, []byte(rules), "nft", "-f", "-"); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	lo := mustAddr("127.0.0.1")
	out, err := lab.Send(Probe{Src: lo, Dst: lo, Port: 30080, Protocol: "TCP", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := (want{reached: []netip.AddrPort{ep}, seen: DefaultNodeIPs[:1]}).check(out, 4); err != nil {
		t.Error(err)
	}
	if got, err := lab.Exec(ctx, "nft", "list", "table", "ip", "lab"); err != nil || !strings.Contains(string(got), "30080") {
		t.Errorf("nft list in the node namespace: %v: %s", err, got)
	}
}

// TestConcurrentSends runs probes of both protocols from several goroutines
// on one lab at once.
func TestConcurrentSends(t *testing.T) {
	requireLab(t)
	f := fam4
	lab, err := New(Config{
		Endpoints: []Endpoint{{Addr: f.ep1, Port: 8080}, {Addr: f.ep2, Port: 8080}, {Addr: f.ep1, Port: 53, Protocol: "UDP"}},
		Clients:   []netip.Addr{f.client},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	if out, err := lab.ExecInput(context.Background(), []byte(f.ruleset()), "nft", "-f", "-"); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	srcs := []netip.Addr{f.client, DefaultNodeIPs[0], f.ep1, f.ep2}
	errc := make(chan error, len(srcs)*2)
	for i, src := range srcs {
		for _, tc := range []struct {
			proto string
			port  uint16
			want  []netip.AddrPort
		}{
			{"TCP", 80, []netip.AddrPort{netip.AddrPortFrom(f.ep1, 8080), netip.AddrPortFrom(f.ep2, 8080)}},
			{"UDP", 53, []netip.AddrPort{netip.AddrPortFrom(f.ep1, 53)}},
		} {
			go func() {
				for range 3 {
					out, err := lab.Send(Probe{Src: src, Dst: f.vip, Port: tc.port, Protocol: tc.proto, Count: 30})
					if err == nil {
						err = want{reached: tc.want, seen: DefaultNodeIPs[:1]}.check(out, 30)
					}
					if err != nil {
						errc <- fmt.Errorf("sender %d %s: %w", i, tc.proto, err)
						return
					}
				}
				errc <- nil
			}()
		}
	}
	for range len(srcs) * 2 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

// TestRemoveStale checks that namespaces named after a dead process are
// removed and those of this process are kept.
func TestRemoveStale(t *testing.T) {
	requireLab(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-1-node", NamePrefix, cmd.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", stale).Run() })
	lab, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	removed, err := RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) {
		t.Errorf("RemoveStale() = %v, want it to include %s", removed, stale)
	}
	if _, err := os.Stat(netnsDir + stale); err == nil {
		t.Errorf("%s still exists", stale)
	}
	if _, err := os.Stat(lab.NodeNSPath()); err != nil {
		t.Errorf("own namespace removed: %v", err)
	}
}
