package render

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"kpc/compiler/ir"
)

// DNS writes the cluster DNS records of a Program's Service catalog
// (Program.Services) as an RFC 1035 master file for the cluster domain,
// following the Kubernetes DNS-Based Service Discovery specification
// (github.com/kubernetes/dns docs/specification.md, schema 1.1.0):
//
//   - $ORIGIN and $TTL (5 seconds, CoreDNS's default), an SOA naming
//     ns.dns.<domain>, with an A/AAAA record for that name: the cluster
//     IPs of kube-system/kube-dns when the input has it, else the 10th
//     address of the first service CIDR (kubeadm's convention, 10.96.0.10
//     when the Program has no Ruleset); an NS record naming
//     kube-dns.kube-system.svc.<domain> when the input has that Service
//     (as CoreDNS names its own Service), else ns.dns.<domain>; and the
//     dns-version TXT record, with CoreDNS's TTL of 28800 seconds.
//   - A Service with cluster IPs: one A or AAAA record per cluster IP at
//     <svc>.<ns>.svc.<domain>; per port an SRV record at that name (the
//     extension CoreDNS writes for peer-finder) and per named port an SRV
//     record _<port>._<proto>.<svc>.<ns>.svc.<domain>, both of priority 0,
//     weight 100 and the Service port, targeting the Service name.
//   - A headless Service: one A/AAAA record at the Service name per ready
//     endpoint (the slices' condition, which the EndpointSlice controller
//     sets for every endpoint of a Service with publishNotReadyAddresses;
//     CoreDNS reads nothing else); per such endpoint an A/AAAA record at
//     <hostname>.<svc>.<ns>.svc.<domain>, where hostname is the endpoint's
//     hostname or, when it has none, a name derived from its address as
//     CoreDNS does (dots and colons replaced by dashes: 192-0-2-1,
//     2001-db8--1; the fully expanded IPv6 form when the short one would
//     begin or end with a dash); and per named Service port one SRV
//     record per such endpoint that serves the port, targeting the
//     endpoint's name, with the endpoint's port (the port a client of a
//     headless Service connects to) and CoreDNS's weight, 100 shared out
//     among the N ready endpoints of the endpoint's slice (floor(100/N)).
//   - An ExternalName Service: a CNAME to its externalName.
//
// Not written: PTR records (they belong in the in-addr.arpa and ip6.arpa
// zones, not in the cluster domain's zone), the deprecated pod records
// (<a-b-c-d>.<ns>.pod.<domain>, defined for every possible address) and
// endpoint names of Services that are not headless (the specification
// defines them for headless Services only). The SOA serial is always 1.
// Records are grouped per Service in catalog order (namespace/name), each
// group sorted; owner names and targets are fully qualified and lowercase.
// A Service whose names are not valid DNS names is skipped with a comment.
type DNS struct {
	// Domain is the cluster domain; empty means "cluster.local".
	Domain string
}

// DNSSchemaVersion is the version of the Kubernetes DNS specification the
// zone follows, published in its dns-version TXT record.
const DNSSchemaVersion = "1.1.0"

// dnsTTL is the zone's default TTL in seconds.
const dnsTTL = 5

// dnsVersionTTL is the TTL CoreDNS gives the dns-version record.
const dnsVersionTTL = 28800

// dnsRecord is one resource record; Name and Data are fully qualified.
// TTL 0 is the zone's default.
type dnsRecord struct {
	Name string
	TTL  int
	Type string
	Data string
}

func (r dnsRecord) String() string {
	if r.TTL > 0 {
		return r.Name + "\t" + strconv.Itoa(r.TTL) + "\tIN\t" + r.Type + "\t" + r.Data
	}
	return r.Name + "\tIN\t" + r.Type + "\t" + r.Data
}

