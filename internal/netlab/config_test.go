package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewPlan(t *testing.T) {
	a := mustAddr
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    plan
		wantErr string
	}{
		{
			name: "defaults and normalisation",
			cfg: Config{
				Endpoints: []Endpoint{
					{Addr: a("192.0.2.11"), Port: 8080, Protocol: "tcp"},
					{Addr: a("::ffff:192.0.2.10"), Port: 53, Protocol: "UDP"},
					{Addr: a("192.0.2.10"), Port: 8080},
					{Addr: a("192.0.2.11"), Port: 8080, Protocol: "TCP"}, // duplicate
					{Addr: a("192.0.2.12"), Port: 9, Protocol: "SCTP"},   // ignored, address kept
					{Addr: a("198.51.100.1"), Port: 6443},                // host network
				},
				Clients: []netip.Addr{a("203.0.113.7"), a("2001:db8:9::9"), a("203.0.113.7")},
			},
			want: plan{
				nodeIPs: DefaultNodeIPs,
				clients: []netip.Addr{a("203.0.113.7"), a("2001:db8:9::9")},
				endpoints: []Endpoint{
					{Addr: a("192.0.2.10"), Port: 53, Protocol: "UDP"},
					{Addr: a("192.0.2.10"), Port: 8080, Protocol: "TCP"},
					{Addr: a("192.0.2.11"), Port: 8080, Protocol: "TCP"},
					{Addr: a("198.51.100.1"), Port: 6443, Protocol: "TCP"},
				},
				backendAddrs: []netip.Addr{a("192.0.2.10"), a("192.0.2.11"), a("192.0.2.12")},
			},
		},
		{name: "bad protocol", cfg: Config{Endpoints: []Endpoint{{Addr: a("192.0.2.1"), Port: 1, Protocol: "ICMP"}}}, wantErr: "unknown protocol"},
		{name: "port 0", cfg: Config{Endpoints: []Endpoint{{Addr: a("192.0.2.1")}}}, wantErr: "port 0"},
		{name: "invalid endpoint", cfg: Config{Endpoints: []Endpoint{{Port: 1}}}, wantErr: "invalid address"},
		{name: "loopback node", cfg: Config{NodeIPs: []netip.Addr{a("127.0.0.1")}}, wantErr: "loopback"},
		{name: "link-local client", cfg: Config{Clients: []netip.Addr{a("fe80::1")}}, wantErr: "link-local"},
		{name: "reserved", cfg: Config{Clients: []netip.Addr{a(upstreamSrc6)}}, wantErr: "reserved"},
		{name: "client is node", cfg: Config{Clients: []netip.Addr{DefaultNodeIPs[0]}}, wantErr: "also a node IP"},
		{
			name:    "client is endpoint",
			cfg:     Config{Endpoints: []Endpoint{{Addr: a("192.0.2.1"), Port: 1}}, Clients: []netip.Addr{a("192.0.2.1")}},
			wantErr: "also an endpoint",
		},
		{name: "too many", cfg: Config{Clients: make([]netip.Addr, maxHosts+1)}, wantErr: "too many"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newPlan(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("newPlan error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(plan{}), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		ep, peer netip.AddrPort
	}{
		{mustAP("192.0.2.10:8080"), mustAP("198.51.100.1:12000")},
		{mustAP("[2001:db8::10]:53"), mustAP("[2001:db8:1::1]:29999")},
		{mustAP("192.0.2.10:80"), netip.AddrPortFrom(netip.AddrFrom16(mustAddr("::ffff:203.0.113.5").As16()), 1)},
	} {
		ep, peer, err := parseReply(formatReply(tc.ep, tc.peer))
		if err != nil {
			t.Fatal(err)
		}
		if ep != tc.ep || peer.Addr() != tc.peer.Addr().Unmap() || peer.Port() != tc.peer.Port() {
			t.Errorf("round trip of %v %v = %v %v", tc.ep, tc.peer, ep, peer)
		}
	}
	for _, bad := range []string{"", "kpc-netlab", "hello 1.2.3.4:1 1.2.3.4:2", "kpc-netlab x 1.2.3.4:2", "kpc-netlab 1.2.3.4:2 y"} {
		if _, _, err := parseReply([]byte(bad)); err == nil {
			t.Errorf("parseReply(%q) succeeded", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	op := func(o string, errno syscall.Errno) error {
		return &net.OpError{Op: o, Net: "tcp", Err: os.NewSyscallError(o, errno)}
	}
	for _, tc := range []struct {
		err    error
		kind   kind
		detail string
	}{
		{op("dial", syscall.ECONNREFUSED), kindRefused, ""},
		{op("read", syscall.ECONNREFUSED), kindRefused, ""},
		{op("dial", syscall.EHOSTUNREACH), kindUnreachable, ""},
		{op("dial", syscall.ENETUNREACH), kindUnreachable, ""},
		{op("write", syscall.EPERM), kindTimedOut, ""},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, kindTimedOut, ""},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), kindTimedOut, ""},
		{op("read", syscall.ECONNRESET), kindOther, "read: " + syscall.ECONNRESET.Error()},
		{op("dial", syscall.EACCES), kindOther, "dial: " + syscall.EACCES.Error()},
		{io.EOF, kindOther, "EOF"},
		{errors.New("x"), kindOther, "*errors.errorString"},
	} {
		got := classify(tc.err)
		if got.kind != tc.kind || got.detail != tc.detail {
			t.Errorf("classify(%v) = %d %q, want %d %q", tc.err, got.kind, got.detail, tc.kind, tc.detail)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	o := Outcome{
		Reached:     map[netip.AddrPort]int{mustAP("192.0.2.11:80"): 2, mustAP("192.0.2.10:80"): 1},
		SeenFrom:    map[netip.Addr]int{mustAddr("198.51.100.1"): 3},
		Refused:     1,
		Other:       1,
		OtherErrors: map[string]int{"EOF": 1},
	}
	want := "reached {192.0.2.10:80: 1, 192.0.2.11:80: 2} seen-from {198.51.100.1: 3} refused 1 timed-out 0 unreachable 0 other 1 {EOF: 1}"
	if got := o.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := o.Answered(); got != 3 {
		t.Errorf("Answered() = %d, want 3", got)
	}
}

func TestScripts(t *testing.T) {
	p, err := newPlan(Config{
		NodeIPs:   []netip.Addr{mustAddr("10.0.0.1"), mustAddr("fd00::1")},
		Endpoints: []Endpoint{{Addr: mustAddr("10.244.1.5"), Port: 80}, {Addr: mustAddr("fd00:244::5"), Port: 80}},
		Clients:   []netip.Addr{mustAddr("10.1.2.3")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, script string
		want         []string
	}{
		{"node", nodeScript(p), []string{
			"address add 10.0.0.1/32 dev toc\n", "address add fd00::1/128 dev toc nodad\n",
			"route add 10.1.2.3/32 dev toc\n", "route add 10.244.1.5/32 dev tob\n", "route add fd00:244::5/128 dev tob\n",
			"route add 0.0.0.0/0 via 169.254.1.2 dev tou onlink\n", "route add ::/0 via fe80::4 dev tou\n",
		}},
		{"client", clientScript(p), []string{"address add 10.1.2.3/32 dev eth0\n", "route add 0.0.0.0/0 via 169.254.1.1 dev eth0 onlink table 100\n"}},
		{"client rules", policyRules(nil, "127.0.0.0/8"), []string{
			"rule add iif eth0 lookup local pref 100\n", "rule add lookup 100 pref 200\n", "rule del pref 0\n",
		}},
		{"backend", backendScript(p), []string{"address add 10.244.1.5/32 dev eth0\n", "route add ::/0 via fe80::1 dev eth0 table 100\n"}},
		{"backend rules", policyRules(p.backendAddrs[:1], "127.0.0.0/8"), []string{
			"rule add from 10.244.1.5/32 to 10.244.1.5/32 lookup local pref 120\n", "rule add lookup 100 pref 200\n", "rule del pref 0\n",
		}},
		{"upstream", upstreamScript(), []string{"address add 169.254.1.2/32 dev eth0 scope link\n", "address add 2001:2::1/128 dev eth0 nodad\n"}},
		{"root", rootScript([numRoles]string{"n", "c", "b", "u"}), []string{
			"link add name toc netns n type veth peer name eth0 netns c\n",
			"link add name tob netns n type veth peer name eth0 netns b\n",
			"link add name tou netns n type veth peer name eth0 netns u\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if !strings.Contains(tc.script, w) {
					t.Errorf("script lacks %q:\n%s", w, tc.script)
				}
			}
		})
	}
}
