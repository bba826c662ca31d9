package compiler

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
	"kpc/internal/netparse"
)

// Options are the command-line settings of a compile. Flags win over the
// input's Node and KubeProxyConfiguration documents; a zero Options means
// "take everything from the documents, else kube-proxy's defaults".
type Options struct {
	// NodeName (--node-name) names the node the rules are for; endpoints
	// with this nodeName are local. Empty: KubeProxyConfiguration's
	// hostnameOverride, else the only Node document's name, else no node.
	NodeName string
	// NodeIPs (--node-ip, repeatable) are the node's addresses; the first of
	// each family is its primary address. For a family with none, the
	// Node document's InternalIP then ExternalIP addresses are used.
	NodeIPs []netip.Addr
	// ClusterCIDRs (--cluster-cidr) are the pod ranges of both families;
	// like kube-proxy, only the first of each family is used. Empty:
	// KubeProxyConfiguration's clusterCIDR (or the Node's podCIDRs with
	// detectLocalMode NodeCIDR).
	ClusterCIDRs []netip.Prefix
	// DetectLocalMode (--detect-local-mode), PodBridgeInterface
	// (--pod-bridge-interface) and PodInterfaceNamePrefix
	// (--pod-interface-name-prefix) are kube-proxy's local-traffic
	// detector; each empty one is KubeProxyConfiguration's detectLocalMode,
	// detectLocal.bridgeInterface and detectLocal.interfaceNamePrefix.
	DetectLocalMode, PodBridgeInterface, PodInterfaceNamePrefix string
	// ServiceCIDRs (--service-cidr) are the Service ranges; default
	// 10.96.0.0/12 and fd00:10:96::/108. The family of the first is the
	// cluster's primary family; cluster IPs are allocated from the first
	// range of each family.
	ServiceCIDRs []netip.Prefix
	// NodePortAddresses (--nodeport-addresses) are CIDRs or "primary".
	// Empty: KubeProxyConfiguration's nodePortAddresses, else "primary"
	// (kube-proxy's nftables default).
	NodePortAddresses []string
	// MasqueradeAll (--masquerade-all) masquerades all traffic to cluster
	// IPs. Nil: from KubeProxyConfiguration, else false.
	MasqueradeAll *bool
	// MasqueradeBit (--masquerade-bit) is the mark bit; nil: from
	// KubeProxyConfiguration, else 14 (mark 0x4000).
	MasqueradeBit *int
	// LocalhostNodePorts (iptables mode) serves NodePorts on loopback
	// from the node (see ir.Node.LocalhostNodePorts). Nil: from
	// KubeProxyConfiguration, else true.
	LocalhostNodePorts *bool
	// NodePortRange is the range NodePorts are allocated from; zero means
	// 30000-32767.
	NodePortRange [2]int
	// SkipServices leaves Program.Services empty. The catalog is read only
	// by the DNS renderer and the pod environment (package envvars); a
	// caller that renders rulesets alone saves its time and memory (about
	// 90 MB at 50,000 Services x 10 endpoints).
	SkipServices bool
	// SkipSelfCheck leaves out Compile's check of its own output
	// (ir.Ruleset.Validate, whose failures are "internal error"
	// diagnostics): for callers that hand the Program to a renderer, which
	// validates it before writing anything (render.NFT, render.IPTables,
	// render.DNS, and the netlink renderer through render.NFT).
	SkipSelfCheck bool
	// SkipRulesetBodies leaves each of Program.Rulesets with its family's
	// settings only (Node, ServiceCIDRs, the masquerade mark and the
	// like), without chains, entries or sets. The rulesets are still
	// built, for the checks that report errors (an address or a nodePort
	// claimed twice), then dropped before their chains are sorted: for
	// callers that read only the diagnostics, the catalog and those
	// settings (kpc validate, render.DNS, the pod environment).
	SkipRulesetBodies bool
}

// Defaults used when neither flags nor documents say otherwise.
var (
	defaultServiceCIDRs = []netip.Prefix{
		netip.MustParsePrefix("10.96.0.0/12"),
		netip.MustParsePrefix("fd00:10:96::/108"),
	}
	defaultNodePortRange = [2]int{30000, 32767}
)

