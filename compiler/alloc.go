package compiler

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"kpc/compiler/ir"
)

// allocHash is the allocation hash of key: the first 8 bytes of its SHA-256,
// big-endian.
func allocHash(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])
}

type requester struct {
	hash uint64
	key  string
	s    *svc
	// what is allocated: a family's cluster IP, or nodePort ports (indexes
	// into spec.ports), or the healthCheckNodePort.
	fam   ir.Family
	ports []int
	hc    bool
}

func sortRequesters(rs []*requester) {
	slices.SortFunc(rs, func(a, b *requester) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), strings.Compare(a.key, b.key))
	})
}

// allocateClusterIPs resolves each Service's families and cluster IPs:
// explicit IPs are reserved in processing order (a duplicate is an error on
// the later Service, which then is not proxied in that family), then the
// missing ones are allocated (see the package documentation).
func (c *compiler) allocateClusterIPs() {
	owner := map[netip.Addr]string{}
	for _, s := range c.svcs {
		c.resolveFamilies(s)
		for _, f := range families {
			ip, ok := s.ips[f]
			if !ok {
				continue
			}
			if other, taken := owner[ip]; taken && other != s.id {
				c.diags.Add(s.pos, s.obj, clusterIPPath(s, f), fmt.Sprintf("cluster IP %s is already allocated to Service %s", ip, other))
				delete(s.ips, f)
				continue
			}
			owner[ip] = s.id
		}
	}
	notes := map[*svc]map[ir.Family]string{}
	for _, f := range families {
		var reqs []*requester
		for _, s := range c.svcs {
			if slices.Contains(s.want, f) {
				reqs = append(reqs, &requester{hash: allocHash(s.id), key: s.id, s: s, fam: f})
			}
		}
		if len(reqs) == 0 {
			continue
		}
		sortRequesters(reqs)
		cidr := c.cfg.serviceCIDRs[f][0]
		pool := newIPPool(cidr)
		for _, r := range reqs {
			ip, hashed, ok := pool.alloc(r.hash, func(a netip.Addr) bool { _, t := owner[a]; return t })
			if !ok {
				if c.whole() {
					c.diags.Add(r.s.pos, r.s.obj, "spec.clusterIPs", fmt.Sprintf("cannot allocate a cluster IP: no free address in service CIDR %s", cidr))
				}
				continue
			}
			owner[ip] = r.s.id
			r.s.ips[f] = ip
			why := "no spec.clusterIP"
			if i := slices.Index(r.s.fams, f); len(r.s.explicit) > 0 {
				why = fmt.Sprintf("no %s address in spec.clusterIPs", f)
			} else if i > 0 {
				why = fmt.Sprintf("no spec.clusterIPs[%d]", i)
			}
			if hashed != ip {
				why += fmt.Sprintf("; its hashed address %s was taken by %s", hashed, owner[hashed])
			}
			if notes[r.s] == nil {
				notes[r.s] = map[ir.Family]string{}
			}
			notes[r.s][f] = fmt.Sprintf("allocated cluster IP %s to %s (%s)", ip, r.s.id, why)
		}
	}
	// A Service's notes come in the order of its cluster IPs.
	for _, s := range c.svcs {
		for _, f := range s.fams {
			if n, ok := notes[s][f]; ok {
				c.addNote(s.id, n)
			}
		}
	}
}

