package compiler

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
)

// mkEndpoints returns an Endpoints of ns/name with one subset: ready
// addresses, not-ready addresses and ports "name/port".
func mkEndpoints(ns, name string, ready, notReady []string, ports ...string) *api.Endpoints {
	e := &api.Endpoints{APIVersion: "v1", Kind: "Endpoints", Metadata: api.ObjectMeta{Namespace: ns, Name: name},
		Pos: diag.Pos{File: "ep.yaml", Line: 1, Col: 1}}
	var ss api.EndpointSubset
	for _, ip := range ready {
		ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: ip})
	}
	for _, ip := range notReady {
		ss.NotReadyAddresses = append(ss.NotReadyAddresses, api.EndpointAddress{IP: ip})
	}
	for _, p := range ports {
		n, port, _ := strings.Cut(p, "/")
		var num int32
		fmt.Sscan(port, &num)
		ss.Ports = append(ss.Ports, api.EndpointsPort{Name: n, Port: num, Protocol: "TCP"})
	}
	e.Subsets = []api.EndpointSubset{ss}
	return e
}

func TestMirrorEndpoints(t *testing.T) {
	selectorless := mkSvc("db", "mysql", withClusterIP("10.96.0.30"))
	withSelector := mkSvc("db", "mysql", withClusterIP("10.96.0.30"), func(s *api.Service) { s.Spec.Selector = map[string]string{"app": "mysql"} })
	basic := mkEndpoints("db", "mysql", []string{"192.0.2.51", "192.0.2.52", "192.0.2.51"}, []string{"192.0.2.53"}, "p80/3306")
	skip := mkEndpoints("db", "mysql", []string{"192.0.2.51"}, nil, "p80/3306")
	skip.Metadata.Labels = map[string]string{api.SkipMirrorLabel: "true"}
	mirroredSlice := mkSlice("db", "mysql", "mysql-abcde", "IPv4", 3307, mkEp("192.0.2.60"))
	mirroredSlice.Metadata.Labels[api.ManagedByLabel] = mirroringController
	twoFamilies := mkEndpoints("db", "mysql", []string{"192.0.2.51", "2001:db8::51"}, nil, "p80/3306")
	dual := mkSvc("db", "mysql", withClusterIP("10.96.0.30"), func(s *api.Service) {
		s.Spec.ClusterIPs = []string{"10.96.0.30", "fd00:10:96::30"}
		s.Spec.IPFamilyPolicy = "RequireDualStack"
	})
	var many []string
	for i := range 1002 {
		many = append(many, fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250))
	}
	capped := mkEndpoints("db", "mysql", many, nil, "p80/3306")
	repeated := make([]string, maxMirroredPerSubset+1)
	for i := range repeated {
		repeated[i] = "192.0.2.51"
	}
	repeatedThenOther := mkEndpoints("db", "mysql", append(repeated, "192.0.2.52"), nil, "p80/3306")
	bothStates := mkEndpoints("db", "mysql", []string{"192.0.2.51", "192.0.2.52"}, []string{"192.0.2.51"}, "p80/3306")
	splitStates := mkEndpoints("db", "mysql", []string{"192.0.2.51", "192.0.2.52"}, nil, "p80/3306")
	splitStates.Subsets = append(splitStates.Subsets, mkEndpoints("db", "mysql", nil, []string{"192.0.2.51"}, "p80/3306").Subsets...)
	var six1, six2 []string
	for i := range 600 {
		six1 = append(six1, fmt.Sprintf("198.18.%d.%d", i/250, 1+i%250))
		six2 = append(six2, fmt.Sprintf("198.19.%d.%d", i/250, 1+i%250))
	}
	twoSubsets := mkEndpoints("db", "mysql", six1, nil, "p80/3306")
	twoSubsets.Subsets = append(twoSubsets.Subsets, mkEndpoints("db", "mysql", six2, nil, "p80/3306").Subsets...)
	otherProxy := mkEndpoints("db", "mysql", []string{"192.0.2.51"}, nil, "p80/3306")
	otherProxy.Metadata.Labels = map[string]string{api.ServiceProxyNameLabel: "other"}
	leader := mkEndpoints("db", "mysql", []string{"192.0.2.51"}, nil, "p80/3306")
	leader.Metadata.Annotations = map[string]string{api.LeaderAnnotation: "{}"}
	otherPort := mkEndpoints("db", "mysql", []string{"192.0.2.51"}, nil, "admin/33062")
	tests := []struct {
		name  string
		svc   *api.Service
		eps   []*api.Endpoints
		extra []*api.EndpointSlice
		flows []flow
		count int // reached endpoints, when not listed
	}{{
		name: "ready addresses reached once each, not-ready ones not",
		svc:  selectorless, eps: []*api.Endpoints{basic},
		flows: []flow{{desc: "cluster IP", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.51:3306", "192.0.2.52:3306"}}},
	}, {
		name: "a Service with a selector takes its endpoints from its Pods",
		svc:  withSelector, eps: []*api.Endpoints{basic},
		flows: []flow{{desc: "no endpoints", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictReject}},
	}, {
		name: "skip-mirror",
		svc:  selectorless, eps: []*api.Endpoints{skip},
		flows: []flow{{desc: "no endpoints", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictReject}},
	}, {
		name: "the controller's slices already in the input",
		svc:  selectorless, eps: []*api.Endpoints{basic}, extra: []*api.EndpointSlice{mirroredSlice},
		flows: []flow{{desc: "the slice's endpoint only", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.60:3307"}}},
	}, {
		name: "a slice per family",
		svc:  dual, eps: []*api.Endpoints{twoFamilies},
		flows: []flow{
			{desc: "IPv4", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.51:3306"}},
			{desc: "IPv6", src: "2001:db8:3::5", dst: "fd00:10:96::30", port: 80, want: ir.VerdictDNAT, eps: []string{"[2001:db8::51]:3306"}},
		},
	}, {
		name: "ports are joined by name",
		svc:  selectorless, eps: []*api.Endpoints{otherPort},
		flows: []flow{{desc: "no port p80", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictReject}},
	}, {
		name: "a repeated address counts once towards the limit",
		svc:  selectorless, eps: []*api.Endpoints{repeatedThenOther},
		flows: []flow{{desc: "both", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.51:3306", "192.0.2.52:3306"}}},
	}, {
		name: "an address both ready and not ready in a subset is not ready",
		svc:  selectorless, eps: []*api.Endpoints{bothStates},
		flows: []flow{{desc: "the other one", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.52:3306"}}},
	}, {
		name: "and so across subsets with the same ports",
		svc:  selectorless, eps: []*api.Endpoints{splitStates},
		flows: []flow{{desc: "the other one", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictDNAT, eps: []string{"192.0.2.52:3306"}}},
	}, {
		name: "subsets with the same ports are one for the limit",
		svc:  selectorless, eps: []*api.Endpoints{twoSubsets},
		count: maxMirroredPerSubset,
	}, {
		name: "another proxy's Endpoints",
		svc:  selectorless, eps: []*api.Endpoints{otherProxy},
		flows: []flow{{desc: "no endpoints", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictReject}},
	}, {
		name: "a leader-election lock",
		svc:  selectorless, eps: []*api.Endpoints{leader},
		flows: []flow{{desc: "no endpoints", src: "203.0.113.5", dst: "10.96.0.30", port: 80, want: ir.VerdictReject}},
	}, {
		name: "at most 1,000 addresses of a subset",
		svc:  selectorless, eps: []*api.Endpoints{capped},
		count: maxMirroredPerSubset,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &api.Input{Services: []*api.Service{tt.svc}, Endpoints: tt.eps, EndpointSlices: tt.extra}
			p := mustCompile(t, in, Options{})
			checkFlows(t, p, tt.flows)
			if tt.count > 0 {
				res := ir.Trace(p, ir.Packet{Src: netip.MustParseAddr("203.0.113.5"), Dst: netip.MustParseAddr("10.96.0.30"), Protocol: ir.TCP, Port: 80}, ir.ModeNFT)
				if len(res.Reaches) != tt.count {
					t.Errorf("%d endpoints reached, want %d", len(res.Reaches), tt.count)
				}
			}
		})
	}
}

func TestMirrorEndpointsDuplicate(t *testing.T) {
	first := mkEndpoints("db", "mysql", []string{"192.0.2.51"}, nil, "p80/3306")
	second := mkEndpoints("db", "mysql", []string{"192.0.2.52"}, nil, "p80/3306")
	second.Pos.Line = 20
	_, diags := Compile(&api.Input{Services: []*api.Service{mkSvc("db", "mysql")}, Endpoints: []*api.Endpoints{second, first}}, Options{})
	if err := diags.Err(); err == nil || !strings.Contains(err.Error(), "ep.yaml:20:1: Endpoints db/mysql: metadata.name: duplicate Endpoints (first defined at ep.yaml:1:1)") {
		t.Errorf("diagnostics = %v", diags)
	}
}

// TestUnwatchedSlices checks that slices kube-proxy's informers leave out
// (another proxy's, a headless Service's) give no endpoints.
func TestUnwatchedSlices(t *testing.T) {
	for _, label := range []string{api.ServiceProxyNameLabel, api.HeadlessLabel} {
		es := mkSlice("ns", "web", "web-1", "IPv4", 80, mkEp("10.180.0.9"))
		es.Metadata.Labels[label] = ""
		p := mustCompile(t, &api.Input{Services: []*api.Service{mkSvc("ns", "web", withClusterIP("10.96.0.90"))}, EndpointSlices: []*api.EndpointSlice{es}}, Options{})
		checkFlows(t, p, []flow{{desc: label, src: "203.0.113.5", dst: "10.96.0.90", port: 80, want: ir.VerdictReject}})
	}
}