const (
	defaultMasqueradeBit  = 14
	defaultAffinitySecond = 10800
	tableName             = "kpc"
	nodePortPrimary       = "primary"
)

var families = []ir.Family{ir.IPv4, ir.IPv6}

// config is the resolved node and proxy context of a compile.
type config struct {
	nodeName string
	zone     string
	// nodeIPs are sorted; primary is the first given of each family.
	nodeIPs map[ir.Family][]netip.Addr
	primary map[ir.Family]netip.Addr
	// podCIDR is the local-traffic detector's range per family (invalid
	// when none).
	podCIDR map[ir.Family]netip.Prefix
	// localIface is the local-traffic detector's interface (detectLocalMode
	// BridgeInterface), or the prefix of its interfaces' names when
	// localIfacePrefix (InterfaceNamePrefix); "" when it is not one by
	// interface.
	localIface       string
	localIfacePrefix bool
	// serviceCIDRs per family, in the order given.
	serviceCIDRs map[ir.Family][]netip.Prefix
	// defaultCIDRs: no --service-cidr was given, serviceCIDRs are kubeadm's
	// defaults.
	defaultCIDRs bool
	// rangesGiven: serviceCIDRs are Options.ServiceCIDRs.
	rangesGiven bool
	// unknownCIDRs marks the families whose default range the input's
	// cluster IPs contradict: the cluster's range is unknown, and nothing
	// is dropped as unallocated (see checkDefaultServiceCIDRs).
	unknownCIDRs  map[ir.Family]bool
	primaryFamily ir.Family
	nodePortAll   map[ir.Family]bool
	// nodePortDefault: no NodePort addresses were configured (see
	// ir.Node.NodePortDefault).
	nodePortDefault map[ir.Family]bool
	nodePortAddrs   map[ir.Family][]netip.Addr
	localhostNP     map[ir.Family]bool
	masqueradeAll   bool
	masqMark        uint32
	tcpLiberal      bool
	nodePortLo      int
	nodePortHi      int
}

// familyOf returns the family of an (unmapped) address.
func familyOf(a netip.Addr) ir.Family {
	if a.Is4() {
		return ir.IPv4
	}
	return ir.IPv6
}

