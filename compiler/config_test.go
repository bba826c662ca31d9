package compiler

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

func mkNode(name, zone string, addrs ...string) *api.Node {
	n := &api.Node{Metadata: api.ObjectMeta{Name: name}}
	if zone != "" {
		n.Metadata.Labels = map[string]string{api.ZoneLabel: zone}
	}
	for i := 0; i+1 < len(addrs); i += 2 {
		n.Status.Addresses = append(n.Status.Addresses, api.NodeAddress{Type: addrs[i], Address: addrs[i+1]})
	}
	return n
}

func TestNodeContext(t *testing.T) {
	oneSvc := []*api.Service{mkSvc("ns", "s", withClusterIP("10.96.0.10"), func(s *api.Service) {
		s.Spec.IPFamilyPolicy = "PreferDualStack"
	})}
	nodeA := mkNode("node-a", "zone-a", "Hostname", "node-a", "ExternalIP", "198.51.100.1", "InternalIP", "192.0.2.1", "InternalIP", "192.0.2.9", "InternalIP", "2001:db8::1")
	nodeB := mkNode("node-b", "zone-b", "InternalIP", "192.0.2.2")
	tests := []struct {
		name        string
		in          api.Input
		opts        Options
		want        map[ir.Family]ir.Node
		wantMark    uint32
		wantLiberal bool
		warnings    []string
	}{
		{
			name: "no node: nothing local, NodePorts on every local address",
			want: map[ir.Family]ir.Node{
				ir.IPv4: {NodePortAllLocal: true, LocalhostNodePorts: true},
				ir.IPv6: {NodePortAllLocal: true},
			},
		},
		{
			name: "single Node document: primary IPs serve NodePorts",
			in:   api.Input{Nodes: []*api.Node{nodeA}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"), NodePortAddrs: addrs("192.0.2.1"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortDefault: true},
			},
		},
		{
			name: "several Nodes: the named one",
			in:   api.Input{Nodes: []*api.Node{nodeA, nodeB}},
			opts: Options{NodeName: "node-b"},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-b", Zone: "zone-b", IPs: addrs("192.0.2.2"), NodePortAddrs: addrs("192.0.2.2"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-b", Zone: "zone-b", NodePortAllLocal: true},
			},
		},
		{
			name: "several Nodes, hostnameOverride names one",
			in: api.Input{Nodes: []*api.Node{nodeA, nodeB},
				ProxyConfigs: []*api.KubeProxyConfiguration{{HostnameOverride: " Node-B "}}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-b", Zone: "zone-b", IPs: addrs("192.0.2.2"), NodePortAddrs: addrs("192.0.2.2"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-b", Zone: "zone-b", NodePortAllLocal: true},
			},
		},
		{
			name: "several Nodes, none named: no node",
			in: api.Input{Nodes: []*api.Node{
				func() *api.Node { n := *nodeA; n.Pos = diag.Pos{File: "n.yaml", Line: 1}; return &n }(),
				func() *api.Node { n := *nodeB; n.Pos = diag.Pos{File: "n.yaml", Line: 9}; return &n }(),
			}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {NodePortAllLocal: true, LocalhostNodePorts: true},
				ir.IPv6: {NodePortAllLocal: true},
			},
			warnings: []string{"n.yaml:9: warning: Node node-b: several Nodes and no node name (--node-name or hostnameOverride): compiling for no node"},
		},
		{
			name: "a Node and its copy, a configuration and its copy: one of each",
			in: api.Input{
				Nodes: []*api.Node{
					func() *api.Node { n := *nodeA; n.Pos = diag.Pos{File: "a.yaml", Line: 1}; return &n }(),
					func() *api.Node { n := *nodeA; n.Pos = diag.Pos{File: "b.yaml", Line: 1}; return &n }(),
				},
				ProxyConfigs: []*api.KubeProxyConfiguration{
					{Pos: diag.Pos{File: "a.yaml", Line: 9}, ClusterCIDR: "10.244.0.0/16"},
					{Pos: diag.Pos{File: "b.yaml", Line: 9}, ClusterCIDR: "10.244.0.0/16"},
				},
			},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"), PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
					NodePortAddrs: addrs("192.0.2.1"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortDefault: true},
			},
			warnings: []string{"b.yaml:1: warning: Node node-a: metadata.name: the same Node as at a.yaml:1: this copy is left out; so is 1 more copy in b.yaml of an object of a.yaml"},
		},
		{
			name: "named node without a document; flags give the IPs",
			in:   api.Input{Nodes: []*api.Node{nodeA}},
			opts: Options{NodeName: "elsewhere", NodeIPs: addrs("203.0.113.5", "203.0.113.4")},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "elsewhere", IPs: addrs("203.0.113.4", "203.0.113.5"), NodePortAddrs: addrs("203.0.113.5"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "elsewhere", NodePortAllLocal: true},
			},
		},
		{
			name: "flags replace the document's IPs per family",
			in:   api.Input{Nodes: []*api.Node{nodeA}},
			opts: Options{NodeIPs: addrs("203.0.113.5")},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("203.0.113.5"), NodePortAddrs: addrs("203.0.113.5"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortDefault: true},
			},
		},
		{
			name: "nodePortAddresses CIDRs select node IPs; a family without CIDR serves all",
			in:   api.Input{Nodes: []*api.Node{nodeA}},
			opts: Options{NodePortAddresses: []string{"192.0.2.8/29", "10.0.0.0/8"}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"), NodePortAddrs: addrs("192.0.2.9")},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortAllLocal: true},
			},
		},
		{
			name: "nodePortAddresses from the configuration; 0.0.0.0/0 is every local address",
			in: api.Input{Nodes: []*api.Node{nodeA},
				ProxyConfigs: []*api.KubeProxyConfiguration{{NodePortAddresses: []string{"0.0.0.0/0", "primary"}}}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"),
					NodePortAddrs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"), NodePortAllLocal: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1")},
			},
		},
		{
			name: "proxy configuration: cluster CIDRs (first per family), mark, localhost NodePorts off, liberal conntrack",
			in: api.Input{ProxyConfigs: []*api.KubeProxyConfiguration{{
				ClusterCIDR: "10.0.0.0/8, fd00:1::/64,10.1.0.0/16",
				IPTables:    api.IPTablesConfig{MasqueradeBit: ptr(int32(3)), LocalhostNodePorts: ptr(false)},
				Conntrack:   api.ConntrackConfig{TCPBeLiberal: true},
			}}},
			wantMark:    0x8,
			wantLiberal: true,
			want: map[ir.Family]ir.Node{
				ir.IPv4: {PodCIDRs: prefixes("10.0.0.0/8"), NodePortAllLocal: true},
				ir.IPv6: {PodCIDRs: prefixes("fd00:1::/64"), NodePortAllLocal: true},
			},
		},
		{
			name: "flags win over the configuration",
			in: api.Input{ProxyConfigs: []*api.KubeProxyConfiguration{{
				ClusterCIDR: "10.0.0.0/8",
				NFTables:    api.NFTablesConfig{MasqueradeBit: ptr(int32(3))},
			}}},
			opts:     Options{ClusterCIDRs: prefixes("172.16.0.0/12"), MasqueradeBit: ptr(15), LocalhostNodePorts: ptr(false)},
			wantMark: 0x8000,
			want: map[ir.Family]ir.Node{
				ir.IPv4: {PodCIDRs: prefixes("172.16.0.0/12"), NodePortAllLocal: true},
				ir.IPv6: {NodePortAllLocal: true},
			},
		},
		{
			name: "nftables mode reads the nftables section's mark",
			in: api.Input{ProxyConfigs: []*api.KubeProxyConfiguration{{
				Mode:     "nftables",
				IPTables: api.IPTablesConfig{MasqueradeBit: ptr(int32(3))},
				NFTables: api.NFTablesConfig{MasqueradeBit: ptr(int32(5))},
			}}},
			wantMark: 0x20,
			want: map[ir.Family]ir.Node{
				ir.IPv4: {NodePortAllLocal: true, LocalhostNodePorts: true},
				ir.IPv6: {NodePortAllLocal: true},
			},
		},
		{
			name: "iptables mode (blank) reads the iptables section's mark, and ignores the nftables one",
			in: api.Input{ProxyConfigs: []*api.KubeProxyConfiguration{{
				NFTables: api.NFTablesConfig{MasqueradeBit: ptr(int32(40))},
			}}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {NodePortAllLocal: true, LocalhostNodePorts: true},
				ir.IPv6: {NodePortAllLocal: true},
			},
		},
		{
			name: "bindAddress is the primary node IP, and a local one",
			in: api.Input{Nodes: []*api.Node{nodeA},
				ProxyConfigs: []*api.KubeProxyConfiguration{{Mode: "nftables", BindAddress: "198.51.100.05"}}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1", "198.51.100.5"), NodePortAddrs: addrs("198.51.100.5"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortDefault: true},
			},
		},
		{
			name: "clusterCIDR and nodePortAddresses read as kube-proxy reads them (leading zeros)",
			in: api.Input{Nodes: []*api.Node{nodeA},
				ProxyConfigs: []*api.KubeProxyConfiguration{{ClusterCIDR: "010.244.0.0/16", NodePortAddresses: []string{"192.0.2.009/32"}}}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", Zone: "zone-a", IPs: addrs("192.0.2.1", "192.0.2.9", "198.51.100.1"), NodePortAddrs: addrs("192.0.2.9"), PodCIDRs: prefixes("10.244.0.0/16")},
				ir.IPv6: {Name: "node-a", Zone: "zone-a", IPs: addrs("2001:db8::1"), NodePortAddrs: addrs("2001:db8::1"), NodePortAllLocal: true},
			},
		},
		{
			name: "a Node's address read as kube-proxy reads it (leading zeros)",
			in:   api.Input{Nodes: []*api.Node{mkNode("node-z", "", "InternalIP", "192.0.002.7")}},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-z", IPs: addrs("192.0.2.7"), NodePortAddrs: addrs("192.0.2.7"), NodePortDefault: true, LocalhostNodePorts: true},
				ir.IPv6: {Name: "node-z", NodePortAllLocal: true},
			},
		},
		{
			name: "detectLocalMode NodeCIDR uses the Node's podCIDRs",
			in: api.Input{
				Nodes: []*api.Node{func() *api.Node {
					n := mkNode("node-a", "", "InternalIP", "192.0.2.1")
					n.Spec.PodCIDRs = []string{"10.244.1.0/24", "fd00:244:1::/64"}
					return n
				}()},
				ProxyConfigs: []*api.KubeProxyConfiguration{{DetectLocalMode: "NodeCIDR", ClusterCIDR: "10.0.0.0/8"}},
			},
			want: map[ir.Family]ir.Node{
				ir.IPv4: {Name: "node-a", IPs: addrs("192.0.2.1"), NodePortAddrs: addrs("192.0.2.1"), NodePortDefault: true, LocalhostNodePorts: true, PodCIDRs: prefixes("10.244.1.0/24")},
				ir.IPv6: {Name: "node-a", PodCIDRs: prefixes("fd00:244:1::/64"), NodePortAllLocal: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Services = oneSvc
			p, d := Compile(&tt.in, tt.opts)
			if err := d.Err(); err != nil {
				t.Fatal(err)
			}
			var warnings []string
			for _, w := range d.Warnings() {
				warnings = append(warnings, w.Error())
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			wantMark := tt.wantMark
			if wantMark == 0 {
				wantMark = 0x4000
			}
			if len(p.Rulesets) != 2 {
				t.Fatalf("%d rulesets", len(p.Rulesets))
			}
			for _, rs := range p.Rulesets {
				if diff := cmp.Diff(tt.want[rs.Family], rs.Node, cmpNet); diff != "" {
					t.Errorf("%s node (-want +got):\n%s", rs.Family, diff)
				}
				if rs.MasqMark != wantMark {
					t.Errorf("%s mark %#x, want %#x", rs.Family, rs.MasqMark, wantMark)
				}
				if rs.ConntrackTCPLiberal != tt.wantLiberal {
					t.Errorf("%s conntrack TCP liberal %v, want %v", rs.Family, rs.ConntrackTCPLiberal, tt.wantLiberal)
				}
			}
		})
	}
}

