package load

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue/ast"

	"kpc/compiler/ir"
	"kpc/internal/netparse"
)

// checkKubeProxyConfig runs the checks of kube-proxy's own validation
// (pkg/proxy/apis/config/validation Validate, after the v1alpha1 defaults)
// that a configuration fails when kube-proxy refuses to start with it,
// for the fields kube-proxy on Linux reads. The schema checks the mode,
// detectLocalMode and iptables.masqueradeBit.
func checkKubeProxyConfig(doc *ast.StructLit) []fieldError {
	var errs []fieldError
	add := func(p fpath, msg string) { errs = append(errs, fieldError{path: p, msg: msg}) }
	str := func(s *ast.StructLit, name string) (string, bool) { return stringLit(get(s, name)) }
	mode, _ := str(doc, "mode")

	// nftables.masqueradeBit is checked in nftables mode only.
	if mode == "nftables" {
		nft := asStruct(get(doc, "nftables"))
		if n, ok := intLit(get(nft, "masqueradeBit")); ok && (n < 0 || n > 31) {
			add(fpath{"nftables", "masqueradeBit"}, fmt.Sprintf("invalid value %d: must be within the range [0, 31]", n))
		}
	}

	// Conntrack: counts and timeouts not negative.
	ct := asStruct(get(doc, "conntrack"))
	for _, name := range []string{"maxPerCore", "min"} {
		if n, ok := intLit(get(ct, name)); ok && n < 0 {
			add(fpath{"conntrack", name}, fmt.Sprintf("invalid value %d: must be greater than or equal to 0", n))
		}
	}
	for _, name := range []string{"tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout", "udpStreamTimeout"} {
		errs = append(errs, checkDuration(ct, fpath{"conntrack", name}, nonNegative)...)
	}
	errs = append(errs, checkDuration(doc, fpath{"configSyncPeriod"}, positive)...)
	errs = append(errs, checkSyncPeriods(doc, modeSection(mode))...)
	// The IPVS timeouts are checked in ipvs mode; a duration kube-proxy
	// cannot decode fails in any mode.
	ipvsCheck := decodes
	if mode == "ipvs" {
		ipvsCheck = nonNegative
	}
	ipvs := asStruct(get(doc, "ipvs"))
	for _, name := range []string{"tcpTimeout", "tcpFinTimeout", "udpTimeout"} {
		errs = append(errs, checkDuration(ipvs, fpath{"ipvs", name}, ipvsCheck)...)
	}
	for _, section := range []string{"iptables", "nftables", "ipvs"} {
		if section == modeSection(mode) {
			continue // checkSyncPeriods checks the mode's section
		}
		s := asStruct(get(doc, section))
		for _, name := range []string{"syncPeriod", "minSyncPeriod"} {
			errs = append(errs, checkDuration(s, fpath{section, name}, decodes)...)
		}
	}

	if n, ok := intLit(get(doc, "oomScoreAdj")); ok && (n < -1000 || n > 1000) {
		add(fpath{"oomScoreAdj"}, fmt.Sprintf("invalid value %d: must be within the range [-1000, 1000]", n))
	}
	if n, ok := intLit(get(asStruct(get(doc, "clientConnection")), "burst")); ok && n < 0 {
		add(fpath{"clientConnection", "burst"}, fmt.Sprintf("invalid value %d: must be greater than or equal to 0", n))
	}
	if s, ok := str(doc, "bindAddress"); ok && s != "" {
		if _, ok := netparse.IP(s); !ok {
			add(fpath{"bindAddress"}, fmt.Sprintf("invalid value %q: not a valid textual representation of an IP address", s))
		}
	}

	// nodePortAddresses: CIDRs, or "primary" alone.
	for i, el := range elems(get(doc, "nodePortAddresses")) {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		p := fpath{"nodePortAddresses"}.index(i)
		if s == "primary" {
			if n := len(elems(get(doc, "nodePortAddresses"))); i != 0 || n != 1 {
				add(p, `invalid value "primary": can't use both 'primary' and CIDRs`)
			}
			break
		}
		if _, ok := netparse.CIDR(s); !ok {
			add(p, fmt.Sprintf("invalid value %q: must be a valid CIDR", s))
		}
	}

	// The local-traffic detector's settings.
	switch local, _ := str(doc, "detectLocalMode"); local {
	case "", "ClusterCIDR":
		if s, ok := str(doc, "clusterCIDR"); ok && s != "" {
			errs = append(errs, checkClusterCIDRs(s)...)
		}
	case "BridgeInterface", "InterfaceNamePrefix":
		name := "bridgeInterface"
		if local == "InterfaceNamePrefix" {
			name = "interfaceNamePrefix"
		}
		s, _ := str(asStruct(get(doc, "detectLocal")), name)
		if s == "" {
			errs = append(errs, fieldError{path: fpath{"detectLocal", name}, at: fpath{"detectLocalMode"},
				msg: fmt.Sprintf("required value: detectLocalMode %s needs it (kube-proxy refuses an empty one)", local)})
		} else if why := ir.IfaceNameProblem(s, local == "InterfaceNamePrefix"); why != "" {
			add(fpath{"detectLocal", name}, fmt.Sprintf("invalid value %q: %s", s, why))
		}
	}
	return errs
}

