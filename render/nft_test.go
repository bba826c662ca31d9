package render_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
	"kpc/render"
	"kpc/render/internal/nftperf"
)

// The golden files are rewritten with "go test ./render -update". Other
// test files of the package may define the same flag, so it is defined here
// only if it does not exist yet.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

// nftUpdate reports whether -update was given.
func nftUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	v, _ := g.Get().(bool)
	return v
}

// TestNFTGolden renders every case and compares it with its golden file.
func TestNFTGolden(t *testing.T) {
	dir := filepath.Join("testdata", "nft")
	want := map[string]bool{}
	for _, c := range nftCases() {
		want[c.name+".nft"] = true
		t.Run(c.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := c.r.Render(&got, c.p); err != nil {
				t.Fatalf("Render: %v", err)
			}
			file := filepath.Join(dir, c.name+".nft")
			if nftUpdate() {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			golden, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./render -run TestNFTGolden -update)", err)
			}
			if diff := cmp.Diff(string(golden), got.String()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
			}
		})
	}
	// No orphaned golden files.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("orphaned golden file %s", filepath.Join(dir, e.Name()))
		}
	}
}

// TestNFTDeterministic renders each case twice, the second time from a
// Program rebuilt from scratch, and wants the same bytes.
func TestNFTDeterministic(t *testing.T) {
	first, second := nftCases(), nftCases()
	for i := range first {
		var a, b bytes.Buffer
		if err := first[i].r.Render(&a, first[i].p); err != nil {
			t.Fatalf("%s: %v", first[i].name, err)
		}
		if err := second[i].r.Render(&b, second[i].p); err != nil {
			t.Fatalf("%s: %v", first[i].name, err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two renderings differ", first[i].name)
		}
	}
}

// TestNFTLayout checks properties of the output that the golden files
// only show: what is lowered, what stays.
func TestNFTLayout(t *testing.T) {
	render1 := func(r render.NFT, p *ir.Program) string {
		t.Helper()
		var b bytes.Buffer
		if err := r.Render(&b, p); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	tests := []struct {
		name       string
		r          render.NFT
		p          *ir.Program
		want, not  []string
		wantChains int
	}{{
		name: "a ClusterIP Service has neither a chain nor endpoint chains",
		p:    clusterIPProgram(),
		want: []string{
			`172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto dnat-2-`,
			"typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
			"172.30.0.41 . tcp . 80 . 0 : 10.180.0.1 . 80,", "172.30.0.41 . tcp . 80 . 1 : 10.180.0.2 . 80,",
			"\t\tip saddr != 10.0.0.0/8 jump mark-for-masquerade\n\t\tdnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @service-endpoints\n",
			"10.180.0.1 . 10.180.0.1,",
			"ct status dnat ip saddr . ip daddr @hairpin-endpoints meta mark set meta mark | 0x00004000",
			"set fingerprint {",
		},
		not:        []string{"chain endpoint-", "chain service-ULMVA6XW", "endpoint-choice-", "endpoints-0", "sticky"},
		wantChains: 17,
	}, {
		name: "ClusterIP Services with affinity record their clients after DNAT",
		p:    stickyProgram(),
		want: []string{
			`172.30.0.45 . tcp . 80 comment "ns5/svc5:p80" : goto sticky-2-`,
			`172.30.0.46 . udp . 53 comment "ns6/dns:53" : goto sticky-1-`,
			"map sticky-clients {\n\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n\t\tsize 1048576\n\t\tflags dynamic,timeout\n",
			"map sticky-timeouts {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n",
			"172.30.0.45 . tcp . 80 : goto sticky-update-10800s,", "172.30.0.46 . udp . 53 : goto sticky-update-1500ms,",
			"dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @sticky-clients\n",
			"chain sticky-update {\n" +
				"\t\tmeta l4proto tcp ct original ip daddr . meta l4proto . ct original proto-dst vmap @sticky-timeouts\n" +
				"\t\tmeta l4proto udp ct original ip daddr . meta l4proto . ct original proto-dst vmap @sticky-timeouts\n" +
				"\t\tmeta l4proto sctp ct original ip daddr . meta l4proto . ct original proto-dst vmap @sticky-timeouts\n\t}\n",
			"chain sticky-update-1500ms {\n\t\tmeta l4proto tcp update @sticky-clients { ct original ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 1500ms : ip daddr . ct reply proto-src }\n",
			"chain sticky-update-10800s {\n\t\tmeta l4proto tcp update @sticky-clients { ct original ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 10800s : ip daddr . ct reply proto-src }\n",
			"ct state new ct status dnat jump sticky-update",
		},
		not: []string{"chain endpoint-", "chain service-HVFWP5L3", "chain service-DDDDDDDD", "set affinity-", "sticky-timeout-"},
	}, {
		name: "chains layout keeps the IR's chains",
		r:    render.NFT{EndpointChains: true},
		p:    clusterIPProgram(),
		want: []string{
			"numgen random mod 2 offset 1104419669 vmap @endpoint-choice-0",
			"1104419669 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80,",
			"chain endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 {",
			"ip saddr 10.180.0.1 jump mark-for-masquerade",
			"meta l4proto tcp dnat to 10.180.0.1:80",
		},
		not:        []string{"endpoints-0", "hairpin-endpoints"},
		wantChains: 19,
	}, {
		name: "affinity endpoints keep their chains",
		p:    affinityProgram(),
		want: []string{
			"numgen random mod 2 offset 250702502 vmap @endpoint-choice-0",
			"update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }",
			"timeout 1500ms",
			"ip saddr != { 192.0.2.0/26, 198.51.100.0/24, 203.0.113.45/32 } drop",
		},
		not: []string{"dnat ip to numgen"},
	}, {
		name: "unsafe Balances are not lowered",
		p:    unloweredProgram(),
		want: []string{
			"chain endpoint-NNNNNNNN-ns8/multi/tcp/p__10.180.0.8/80 {",
			"chain endpoint-QQQQQQQQ-ns8/hairpin-a/tcp/p__10.180.0.9/80 {",
			"chain endpoint-RRRRRRRR-ns8/hairpin-b/tcp/p__10.180.0.9/80 {",
			"chain endpoint-VVVVVVVV-ns8/weighted/tcp/p__10.180.0.12/80 {",
			"meta l4proto tcp dnat ip to numgen random mod 4 offset 1311828461 map @endpoints-0",
			"1311828461 : 10.180.0.10 . 80,", "1311828462 : 10.180.0.10 . 80,",
			"1311828463 : 10.180.0.11 . 80,", "1311828464 : 10.180.0.12 . 80,",
		},
		not: []string{"chain endpoint-TTTTTTTT", "chain endpoint-UUUUUUUU"},
	}, {
		name: "NodePorts on every local address",
		p:    localPolicyProgram(),
		want: []string{
			"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
			"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
			"ip daddr 172.30.0.0/15 drop",
			"meta l4proto udp dnat ip to numgen random mod 1 offset 223642811 map @endpoints-0",
			"meta l4proto sctp dnat ip to numgen random mod 1 offset 2531035701 map @endpoints-0",
			"sctp . 30099 comment \"ns3/svc3:sctp\" : drop,",
			"tcp . 30080 comment \"ns4/svc4:\" : goto reject-chain,",
			"meta mark set meta mark | 0x00010000",
		},
		not: []string{"set nodeport-ips", "31000"},
	}, {
		name: "IPv6 spelling",
		r:    render.NFT{EndpointChains: true},
		p:    ipv6Program(),
		want: []string{
			"add table ip delete",
			"table ip6 kpc {",
			"meta l4proto tcp dnat to [2001:db8:1::10]:8080",
			"fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports",
			"ip6 daddr . meta l4proto . th dport vmap @service-ips",
			"type ipv6_addr . inet_proto . inet_service : verdict",
		},
	}, {
		name: "prefixes merging into one range",
		p: func() *ir.Program {
			p := clusterIPProgram()
			p.Rulesets[0].Chains[2].Rules[0].Match.SrcNotIn = prefixes("10.2.0.0/16", "10.1.0.0/16", "10.2.5.0/24")
			p.Rulesets[0].Chains[2].Rules[0].Match.SrcIn = prefixes("10.1.0.0/16", "10.0.0.0/16", "10.0.1.0/24")
			return p
		}(),
		want: []string{"ip saddr 10.0.0.0/15 ip saddr != 10.1.0.0-10.2.255.255 jump"},
	}, {
		name: "IPv6 lowered",
		p:    ipv6Program(),
		want: []string{
			"meta l4proto tcp dnat ip6 to numgen random mod 2 offset 4069931889 map @endpoints-0",
			"typeof numgen random mod 1 : ip6 daddr . th dport",
			"type ipv6_addr . ipv6_addr\n",
			"2001:db8:1::10 . 2001:db8:1::10,",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render1(tt.r, tt.p)
			// "add table ip delete" stands for the IPv4 table being only
			// deleted.
			flat := strings.ReplaceAll(got, "add table ip kpc\ndelete table ip kpc\nadd table ip6", "add table ip delete")
			for _, w := range tt.want {
				if !strings.Contains(flat, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("output has %q:\n%s", n, got)
				}
			}
			if tt.wantChains > 0 {
				if n := strings.Count(got, "\tchain "); n != tt.wantChains {
					t.Errorf("%d chains, want %d", n, tt.wantChains)
				}
			}
		})
	}
}

// TestNFTShards checks that numbered maps are split, and that every
// Balance's keys are in the one map its rule names.
func TestNFTShards(t *testing.T) {
	p := clusterIPProgram()
	rs := p.Rulesets[0]
	sc := rs.Chains[2]
	// A NodePort on every local address that reaches the chain keeps it
	// (its cluster IP mark cannot be decided there).
	rs.Node.NodePortAllLocal = true
	rs.NodePorts = append(rs.NodePorts, ir.NodePortEntry{Protocol: ir.TCP, Port: 30500, Target: ir.Target{Chain: sc.Name}})
	var eps []string
	for i := 0; i < 100; i++ {
		ep := addr("10.181.0.0").As4()
		ep[2], ep[3] = byte(i/250), byte(i%250+1)
		a := netip.AddrFrom4(ep)
		name := "endpoint-X-ns1/svc1/tcp/p80__" + a.String() + "/80"
		eps = append(eps, name)
		rs.Chains = append(rs.Chains, endpointChain(name, "ns1/svc1:p80", ir.TCP, a.String(), 80, ""))
	}
	// 50 Balances of 100 after one of 2: 5,002 elements in all, so 64
	// maps of each kind, of which the 51 Balances use some.
	for i := 0; i < 50; i++ {
		sc.Rules = append(sc.Rules, ir.Rule{Match: ir.Match{DstPort: uint16(1000 + i)}, Action: &ir.Balance{Chains: eps}})
	}
	balance := regexp.MustCompile(`numgen random mod (\d+) offset (\d+) v?map @([a-z-]+\d+)`)
	for _, r := range []render.NFT{{}, {EndpointChains: true}} {
		var b bytes.Buffer
		if err := r.Render(&b, p); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		used := map[string]bool{}
		ms := balance.FindAllStringSubmatch(out, -1)
		if len(ms) != 51 {
			t.Fatalf("EndpointChains=%v: %d Balances through numbered maps, want 51", r.EndpointChains, len(ms))
		}
		for _, m := range ms {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			off, _ := strconv.ParseUint(m[2], 10, 32)
			used[m[3]] = true
			i := strings.Index(out, "\tmap "+m[3]+" {")
			if i < 0 {
				t.Fatalf("EndpointChains=%v: no map %s", r.EndpointChains, m[3])
			}
			block := out[i : i+strings.Index(out[i:], "\n\t}\n")]
			for _, k := range []uint64{off, off + n - 1} {
				if !strings.Contains(block, fmt.Sprintf("\t\t\t%d : ", k)) {
					t.Errorf("EndpointChains=%v: map %s lacks key %d of %q", r.EndpointChains, m[3], k, m[0])
				}
			}
		}
		if n := strings.Count(out, "\tmap endpoint"); len(used) < 2 || n != len(used) {
			t.Errorf("EndpointChains=%v: %d numbered maps, %d of them used; want several, all used", r.EndpointChains, n, len(used))
		}
	}
}

// TestNFTErrors checks that invalid or unspellable Programs give an error
// and no output.
func TestNFTErrors(t *testing.T) {
	mutate := func(f func(rs *ir.Ruleset)) *ir.Program {
		p := clusterIPProgram()
		f(p.Rulesets[0])
		return p
	}
	rename := func(name string) *ir.Program {
		return mutate(func(rs *ir.Ruleset) {
			rs.Chains[2].Name = name
			rs.Services[0].Target.Chain = name
		})
	}
	tests := []struct {
		name        string
		p           *ir.Program
		unsupported bool
		msg         string
	}{
		{name: "nil program", msg: "nil program"},
		{name: "nil ruleset", p: &ir.Program{Rulesets: []*ir.Ruleset{nil}}, msg: "nil"},
		{name: "unknown goto target", p: mutate(func(rs *ir.Ruleset) {
			rs.Chains[2].Rules[1].Action = &ir.Goto{Chain: "nowhere"}
		}), msg: "nowhere"},
		{name: "address of the wrong family", p: mutate(func(rs *ir.Ruleset) {
			rs.ClusterIPs = append(rs.ClusterIPs, addr("2001:db8::1"))
		}), msg: "2001:db8::1"},
		{name: "zero mark", p: mutate(func(rs *ir.Ruleset) { rs.MasqMark = 0 }), msg: "mark"},
		{name: "name starting with a digit", p: rename("9service"), unsupported: true, msg: "9service"},
		{name: "name with a space", p: rename("service a"), unsupported: true, msg: "service a"},
		{name: "name with a quote", p: rename(`service"a`), unsupported: true},
		{name: "name of 256 bytes", p: rename("s" + strings.Repeat("x", 255)), msg: "limit 255"},
		{name: "reserved chain name", p: rename("services"), msg: "reserved"},
		{name: "reserved map prefix", p: mutate(func(rs *ir.Ruleset) {
			rs.AffinitySets = []ir.AffinitySet{{Name: "endpoints-3", Timeout: time.Second}}
		}), msg: "reserved"},
		{name: "sub-millisecond timeout", p: mutate(func(rs *ir.Ruleset) {
			rs.AffinitySets = []ir.AffinitySet{{Name: "affinity-x", Timeout: 1500 * time.Microsecond}}
		}), unsupported: true, msg: "1.5ms"},
		{name: "bad table name", p: mutate(func(rs *ir.Ruleset) { rs.Table = "kpc table" }), unsupported: true},
		// Validation runs alongside planning: its error must win over
		// anything planning trips on.
		{name: "nil chain", p: mutate(func(rs *ir.Ruleset) { rs.Chains = append(rs.Chains, nil) }), msg: "is nil"},
		{name: "nil action", p: mutate(func(rs *ir.Ruleset) { rs.Chains[2].Rules[0].Action = nil }), msg: "nil action"},
		{name: "nil balance", p: mutate(func(rs *ir.Ruleset) {
			rs.Chains[2].Rules[0].Action = (*ir.Balance)(nil)
		}), msg: "empty balance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := render.NFT{}.Render(&b, tt.p)
			if err == nil {
				t.Fatalf("Render succeeded:\n%s", b.String())
			}
			if b.Len() != 0 {
				t.Errorf("Render wrote %d bytes before failing", b.Len())
			}
			var ue *render.UnsupportedError
			if errors.As(err, &ue) != tt.unsupported {
				t.Errorf("error %v: unsupported=%v, want %v", err, !tt.unsupported, tt.unsupported)
			}
			if ue != nil && ue.Backend != "nft" {
				t.Errorf("UnsupportedError.Backend = %q", ue.Backend)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestNFTWriteError(t *testing.T) {
	err := render.NFT{}.Render(errWriter{}, clusterIPProgram())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Render = %v, want the writer's error", err)
	}
}

// TestNFTSetSizes checks which sets declare a size: those of 1,024
// elements or more, for twice their elements rounded up to a power of two.
func TestNFTSetSizes(t *testing.T) {
	var b bytes.Buffer
	if err := (render.NFT{}).Render(&b, nftperf.Program(2000)); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]string{}
	var set string
	for _, l := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(l); len(f) == 3 && (f[0] == "set" || f[0] == "map") && f[2] == "{" {
			set = f[1]
		}
		if v, ok := strings.CutPrefix(l, "\t\tsize "); ok {
			sizes[set] = v
		}
	}
	want := map[string]string{
		"cluster-ips":        "4096", // 2,000 addresses
		"service-ips":        "8192",
		"service-endpoints":  "32768",
		"nodeport-endpoints": "4096",
		"hairpin-endpoints":  "32768",
		"sticky-clients":     "1048576", // its own size, not the rule's
	}
	if d := cmp.Diff(want, sizes); d != "" {
		t.Errorf("sizes (-want +got):\n%s", d)
	}
}