// Render writes the zone.
func (d DNS) Render(w io.Writer, p *ir.Program) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("dns: invalid program: %w", err)
	}
	origin, err := dnsOrigin(d.Domain)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "; kpc: DNS records of the cluster domain %s (Kubernetes DNS specification %s).\n", strings.TrimSuffix(origin, "."), DNSSchemaVersion)
	fmt.Fprintf(bw, "; PTR records are not written: they belong in the in-addr.arpa and ip6.arpa zones.\n")
	for _, n := range p.Notes {
		fmt.Fprintf(bw, "; note: %s\n", n)
	}
	fmt.Fprintf(bw, "$ORIGIN %s\n$TTL %d\n", origin, dnsTTL)
	ns := "ns.dns." + origin
	fmt.Fprintf(bw, "@\tIN\tSOA\t%s hostmaster.%s 1 7200 1800 86400 %d\n", ns, origin, dnsTTL)
	addrs, why := nameServerAddrs(p)
	nsTarget := ns
	if why == "" {
		nsTarget = "kube-dns.kube-system.svc." + origin
	}
	fmt.Fprintf(bw, "@\tIN\tNS\t%s\n", nsTarget)
	if why != "" {
		fmt.Fprintf(bw, "; %s\n", why)
	}
	for _, a := range addrs {
		fmt.Fprintln(bw, addrRecord(ns, a))
	}
	fmt.Fprintln(bw, dnsRecord{Name: "dns-version." + origin, TTL: dnsVersionTTL, Type: "TXT", Data: `"` + DNSSchemaVersion + `"`})
	for i := range p.Services {
		s := &p.Services[i]
		recs, err := serviceRecords(s, origin)
		fmt.Fprintf(bw, "\n; Service %s (%s)\n", s.ID(), serviceKind(s))
		if err != nil {
			fmt.Fprintf(bw, "; skipped: %v\n", err)
			continue
		}
		if len(recs) == 0 {
			fmt.Fprintln(bw, "; no records (no address to publish)")
		}
		for _, r := range recs {
			fmt.Fprintln(bw, r)
		}
	}
	return bw.Flush()
}

// dnsOrigin validates the cluster domain and returns it lowercase and
// fully qualified.
func dnsOrigin(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if d == "" {
		d = "cluster.local"
	}
	if len(d) > 253 {
		return "", fmt.Errorf("dns: cluster domain %q: longer than 253 characters", domain)
	}
	for _, l := range strings.Split(d, ".") {
		if !validLabel(l) {
			return "", fmt.Errorf("dns: cluster domain %q: %q is not a DNS label (RFC 1123)", domain, l)
		}
	}
	return d + ".", nil
}

// validLabel reports whether l is an RFC 1123 label: 1-63 lowercase
// letters, digits and dashes, not beginning or ending with a dash.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validSRVLabel reports whether l is a port name usable in an SRV owner
// name (_<port>): a label that may also contain underscores.
func validSRVLabel(l string) bool {
	return validLabel(strings.ReplaceAll(l, "_", "a"))
}

func serviceKind(s *ir.ServiceInfo) string {
	switch {
	case s.Type == "ExternalName":
		return "ExternalName " + s.ExternalName
	case s.Headless:
		return "headless"
	}
	return s.Type
}

// nameServerAddrs returns the address of the zone's name server, and a
// comment saying where it came from when it is not kube-system/kube-dns.
func nameServerAddrs(p *ir.Program) ([]netip.Addr, string) {
	for i := range p.Services {
		s := &p.Services[i]
		if s.Namespace == "kube-system" && s.Name == "kube-dns" && len(s.ClusterIPs) > 0 {
			return sortedAddrs(s.ClusterIPs), ""
		}
	}
	for _, rs := range p.Rulesets {
		if rs == nil || len(rs.ServiceCIDRs) == 0 {
			continue
		}
		pfx := rs.ServiceCIDRs[0].Masked()
		a := pfx.Addr()
		for range 10 {
			a = a.Next()
		}
		if a.IsValid() && pfx.Contains(a) {
			return []netip.Addr{a}, fmt.Sprintf("no kube-system/kube-dns cluster IP: the name server address is the 10th address of service CIDR %s (kubeadm's convention)", pfx)
		}
	}
	return []netip.Addr{netip.MustParseAddr("10.96.0.10")}, "no kube-system/kube-dns cluster IP and no service CIDR: the name server address is kubeadm's default 10.96.0.10"
}

func sortedAddrs(as []netip.Addr) []netip.Addr {
	out := slices.Clone(as)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func addrRecord(name string, a netip.Addr) dnsRecord {
	if a.Is4() {
		return dnsRecord{Name: name, Type: "A", Data: a.String()}
	}
	return dnsRecord{Name: name, Type: "AAAA", Data: a.String()}
}

// endpointLabel is an endpoint's name under its Service: its hostname, else
// a name derived from its address.
func endpointLabel(e *ir.EndpointInfo) string {
	if e.Hostname != "" {
		return strings.ToLower(e.Hostname)
	}
	if e.Addr.Is4() {
		return strings.ReplaceAll(e.Addr.String(), ".", "-")
	}
	l := strings.ReplaceAll(e.Addr.String(), ":", "-")
	if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
		l = strings.ReplaceAll(e.Addr.StringExpanded(), ":", "-")
	}
	return l
}

