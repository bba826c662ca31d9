package golden

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"kpc/compiler/ir"
)

// probeMeta says what a random cluster's probe is aimed at, for the model.
type probeMeta struct {
	svc  *genService
	port genPort
	fam  ir.Family
	// kind is cluster, external, lb, nodeport, hairpin, cluster-unused,
	// external-unused or unallocated.
	kind string
}

// podRange is the local-traffic detector's range of a family, if any.
func (c *genCluster) podRange(f ir.Family) (netip.Prefix, bool) {
	switch {
	case !c.node || c.iface != "":
		return netip.Prefix{}, false
	case c.nodeCIDR:
		return netip.MustParsePrefix(genPodCIDR[f]), true
	case c.clusterCIDR:
		return netip.MustParsePrefix(genClusterCIDR[f]), true
	}
	return netip.Prefix{}, false
}

// endpointSets is kube-proxy's CategorizeEndpoints for one Service port
// (SEMANTICS.md 1.6): the cluster endpoints, the local ones, and whether
// there is any usable endpoint at all.
func (c *genCluster) endpointSets(s *genService, p genPort, f ir.Family) (cluster, local []string, hasAny bool) {
	if s.noSlice || p.name == s.missingPort {
		return nil, nil, false
	}
	var ready, servTerm, localReady, localServTerm []string
	for _, e := range s.endpoints[f] {
		isReady := e.ready == nil || *e.ready
		serving := e.serving == nil || *e.serving
		terminating := e.terminating != nil && *e.terminating
		if s.mirror {
			// v1 Endpoints know ready and not ready only.
			serving, terminating = isReady, false
		}
		ap := netip.AddrPortFrom(e.addr, p.target).String()
		local := e.local && c.node
		switch {
		case isReady:
			ready = append(ready, ap)
			if local {
				localReady = append(localReady, ap)
			}
		case serving && terminating:
			servTerm = append(servTerm, ap)
			if local {
				localServTerm = append(localServTerm, ap)
			}
		}
	}
	cluster, local = ready, localReady
	if len(cluster) == 0 {
		cluster = servTerm
	}
	if len(local) == 0 {
		local = localServTerm
	}
	slices.Sort(cluster)
	slices.Sort(local)
	return slices.Compact(cluster), slices.Compact(local), len(ready)+len(servTerm) > 0
}

// servesNodePort reports whether dst serves NodePorts in a mode.
func (c *genCluster) servesNodePort(dst netip.Addr, mode ir.Mode) bool {
	if dst.IsLoopback() {
		return mode == ir.ModeIPTables && dst.Is4() && len(c.nodePortAddrs) == 0 && (c.localhostNP == nil || *c.localhostNP)
	}
	if len(c.nodePortAddrs) > 0 {
		for _, s := range c.nodePortAddrs {
			if netip.MustParsePrefix(s).Contains(dst) {
				return true
			}
		}
		return false
	}
	if !c.node || mode == ir.ModeIPTables {
		return true // every local address
	}
	// nftables mode: the node's primary address of each family.
	f := ir.IPv4
	if dst.Is6() {
		f = ir.IPv6
	}
	return len(c.nodeIPs[f]) > 0 && c.nodeIPs[f][0] == dst
}

