package envvars

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
)

func TestVarName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web", "WEB"},
		{"web-frontend", "WEB_FRONTEND"},
		{"a-b-c", "A_B_C"},
		{"http-alt", "HTTP_ALT"},
		{"9p", "9P"}, // kubelet adds no prefix for a leading digit
		{"redis2", "REDIS2"},
	}
	for _, tt := range tests {
		if got := VarName(tt.in); got != tt.want {
			t.Errorf("VarName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func svc(ns, name string, ips []string, ports ...ir.PortInfo) ir.ServiceInfo {
	s := ir.ServiceInfo{Namespace: ns, Name: name, Type: "ClusterIP", Ports: ports}
	for _, ip := range ips {
		s.ClusterIPs = append(s.ClusterIPs, netip.MustParseAddr(ip))
	}
	return s
}

func port(name string, proto ir.Protocol, p uint16) ir.PortInfo {
	return ir.PortInfo{Name: name, Protocol: proto, Port: p}
}

func names(vars []Var) []string {
	var out []string
	for _, v := range vars {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}

func TestFromService(t *testing.T) {
	tests := []struct {
		name string
		svc  ir.ServiceInfo
		want []string // in kubelet's order
	}{{
		name: "unnamed single port",
		svc:  svc("ns", "redis-master", []string{"10.0.0.11"}, port("", ir.TCP, 6379)),
		want: []string{
			"REDIS_MASTER_SERVICE_HOST=10.0.0.11",
			"REDIS_MASTER_SERVICE_PORT=6379",
			"REDIS_MASTER_PORT=tcp://10.0.0.11:6379",
			"REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379",
			"REDIS_MASTER_PORT_6379_TCP_PROTO=tcp",
			"REDIS_MASTER_PORT_6379_TCP_PORT=6379",
			"REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11",
		},
	}, {
		name: "named ports, UDP and SCTP",
		svc:  svc("ns", "dns", []string{"10.0.0.10"}, port("dns", ir.UDP, 53), port("sig-nal", ir.SCTP, 2905)),
		want: []string{
			"DNS_SERVICE_HOST=10.0.0.10",
			"DNS_SERVICE_PORT=53",
			"DNS_SERVICE_PORT_DNS=53",
			"DNS_SERVICE_PORT_SIG_NAL=2905",
			"DNS_PORT=udp://10.0.0.10:53",
			"DNS_PORT_53_UDP=udp://10.0.0.10:53",
			"DNS_PORT_53_UDP_PROTO=udp",
			"DNS_PORT_53_UDP_PORT=53",
			"DNS_PORT_53_UDP_ADDR=10.0.0.10",
			"DNS_PORT_2905_SCTP=sctp://10.0.0.10:2905",
			"DNS_PORT_2905_SCTP_PROTO=sctp",
			"DNS_PORT_2905_SCTP_PORT=2905",
			"DNS_PORT_2905_SCTP_ADDR=10.0.0.10",
		},
	}, {
		name: "IPv6 primary: brackets in URLs only",
		svc:  svc("ns", "api", []string{"fd00::a1", "10.0.0.1"}, port("", ir.TCP, 80)),
		want: []string{
			"API_SERVICE_HOST=fd00::a1",
			"API_SERVICE_PORT=80",
			"API_PORT=tcp://[fd00::a1]:80",
			"API_PORT_80_TCP=tcp://[fd00::a1]:80",
			"API_PORT_80_TCP_PROTO=tcp",
			"API_PORT_80_TCP_PORT=80",
			"API_PORT_80_TCP_ADDR=fd00::a1",
		},
	}, {
		name: "no cluster IP",
		svc:  svc("ns", "headless", nil, port("", ir.TCP, 80)),
	}, {
		name: "no port",
		svc:  svc("ns", "empty", []string{"10.0.0.2"}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, names(FromService(&tt.svc))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestForNamespace(t *testing.T) {
	kube := svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", ir.TCP, 443))
	own := svc("team", "kubernetes", []string{"10.96.9.1"}, port("", ir.TCP, 8443))
	web := svc("team", "web", []string{"10.96.9.2"}, port("", ir.TCP, 80))
	other := svc("else", "web2", []string{"10.96.8.1"}, port("", ir.TCP, 80))
	headless := svc("team", "hl", nil, port("", ir.TCP, 80))
	headless.Headless = true
	ext := ir.ServiceInfo{Namespace: "team", Name: "ext", Type: "ExternalName", ExternalName: "example.com"}
	a := svc("team", "a", []string{"10.96.9.3"}, port("", ir.TCP, 80))
	collide := svc("team", "a-port-80-tcp", []string{"10.96.9.4"}, port("", ir.TCP, 81))

	tests := []struct {
		name     string
		services []ir.ServiceInfo
		ns       string
		hosts    []string // every *_SERVICE_HOST
		warnings int
	}{
		{"default namespace", []ir.ServiceInfo{kube, web, other}, "default", []string{"KUBERNETES_SERVICE_HOST=10.96.0.1"}, 0},
		{"other namespace gets default/kubernetes", []ir.ServiceInfo{kube, web, other, headless, ext}, "team",
			[]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "WEB_SERVICE_HOST=10.96.9.2"}, 0},
		{"own kubernetes wins", []ir.ServiceInfo{kube, own, web}, "team",
			[]string{"KUBERNETES_SERVICE_HOST=10.96.9.1", "WEB_SERVICE_HOST=10.96.9.2"}, 0},
		{"own kubernetes wins, any order", []ir.ServiceInfo{own, web, kube}, "team",
			[]string{"KUBERNETES_SERVICE_HOST=10.96.9.1", "WEB_SERVICE_HOST=10.96.9.2"}, 0},
		{"collision reported", []ir.ServiceInfo{a, collide}, "team",
			[]string{"A_PORT_80_TCP_SERVICE_HOST=10.96.9.4", "A_SERVICE_HOST=10.96.9.3"}, 1},
		{"empty namespace", []ir.ServiceInfo{web}, "nobody", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, warnings := ForNamespace(tt.services, tt.ns)
			var hosts []string
			for i, v := range vars {
				if i > 0 && vars[i-1].Name >= v.Name {
					t.Errorf("not sorted: %s before %s", vars[i-1].Name, v.Name)
				}
				if strings.HasSuffix(v.Name, "_SERVICE_HOST") {
					hosts = append(hosts, v.Name+"="+v.Value)
				}
			}
			if d := cmp.Diff(tt.hosts, hosts); d != "" {
				t.Errorf("hosts (-want +got):\n%s", d)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", warnings, tt.warnings)
			}
		})
	}
}

func TestWriteShell(t *testing.T) {
	var b bytes.Buffer
	if err := WriteShell(&b, []Var{{Name: "A", Value: "tcp://[fd00::1]:80"}, {Name: "B", Value: "it's"}}); err != nil {
		t.Fatal(err)
	}
	want := "export A='tcp://[fd00::1]:80'\nexport B='it'\\''s'\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