// checkDefaultServiceCIDRs tests kubeadm's default Service ranges, used
// when no --service-cidr is given, against the input's explicit cluster
// IPs. A cluster IP outside the default range of its family shows that the
// cluster (k3s, EKS, GKE, ...) uses another range, which the manifests do
// not say: that family's Ruleset then has no ServiceCIDRs, so nothing is
// dropped as unallocated, as kube-proxy drops nothing when it knows no
// Service range; dropping the guessed range could drop traffic to real
// addresses of the cluster. A note names the first such Service, and says
// how many missing cluster IPs were still allocated from the default range.
func (c *compiler) checkDefaultServiceCIDRs() {
	if !c.cfg.defaultCIDRs {
		return
	}
	for _, f := range families {
		var first *svc
		n := 0
		for _, s := range c.svcs {
			ip, ok := s.ips[f]
			if !ok || !s.explicit[f] || anyContains(c.cfg.serviceCIDRs[f], ip) {
				continue
			}
			if first == nil {
				first = s
			}
			n++
		}
		if first == nil {
			continue
		}
		c.cfg.unknownCIDRs[f] = true
		more := ""
		if n > 1 {
			more = fmt.Sprintf(", as are those of %d more Services", n-1)
		}
		allocated := 0
		for _, s := range c.svcs {
			if _, ok := s.ips[f]; ok && !s.explicit[f] {
				allocated++
			}
		}
		also := ""
		switch {
		case allocated == 1:
			also = ", and the cluster IP kpc allocated is from that default range, which the cluster may not use"
		case allocated > 1:
			also = fmt.Sprintf(", and the %d cluster IPs kpc allocated are from that default range, which the cluster may not use", allocated)
		}
		c.addNote("", fmt.Sprintf("cluster IP %s of %s is outside the default %s service CIDR %s%s: the cluster's range is not known, so no %s address is dropped as unallocated%s; give --service-cidr with the cluster's ranges",
			first.ips[f], first.id, f, c.cfg.serviceCIDRs[f][0], more, f, also))
	}
}

// knownServiceCIDRs returns the Service ranges of family f for its
// Ruleset: none when the input contradicts the default range (see
// checkDefaultServiceCIDRs).
func (c *config) knownServiceCIDRs(f ir.Family) []netip.Prefix {
	if c.unknownCIDRs[f] {
		return nil
	}
	return slices.Clone(c.serviceCIDRs[f])
}

func clusterIPPath(s *svc, f ir.Family) string {
	sp := s.spec()
	for i, str := range sp.ClusterIPs {
		if ip, ok := parseIP(str); ok && familyOf(ip) == f {
			return fmt.Sprintf("spec.clusterIPs[%d]", i)
		}
	}
	return "spec.clusterIP"
}

// resolveFamilies sets s.ips (explicit) and s.want (to allocate) following
// the API server's defaulting (VALIDATION.md D11-D14).
func (c *compiler) resolveFamilies(s *svc) {
	sp := s.spec()
	ips := sp.ClusterIPs
	path := "spec.clusterIPs"
	if len(ips) == 0 && sp.ClusterIP != "" {
		ips, path = []string{sp.ClusterIP}, "spec.clusterIP"
	}
	var fams []ir.Family
	for i, str := range ips {
		p := path
		if path == "spec.clusterIPs" {
			p = fmt.Sprintf("spec.clusterIPs[%d]", i)
		}
		ip, ok := parseIP(str)
		if !ok {
			c.diags.Add(s.pos, s.obj, p, fmt.Sprintf("invalid cluster IP %q", str))
			continue
		}
		f := familyOf(ip)
		if _, dup := s.ips[f]; dup {
			c.diags.Add(s.pos, s.obj, p, fmt.Sprintf("a second %s cluster IP (%s) is not allowed", f, ip))
			continue
		}
		s.ips[f] = ip
		s.explicit[f] = true
		fams = append(fams, f)
	}
	requested := map[ir.Family]int{} // family -> index in spec.ipFamilies
	if len(fams) == 0 {
		for i, name := range sp.IPFamilies {
			f, ok := familyNamed(name)
			if !ok || slices.Contains(fams, f) {
				continue
			}
			fams = append(fams, f)
			requested[f] = i
		}
		if len(fams) == 0 && len(ips) == 0 {
			fams = []ir.Family{c.cfg.primaryFamily}
		}
	}
	bothKnown := len(c.cfg.serviceCIDRs[ir.IPv4]) > 0 && len(c.cfg.serviceCIDRs[ir.IPv6]) > 0
	policy := sp.IPFamilyPolicy
	// A PreferDualStack Service that states its cluster IPs and its
	// families has been through an API server (a kubectl dump): on a
	// single-stack cluster it keeps one family, and the families it
	// states are the cluster's choice.
	resolved := policy == "PreferDualStack" && len(s.explicit) > 0 && len(sp.IPFamilies) == len(s.explicit)
	if (policy == "PreferDualStack" || policy == "RequireDualStack") && len(fams) == 1 && !resolved {
		if bothKnown {
			other := ir.IPv6
			if fams[0] == ir.IPv6 {
				other = ir.IPv4
			}
			fams = append(fams, other)
		} else if policy == "RequireDualStack" && !c.rangesUnsure {
			c.diags.Add(s.pos, s.obj, "spec.ipFamilyPolicy", "RequireDualStack needs service CIDRs of both families (--service-cidr or ServiceCIDR documents)")
		}
	}
	s.fams = fams
	for _, f := range fams {
		if s.explicit[f] {
			continue
		}
		if len(c.cfg.serviceCIDRs[f]) == 0 {
			if c.rangesUnsure {
				continue // the invalid ServiceCIDR may be of f
			}
			p := "spec.ipFamilies"
			if i, ok := requested[f]; ok {
				p = fmt.Sprintf("spec.ipFamilies[%d]", i)
			}
			c.diags.Add(s.pos, s.obj, p, fmt.Sprintf("%s is not configured on this cluster (no %s range in --service-cidr or the ServiceCIDR documents)", f, f))
			continue
		}
		s.want = append(s.want, f)
	}
}

