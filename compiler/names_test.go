package compiler

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
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

// TestHashAndTruncateReference checks the allocation-free spelling against
// kube-proxy's: base32 of the whole SHA-256, cut to 8 characters.
func TestHashAndTruncateReference(t *testing.T) {
	ref := func(name string) string {
		sum := sha256.Sum256([]byte(name))
		s := base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + name
		if len(s) > chainNameBaseMax {
			s = s[:chainNameBaseMax-3] + "..."
		}
		return s
	}
	for n := 0; n <= 300; n += 7 {
		name := strings.Repeat("ns/svc-é/", n/9+1)[:n]
		if got, want := hashAndTruncate(name), ref(name); got != want {
			t.Errorf("hashAndTruncate(%d bytes) = %q, want %q", n, got, want)
		}
	}
	for _, ap := range []string{"10.1.2.3:80", "[2001:db8::1]:8080", "[::ffff:10.0.0.1]:1"} {
		ep := netip.MustParseAddrPort(ap)
		ip := strings.ReplaceAll(ep.Addr().String(), ":", ".")
		want := ref(fmt.Sprintf("ns/name/sctp/port__%s/%d", ip, ep.Port()))
		if got := endpointChainBase("ns", "name", ir.SCTP, "port", ep); got != want {
			t.Errorf("endpointChainBase(%s) = %q, want %q", ap, got, want)
		}
	}
}

// TestNameKeyOrder checks that the sort key of chain names never orders two
// names against their byte order.
func TestNameKeyOrder(t *testing.T) {
	names := []string{"", "a", "ab", "a\x00", "a\x00b", "endpoint-AAAAAAAA-x", "endpoint-AAAAAAAB", "endpoint-AAAAAAA",
		"service-ZZ", "service-ZZ\xff", strings.Repeat("x", 16), strings.Repeat("x", 17), strings.Repeat("x", 15) + "y"}
	for _, a := range names {
		for _, b := range names {
			ka, kb := nameKey(a), nameKey(b)
			less := ka[0] < kb[0] || ka[0] == kb[0] && ka[1] < kb[1]
			if less && a >= b {
				t.Errorf("nameKey(%q) < nameKey(%q) but the names are not in that order", a, b)
			}
		}
	}
}

// TestSortedChains checks sortedChains against a stable sort by name, for
// names as the compiler makes them (with repeats, and hashes that share
// their start) and with a name that is not (which takes the other way).
func TestSortedChains(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var made []string
	for i := range 3000 {
		prefix := chainPrefixes[rng.IntN(len(chainPrefixes))]
		made = append(made, prefix+hashAndTruncate(fmt.Sprintf("ns/svc-%d/tcp/p%d", i%700, rng.IntN(3))))
	}
	// Hashes that differ in their last character only, or only after it.
	made = append(made, "service-AAAAAAA2-x", "service-AAAAAAAZ-x", "service-AAAAAAA7-y", "service-AAAAAAA7-x", "local-ZZZZZZZZ-a")
	tests := []struct {
		name  string
		names []string
	}{
		{"compiler's names", made},
		{"another name", append(slices.Clone(made), "custom-chain")},
		{"short name", append(slices.Clone(made), "service-AB")},
	}
	for _, tt := range tests {
		var chains []chainEntry
		for i, n := range tt.names {
			chains = append(chains, chainEntry{name: n, ep: int32(i)})
		}
		want := slices.Clone(chains)
		slices.SortStableFunc(want, func(x, y chainEntry) int { return strings.Compare(x.name, y.name) })
		got := sortedChains(slices.Clone(chains))
		for i := range want {
			if got[i].name != want[i].name || got[i].ep != want[i].ep {
				t.Errorf("%s: position %d: %q (added %d), want %q (added %d)", tt.name, i, got[i].name, got[i].ep, want[i].name, want[i].ep)
				break
			}
		}
	}
}
