package render_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kpc/compiler/ir"
	"kpc/internal/nstest"
	"kpc/render"
)

// nftTrafficProgram is a ClusterIP Service 203.0.113.10:80 with endpoints
// 192.0.2.10:8080 and 192.0.2.11:8080, pod range 192.0.2.0/24.
func nftTrafficProgram() *ir.Program {
	const (
		svc = "test/web:http"
		sc  = "service-WWWWWWWW-test/web/tcp/http"
		epA = "endpoint-XXXXXXXX-test/web/tcp/http__192.0.2.10/8080"
		epB = "endpoint-YYYYYYYY-test/web/tcp/http__192.0.2.11/8080"
	)
	vip := addr("203.0.113.10")
	pods := prefixes("192.0.2.0/24")
	return &ir.Program{Rulesets: []*ir.Ruleset{{
		Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000,
		Node: ir.Node{Name: "node", IPs: []netip.Addr{addr("192.0.2.1"), addr("198.51.100.1")}, PodCIDRs: pods,
			NodePortAddrs: []netip.Addr{addr("198.51.100.1")}},
		Services: []ir.ServiceEntry{{Addr: vip, Protocol: ir.TCP, Port: 80, Target: ir.Target{Chain: sc},
			Comment: svc, Kind: "cluster IP"}},
		ClusterIPs: []netip.Addr{vip},
		Chains: []*ir.Chain{
			endpointChain(epA, svc, ir.TCP, "192.0.2.10", 8080, ""),
			endpointChain(epB, svc, ir.TCP, "192.0.2.11", 8080, ""),
			{Name: sc, Kind: ir.ServiceChain, Service: svc, Protocol: ir.TCP, Rules: []ir.Rule{
				{Match: ir.Match{DstAddr: vip, DstPort: 80, SrcNotIn: pods}, Action: &ir.MarkMasq{}},
				{Action: &ir.Balance{Chains: []string{epA, epB}}},
			}},
		},
	}}}
}

// TestNFTTraffic sends real TCP connection attempts through a node
// namespace loaded with each layout and reads the kernel's decisions back
// from conntrack: both endpoints are chosen; an off-cluster client is
// masqueraded; an endpoint reaching itself through the Service (hairpin) is
// masqueraded, and reaching the other endpoint is not. The lowered layout
// must give the same fates as the IR's chains.
//
// Topology: client namespace (198.51.100.2) - node (198.51.100.1 |
// 192.0.2.1) - backend namespace (192.0.2.10, 192.0.2.11), which drops the
// connections so that their conntrack entries stay.
func TestNFTTraffic(t *testing.T) {
	nstest.Require(t, "nft", "conntrack", "bash", "timeout")
	for _, layout := range []struct {
		name string
		r    render.NFT
	}{{"lowered", render.NFT{}}, {"chains", render.NFT{EndpointChains: true}}} {
		t.Run(layout.name, func(t *testing.T) {
			node, client, backend := nstest.New(t, "kpcnft"), nstest.New(t, "kpcnft"), nstest.New(t, "kpcnft")
			for _, cmd := range [][]string{
				{"ip", "-n", node, "link", "add", "c0", "type", "veth", "peer", "name", "c1", "netns", client},
				{"ip", "-n", node, "link", "add", "b0", "type", "veth", "peer", "name", "b1", "netns", backend},
				{"ip", "-n", node, "addr", "add", "198.51.100.1/24", "dev", "c0"},
				{"ip", "-n", node, "addr", "add", "192.0.2.1/24", "dev", "b0"},
				{"ip", "-n", client, "addr", "add", "198.51.100.2/24", "dev", "c1"},
				{"ip", "-n", backend, "addr", "add", "192.0.2.10/24", "dev", "b1"},
				{"ip", "-n", backend, "addr", "add", "192.0.2.11/24", "dev", "b1"},
				{"ip", "-n", node, "link", "set", "c0", "up"},
				{"ip", "-n", node, "link", "set", "b0", "up"},
				{"ip", "-n", client, "link", "set", "c1", "up"},
				{"ip", "-n", backend, "link", "set", "b1", "up"},
				{"ip", "-n", client, "route", "add", "default", "via", "198.51.100.1"},
				{"ip", "-n", backend, "route", "add", "default", "via", "192.0.2.1"},
				{"ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
			} {
				nstest.Run(t, "", "", cmd...)
			}
			drop := "table inet sink {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 8080 drop\n\t}\n}\n"
			if _, err := nstest.Exec(backend, drop, "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			var script strings.Builder
			if err := layout.r.Render(&script, nftTrafficProgram()); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "kpc.nft")
			if err := os.WriteFile(file, []byte(script.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			nstest.Run(t, node, "", "nft", "-f", file)

			const n = 40
			connect := fmt.Sprintf("for i in $(seq %d); do timeout 0.5 bash -c ': > /dev/tcp/203.0.113.10/80' 2>/dev/null & done; wait; true", n)
			nstest.Run(t, client, "", "bash", "-c", connect)
			nstest.Run(t, backend, "", "bash", "-c", connect)
			ct := nstest.Run(t, node, "", "conntrack", "-L", "-p", "tcp", "--orig-dst", "203.0.113.10")

			// seen[original source][endpoint] = reply destinations.
			seen := map[string]map[string]map[string]bool{}
			entries := 0
			for _, line := range strings.Split(ct, "\n") {
				var srcs, dsts, sports []string
				for _, f := range strings.Fields(line) {
					switch {
					case strings.HasPrefix(f, "src="):
						srcs = append(srcs, f[4:])
					case strings.HasPrefix(f, "dst="):
						dsts = append(dsts, f[4:])
					case strings.HasPrefix(f, "sport="):
						sports = append(sports, f[6:])
					}
				}
				if len(srcs) != 2 || len(dsts) != 2 || len(sports) != 2 {
					continue
				}
				entries++
				if sports[1] != "8080" {
					t.Errorf("reply source port %s, want 8080: %s", sports[1], line)
				}
				if seen[srcs[0]] == nil {
					seen[srcs[0]] = map[string]map[string]bool{}
				}
				if seen[srcs[0]][srcs[1]] == nil {
					seen[srcs[0]][srcs[1]] = map[string]bool{}
				}
				seen[srcs[0]][srcs[1]][dsts[1]] = true
			}
			if entries < n {
				t.Fatalf("%d conntrack entries, want at least %d:\n%s", entries, n, ct)
			}
			want := map[string]map[string]map[string]bool{
				// Off-cluster client: masqueraded to the node's address
				// towards the endpoints.
				"198.51.100.2": {
					"192.0.2.10": {"192.0.2.1": true},
					"192.0.2.11": {"192.0.2.1": true},
				},
				// Endpoint 192.0.2.10: masqueraded only when it reaches
				// itself.
				"192.0.2.10": {
					"192.0.2.10": {"192.0.2.1": true},
					"192.0.2.11": {"192.0.2.10": true},
				},
			}
			if got, wantS := fmt.Sprint(seen), fmt.Sprint(want); got != wantS {
				t.Errorf("fates (source -> endpoint -> reply destination):\n got %s\nwant %s\nconntrack:\n%s", got, wantS, ct)
			}
		})
	}
}
