package compiler

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"kpc/compiler/api"
	"kpc/compiler/ir"
)

// fuzzDoc is the JSON shape FuzzCompile decodes: unvalidated objects plus a
// few options.
type fuzzDoc struct {
	Services       []*api.Service                `json:"services"`
	EndpointSlices []*api.EndpointSlice          `json:"endpointSlices"`
	Nodes          []*api.Node                   `json:"nodes"`
	ProxyConfigs   []*api.KubeProxyConfiguration `json:"proxyConfigs"`
	Endpoints      []*api.Endpoints              `json:"endpoints"`
	ServiceCIDRDoc []*api.ServiceCIDR            `json:"serviceCIDRDocuments"`
	NodeName       string                        `json:"nodeName"`
	NodeIPs        []string                      `json:"nodeIPs"`
	ClusterCIDRs   []string                      `json:"clusterCIDRs"`
	ServiceCIDRs   []string                      `json:"serviceCIDRs"`
	NodePortAddrs  []string                      `json:"nodePortAddresses"`
	NodePortRange  [2]int                        `json:"nodePortRange"`
	DetectLocal    [3]string                     `json:"detectLocal"` // mode, bridge, prefix
	InIface        string                        `json:"inIface"`
	Invalid        []api.Invalid                 `json:"invalid"`
}

func FuzzCompile(f *testing.F) {
	seed, err := json.Marshal(fuzzDoc{
		Services:       richInput().Services,
		EndpointSlices: richInput().EndpointSlices,
		Nodes:          richInput().Nodes,
		ProxyConfigs:   richInput().ProxyConfigs,
		Endpoints:      richInput().Endpoints,
		NodeName:       "test-node",
		ServiceCIDRs:   []string{"172.30.0.0/16", "fd00:30::/108"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"services":[{"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}}],"serviceCIDRDocuments":[{"metadata":{"name":"kubernetes"},"spec":{"cidrs":["fd00::/120","10.0.0.0/30","x"]}},{"spec":{"cidrs":["10.0.0.0/31"]}}]}`))
	f.Add([]byte(`{"services":[{"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}}],"serviceCIDRs":["10.0.0.0/31"]}`))
	f.Add([]byte(`{"services":[{"metadata":{"name":"a"},"spec":{"type":"NodePort","clusterIPs":["::ffff:1.2.3.4","1.2.3.4"],"ports":[{"port":80,"protocol":"UDP","nodePort":70000},{"port":80}]}}],
		"endpointSlices":[{"metadata":{"name":"s","labels":{"kubernetes.io/service-name":"a"}},"addressType":"IPv4","ports":[{"port":0},{}],"endpoints":[{"addresses":["1.2.3.5","x"]},{"addresses":[]}]}],
		"nodePortRange":[65535,65535]}`))
	f.Add([]byte(`{"services":[{"metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}},{"metadata":{"name":"b"},"spec":{"externalIPs":["10.96.0.2"],"ports":[{"port":80}]}}],
		"invalid":[{"Kind":"Service","Name":"b"},{"Kind":"ServiceCIDR"},{}],"serviceCIDRs":["10.96.0.0/30"]}`))
	f.Add([]byte(`{"services":[{"metadata":{"name":"a"},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","ports":[{"port":80,"nodePort":30000}]}}],
		"endpointSlices":[{"metadata":{"name":"s","labels":{"kubernetes.io/service-name":"a"}},"addressType":"IPv4","ports":[{"port":80}],"endpoints":[{"addresses":["10.0.0.1"],"nodeName":"n"}]}],
		"proxyConfigs":[{"detectLocalMode":"InterfaceNamePrefix","detectLocal":{"interfaceNamePrefix":"veth"}}],"nodeName":"n","inIface":"veth1",
		"detectLocal":["BridgeInterface","cbr0",""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc fuzzDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return
		}
		opts := Options{NodeName: doc.NodeName, NodePortAddresses: doc.NodePortAddrs, NodePortRange: doc.NodePortRange,
			DetectLocalMode: doc.DetectLocal[0], PodBridgeInterface: doc.DetectLocal[1], PodInterfaceNamePrefix: doc.DetectLocal[2]}
		for _, s := range doc.NodeIPs {
			if a, err := netip.ParseAddr(s); err == nil {
				opts.NodeIPs = append(opts.NodeIPs, a)
			}
		}
		for _, s := range doc.ClusterCIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				opts.ClusterCIDRs = append(opts.ClusterCIDRs, p)
			}
		}
		for _, s := range doc.ServiceCIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				opts.ServiceCIDRs = append(opts.ServiceCIDRs, p)
			}
		}
		in := &api.Input{Services: doc.Services, EndpointSlices: doc.EndpointSlices, Nodes: doc.Nodes, ProxyConfigs: doc.ProxyConfigs, Endpoints: doc.Endpoints, ServiceCIDRs: doc.ServiceCIDRDoc,
			Invalid: doc.Invalid}
		p, _ := Compile(in, opts)
		if p == nil {
			t.Fatal("nil program")
		}
		for _, rs := range p.Rulesets {
			if err := rs.Validate(); err != nil {
				t.Fatalf("invalid IR: %v", err)
			}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("invalid program: %v", err)
		}
		var b bytes.Buffer
		if err := ir.Dump(&b, p); err != nil {
			t.Fatal(err)
		}
		for _, rs := range p.Rulesets {
			for _, e := range rs.Services {
				ir.Trace(p, ir.Packet{Src: e.Addr, Dst: e.Addr, Protocol: e.Protocol, Port: e.Port, InIface: doc.InIface}, ir.ModeNFT)
			}
		}
	})
}