// modeSection is the section whose sync periods kube-proxy's v1alpha1
// conversion reads for mode: nftables, ipvs, else iptables.
func modeSection(mode string) string {
	if mode == "nftables" || mode == "ipvs" {
		return mode
	}
	return "iptables"
}

// checkSyncPeriods checks the sync periods of section (modeSection),
// after the defaults of a zero one (30s, and 1s for the minimum but in
// the IPVS section): the period positive, the minimum not negative and
// not above the period.
func checkSyncPeriods(doc *ast.StructLit, section string) []fieldError {
	s := asStruct(get(doc, section))
	syncP, minP := fpath{section, "syncPeriod"}, fpath{section, "minSyncPeriod"}
	errs := append(checkDuration(s, syncP, positive), checkDuration(s, minP, nonNegative)...)
	if len(errs) > 0 {
		return errs
	}
	value := func(name string, def time.Duration) time.Duration {
		v, _ := stringLit(get(s, name))
		d, err := time.ParseDuration(v)
		if err != nil || d == 0 {
			return def
		}
		return d
	}
	defMin := time.Second
	if section == "ipvs" {
		defMin = 0 // the IPVS section's minimum has no default
	}
	if sync, minSync := value("syncPeriod", 30*time.Second), value("minSyncPeriod", defMin); minSync > sync {
		at := syncP
		if get(s, "syncPeriod") == nil {
			at = minP
		}
		errs = append(errs, fieldError{path: syncP, at: at,
			msg: fmt.Sprintf("invalid value %s: must be greater than or equal to %s.minSyncPeriod (%s)", sync, section, minSync)})
	}
	return errs
}

// checkClusterCIDRs checks clusterCIDR as kube-proxy reads it: split at
// commas (spaces are not trimmed), one CIDR or a dual-stack pair.
func checkClusterCIDRs(s string) []fieldError {
	p := fpath{"clusterCIDR"}
	cidrs := strings.Split(s, ",")
	const pair = "must be one CIDR or a dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"
	if len(cidrs) > 2 {
		return []fieldError{{path: p, msg: fmt.Sprintf("invalid value %q: %s", s, pair)}}
	}
	var errs []fieldError
	fams := map[bool]int{}
	for _, c := range cidrs {
		pr, ok := netparse.CIDR(c)
		if !ok {
			errs = append(errs, fieldError{path: p, msg: fmt.Sprintf("invalid value %q: %q must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)", s, c)})
			continue
		}
		fams[pr.Addr().Unmap().Is4()]++
	}
	if len(errs) == 0 && len(cidrs) == 2 && len(fams) != 2 {
		errs = append(errs, fieldError{path: p, msg: fmt.Sprintf("invalid value %q: %s", s, pair)})
	}
	return errs
}

// durationCheck is what checkDuration checks of a duration beyond its
// decoding.
type durationCheck int

const (
	// decodes: kube-proxy decodes the field, and validates it in another
	// mode only.
	decodes durationCheck = iota
	// nonNegative: not below 0.
	nonNegative
	// positive: above 0, once the v1alpha1 defaults replaced a zero one
	// (kubeadm writes configSyncPeriod: 0s): so not below 0 either.
	positive
)

// checkDuration checks a metav1.Duration field of s: a string that
// time.ParseDuration reads (else kube-proxy cannot decode its
// configuration), and then what check says.
func checkDuration(s *ast.StructLit, p fpath, check durationCheck) []fieldError {
	e := get(s, p[len(p)-1].(string))
	v, ok := stringLit(e)
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return []fieldError{{path: p, msg: fmt.Sprintf("invalid value %s: must be a duration such as 30s or 1h0m0s (kube-proxy cannot decode it)", strconv.Quote(v))}}
	case check == decodes || d >= 0:
	case check == positive:
		return []fieldError{{path: p, msg: fmt.Sprintf("invalid value %q: must be greater than 0", v)}}
	default:
		return []fieldError{{path: p, msg: fmt.Sprintf("invalid value %q: must be greater than or equal to 0", v)}}
	}
	return nil
}