// familyNamed returns the family spelt as in spec.ipFamilies.
func familyNamed(name string) (ir.Family, bool) {
	switch name {
	case "IPv4":
		return ir.IPv4, true
	case "IPv6":
		return ir.IPv6, true
	}
	return 0, false
}

// ipPool allocates addresses of one CIDR by hashed offset with linear
// probing. Offsets 0 (network) and 1 (default/kubernetes) are never
// allocated, nor the IPv4 broadcast address.
type ipPool struct {
	base  netip.Addr
	first uint64 // first usable offset
	n     uint64 // number of usable offsets
}

func newIPPool(p netip.Prefix) *ipPool {
	host := p.Addr().BitLen() - p.Bits()
	if host > 63 {
		host = 63
	}
	size := uint64(1) << uint(host)
	last := size - 1 // IPv6: the last address is usable
	if p.Addr().Is4() {
		last = size - 2 // broadcast excluded
	}
	pool := &ipPool{base: p.Masked().Addr(), first: 2}
	if size >= 4 && last >= 2 {
		pool.n = last - 2 + 1
	}
	return pool
}

func (p *ipPool) addr(off uint64) netip.Addr {
	b := p.base.As16()
	v := new(big.Int).SetBytes(b[:])
	v.Add(v, new(big.Int).SetUint64(off))
	var out [16]byte
	v.FillBytes(out[:])
	a := netip.AddrFrom16(out)
	if p.base.Is4() {
		return a.Unmap()
	}
	return a
}

// alloc returns the first free address probing from the hashed offset, the
// hashed address itself, and false when the pool is full.
func (p *ipPool) alloc(hash uint64, taken func(netip.Addr) bool) (netip.Addr, netip.Addr, bool) {
	if p.n == 0 {
		return netip.Addr{}, netip.Addr{}, false
	}
	start := hash % p.n
	hashed := p.addr(p.first + start)
	// A free offset exists within (number taken + 1) probes; the loop
	// bound also covers a completely full pool.
	for k := uint64(0); k < p.n; k++ {
		a := p.addr(p.first + (start+k)%p.n)
		if !taken(a) {
			return a, hashed, true
		}
	}
	return netip.Addr{}, hashed, false
}