func TestConfigNotesAndErrors(t *testing.T) {
	in := &api.Input{
		Services: []*api.Service{mkSvc("ns", "s", withClusterIP("10.96.0.10"))},
		ProxyConfigs: []*api.KubeProxyConfiguration{
			{Pos: diag.Pos{File: "kp.yaml", Line: 1}, ClusterCIDR: "10.0.0.0/8,10.1.0.0/16,bogus", IPTables: api.IPTablesConfig{MasqueradeBit: ptr(int32(40))}},
			{Pos: diag.Pos{File: "kp.yaml", Line: 20}},
		},
	}
	p, d := Compile(in, Options{})
	want := []string{
		"kp.yaml:1: KubeProxyConfiguration: clusterCIDR: invalid CIDR \"bogus\"",
		"kp.yaml:1: KubeProxyConfiguration: iptables.masqueradeBit: masquerade bit 40 is outside 0-31",
		"kp.yaml:20: warning: KubeProxyConfiguration: ignored: only the first KubeProxyConfiguration (kp.yaml:1) is used",
	}
	var got []string
	for _, e := range d {
		got = append(got, e.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if p.Rulesets[0].MasqMark != 0x4000 {
		t.Errorf("mark %#x, want the default", p.Rulesets[0].MasqMark)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "pod CIDR 10.1.0.0/16 from clusterCIDR ignored") {
		t.Errorf("notes = %v", p.Notes)
	}
	_, d = Compile(&api.Input{Services: in.Services}, Options{NodePortAddresses: []string{"nope"}})
	if errs := errStrings(d); len(errs) != 1 || errs[0] != `<input>: --nodeport-addresses: invalid CIDR "nope"` {
		t.Errorf("errors = %v", errs)
	}
	p, _ = Compile(&api.Input{Services: in.Services, ProxyConfigs: []*api.KubeProxyConfiguration{{DetectLocalMode: "BridgeInterface"}}}, Options{})
	if n := p.Rulesets[0].Node; len(p.Notes) != 1 || !strings.Contains(p.Notes[0], `detectLocalMode BridgeInterface with detectLocal.bridgeInterface ""`) ||
		len(n.PodCIDRs) != 0 || n.LocalIface != "" {
		t.Errorf("BridgeInterface without a name: notes %v pod CIDRs %v interface %q", p.Notes, n.PodCIDRs, n.LocalIface)
	}
	for _, tc := range []struct {
		mode   string
		local  api.DetectLocal
		prefix bool
	}{
		{"BridgeInterface", api.DetectLocal{BridgeInterface: "cbr0", InterfaceNamePrefix: "veth"}, false},
		{"InterfaceNamePrefix", api.DetectLocal{BridgeInterface: "cbr0", InterfaceNamePrefix: "veth"}, true},
	} {
		// The mode picks its field; --cluster-cidr is ignored (noted).
		cfg := &api.KubeProxyConfiguration{DetectLocalMode: tc.mode, DetectLocal: tc.local, ClusterCIDR: "10.0.0.0/8"}
		p, _ = Compile(&api.Input{Services: in.Services, ProxyConfigs: []*api.KubeProxyConfiguration{cfg}}, Options{ClusterCIDRs: prefixes("10.0.0.0/8")})
		want := "cbr0"
		if tc.prefix {
			want = "veth"
		}
		if n := p.Rulesets[0].Node; len(p.Notes) != 1 || len(n.PodCIDRs) != 0 || n.LocalIface != want || n.LocalIfacePrefix != tc.prefix {
			t.Errorf("%s: notes %v pod CIDRs %v interface %q prefix %v", tc.mode, p.Notes, n.PodCIDRs, n.LocalIface, n.LocalIfacePrefix)
		}
	}
	// NodeCIDR with a Node without pod ranges: kube-proxy never starts.
	bare := &api.Node{Metadata: api.ObjectMeta{Name: "n"}}
	_, d = Compile(&api.Input{Services: in.Services, Nodes: []*api.Node{bare}, ProxyConfigs: []*api.KubeProxyConfiguration{{DetectLocalMode: "NodeCIDR"}}}, Options{})
	if errs := errStrings(d); len(errs) != 1 || !strings.HasSuffix(errs[0], "KubeProxyConfiguration: detectLocalMode: detectLocalMode NodeCIDR reads the Node's spec.podCIDRs, and Node n has none: kube-proxy waits for them and exits after five minutes") {
		t.Errorf("NodeCIDR without pod ranges: errors %q", errs)
	}
	// The flags win over the document, each on its own.
	doc := &api.KubeProxyConfiguration{DetectLocalMode: "InterfaceNamePrefix", DetectLocal: api.DetectLocal{InterfaceNamePrefix: "veth"}}
	for _, tc := range []struct {
		name   string
		opts   Options
		iface  string
		prefix bool
		err    string
	}{
		{"the document", Options{}, "veth", true, ""},
		{"a prefix flag", Options{PodInterfaceNamePrefix: "cali"}, "cali", true, ""},
		{"a mode flag", Options{DetectLocalMode: "BridgeInterface", PodBridgeInterface: "cbr0"}, "cbr0", false, ""},
		{"a mode flag without its interface", Options{DetectLocalMode: "BridgeInterface"}, "", false,
			"<input>: --pod-bridge-interface: detectLocalMode BridgeInterface needs --pod-bridge-interface or detectLocal.bridgeInterface (kube-proxy refuses to start without one)"},
		{"back to the pod range", Options{DetectLocalMode: "ClusterCIDR", ClusterCIDRs: prefixes("10.0.0.0/8")}, "", false, ""},
		{"the Node's pod ranges without a Node (noted)", Options{DetectLocalMode: "NodeCIDR"}, "", false, ""},
	} {
		p, d := Compile(&api.Input{Services: in.Services, ProxyConfigs: []*api.KubeProxyConfiguration{doc}}, tc.opts)
		n := p.Rulesets[0].Node
		if n.LocalIface != tc.iface || n.LocalIfacePrefix != tc.prefix {
			t.Errorf("%s: interface %q prefix %v, want %q %v", tc.name, n.LocalIface, n.LocalIfacePrefix, tc.iface, tc.prefix)
		}
		if errs := errStrings(d); tc.err == "" && len(errs) != 0 || tc.err != "" && (len(errs) != 1 || errs[0] != tc.err) {
			t.Errorf("%s: errors %v, want %q", tc.name, errs, tc.err)
		}
		if tc.opts.DetectLocalMode == "ClusterCIDR" && (len(n.PodCIDRs) != 1 || n.PodCIDRs[0] != netip.MustParsePrefix("10.0.0.0/8")) {
			t.Errorf("%s: pod CIDRs %v", tc.name, n.PodCIDRs)
		}
	}
	if got := netip.MustParsePrefix("10.96.0.0/12"); p.Rulesets[0].ServiceCIDRs[0] != got {
		t.Errorf("default service CIDR = %v", p.Rulesets[0].ServiceCIDRs)
	}

	// --cluster-cidr is clusterCIDR, which the NodeCIDR detector does not
	// read.
	// Without the Node, its pod ranges are not known (noted).
	nodeCIDR := &api.Input{Services: in.Services, ProxyConfigs: []*api.KubeProxyConfiguration{{DetectLocalMode: "NodeCIDR"}}}
	p, _ = Compile(nodeCIDR, Options{ClusterCIDRs: prefixes("10.0.0.0/8")})
	if len(p.Notes) != 2 || !strings.Contains(p.Notes[0], "--cluster-cidr is ignored: detectLocalMode NodeCIDR") ||
		!strings.Contains(p.Notes[1], "the input has no Node of the node compiled for: no local-traffic detector") || len(p.Rulesets[0].Node.PodCIDRs) != 0 {
		t.Errorf("NodeCIDR with --cluster-cidr: notes %v pod CIDRs %v", p.Notes, p.Rulesets[0].Node.PodCIDRs)
	}
	// An interface flag under another mode is ignored (noted).
	p, _ = Compile(&api.Input{Services: in.Services}, Options{PodBridgeInterface: "cbr0"})
	if len(p.Notes) != 1 || p.Notes[0] != "--pod-bridge-interface is ignored: detectLocalMode is ClusterCIDR (the default), not BridgeInterface (--detect-local-mode)" ||
		p.Rulesets[0].Node.LocalIface != "" {
		t.Errorf("--pod-bridge-interface alone: notes %q interface %q", p.Notes, p.Rulesets[0].Node.LocalIface)
	}
}

// TestMasqueradeAllOfTheMode checks that masqueradeAll is read from the
// section of kube-proxy's mode, as kube-proxy converts its configuration,
// with a note when the other section's is ignored.
func TestMasqueradeAllOfTheMode(t *testing.T) {
	svcs := []*api.Service{mkSvc("ns", "s", withClusterIP("10.96.0.10"))}
	slices := []*api.EndpointSlice{mkSlice("ns", "s", "s-1", "IPv4", 80, mkEp("10.180.0.1"))}
	pod := ir.Packet{Src: netip.MustParseAddr("10.180.0.9"), Dst: netip.MustParseAddr("10.96.0.10"), Protocol: ir.TCP, Port: 80}
	tests := []struct {
		mode           string
		iptAll, nftAll bool
		masq           bool
		note           string
	}{
		{mode: "", iptAll: true, masq: true},
		{mode: "iptables", nftAll: true, note: "nftables.masqueradeAll is ignored: kube-proxy's mode (iptables) reads iptables.masqueradeAll"},
		{mode: "ipvs", iptAll: true, masq: true},
		{mode: "nftables", nftAll: true, masq: true},
		{mode: "nftables", iptAll: true, note: "iptables.masqueradeAll is ignored: kube-proxy's mode (nftables) reads nftables.masqueradeAll"},
	}
	for _, tt := range tests {
		cfg := &api.KubeProxyConfiguration{Mode: tt.mode, ClusterCIDR: "10.180.0.0/16",
			IPTables: api.IPTablesConfig{MasqueradeAll: tt.iptAll}, NFTables: api.NFTablesConfig{MasqueradeAll: tt.nftAll}}
		p, d := Compile(&api.Input{Services: svcs, EndpointSlices: slices, ProxyConfigs: []*api.KubeProxyConfiguration{cfg}}, Options{})
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
		res := ir.Trace(p, pod, ir.ModeNFT)
		if len(res.Reaches) != 1 || res.Reaches[0].Masquerade != tt.masq {
			t.Errorf("mode %q, iptables.masqueradeAll %v, nftables.masqueradeAll %v: pod traffic %+v, want masquerade %v", tt.mode, tt.iptAll, tt.nftAll, res, tt.masq)
		}
		if got := strings.Join(p.Notes, "\n"); tt.note != "" && !strings.Contains(got, tt.note) || tt.note == "" && strings.Contains(got, "masqueradeAll") {
			t.Errorf("mode %q: notes %q, want %q", tt.mode, got, tt.note)
		}
	}
}

// TestModeNote checks the note of a KubeProxyConfiguration mode whose
// dataplane is not the one kpc compiles.
func TestModeNote(t *testing.T) {
	svcs := []*api.Service{mkSvc("ns", "s", withClusterIP("10.96.0.10"))}
	for mode, want := range map[string]string{
		"ipvs":        "mode is ipvs: kpc compiles the rules of kube-proxy's nftables and iptables modes",
		"kernelspace": "mode is kernelspace, Windows's, which kube-proxy on Linux refuses",
		"nftables":    "",
		"iptables":    "",
		"":            "",
	} {
		p, _ := Compile(&api.Input{Services: svcs, ProxyConfigs: []*api.KubeProxyConfiguration{{Mode: mode}}}, Options{})
		got := ""
		for _, n := range p.Notes {
			if strings.Contains(n, "mode is ") {
				got = n
			}
		}
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("mode %q: note %q, want one with %q", mode, got, want)
		}
	}
}

// TestNodeNameNotInInput checks the note that the node compiled for has
// no Node document among the input's, which are then not used: none when
// one of them is the node, or when there are none.
func TestNodeNameNotInInput(t *testing.T) {
	svcs := []*api.Service{mkSvc("ns", "s", withClusterIP("10.96.0.10"))}
	var many []*api.Node
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		many = append(many, mkNode(n, "zone-"+n, "InternalIP", "192.0.2.1"))
	}
	for _, tt := range []struct {
		name  string
		nodes []*api.Node
		opts  Options
		want  []string
	}{
		{"named node among the Nodes", many, Options{NodeName: "c"}, nil},
		{"no Nodes", nil, Options{NodeName: "worker-9"}, nil},
		{"no name", many[:1], Options{}, nil},
		{"one other Node", many[:1], Options{NodeName: "worker-9"},
			[]string{"no Node of the input is worker-9, the node compiled for (--node-name or hostnameOverride): the input's Nodes (a) are not used; the node's addresses are those of --node-ip, its zone unknown"}},
		{"many other Nodes", many, Options{NodeName: "worker-9"},
			[]string{"no Node of the input is worker-9, the node compiled for (--node-name or hostnameOverride): the input's Nodes (a, b, c, 2 more) are not used; the node's addresses are those of --node-ip, its zone unknown"}},
	} {
		p, d := Compile(&api.Input{Services: svcs, Nodes: tt.nodes}, tt.opts)
		if d.Err() != nil {
			t.Fatalf("%s: %v", tt.name, d)
		}
		if diff := cmp.Diff(tt.want, p.Notes); diff != "" {
			t.Errorf("%s: notes (-want +got):\n%s", tt.name, diff)
		}
	}
}
