package load

import (
	"fmt"
	"net/netip"
	"strings"
)

const (
	msgInvalidIP   = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
	msgInvalidCIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
	msgMappedIP    = "must not be an IPv4-mapped IPv6 address"
)

// parseIP parses an IP address strictly, like the API server's IsValidIP
// with strict validation: no leading zeros (netip rejects them), no zone,
// no IPv4-mapped IPv6 address. It returns the address, or an error message.
func parseIP(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, msgInvalidIP
	}
	if a.Is4In6() {
		return netip.Addr{}, msgMappedIP
	}
	return a, ""
}

// endpointIPMsg returns why s is not an address an external IP or an
// Endpoints address may be (strictly parsed, not special), or "".
func endpointIPMsg(s string) string {
	a, msg := parseIP(s)
	if msg == "" {
		msg = specialIP(a)
	}
	return msg
}

// specialIP returns why a may not be used as an external IP or endpoint
// address (ValidateNonSpecialIP), or "".
func specialIP(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return fmt.Sprintf("may not be unspecified (%s)", a)
	case a.IsLoopback():
		return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
	case a.IsLinkLocalUnicast():
		return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
	case a.IsLinkLocalMulticast():
		return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
	}
	return ""
}

// parseCIDR parses a CIDR strictly (StrictIPCIDRValidation): surrounding
// whitespace is trimmed, and leading zeros, IPv4-mapped addresses and bits
// set beyond the prefix length are rejected. It returns an error message
// or "".
func parseCIDR(s string) string {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || p.Addr().Zone() != "" {
		return msgInvalidCIDR
	}
	if p.Addr().Is4In6() {
		return msgMappedIP
	}
	if m := p.Masked(); m != p {
		return fmt.Sprintf("must not have bits set beyond the prefix length (%s)", m)
	}
	return ""
}

// family names an address's IP family as in spec.ipFamilies.
func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
