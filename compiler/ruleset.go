package compiler

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"kpc/compiler/ir"
)

// builder accumulates one family's Ruleset. Dispatch keys are owned by the
// first Service (in processing order) that claims them; a later Service
// claiming the same key gets an error and no entry.
type builder struct {
	c  *compiler
	f  ir.Family
	rs *ir.Ruleset

	keyOwner   map[svcKey]string
	npOwner    map[npKey]string
	reported   map[string]bool
	services   map[svcKey]bool
	firewall   map[svcKey]bool
	noEndpoint map[svcKey]bool
	nodePorts  map[npKey]bool
	noEndpNP   map[npKey]bool
	clusterIPs map[netip.Addr]bool
	hcPorts    map[uint16]bool
	chains     map[string]bool
	sets       map[string]bool
}

type svcKey struct {
	addr  netip.Addr
	proto ir.Protocol
	port  uint16
}

type npKey struct {
	proto ir.Protocol
	port  uint16
}

// buildRuleset compiles every Service proxied in family f; it returns nil
// when there is none.
func (c *compiler) buildRuleset(f ir.Family) *ir.Ruleset {
	b := &builder{
		c: c, f: f,
		rs: &ir.Ruleset{
			Family:           f,
			Table:            tableName,
			MasqMark:         c.cfg.masqMark,
			Node:             c.cfg.irNode(f),
			RejectClusterIPs: true,
			ServiceCIDRs:     slices.Clone(c.cfg.serviceCIDRs[f]),
		},
		keyOwner:   map[svcKey]string{},
		npOwner:    map[npKey]string{},
		reported:   map[string]bool{},
		services:   map[svcKey]bool{},
		firewall:   map[svcKey]bool{},
		noEndpoint: map[svcKey]bool{},
		nodePorts:  map[npKey]bool{},
		noEndpNP:   map[npKey]bool{},
		clusterIPs: map[netip.Addr]bool{},
		hcPorts:    map[uint16]bool{},
		chains:     map[string]bool{},
		sets:       map[string]bool{},
	}
	b.rs.DropServiceCIDRs = len(b.rs.ServiceCIDRs) > 0
	for _, s := range c.svcs {
		if _, ok := s.ips[f]; ok {
			b.addService(s)
		}
	}
	if len(b.rs.ClusterIPs) == 0 {
		return nil
	}
	b.sort()
	return b.rs
}

// claim reports whether Service s may use dispatch key k; the first
// claimant owns it.
func (b *builder) claim(s *svc, k svcKey, path string) bool {
	owner, ok := b.keyOwner[k]
	if !ok {
		b.keyOwner[k] = s.id
		return true
	}
	if owner == s.id {
		return true
	}
	b.conflict(s, path, fmt.Sprintf("%s port %d/%s is already used by Service %s", k.addr, k.port, k.proto, owner))
	return false
}

func (b *builder) claimNodePort(s *svc, k npKey, path string) bool {
	owner, ok := b.npOwner[k]
	if !ok {
		b.npOwner[k] = s.id
		return true
	}
	if owner == s.id {
		return true
	}
	b.conflict(s, path, fmt.Sprintf("nodePort %d/%s is already used by Service %s", k.port, k.proto, owner))
	return false
}

func (b *builder) conflict(s *svc, path, msg string) {
	key := s.id + "\x00" + path + "\x00" + msg
	if b.reported[key] {
		return
	}
	b.reported[key] = true
	b.c.diags.Add(s.pos, s.obj, path, msg)
}

func (b *builder) addServiceEntry(table map[svcKey]bool, list *[]ir.ServiceEntry, e ir.ServiceEntry) {
	k := svcKey{e.Addr, e.Protocol, e.Port}
	if table[k] {
		return
	}
	table[k] = true
	*list = append(*list, e)
}

func (b *builder) addNodePortEntry(table map[npKey]bool, list *[]ir.NodePortEntry, e ir.NodePortEntry) {
	k := npKey{e.Protocol, e.Port}
	if table[k] {
		return
	}
	table[k] = true
	*list = append(*list, e)
}

func (b *builder) addChain(ch *ir.Chain) {
	if b.chains[ch.Name] {
		return
	}
	b.chains[ch.Name] = true
	b.rs.Chains = append(b.rs.Chains, ch)
}

func (b *builder) addAffinitySet(name string, timeout time.Duration, comment string) {
	if b.sets[name] {
		return
	}
	b.sets[name] = true
	b.rs.AffinitySets = append(b.rs.AffinitySets, ir.AffinitySet{Name: name, Timeout: timeout, Comment: comment})
}

func compareServiceEntry(a, b ir.ServiceEntry) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func compareNodePortEntry(a, b ir.NodePortEntry) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func (b *builder) sort() {
	rs := b.rs
	for _, l := range []*[]ir.ServiceEntry{&rs.Services, &rs.Firewall, &rs.NoEndpoints} {
		slices.SortFunc(*l, compareServiceEntry)
	}
	for _, l := range []*[]ir.NodePortEntry{&rs.NodePorts, &rs.NoEndpointNodePorts} {
		slices.SortFunc(*l, compareNodePortEntry)
	}
	slices.SortFunc(rs.ClusterIPs, netip.Addr.Compare)
	slices.Sort(rs.HealthCheckNodePorts)
	slices.SortFunc(rs.Chains, func(x, y *ir.Chain) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(rs.AffinitySets, func(x, y ir.AffinitySet) int { return strings.Compare(x.Name, y.Name) })
}
