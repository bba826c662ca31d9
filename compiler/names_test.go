package compiler

import (
	"net/netip"
	"strings"
	"testing"

	"kpc/compiler/ir"
)

func TestChainNames(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		// Expected values from kube-proxy's TestOverallNFTablesRules.
		{"service", servicePortChainBase("ns1", "svc1", ir.TCP, "p80"), "ULMVA6XW-ns1/svc1/tcp/p80"},
		{"service svc5", servicePortChainBase("ns5", "svc5", ir.TCP, "p80"), "HVFWP5L3-ns5/svc5/tcp/p80"},
		{"endpoint", endpointChainBase("ns1", "svc1", ir.TCP, "p80", netip.MustParseAddrPort("10.180.0.1:80")), "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"},
		{"endpoint svc5", endpointChainBase("ns5", "svc5", ir.TCP, "p80", netip.MustParseAddrPort("10.180.0.3:80")), "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"},
		{"endpoint svc4 a", endpointChainBase("ns4", "svc4", ir.TCP, "p80", netip.MustParseAddrPort("10.180.0.4:80")), "UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80"},
		{"endpoint svc4 b", endpointChainBase("ns4", "svc4", ir.TCP, "p80", netip.MustParseAddrPort("10.180.0.5:80")), "5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80"},
		{"unnamed port", servicePortChainBase("ns", "svc", ir.UDP, "")[9:], "ns/svc/udp/"},
		{"ipv6 endpoint", endpointChainBase("ns", "svc", ir.TCP, "", netip.MustParseAddrPort("[2001:db8::1]:80"))[9:], "ns/svc/tcp/__2001.db8..1/80"},
		{"port name", servicePortName("ns/svc", "http"), "ns/svc:http"},
		{"unnamed port name", servicePortName("ns/svc", ""), "ns/svc"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestHashAndTruncate(t *testing.T) {
	long := strings.Repeat("a", 300)
	got := hashAndTruncate(long)
	if len(got) != chainNameBaseMax || !strings.HasSuffix(got, "...") {
		t.Errorf("hashAndTruncate(300 bytes) = %d bytes %q", len(got), got[len(got)-5:])
	}
	if hashAndTruncate(long) == hashAndTruncate(long+"b") {
		t.Error("truncated names of different inputs collide")
	}
	if n := len(prefixExternal + got); n > ir.MaxNameLen {
		t.Errorf("longest chain name is %d bytes", n)
	}
}
