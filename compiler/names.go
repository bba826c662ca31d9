package compiler

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"
	"strings"

	"kpc/compiler/ir"
)

// Chain and set name prefixes (kube-proxy nftables mode).
const (
	prefixService  = "service-"
	prefixLocal    = "local-"
	prefixExternal = "external-"
	prefixFirewall = "firewall-"
	prefixEndpoint = "endpoint-"
	prefixAffinity = "affinity-"
)

// chainNameBaseMax is kube-proxy's chainNameBaseLengthMax: the nftables
// name limit (256) minus a 16-byte budget for the prefix.
const chainNameBaseMax = 256 - 16

// hashAndTruncate prefixes name with the first 8 characters of the standard
// base32 encoding of its SHA-256 and truncates the result to
// chainNameBaseMax bytes, ending in "..." when cut (kube-proxy's
// hashAndTruncate).
func hashAndTruncate(name string) string {
	return string(appendHashAndTruncate(nil, []byte(name)))
}

// appendHashAndTruncate appends hashAndTruncate(name) to dst.
func appendHashAndTruncate(dst, name []byte) []byte {
	sum := sha256.Sum256(name)
	// The first 8 characters of the encoding of the sum are the encoding
	// of its first 5 bytes (40 bits, no padding).
	var h [8]byte
	base32.StdEncoding.Encode(h[:], sum[:5])
	start := len(dst)
	dst = append(dst, h[:]...)
	dst = append(dst, '-')
	dst = append(dst, name...)
	if len(dst)-start > chainNameBaseMax {
		dst = append(dst[:start+chainNameBaseMax-3], "..."...)
	}
	return dst
}

// servicePortChainBase is the base of a Service port's chain names:
// hashAndTruncate("ns/name/proto/portName") with the protocol lower-case.
func servicePortChainBase(ns, name string, proto ir.Protocol, portName string) string {
	return hashAndTruncate(ns + "/" + name + "/" + strings.ToLower(string(proto)) + "/" + portName)
}

// endpointChainBase is the base of an endpoint's chain and affinity set
// names: hashAndTruncate("ns/name/proto/portName__ip/port"), with the colons
// of an IPv6 address replaced by dots.
func endpointChainBase(ns, name string, proto ir.Protocol, portName string, ep netip.AddrPort) string {
	var n nameBuf
	return string(n.endpointChain(nil, ns, name, proto, portName, ep))
}

// nameBuf is scratch space for building names without allocating.
type nameBuf struct{ b []byte }

// endpointChain appends endpointChainBase(ns, name, proto, portName, ep) to
// dst.
func (n *nameBuf) endpointChain(dst []byte, ns, name string, proto ir.Protocol, portName string, ep netip.AddrPort) []byte {
	b := append(n.b[:0], ns...)
	b = append(b, '/')
	b = append(b, name...)
	b = append(b, '/')
	b = appendLower(b, string(proto))
	b = append(b, '/')
	b = append(b, portName...)
	b = append(b, "__"...)
	ipStart := len(b)
	b = ep.Addr().AppendTo(b)
	for i := ipStart; i < len(b); i++ {
		if b[i] == ':' {
			b[i] = '.'
		}
	}
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(ep.Port()), 10)
	n.b = b
	return appendHashAndTruncate(dst, b)
}

// appendLower appends s in lower case (ASCII).
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// servicePortName is kube-proxy's ServicePortName string: "ns/name:port",
// or "ns/name" for an unnamed port.
func servicePortName(id, portName string) string {
	if portName == "" {
		return id
	}
	return id + ":" + portName
}