// parseIP parses an IP address the way the compiler uses it, as
// kube-proxy reads one (ParseIPSloppy: a Node's address with leading
// zeros too): IPv4-mapped IPv6 addresses are unmapped and zoned addresses
// are refused.
func parseIP(s string) (netip.Addr, bool) {
	a, ok := netparse.IP(strings.TrimSpace(s))
	if !ok {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseCIDR parses a CIDR and masks it; IPv4-mapped prefixes are refused.
func parseCIDR(s string) (netip.Prefix, bool) {
	p, ok := netparse.CIDR(strings.TrimSpace(s))
	if !ok || p.Addr().Is4In6() {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func sortedByPos[T any](xs []*T, pos func(*T) diag.Pos) []*T {
	out := make([]*T, 0, len(xs))
	for _, x := range xs {
		if x != nil {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b *T) int { return pos(a).Compare(pos(b)) })
	return out
}

// resolveConfig merges flags, the KubeProxyConfiguration and the Node into
// c.cfg.
func (c *compiler) resolveConfig() {
	opts := &c.opts
	cfg := &config{
		nodeIPs:         map[ir.Family][]netip.Addr{},
		primary:         map[ir.Family]netip.Addr{},
		podCIDR:         map[ir.Family]netip.Prefix{},
		serviceCIDRs:    map[ir.Family][]netip.Prefix{},
		unknownCIDRs:    map[ir.Family]bool{},
		nodePortAll:     map[ir.Family]bool{},
		nodePortDefault: map[ir.Family]bool{},
		nodePortAddrs:   map[ir.Family][]netip.Addr{},
		localhostNP:     map[ir.Family]bool{},
	}
	c.cfg = cfg

	var kpc *api.KubeProxyConfiguration
	pcs := sortedByPos(c.in.ProxyConfigs, func(k *api.KubeProxyConfiguration) diag.Pos { return k.Pos })
	pcs = dropCopies(c, pcs, "KubeProxyConfiguration", func(*api.KubeProxyConfiguration) string { return "" },
		func(k *api.KubeProxyConfiguration) *diag.Pos { return &k.Pos })
	if len(pcs) > 0 {
		kpc = pcs[0]
		for _, extra := range pcs[1:] {
			c.diags.Warn(extra.Pos, "KubeProxyConfiguration", "",
				fmt.Sprintf("ignored: only the first KubeProxyConfiguration (%s) is used", kpc.Pos))
		}
	}
	if kpc == nil {
		kpc = &api.KubeProxyConfiguration{}
	}

	// Node name and document.
	name := strings.ToLower(strings.TrimSpace(opts.NodeName))
	if name == "" {
		name = strings.ToLower(strings.TrimSpace(kpc.HostnameOverride))
	}
	nodes := sortedByPos(c.in.Nodes, func(n *api.Node) diag.Pos { return n.Pos })
	nodes = dropCopies(c, nodes, "Node", func(n *api.Node) string { return n.Metadata.Name }, func(n *api.Node) *diag.Pos { return &n.Pos })
	var node *api.Node
	switch {
	case name != "":
		var others []string
		for _, n := range nodes {
			if n.Metadata.Name == name {
				node = n
				break
			}
			others = append(others, n.Metadata.Name)
		}
		if node == nil && len(others) > 0 {
			if len(others) > 3 {
				others = append(others[:3], fmt.Sprintf("%d more", len(others)-3))
			}
			c.addNote("", fmt.Sprintf("no Node of the input is %s, the node compiled for (--node-name or hostnameOverride): the input's Nodes (%s) are not used; the node's addresses are those of --node-ip, its zone unknown",
				name, strings.Join(others, ", ")))
		}
	case len(nodes) == 1:
		node = nodes[0]
		name = node.Metadata.Name
	case len(nodes) > 1:
		c.diags.Warn(nodes[1].Pos, "Node "+nodes[1].Metadata.Name, "",
			"several Nodes and no node name (--node-name or hostnameOverride): compiling for no node")
	}
	cfg.nodeName = name
	if node != nil {
		cfg.zone = node.Metadata.Labels[api.ZoneLabel]
	}

	// Node IPs: flags per family, else the Node's InternalIPs then
	// ExternalIPs (kube-proxy's GetNodeHostIPs order).
	var docIPs []netip.Addr
	if node != nil {
		for _, typ := range []string{"InternalIP", "ExternalIP"} {
			for _, a := range node.Status.Addresses {
				if a.Type != typ {
					continue
				}
				if ip, ok := parseIP(a.Address); ok {
					docIPs = append(docIPs, ip)
				}
			}
		}
	}
	for _, f := range families {
		var ips []netip.Addr
		for _, ip := range opts.NodeIPs {
			ip = ip.Unmap()
			if ip.IsValid() && familyOf(ip) == f {
				ips = append(ips, ip)
			}
		}
		if len(ips) == 0 {
			for _, ip := range docIPs {
				if familyOf(ip) == f {
					ips = append(ips, ip)
				}
			}
		}
		// kube-proxy's bindAddress, when it is an address, is its
		// primary node IP (detectNodeIPs), and so a local one.
		if b, ok := netparse.IP(kpc.BindAddress); ok && len(opts.NodeIPs) == 0 && !b.IsUnspecified() && familyOf(b.Unmap()) == f {
			b = b.Unmap()
			ips = append([]netip.Addr{b}, slices.DeleteFunc(ips, func(a netip.Addr) bool { return a == b })...)
		}
		if len(ips) > 0 {
			cfg.primary[f] = ips[0]
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		cfg.nodeIPs[f] = slices.Compact(ips)
	}

	c.resolvePodCIDRs(kpc, node)
	c.noteMode(kpc.Mode)
	c.resolveServiceCIDRs()
	c.resolveNodePortAddresses(kpc)

	// Masquerading, from the section of kube-proxy's mode: nftables
	// mode reads nftables.*, the others (blank is iptables) iptables.*.
	// The other section is ignored, with a note when it says otherwise.
	section, other := "iptables", "nftables"
	all, bitPtr := kpc.IPTables.MasqueradeAll, kpc.IPTables.MasqueradeBit
	otherAll, otherBit := kpc.NFTables.MasqueradeAll, kpc.NFTables.MasqueradeBit
	if kpc.Mode == "nftables" {
		section, other = other, section
		all, bitPtr, otherAll, otherBit = otherAll, otherBit, all, bitPtr
	}
	mode := kpc.Mode
	if mode == "" {
		mode = "blank, iptables"
	}
	if otherAll && !all && opts.MasqueradeAll == nil {
		c.addNote("", fmt.Sprintf("%s.masqueradeAll is ignored: kube-proxy's mode (%s) reads %s.masqueradeAll", other, mode, section))
	}
	if otherBit != nil && (bitPtr == nil || *bitPtr != *otherBit) && opts.MasqueradeBit == nil {
		c.addNote("", fmt.Sprintf("%s.masqueradeBit is ignored: kube-proxy's mode (%s) reads %s.masqueradeBit", other, mode, section))
	}
	switch {
	case opts.MasqueradeAll != nil:
		cfg.masqueradeAll = *opts.MasqueradeAll
	default:
		cfg.masqueradeAll = kpc.MasqueradeAll || all
	}
	bit, bitFrom, bitPos, bitObj := defaultMasqueradeBit, "", kpc.Pos, "KubeProxyConfiguration"
	switch {
	case opts.MasqueradeBit != nil:
		bit, bitFrom, bitPos, bitObj = *opts.MasqueradeBit, "--masquerade-bit", diag.Pos{}, ""
	case bitPtr != nil:
		bit, bitFrom = int(*bitPtr), section+".masqueradeBit"
	}
	if bit < 0 || bit > 31 {
		c.diags.Add(bitPos, bitObj, bitFrom, fmt.Sprintf("masquerade bit %d is outside 0-31", bit))
		bit = defaultMasqueradeBit
	}
	cfg.masqMark = 1 << uint(bit)
	cfg.tcpLiberal = kpc.Conntrack.TCPBeLiberal

	lh := true
	switch {
	case opts.LocalhostNodePorts != nil:
		lh = *opts.LocalhostNodePorts
	case kpc.IPTables.LocalhostNodePorts != nil:
		lh = *kpc.IPTables.LocalhostNodePorts
	}
	for _, f := range families {
		cfg.localhostNP[f] = lh && f == ir.IPv4 && cfg.localhostNP[f]
	}

	cfg.nodePortLo, cfg.nodePortHi = defaultNodePortRange[0], defaultNodePortRange[1]
	if r := opts.NodePortRange; r != [2]int{} {
		if r[0] < 1 || r[1] > 65535 || r[0] > r[1] {
			c.diags.Add(diag.Pos{}, "", "--service-node-port-range",
				fmt.Sprintf("invalid NodePort range %d-%d; using %d-%d", r[0], r[1], cfg.nodePortLo, cfg.nodePortHi))
		} else {
			cfg.nodePortLo, cfg.nodePortHi = r[0], r[1]
		}
	}
}

// resolvePodCIDRs sets the local-traffic detector's range per family:
// kube-proxy uses the first CIDR of each family only.
func (c *compiler) resolvePodCIDRs(doc *api.KubeProxyConfiguration, node *api.Node) {
	// The flags win over the document.
	kpc := *doc
	flagged := false
	for _, o := range []struct{ flag, to *string }{
		{&c.opts.DetectLocalMode, &kpc.DetectLocalMode},
		{&c.opts.PodBridgeInterface, &kpc.DetectLocal.BridgeInterface},
		{&c.opts.PodInterfaceNamePrefix, &kpc.DetectLocal.InterfaceNamePrefix},
	} {
		if *o.flag != "" {
			*o.to, flagged = *o.flag, true
		}
	}
	var cidrs []netip.Prefix
	var from string
	// --cluster-cidr is kube-proxy's clusterCIDR, which only the
	// ClusterCIDR detector reads.
	if len(c.opts.ClusterCIDRs) > 0 && kpc.DetectLocalMode != "" && kpc.DetectLocalMode != "ClusterCIDR" {
		c.addNote("", fmt.Sprintf("--cluster-cidr is ignored: detectLocalMode %s does not read the cluster's pod range", kpc.DetectLocalMode))
	}
	// So are the interface flags but under their own mode.
	for _, f := range []struct{ flag, value, mode string }{
		{"--pod-bridge-interface", c.opts.PodBridgeInterface, "BridgeInterface"},
		{"--pod-interface-name-prefix", c.opts.PodInterfaceNamePrefix, "InterfaceNamePrefix"},
	} {
		if f.value != "" && kpc.DetectLocalMode != f.mode {
			mode := kpc.DetectLocalMode
			if mode == "" {
				mode = "ClusterCIDR (the default)"
			}
			c.addNote("", fmt.Sprintf("%s is ignored: detectLocalMode is %s, not %s (--detect-local-mode)", f.flag, mode, f.mode))
		}
	}
	switch {
	case len(c.opts.ClusterCIDRs) > 0 && (kpc.DetectLocalMode == "" || kpc.DetectLocalMode == "ClusterCIDR"):
		from = "--cluster-cidr"
		for _, p := range c.opts.ClusterCIDRs {
			if p.IsValid() {
				cidrs = append(cidrs, netip.PrefixFrom(p.Addr().Unmap(), min(p.Bits(), p.Addr().Unmap().BitLen())).Masked())
			}
		}
	case kpc.DetectLocalMode == "NodeCIDR":
		from = "the Node's podCIDRs"
		var list []string
		if node != nil {
			list = node.Spec.PodCIDRs
			if len(list) == 0 && node.Spec.PodCIDR != "" {
				list = []string{node.Spec.PodCIDR}
			}
		}
		for _, s := range list {
			if p, ok := parseCIDR(s); ok {
				cidrs = append(cidrs, p)
			}
		}
		switch {
		case node == nil:
			// No Node compiled for (its document is not in the input):
			// its pod ranges are not known.
			c.addNote("", "detectLocalMode NodeCIDR reads the Node's spec.podCIDRs, and the input has no Node of the node compiled for: no local-traffic detector (no off-cluster masquerade, no pod short-circuit)")
		case len(list) == 0:
			// kube-proxy waits for the Node's pod ranges (waitForPodCIDR)
			// and gives up after five minutes without programming
			// anything.
			pos, object, path := kpc.Pos, "KubeProxyConfiguration", "detectLocalMode"
			if c.opts.DetectLocalMode == "NodeCIDR" {
				pos, object, path = diag.Pos{}, "", "--detect-local-mode"
			}
			c.diags.Add(pos, object, path, fmt.Sprintf("detectLocalMode NodeCIDR reads the Node's spec.podCIDRs, and Node %s has none: kube-proxy waits for them and exits after five minutes", node.Metadata.Name))
		}
	case kpc.DetectLocalMode == "" || kpc.DetectLocalMode == "ClusterCIDR":
		from = "clusterCIDR"
		for _, s := range strings.Split(kpc.ClusterCIDR, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			if p, ok := parseCIDR(s); ok {
				cidrs = append(cidrs, p)
			} else {
				c.diags.Add(kpc.Pos, "KubeProxyConfiguration", "clusterCIDR", fmt.Sprintf("invalid CIDR %q", strings.TrimSpace(s)))
			}
		}
	case kpc.DetectLocalMode == "BridgeInterface" || kpc.DetectLocalMode == "InterfaceNamePrefix":
		// The loader refuses an invalid name; a Program compiled without
		// it goes without a detector.
		name, prefix, field := kpc.DetectLocal.BridgeInterface, false, "bridgeInterface"
		if kpc.DetectLocalMode == "InterfaceNamePrefix" {
			name, prefix, field = kpc.DetectLocal.InterfaceNamePrefix, true, "interfaceNamePrefix"
		}
		if why := ir.IfaceNameProblem(name, prefix); why != "" && flagged {
			// The flags made this detector (the loader refuses a
			// document's own invalid one): kube-proxy would not start.
			flag, from := "--pod-bridge-interface", c.opts.PodBridgeInterface
			if prefix {
				flag, from = "--pod-interface-name-prefix", c.opts.PodInterfaceNamePrefix
			}
			msg := fmt.Sprintf("detectLocalMode %s needs %s or detectLocal.%s (kube-proxy refuses to start without one)", kpc.DetectLocalMode, flag, field)
			switch {
			case name != "" && from != "":
				msg = fmt.Sprintf("invalid value %q: %s", name, why)
			case name != "":
				msg = fmt.Sprintf("detectLocalMode %s with detectLocal.%s %q: %s", kpc.DetectLocalMode, field, name, why)
			}
			c.diags.Add(diag.Pos{}, "", flag, msg)
			break
		} else if why != "" {
			c.addNote("", fmt.Sprintf("detectLocalMode %s with detectLocal.%s %q (%s): no local-traffic detector (no off-cluster masquerade, no pod short-circuit)",
				kpc.DetectLocalMode, field, name, why))
			break
		}
		c.cfg.localIface, c.cfg.localIfacePrefix = name, prefix
	}
	for _, p := range cidrs {
		f := familyOf(p.Addr())
		if first, ok := c.cfg.podCIDR[f]; ok {
			if first != p {
				c.addNote("", fmt.Sprintf("pod CIDR %s from %s ignored: kube-proxy uses only the first %s range (%s)", p, from, f, first))
			}
			continue
		}
		c.cfg.podCIDR[f] = p
	}
}

// documentServiceCIDRs returns the ranges of the input's ServiceCIDR
// documents, which kube-proxy watches: those of the one named "kubernetes"
// first (the API server makes it from its --service-cluster-ip-range, and
// its first range's family is the cluster's primary one), then the others
// by name.
func (c *compiler) documentServiceCIDRs() []netip.Prefix {
	docs := slices.Clone(c.in.ServiceCIDRs)
	docs = slices.DeleteFunc(docs, func(d *api.ServiceCIDR) bool { return d == nil })
	slices.SortStableFunc(docs, func(a, b *api.ServiceCIDR) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Metadata.Name == "kubernetes"), boolInt(b.Metadata.Name == "kubernetes")),
			strings.Compare(a.Metadata.Name, b.Metadata.Name), a.Pos.Compare(b.Pos))
	})
	var out []netip.Prefix
	for _, d := range docs {
		for _, s := range d.Spec.CIDRs {
			if p, err := netip.ParsePrefix(s); err == nil && !slices.Contains(out, p.Masked()) {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// dropCopies returns objs, in position order, without the documents that
// are copies of an earlier one of the same name (a file saved twice, a
// directory mounted from a ConfigMap read with its hidden copy), each
// reported as a copy left out.
func dropCopies[T any](c *compiler, objs []*T, kind string, name func(*T) string, pos func(*T) *diag.Pos) []*T {
	first := map[string]*T{}
	var out []*T
	for _, o := range objs {
		n := name(o)
		f, seen := first[n]
		if seen && api.SameObject(f, o, pos) {
			c.duplicate(*pos(o), *pos(f), kind, n, true)
			continue
		}
		if !seen {
			first[n] = o
		}
		out = append(out, o)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *compiler) resolveServiceCIDRs() {
	cidrs := defaultServiceCIDRs
	var given []netip.Prefix
	for _, p := range c.opts.ServiceCIDRs {
		if p.IsValid() {
			a := p.Addr().Unmap()
			given = append(given, netip.PrefixFrom(a, min(p.Bits(), a.BitLen())).Masked())
		}
	}
	c.cfg.rangesGiven = len(given) > 0
	if len(given) == 0 {
		given = c.documentServiceCIDRs()
	}
	if len(given) > 0 {
		cidrs = given
	}
	c.cfg.defaultCIDRs = len(given) == 0
	c.cfg.primaryFamily = familyOf(cidrs[0].Addr())
	for _, p := range cidrs {
		f := familyOf(p.Addr())
		if !slices.Contains(c.cfg.serviceCIDRs[f], p) {
			c.cfg.serviceCIDRs[f] = append(c.cfg.serviceCIDRs[f], p)
		}
	}
}

// resolveNodePortAddresses applies kube-proxy's NodePortAddresses rules per
// family: "primary" is the node's primary IP; CIDRs of the other family are
// ignored; no CIDR of the family, or a zero-length one, means every local
// address; otherwise the node IPs inside the CIDRs (loopback excluded).
// When none are configured, nftables mode's default is "primary" and
// iptables mode's every local address (ir.Node.NodePortDefault).
func (c *compiler) resolveNodePortAddresses(kpc *api.KubeProxyConfiguration) {
	cfg := c.cfg
	src, from, pos, obj := c.opts.NodePortAddresses, "--nodeport-addresses", diag.Pos{}, ""
	if len(src) == 0 && len(kpc.NodePortAddresses) > 0 {
		src, from, pos, obj = kpc.NodePortAddresses, "nodePortAddresses", kpc.Pos, "KubeProxyConfiguration"
	}
	defaulted := len(src) == 0
	if defaulted {
		src = []string{nodePortPrimary}
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, f := range families {
		var cidrs []netip.Prefix
		for _, s := range src {
			s = strings.TrimSpace(s)
			if s == nodePortPrimary {
				if ip, ok := cfg.primary[f]; ok {
					cidrs = append(cidrs, netip.PrefixFrom(ip, ip.BitLen()))
				}
				continue
			}
			p, ok := parseCIDR(s)
			if !ok {
				if f == ir.IPv4 {
					c.diags.Add(pos, obj, from, fmt.Sprintf("invalid CIDR %q", s))
				}
				continue
			}
			if familyOf(p.Addr()) == f {
				cidrs = append(cidrs, p)
			}
		}
		all := len(cidrs) == 0
		for _, p := range cidrs {
			if p.Bits() == 0 {
				all = true
			}
		}
		var addrs []netip.Addr
		for _, ip := range cfg.nodeIPs[f] {
			if ip.IsLoopback() {
				continue
			}
			if all || anyContains(cidrs, ip) {
				addrs = append(addrs, ip)
			}
		}
		cfg.nodePortAll[f] = all
		cfg.nodePortDefault[f] = defaulted && !all
		cfg.nodePortAddrs[f] = addrs
		// iptables mode serves localhost NodePorts only when the
		// NodePort addresses include 127.0.0.1 (kube-proxy's
		// ContainsIPv4Loopback), as every local address does: the
		// default in that mode.
		cfg.localhostNP[f] = f == ir.IPv4 && (all || defaulted || anyContains(cidrs, loopback))
	}
}

func anyContains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// irNode returns the Ruleset node context for family f.
func (cfg *config) irNode(f ir.Family) ir.Node {
	n := ir.Node{
		Name:               cfg.nodeName,
		IPs:                slices.Clone(cfg.nodeIPs[f]),
		Zone:               cfg.zone,
		NodePortAddrs:      slices.Clone(cfg.nodePortAddrs[f]),
		NodePortAllLocal:   cfg.nodePortAll[f],
		NodePortDefault:    cfg.nodePortDefault[f],
		LocalhostNodePorts: cfg.localhostNP[f],
	}
	if p, ok := cfg.podCIDR[f]; ok {
		n.PodCIDRs = []netip.Prefix{p}
	}
	n.LocalIface, n.LocalIfacePrefix = cfg.localIface, cfg.localIfacePrefix
	return n
}

// noteMode notes a KubeProxyConfiguration mode whose dataplane is not the
// one kpc compiles (the rules of the nftables and iptables modes).
func (c *compiler) noteMode(mode string) {
	switch mode {
	case "ipvs":
		c.addNote("", "the KubeProxyConfiguration's mode is ipvs: kpc compiles the rules of kube-proxy's nftables and iptables modes, "+
			"and a node in ipvs mode serves Services through IPVS, which handles some packets differently")
	case "kernelspace":
		c.addNote("", "the KubeProxyConfiguration's mode is kernelspace, Windows's, which kube-proxy on Linux refuses: "+
			"kpc compiles the rules of kube-proxy's nftables and iptables modes")
	}
}
