package render

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
)

func dnsEp(addr, hostname string, ready bool, ports ...ir.EndpointPort) ir.EndpointInfo {
	return ir.EndpointInfo{Addr: netip.MustParseAddr(addr), Hostname: hostname, Ready: ready, Serving: ready, Ports: ports}
}

func TestServiceRecords(t *testing.T) {
	const origin = "cluster.local."
	web := ir.ServiceInfo{
		Namespace: "shop", Name: "web", Type: "ClusterIP",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("fd00::5"), netip.MustParseAddr("10.96.0.5")},
		Ports: []ir.PortInfo{
			{Name: "http", Protocol: ir.TCP, Port: 80},
			{Name: "", Protocol: ir.TCP, Port: 81},
			{Name: "dns", Protocol: ir.UDP, Port: 53},
		},
	}
	pgPort := ir.EndpointPort{Name: "pg", Protocol: ir.TCP, Port: 15432}
	db := ir.ServiceInfo{
		Namespace: "data", Name: "db", Type: "ClusterIP", Headless: true,
		Ports: []ir.PortInfo{{Name: "pg", Protocol: ir.TCP, Port: 5432}},
		Endpoints: []ir.EndpointInfo{
			dnsEp("192.0.2.1", "db-0", true, pgPort),
			dnsEp("192.0.2.2", "", true, pgPort),
			dnsEp("192.0.2.3", "db-2", false, pgPort),
			dnsEp("2001:db8::", "", true), // serves no port: no SRV
		},
	}
	published := db
	published.PublishNotReadyAddresses = true
	published.Endpoints = db.Endpoints[2:3]
	tests := []struct {
		name string
		svc  ir.ServiceInfo
		want []string
		err  string
	}{{
		name: "cluster IPs and named ports",
		svc:  web,
		want: []string{
			"web.shop.svc.cluster.local.\tIN\tA\t10.96.0.5",
			"web.shop.svc.cluster.local.\tIN\tAAAA\tfd00::5",
			"_dns._udp.web.shop.svc.cluster.local.\tIN\tSRV\t0 100 53 web.shop.svc.cluster.local.",
			"_http._tcp.web.shop.svc.cluster.local.\tIN\tSRV\t0 100 80 web.shop.svc.cluster.local.",
			// CoreDNS's extension for peer-finder: every port, named or not.
			"web.shop.svc.cluster.local.\tIN\tSRV\t0 100 53 web.shop.svc.cluster.local.",
			"web.shop.svc.cluster.local.\tIN\tSRV\t0 100 80 web.shop.svc.cluster.local.",
			"web.shop.svc.cluster.local.\tIN\tSRV\t0 100 81 web.shop.svc.cluster.local.",
		},
	}, {
		name: "headless: ready endpoints, hostnames or derived names, endpoint ports",
		svc:  db,
		want: []string{
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.1",
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.2",
			"db.data.svc.cluster.local.\tIN\tAAAA\t2001:db8::",
			"192-0-2-2.db.data.svc.cluster.local.\tIN\tA\t192.0.2.2",
			"2001-0db8-0000-0000-0000-0000-0000-0000.db.data.svc.cluster.local.\tIN\tAAAA\t2001:db8::",
			"db-0.db.data.svc.cluster.local.\tIN\tA\t192.0.2.1",
			// 100 shared out among the two ready IPv4 endpoints.
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 192-0-2-2.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 db-0.db.data.svc.cluster.local.",
		},
	}, {
		// The EndpointSlice controller marks every endpoint of such a
		// Service ready; CoreDNS reads only the condition.
		name: "a not-ready endpoint of a Service publishing not-ready addresses: nothing",
		svc:  published,
	}, {
		// CoreDNS shares the weight out per slice: 50 in each of two
		// slices of two ready endpoints, not 25.
		name: "headless: SRV weights per slice",
		svc: func() ir.ServiceInfo {
			s := ir.ServiceInfo{Namespace: "data", Name: "db", Type: "ClusterIP", Headless: true,
				Ports: []ir.PortInfo{{Name: "pg", Protocol: ir.TCP, Port: 5432}}}
			for i, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
				e := dnsEp(a, "", true, pgPort)
				e.Slice = []string{"db-a", "db-b"}[i/2]
				s.Endpoints = append(s.Endpoints, e)
			}
			return s
		}(),
		want: []string{
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.1",
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.2",
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.3",
			"db.data.svc.cluster.local.\tIN\tA\t192.0.2.4",
			"192-0-2-1.db.data.svc.cluster.local.\tIN\tA\t192.0.2.1",
			"192-0-2-2.db.data.svc.cluster.local.\tIN\tA\t192.0.2.2",
			"192-0-2-3.db.data.svc.cluster.local.\tIN\tA\t192.0.2.3",
			"192-0-2-4.db.data.svc.cluster.local.\tIN\tA\t192.0.2.4",
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 192-0-2-1.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 192-0-2-2.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 192-0-2-3.db.data.svc.cluster.local.",
			"_pg._tcp.db.data.svc.cluster.local.\tIN\tSRV\t0 50 15432 192-0-2-4.db.data.svc.cluster.local.",
		},
	}, {
		name: "ExternalName",
		svc:  ir.ServiceInfo{Namespace: "a", Name: "ext", Type: "ExternalName", ExternalName: "API.example.com."},
		want: []string{"ext.a.svc.cluster.local.\tIN\tCNAME\tapi.example.com."},
	}, {
		name: "no cluster IP (allocation failed): nothing, not even SRV",
		svc:  ir.ServiceInfo{Namespace: "a", Name: "b", Type: "ClusterIP", Ports: []ir.PortInfo{{Name: "http", Protocol: ir.TCP, Port: 80}}},
	}, {
		name: "invalid name",
		svc:  ir.ServiceInfo{Namespace: "a", Name: "not_a_label", Type: "ClusterIP"},
		err:  "not a valid DNS name",
	}, {
		name: "invalid hostname",
		svc: ir.ServiceInfo{Namespace: "a", Name: "h", Headless: true,
			Endpoints: []ir.EndpointInfo{dnsEp("192.0.2.1", "bad.host", true)}},
		err: "not a DNS label",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := serviceRecords(&tt.svc, origin)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.String())
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDNSOrigin(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"", "cluster.local.", ""},
		{"Cluster.Local.", "cluster.local.", ""},
		{"k8s.example.org", "k8s.example.org.", ""},
		{"bad..domain", "", "not a DNS label"},
		{"-x.local", "", "not a DNS label"},
		{strings.Repeat("a.", 130) + "b", "", "longer than 253"},
	}
	for _, tt := range tests {
		got, err := dnsOrigin(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("dnsOrigin(%q): error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("dnsOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDNSNameServer(t *testing.T) {
	withDNS := &ir.Program{Services: []ir.ServiceInfo{{
		Namespace: "kube-system", Name: "kube-dns", Type: "ClusterIP",
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.0.0.53")},
	}}}
	withCIDR := &ir.Program{Rulesets: []*ir.Ruleset{{Family: ir.IPv4, Table: "kpc", MasqMark: 0x4000, ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}}}}
	tests := []struct {
		name string
		p    *ir.Program
		want string
	}{
		{"kube-dns", withDNS, "ns.dns.cluster.local.\tIN\tA\t10.0.0.53\n"},
		{"service CIDR", withCIDR, "ns.dns.cluster.local.\tIN\tA\t172.30.0.10\n"},
		{"nothing", &ir.Program{}, "ns.dns.cluster.local.\tIN\tA\t10.96.0.10\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := (DNS{}).Render(&b, tt.p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("zone lacks %q:\n%s", tt.want, b.String())
			}
		})
	}
	if err := (DNS{Domain: "bad..x"}).Render(&bytes.Buffer{}, &ir.Program{}); err == nil {
		t.Error("invalid domain accepted")
	}
	if err := (DNS{}).Render(&bytes.Buffer{}, nil); err == nil {
		t.Error("nil program accepted")
	}
}