// serviceRecords returns the records of one Service, sorted: address
// records, endpoint records, CNAME, SRV. origin is fully qualified.
func serviceRecords(s *ir.ServiceInfo, origin string) ([]dnsRecord, error) {
	ns, name := strings.ToLower(s.Namespace), strings.ToLower(s.Name)
	if !validLabel(ns) || !validLabel(name) {
		return nil, fmt.Errorf("%s/%s is not a valid DNS name", s.Namespace, s.Name)
	}
	base := name + "." + ns + ".svc." + origin
	var addrRecs, epRecs, other, srv []dnsRecord
	srvName := func(p ir.PortInfo) (string, bool) {
		pn := strings.ToLower(p.Name)
		if pn == "" || !validSRVLabel(pn) {
			return "", false
		}
		return "_" + pn + "._" + strings.ToLower(string(p.Protocol)) + "." + base, true
	}
	switch {
	case s.Type == "ExternalName":
		target := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.ExternalName), "."))
		if target == "" {
			return nil, fmt.Errorf("ExternalName Service without externalName")
		}
		for _, l := range strings.Split(target, ".") {
			if !validSRVLabel(l) {
				return nil, fmt.Errorf("externalName %q is not a valid DNS name", s.ExternalName)
			}
		}
		other = append(other, dnsRecord{Name: base, Type: "CNAME", Data: target + "."})
	case s.Headless:
		// CoreDNS shares the weight out among each slice's ready
		// endpoints (a slice holds one family).
		type group struct {
			slice string
			v4    bool
		}
		ready := map[group]int{}
		for i := range s.Endpoints {
			if e := &s.Endpoints[i]; e.Ready {
				ready[group{e.Slice, e.Addr.Is4()}]++
			}
		}
		for i := range s.Endpoints {
			e := &s.Endpoints[i]
			if !e.Ready {
				continue
			}
			weight := 100 / ready[group{e.Slice, e.Addr.Is4()}]
			label := endpointLabel(e)
			if !validLabel(label) {
				return nil, fmt.Errorf("endpoint %s: hostname %q is not a DNS label", e.Addr, e.Hostname)
			}
			epName := label + "." + base
			addrRecs = append(addrRecs, addrRecord(base, e.Addr))
			epRecs = append(epRecs, addrRecord(epName, e.Addr))
			for _, p := range s.Ports {
				owner, ok := srvName(p)
				if !ok {
					continue
				}
				for _, ep := range e.Ports {
					if ep.Name == p.Name && ep.Protocol == p.Protocol {
						srv = append(srv, dnsRecord{Name: owner, Type: "SRV", Data: fmt.Sprintf("0 %d %d %s", weight, ep.Port, epName)})
					}
				}
			}
		}
	default:
		for _, a := range s.ClusterIPs {
			addrRecs = append(addrRecs, addrRecord(base, a))
		}
		if len(addrRecs) > 0 {
			for _, p := range s.Ports {
				srv = append(srv, dnsRecord{Name: base, Type: "SRV", Data: fmt.Sprintf("0 100 %d %s", p.Port, base)})
				if owner, ok := srvName(p); ok {
					srv = append(srv, dnsRecord{Name: owner, Type: "SRV", Data: fmt.Sprintf("0 100 %d %s", p.Port, base)})
				}
			}
		}
	}
	var out []dnsRecord
	for _, group := range [][]dnsRecord{addrRecs, epRecs, other, srv} {
		slices.SortFunc(group, compareRecords)
		out = append(out, slices.Compact(group)...)
	}
	return out, nil
}

// compareRecords orders records by name, type (A before AAAA), then data
// (addresses numerically).
func compareRecords(a, b dnsRecord) int {
	if c := cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Type, b.Type)); c != 0 {
		return c
	}
	if x, err := netip.ParseAddr(a.Data); err == nil {
		if y, err := netip.ParseAddr(b.Data); err == nil {
			return x.Compare(y)
		}
	}
	return strings.Compare(a.Data, b.Data)
}