// model is the fate SEMANTICS.md gives a probe in a mode. ok is false
// when the model leaves the case open.
func (c *genCluster) model(m probeMeta, pkt Packet, mode ir.Mode) (want Expect, checkMasq, ok bool) {
	nft := mode == ir.ModeNFT
	switch m.kind {
	case "unallocated":
		// kpc writes a table only for a family with a proxied Service
		// (Compile's doc); kube-proxy's proxier of a family without one
		// would still drop the unallocated addresses of its range.
		if nft && c.proxied(m.fam) {
			return Expect{Verdict: "drop"}, false, true
		}
		return Expect{Verdict: "untouched"}, false, true
	case "cluster-unused":
		if m.svc.otherProxy {
			return c.notWatched(m, nft)
		}
		if nft {
			return Expect{Verdict: "reject"}, false, true
		}
		return Expect{Verdict: "untouched"}, false, true
	case "external-unused":
		return Expect{Verdict: "untouched"}, false, true
	}
	s, p, f := m.svc, m.port, m.fam
	if s.typ == "Headless" || s.typ == "ExternalName" {
		// kube-proxy skips Services without a cluster IP.
		return Expect{Verdict: "untouched"}, false, true
	}
	if s.otherProxy {
		return c.notWatched(m, nft)
	}
	if m.kind == "lb" && s.proxyMode {
		// LB ingress with ipMode Proxy is not programmed.
		return Expect{Verdict: "untouched"}, false, true
	}
	cluster, local, hasAny := c.endpointSets(s, p, f)
	if m.kind == "nodeport" && !c.servesNodePort(pkt.Dst, mode) {
		// iptables mode checks a NodePort without (external) endpoints
		// on every local address (the probes' are all local).
		switch {
		case !nft && !hasAny:
			return Expect{Verdict: "reject"}, false, true
		case !nft && s.eTPLocal && len(local) == 0:
			return Expect{Verdict: "drop"}, false, true
		}
		return Expect{Verdict: "untouched"}, false, true
	}
	pods, detector := c.podRange(f)
	isPod := detector && pods.Contains(pkt.Src)
	fromNode := pkt.FromNode
	if c.node && c.iface != "" {
		// A pod's packet arrives on the detector's interface; the node's
		// own arrives on none.
		in := pkt.InIface
		detector = true
		isPod = !fromNode && in != "" && (in == c.iface || c.ifacePrefix && strings.HasPrefix(in, c.iface))
	}
	// The LB IPs are allowed sources when a range holds the node's
	// address, which kpc knows only from a Node.
	blocked := m.kind == "lb" && s.sourceRanges && !netip.MustParsePrefix(genAllowed[f][0]).Contains(pkt.Src) &&
		!(s.rangesNode && (netip.MustParsePrefix(genAllowed[f][1]).Contains(pkt.Src) || c.node && pkt.Src == s.lbIPs[f]))
	if !hasAny {
		switch {
		case !nft && fromNode && (m.kind == "external" || m.kind == "lb") && !slices.Contains(c.nodeIPs[f], pkt.Dst):
			// iptables mode checks external addresses on the input and
			// forward paths only: the packet leaves the node.
			return Expect{Verdict: "untouched"}, false, true
		case blocked && nft:
			return Expect{}, false, false
		}
		// iptables mode has no source ranges for a Service without
		// endpoints.
		return Expect{Verdict: "reject"}, false, true
	}
	if blocked {
		return Expect{Verdict: "drop"}, false, true
	}
	dnat := func(eps []string, masq bool) (Expect, bool, bool) {
		if len(eps) == 0 {
			return Expect{Verdict: "drop"}, false, true
		}
		// An endpoint reached from its own address is masqueraded
		// (hairpin), but an endpoint on a node address (host network)
		// never is: the packet is delivered locally, without the
		// postrouting hook. The expectation says whether any endpoint
		// is.
		anyMasq := false
		for _, e := range eps {
			a := netip.MustParseAddrPort(e).Addr()
			if !slices.Contains(c.nodeIPs[f], a) && (masq || a == pkt.Src) {
				anyMasq = true
			}
		}
		masq = anyMasq
		return Expect{Verdict: "dnat", Endpoints: eps, Masquerade: masq}, true, true
	}
	switch m.kind {
	case "cluster", "hairpin":
		eps := cluster
		if s.iTPLocal {
			eps = local
		}
		return dnat(eps, c.masqAll || (detector && !isPod))
	}
	// External destinations: externalIPs, LB IPs, NodePorts.
	if !s.eTPLocal {
		return dnat(cluster, true)
	}
	switch {
	case isPod:
		return dnat(cluster, false)
	case fromNode:
		return dnat(cluster, true)
	}
	return dnat(local, false)
}

// proxied reports whether a family has a Service kube-proxy proxies (kpc
// then writes that family's table).
func (c *genCluster) proxied(f ir.Family) bool {
	return slices.ContainsFunc(c.svcs, func(s *genService) bool {
		_, ok := s.clusterIPs[f]
		return ok && !s.otherProxy
	})
}

// notWatched is the fate of a packet to a Service kube-proxy does not
// watch (labelled for another proxy): its cluster IP is an address of the
// Service range that no proxied Service holds, dropped by nftables mode;
// its other addresses are not kube-proxy's.
func (c *genCluster) notWatched(m probeMeta, nft bool) (Expect, bool, bool) {
	if nft && c.proxied(m.fam) && (m.kind == "cluster" || m.kind == "hairpin" || m.kind == "cluster-unused") {
		return Expect{Verdict: "drop"}, false, true
	}
	return Expect{Verdict: "untouched"}, false, true
}

// checkModel compares the tracer's expectations (already in flows) with
// the model of SEMANTICS.md, in both modes.
func (c *genCluster) checkModel(flows []Flow, metas []probeMeta, nodeIPs []netip.Addr, epAddrs map[netip.Addr]bool) []string {
	var out []string
	for i, f := range flows {
		pkt, err := f.Resolve(nodeIPs)
		if err != nil {
			continue
		}
		pkt.Arrive(epAddrs)
		for _, mode := range []ir.Mode{ir.ModeNFT, ir.ModeIPTables} {
			want, checkMasq, ok := c.model(metas[i], pkt, mode)
			if !ok {
				continue
			}
			got := f.For(mode)
			if want.Verdict == "untouched" && got.Verdict == "accept" {
				continue
			}
			bad := got.Verdict != want.Verdict || !slices.Equal(got.Endpoints, want.Endpoints) ||
				(checkMasq && got.Masquerade != want.Masquerade)
			if bad {
				out = append(out, fmt.Sprintf("model (%s): flow %q (%s -> %s): tracer %s, SEMANTICS.md model %s",
					modeName(mode), f.Name, f.From, f.To, describeExpect(got), describeExpect(want)))
			}
		}
	}
	return out
}
