package compiler

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
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
	sum := sha256.Sum256([]byte(name))
	s := base32.StdEncoding.EncodeToString(sum[:])[:8] + "-" + name
	if len(s) > chainNameBaseMax {
		s = s[:chainNameBaseMax-3] + "..."
	}
	return s
}

// servicePortChainBase is the base of a Service port's chain names:
// hashAndTruncate("ns/name/proto/portName") with the protocol lower-case.
func servicePortChainBase(ns, name string, proto ir.Protocol, portName string) string {
	return hashAndTruncate(fmt.Sprintf("%s/%s/%s/%s", ns, name, strings.ToLower(string(proto)), portName))
}

// endpointChainBase is the base of an endpoint's chain and affinity set
// names: hashAndTruncate("ns/name/proto/portName__ip/port"), with the colons
// of an IPv6 address replaced by dots.
func endpointChainBase(ns, name string, proto ir.Protocol, portName string, ep netip.AddrPort) string {
	ip := strings.ReplaceAll(ep.Addr().String(), ":", ".")
	return hashAndTruncate(fmt.Sprintf("%s/%s/%s/%s__%s/%d", ns, name, strings.ToLower(string(proto)), portName, ip, ep.Port()))
}

// servicePortName is kube-proxy's ServicePortName string: "ns/name:port",
// or "ns/name" for an unnamed port.
func servicePortName(id, portName string) string {
	if portName == "" {
		return id
	}
	return id + ":" + portName
}