// allocateNodePorts reserves explicit nodePorts and healthCheckNodePorts in
// processing order (a duplicate across Services is an error on the later
// one, whose port then has no nodePort), shares a nodePort among ports
// with the same port number, then allocates the missing ones.
func (c *compiler) allocateNodePorts() {
	owner := map[int]string{}
	lo, hi := c.cfg.nodePortLo, c.cfg.nodePortHi
	for _, s := range c.svcs {
		if !s.hasNodePorts() {
			continue
		}
		for i, sp := range s.spec().Ports {
			np := int(sp.NodePort)
			if np == 0 {
				continue
			}
			if np < 1 || np > 65535 {
				s.npConflict[i] = true
				continue
			}
			if other, taken := owner[np]; taken && other != s.id {
				c.diags.Add(s.pos, s.obj, fmt.Sprintf("spec.ports[%d].nodePort", i), fmt.Sprintf("nodePort %d is already allocated to Service %s", np, other))
				s.npConflict[i] = true
				continue
			}
			owner[np] = s.id
			s.nodePorts[i] = np
		}
		if s.needsHealthCheck() && s.spec().HealthCheckNodePort != 0 {
			hc := int(s.spec().HealthCheckNodePort)
			other, taken := owner[hc]
			switch {
			case hc < 1 || hc > 65535:
			case taken && other != s.id:
				c.diags.Add(s.pos, s.obj, "spec.healthCheckNodePort", fmt.Sprintf("healthCheckNodePort %d is already allocated to Service %s", hc, other))
			default:
				owner[hc] = s.id
				s.hcnp = hc
			}
		}
	}
	var reqs []*requester
	for _, s := range c.svcs {
		ports := s.spec().Ports
		// Share: a port without nodePort takes the nodePort of an
		// earlier-listed or later-listed port with the same number.
		for i := range ports {
			if s.nodePorts[i] != 0 || s.npConflict[i] || !s.allocatesNodePorts() {
				continue
			}
			for j := range ports {
				if j != i && ports[j].Port == ports[i].Port && s.nodePorts[j] != 0 && ports[j].NodePort != 0 {
					s.nodePorts[i] = s.nodePorts[j]
					break
				}
			}
		}
		if s.allocatesNodePorts() {
			byPort := map[int32][]int{}
			var order []int32
			for i, p := range ports {
				if s.nodePorts[i] != 0 || s.npConflict[i] {
					continue
				}
				if _, ok := byPort[p.Port]; !ok {
					order = append(order, p.Port)
				}
				byPort[p.Port] = append(byPort[p.Port], i)
			}
			for _, port := range order {
				key := fmt.Sprintf("%s:%d", s.id, port)
				reqs = append(reqs, &requester{hash: allocHash(key), key: key, s: s, ports: byPort[port]})
			}
		}
		if s.needsHealthCheck() && s.spec().HealthCheckNodePort == 0 {
			key := s.id + ":healthCheckNodePort"
			reqs = append(reqs, &requester{hash: allocHash(key), key: key, s: s, hc: true})
		}
	}
	sortRequesters(reqs)
	n := uint64(hi - lo + 1)
	for _, r := range reqs {
		start := r.hash % n
		hashed := lo + int(start)
		got := 0
		for k := uint64(0); k < n; k++ {
			p := lo + int((start+k)%n)
			if _, taken := owner[p]; !taken {
				got = p
				break
			}
		}
		what := "healthCheckNodePort"
		path := "spec.healthCheckNodePort"
		if !r.hc {
			what = "nodePort"
			var paths []string
			for _, i := range r.ports {
				paths = append(paths, fmt.Sprintf("spec.ports[%d].nodePort", i))
			}
			path = strings.Join(paths, ", ")
		}
		if got == 0 {
			if c.whole() {
				c.diags.Add(r.s.pos, r.s.obj, strings.SplitN(path, ", ", 2)[0], fmt.Sprintf("cannot allocate a %s: no free port in %d-%d", what, lo, hi))
			}
			continue
		}
		owner[got] = r.s.id
		why := "no " + path
		if hashed != got {
			why += fmt.Sprintf("; its hashed port %d was taken by %s", hashed, owner[hashed])
		}
		if r.hc {
			r.s.hcnp = got
			c.addNote(r.s.id, fmt.Sprintf("allocated healthCheckNodePort %d to %s (%s)", got, r.s.id, why))
			continue
		}
		for _, i := range r.ports {
			r.s.nodePorts[i] = got
		}
		c.addNote(r.s.id, fmt.Sprintf("allocated nodePort %d to %s port %d (%s)", got, r.s.id, r.s.spec().Ports[r.ports[0]].Port, why))
	}
}
