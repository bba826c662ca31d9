// Package netparse reads IP addresses and CIDRs as Kubernetes components
// read the fields they parse "sloppily" (k8s.io/utils/net's ParseIPSloppy
// and ParseCIDRSloppy, Go 1.16's net.ParseIP and net.ParseCIDR): an IPv4
// part may have leading zeros, read as decimal.
package netparse

import (
	"net/netip"
	"strconv"
	"strings"
)

// IP parses s as Go 1.16's net.ParseIP did: an IPv4 part is one or more
// decimal digits (leading zeros allowed) up to 255, an IPv6 group one or
// more hex digits up to ffff, and an IPv6 address may end in such an IPv4
// address. No zone, no surrounding space.
func IP(s string) (netip.Addr, bool) {
	// What netip reads, the older parser read the same (the usual case,
	// without an allocation).
	if a, err := netip.ParseAddr(s); err == nil {
		return a, a.Zone() == ""
	}
	if !strings.Contains(s, ":") {
		b, ok := ipv4(s)
		if !ok {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(b), true
	}
	// Rewrite the groups and the IPv4 tail in their shortest forms, which
	// netip reads.
	parts := strings.Split(s, ":")
	for i, g := range parts {
		if g == "" {
			continue
		}
		if i == len(parts)-1 && strings.Contains(g, ".") {
			b, ok := ipv4(g)
			if !ok {
				return netip.Addr{}, false
			}
			parts[i] = netip.AddrFrom4(b).String()
			continue
		}
		if strings.Trim(g, "0123456789abcdefABCDEF") != "" {
			return netip.Addr{}, false
		}
		n, err := strconv.ParseUint(g, 16, 64)
		if err != nil || n > 0xffff {
			return netip.Addr{}, false
		}
		parts[i] = strconv.FormatUint(n, 16)
	}
	a, err := netip.ParseAddr(strings.Join(parts, ":"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// CIDR parses s as Go 1.16's net.ParseCIDR did: an address as IP reads
// it, "/", and a prefix length in decimal within the address's bits (an
// IPv4 address written in IPv6 form counts 128). It returns the prefix as
// written, not masked.
func CIDR(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, p.Addr().Zone() == ""
	}
	addr, bits, ok := strings.Cut(s, "/")
	if !ok || bits == "" || strings.Trim(bits, "0123456789") != "" {
		return netip.Prefix{}, false
	}
	a, ok := IP(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, n), true
}

// ipv4 reads four dot-separated decimal parts, each up to 255.
func ipv4(s string) ([4]byte, bool) {
	var b [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return b, false
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return b, false
		}
		p = strings.TrimLeft(p, "0")
		if len(p) > 3 {
			return b, false
		}
		n := 0
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return b, false
		}
		b[i] = byte(n)
	}
	return b, true
}
