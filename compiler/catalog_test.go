package compiler

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/ir"
)

func TestCatalog(t *testing.T) {
	opts := Options{NodeName: "n1", ServiceCIDRs: prefixes("10.96.0.0/16", "fd00:96::/108")}
	tests := []struct {
		name string
		in   *api.Input
		want []ir.ServiceInfo
	}{{
		name: "headless with hostnames and duplicate endpoints",
		in: &api.Input{
			Services: []*api.Service{mkSvc("db", "pg", withClusterIP("None"), func(s *api.Service) {
				s.Spec.PublishNotReadyAddresses = true
			})},
			EndpointSlices: []*api.EndpointSlice{
				mkSlice("db", "pg", "pg-a", "IPv4", 5432,
					mkEp("192.0.2.2", cond(false, false, false), func(e *api.Endpoint) { e.Hostname = ptr("pg-1") }),
					mkEp("192.0.2.1", onNode("n2"))),
				// The same address again, on this node: it wins.
				mkSlice("db", "pg", "pg-b", "IPv4", 5433, mkEp("192.0.2.2", onNode("n1"))),
				// Wrong address family for the slice: ignored.
				mkSlice("db", "pg", "pg-c", "IPv6", 5432, mkEp("192.0.2.9")),
			},
		},
		want: []ir.ServiceInfo{{
			Namespace: "db", Name: "pg", Type: "ClusterIP", Headless: true,
			InternalTrafficPolicy: "Cluster", SessionAffinity: "None", PublishNotReadyAddresses: true,
			Ports: []ir.PortInfo{{Name: "p80", Protocol: ir.TCP, Port: 80, TargetPort: "80"}},
			Endpoints: []ir.EndpointInfo{
				{Addr: netip.MustParseAddr("192.0.2.1"), Ports: []ir.EndpointPort{{Name: "p80", Protocol: ir.TCP, Port: 5432}},
					Slice: "pg-a", NodeName: "n2", Ready: true, Serving: true},
				// Of the two copies, the ready one of pg-b wins.
				{Addr: netip.MustParseAddr("192.0.2.2"), Ports: []ir.EndpointPort{{Name: "p80", Protocol: ir.TCP, Port: 5433}},
					Slice: "pg-b", NodeName: "n1", Ready: true, Serving: true},
			},
		}},
	}, {
		name: "allocated dual-stack NodePort with affinity, IPv6 primary",
		in: &api.Input{Services: []*api.Service{mkSvc("app", "web", withType("NodePort"), withAffinity(60), func(s *api.Service) {
			s.Spec.IPFamilies = []string{"IPv6", "IPv4"}
			s.Spec.IPFamilyPolicy = "PreferDualStack"
			s.Spec.Ports[0].TargetPort = api.IntOrString{IsString: true, StrVal: "http"}
			s.Spec.Ports[0].NodePort = 30080
		})}},
		want: []ir.ServiceInfo{{
			Namespace: "app", Name: "web", Type: "NodePort",
			ClusterIPs:            addrs("fd00:96::3:ffb7", "10.96.78.119"),
			Ports:                 []ir.PortInfo{{Name: "p80", Protocol: ir.TCP, Port: 80, TargetPort: "http", NodePort: 30080}},
			SessionAffinity:       "ClientIP",
			AffinityTimeout:       60 * time.Second,
			ExternalTrafficPolicy: "Cluster", InternalTrafficPolicy: "Cluster",
		}},
	}, {
		name: "ExternalName, sorted, duplicates dropped",
		in: &api.Input{Services: []*api.Service{
			mkSvc("b", "ext", func(s *api.Service) {
				s.Spec = api.ServiceSpec{Type: "ExternalName", ExternalName: "api.example.com"}
			}),
			mkSvc("a", "z", withClusterIP("10.96.0.50"), withExternalIPs("203.0.113.9"), withLB("203.0.113.10")),
			mkSvc("a", "z", withClusterIP("10.96.0.51")),
		}},
		want: []ir.ServiceInfo{{
			Namespace: "a", Name: "z", Type: "ClusterIP",
			ClusterIPs:      addrs("10.96.0.50"),
			Ports:           []ir.PortInfo{{Name: "p80", Protocol: ir.TCP, Port: 80, TargetPort: "80"}},
			ExternalIPs:     addrs("203.0.113.9"),
			LoadBalancerIPs: addrs("203.0.113.10"),
			SessionAffinity: "None", ExternalTrafficPolicy: "Cluster", InternalTrafficPolicy: "Cluster",
		}, {
			Namespace: "b", Name: "ext", Type: "ExternalName", ExternalName: "api.example.com", SessionAffinity: "None",
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := Compile(tt.in, opts)
			if diff := cmp.Diff(tt.want, p.Services, cmpNet); diff != "" {
				t.Errorf("catalog mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
