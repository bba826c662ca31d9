package ir

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDumpSmall(t *testing.T) {
	p := &Program{
		Notes: []string{"allocated cluster IP fd00::10 to default/web (no spec.clusterIP)"},
		Rulesets: []*Ruleset{{
			Family:   IPv6,
			Table:    "kpc",
			MasqMark: 0x4000,
			Node: Node{
				IPs:              []netip.Addr{a("2001:db8::2")},
				NodePortAddrs:    []netip.Addr{a("2001:db8::2")},
				NodePortAllLocal: true,
			},
			Services: []ServiceEntry{{Addr: a("fd00::10"), Protocol: TCP, Port: 80,
				Target: Target{Chain: "service-X-default/web/tcp/"}, Comment: "default/web", Kind: "cluster IP"}},
			NodePorts:            []NodePortEntry{{Protocol: UDP, Port: 30053, Target: Target{Chain: "service-X-default/web/tcp/"}, Comment: "default/web"}},
			NoEndpointNodePorts:  []NodePortEntry{{Protocol: SCTP, Port: 30054, Target: Target{Reject: true}}},
			ClusterIPs:           []netip.Addr{a("fd00::10")},
			RejectClusterIPs:     true,
			ServiceCIDRs:         []netip.Prefix{netip.MustParsePrefix("fd00::/108")},
			HealthCheckNodePorts: []uint16{30001, 30002},
			AffinitySets:         []AffinitySet{{Name: "affinity-Y", Timeout: 90 * time.Second, Comment: "default/web -> [fd00:1::1]:8080"}},
			Chains: []*Chain{{
				Name: "service-X-default/web/tcp/", Kind: ServiceChain, Service: "default/web", Protocol: TCP, Comment: "c",
				Rules: []Rule{
					{Match: Match{DstAddr: a("fd00::10"), DstPort: 80, SrcIn: []netip.Prefix{netip.MustParsePrefix("fd01::/64"), netip.MustParsePrefix("fd02::/64")}}, Action: &MarkMasq{}, Comment: "m"},
					{Match: Match{SrcLocal: true, Affinity: "affinity-Y"}, Action: &Goto{Chain: "service-X-default/web/tcp/"}},
					{Action: &AffinityUpdate{Set: "affinity-Y"}},
					{Action: &DNAT{Addr: a("fd00:1::1"), Port: 8080, Protocol: TCP}},
					{Action: &Reject{}},
				},
			}},
		}},
	}
	want := `note: allocated cluster IP fd00::10 to default/web (no spec.clusterIP)

ruleset IPv6 table kpc masq-mark 0x4000
  node (none: no endpoint is local) zone (none)
  node ips 2001:db8::2
  pod cidrs (none: no off-cluster masquerade)
  nodeports on every local address (known: 2001:db8::2)
  service cidrs fd00::/108
  cluster ips fd00::10 (reject other ports)
  health check nodeports 30001, 30002

  services
    fd00::10 tcp 80 -> goto service-X-default/web/tcp/  # default/web cluster IP

  nodeports
    udp 30053 -> goto service-X-default/web/tcp/  # default/web

  no-endpoint-nodeports
    sctp 30054 -> reject

  affinity sets
    affinity-Y timeout 90s  # default/web -> [fd00:1::1]:8080

  chain service-X-default/web/tcp/ (service default/web tcp)  # c
    ip6 saddr { fd01::/64, fd02::/64 } ip6 daddr fd00::10 th dport 80 -> mark-masq  # m
    fib saddr type local ip6 saddr @affinity-Y -> goto service-X-default/web/tcp/
    affinity-update @affinity-Y
    dnat tcp to [fd00:1::1]:8080
    reject
`
	var buf bytes.Buffer
	if err := Dump(&buf, p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("Dump mismatch (-want +got):\n%s", diff)
	}
}

func TestDumpFixture(t *testing.T) {
	var b1, b2 bytes.Buffer
	if err := Dump(&b1, fixture()); err != nil {
		t.Fatal(err)
	}
	if err := Dump(&b2, fixture()); err != nil {
		t.Fatal(err)
	}
	if b1.String() != b2.String() {
		t.Fatal("Dump is not deterministic")
	}
	for _, line := range []string{
		"note: a note",
		"ruleset IPv4 table kpc masq-mark 0x4000",
		"  node test-node zone (none)",
		"  localhost nodeports (iptables)",
		"  service cidrs 172.30.0.0/16 (drop unallocated)",
		"    5.6.7.8 tcp 80 -> goto firewall-HVFWP5L3-ns5/svc5/tcp/p80  # load balancer IP",
		"    172.30.0.46 tcp 80 -> reject  # cluster IP",
		"    tcp 3001 -> drop",
		"    affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 timeout 10800s",
		"    ip saddr != 10.0.0.0/8 ip daddr 172.30.0.45 -> mark-masq",
		"    ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 -> goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80",
		"    balance 2: endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80, endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80",
		"    ip saddr != 203.0.113.0/25 -> drop",
		"    ip saddr 10.0.0.0/8 -> goto service-42NFTM6N-ns2/svc2/tcp/p80",
		"    dnat tcp to 10.180.0.3:80",
	} {
		if !strings.Contains(b1.String(), line+"\n") {
			t.Errorf("Dump output lacks line %q", line)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestDumpErrors(t *testing.T) {
	if err := Dump(&failWriter{n: 3}, fixture()); err == nil || err.Error() != "disk full" {
		t.Errorf("Dump to a failing writer = %v, want disk full", err)
	}
	if err := Dump(&failWriter{}, nil); err != nil {
		t.Errorf("Dump(nil) = %v", err)
	}
	for _, act := range []Action{nil, (*Goto)(nil), (*Balance)(nil), (*DNAT)(nil), (*AffinityUpdate)(nil), &Drop{}} {
		if ActionString(act) == "" {
			t.Errorf("ActionString(%T) is empty", act)
		}
	}
	if (Target{}).String() != "(none)" {
		t.Errorf("zero Target String = %q", Target{}.String())
	}
}

// TestDumpEmpty checks that a Program without a Ruleset says so, after its
// notes, and that a nil one writes nothing.
func TestDumpEmpty(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *Program
		want string
	}{
		{"nil", nil, ""},
		{"no Ruleset", &Program{Notes: []string{"n"}, Rulesets: []*Ruleset{nil}},
			"note: n\nno ruleset: no Service of the input has a cluster IP that kube-proxy proxies (headless and ExternalName Services get no rules)\n"},
	} {
		var b strings.Builder
		if err := Dump(&b, tc.p); err != nil || b.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, b.String(), err, tc.want)
		}
	}
}
