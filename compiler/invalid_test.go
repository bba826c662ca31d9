package compiler

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// TestInvalidDocuments checks what Compile reports of an input with
// invalid documents (api.Invalid): the conflicts between valid Services,
// and nothing that the invalid documents, once fixed, could take away.
func TestInvalidDocuments(t *testing.T) {
	// The address ns/auto is allocated in 172.30.0.0/16 when nothing else
	// is taken.
	pool := newIPPool(netip.MustParsePrefix("172.30.0.0/16"))
	hashed, _, _ := pool.alloc(allocHash("ns/auto"), func(netip.Addr) bool { return false })
	invalidService := api.Invalid{Pos: diag.Pos{File: "svc.yaml", Line: 100, Col: 1}, Kind: "Service", Namespace: "ns", Name: "bad"}
	unread := api.Invalid{Pos: diag.Pos{File: "other.yaml", Line: 3}}
	ipv4Only := []*api.ServiceCIDR{{Metadata: api.ObjectMeta{Name: "kubernetes"}, Spec: api.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16"}}}}
	dualStack := mkSvc("ns", "ds", at(1), func(s *api.Service) { s.Spec.IPFamilyPolicy = "RequireDualStack" })
	const dualStackErr = "svc.yaml:1:1: Service ns/ds: spec.ipFamilyPolicy: RequireDualStack needs service CIDRs of both families (--service-cidr or ServiceCIDR documents)"
	tests := []struct {
		name    string
		in      *api.Input
		opts    Options
		invalid []api.Invalid
		want    []string // errors, valid input
		partial []string // errors, with invalid
	}{
		{
			name: "a cluster IP and a nodePort taken twice",
			in: &api.Input{Services: []*api.Service{
				mkSvc("ns", "a", at(1), withClusterIP("172.30.0.5"), withType("NodePort"), withNodePort(0, 30100)),
				mkSvc("ns", "b", at(10), withClusterIP("172.30.0.5"), withType("NodePort"), withNodePort(0, 30100)),
			}},
			opts:    kubeProxyTestOpts(),
			invalid: []api.Invalid{invalidService, unread},
			want: []string{
				"svc.yaml:10:1: Service ns/b: spec.clusterIPs[0]: cluster IP 172.30.0.5 is already allocated to Service ns/a",
				"svc.yaml:10:1: Service ns/b: spec.ports[0].nodePort: nodePort 30100 is already allocated to Service ns/a",
			},
			partial: []string{
				"svc.yaml:10:1: Service ns/b: spec.clusterIPs[0]: cluster IP 172.30.0.5 is already allocated to Service ns/a",
				"svc.yaml:10:1: Service ns/b: spec.ports[0].nodePort: nodePort 30100 is already allocated to Service ns/a",
			},
		},
		{
			name: "a Service that an invalid document is too",
			in: &api.Input{Services: []*api.Service{
				mkSvc("ns", "bad", at(5), withClusterIP("172.30.0.5")),
				mkSvc("ns", "b", at(10), withClusterIP("172.30.0.5")),
			}},
			opts:    kubeProxyTestOpts(),
			invalid: []api.Invalid{invalidService},
			want:    []string{"svc.yaml:10:1: Service ns/b: spec.clusterIPs[0]: cluster IP 172.30.0.5 is already allocated to Service ns/bad"},
		},
		{
			name: "an EndpointSlice that an invalid document is too",
			in: &api.Input{Services: []*api.Service{mkSvc("ns", "a", at(1), withClusterIP("172.30.0.5"))}, EndpointSlices: []*api.EndpointSlice{
				withPos(mkSlice("ns", "a", "s", "IPv4", 80, mkEp("10.0.0.1")), 5),
				withPos(mkSlice("ns", "a", "s", "IPv4", 80, mkEp("10.0.0.2")), 10),
			}},
			opts:    kubeProxyTestOpts(),
			invalid: []api.Invalid{{Pos: diag.Pos{File: "svc.yaml", Line: 1}, Kind: "EndpointSlice", Namespace: "ns", Name: "s"}},
			want:    []string{"svc.yaml:10:1: EndpointSlice ns/s: metadata.name: duplicate EndpointSlice (first defined at svc.yaml:5:1)"},
		},
		{
			name:    "a range that runs out",
			in:      &api.Input{Services: []*api.Service{mkSvc("ns", "a", at(1)), mkSvc("ns", "b", at(2))}},
			opts:    Options{ServiceCIDRs: prefixes("192.0.2.0/30")},
			invalid: []api.Invalid{invalidService},
			want:    []string{"svc.yaml:2:1: Service ns/b: spec.clusterIPs: cannot allocate a cluster IP: no free address in service CIDR 192.0.2.0/30"},
		},
		{
			name: "nodePorts that run out",
			in: &api.Input{Services: []*api.Service{
				mkSvc("ns", "a", at(1), withClusterIP("172.30.0.5"), withType("NodePort")),
				mkSvc("ns", "b", at(2), withClusterIP("172.30.0.6"), withType("NodePort")),
			}},
			opts:    Options{ServiceCIDRs: prefixes("172.30.0.0/16"), NodePortRange: [2]int{30000, 30000}},
			invalid: []api.Invalid{invalidService},
			want:    []string{"svc.yaml:1:1: Service ns/a: spec.ports[0].nodePort: cannot allocate a nodePort: no free port in 30000-30000"},
		},
		{
			name: "an allocated cluster IP that is another Service's external IP",
			in: &api.Input{Services: []*api.Service{
				mkSvc("ns", "auto", at(1)),
				mkSvc("ns", "ext", at(10), withClusterIP("172.30.0.5"), withExternalIPs(hashed.String())),
			}},
			opts:    kubeProxyTestOpts(),
			invalid: []api.Invalid{invalidService},
			want:    []string{"svc.yaml:10:1: Service ns/ext: spec.externalIPs[0]: " + hashed.String() + " port 80/TCP is already used by Service ns/auto"},
		},
		{
			name:    "families against ServiceCIDR documents, one invalid",
			in:      &api.Input{Services: []*api.Service{dualStack}, ServiceCIDRs: ipv4Only},
			invalid: []api.Invalid{{Pos: diag.Pos{File: "cidr.yaml", Line: 1, Col: 1}, Kind: "ServiceCIDR", Name: "v6"}},
			want:    []string{dualStackErr},
		},
		{
			name:    "families against ServiceCIDR documents, maybe one unread",
			in:      &api.Input{Services: []*api.Service{dualStack}, ServiceCIDRs: ipv4Only},
			invalid: []api.Invalid{unread},
			want:    []string{dualStackErr},
		},
		{
			name:    "families against ServiceCIDR documents, all there",
			in:      &api.Input{Services: []*api.Service{dualStack}, ServiceCIDRs: ipv4Only},
			invalid: []api.Invalid{invalidService},
			want:    []string{dualStackErr},
			partial: []string{dualStackErr},
		},
		{
			name:    "families against --service-cidr",
			in:      &api.Input{Services: []*api.Service{dualStack}},
			opts:    Options{ServiceCIDRs: prefixes("10.96.0.0/16")},
			invalid: []api.Invalid{unread},
			want:    []string{dualStackErr},
			partial: []string{dualStackErr},
		},
		{
			name: "the configuration's findings, a Node invalid",
			in: &api.Input{
				Services:     []*api.Service{mkSvc("ns", "a", at(1), withClusterIP("10.96.0.5"))},
				ProxyConfigs: []*api.KubeProxyConfiguration{{Pos: diag.Pos{File: "kpc.yaml", Line: 1, Col: 1}, ClusterCIDR: "nope"}},
			},
			invalid: []api.Invalid{{Pos: diag.Pos{File: "node.yaml", Line: 1, Col: 1}, Kind: "Node", Name: "n"}},
			want:    []string{`kpc.yaml:1:1: KubeProxyConfiguration: clusterCIDR: invalid CIDR "nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.SkipRulesetBodies = true
			_, d := Compile(tt.in, opts)
			if diff := cmp.Diff(tt.want, errStrings(d)); diff != "" {
				t.Errorf("valid input: errors (-want +got):\n%s", diff)
			}
			in := *tt.in
			in.Invalid = tt.invalid
			_, d = Compile(&in, opts)
			if diff := cmp.Diff(tt.partial, errStrings(d)); diff != "" {
				t.Errorf("with invalid documents: errors (-want +got):\n%s", diff)
			}
		})
	}
}

// withPos places es at line of svc.yaml.
func withPos(es *api.EndpointSlice, line int) *api.EndpointSlice {
	es.Pos = diag.Pos{File: "svc.yaml", Line: line, Col: 1}
	return es
}
