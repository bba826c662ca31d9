package ir

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"

	"kpc/internal/par"
)

// TraceComparison tells, for two Tracers, the destinations to which they
// are sure to give every packet the same Result, without tracing: a diff
// of two large Programs then traces only what may have changed.
type TraceComparison struct {
	families []*familyComparison
}

// familyComparison compares the two Tracers' Rulesets of one family.
type familyComparison struct {
	a, b *traceIndex
	// settings is whether everything a trace reads beside the keyed
	// lists and the chains is the same on both sides.
	settings bool
	// chains holds the names of the chains that are the same on both
	// sides, and whose every chain they lead to is.
	chains map[string]bool
}

// Compare prepares the comparison of tr with other (see Same). It reads
// every chain of both once.
func (tr *Tracer) Compare(other *Tracer) *TraceComparison {
	c := &TraceComparison{}
	for _, a := range tr.rulesets {
		for _, b := range other.rulesets {
			if a.rs.Family != b.rs.Family {
				continue
			}
			fc := &familyComparison{a: a, b: b, settings: sameSettings(a.rs, b.rs)}
			if fc.settings {
				fc.chains = sameChains(a.chains, b.chains)
			}
			c.families = append(c.families, fc)
		}
	}
	return c
}

// Same reports whether both Tracers give every packet to dst with
// protocol proto and port port the same Result, in either mode, from any
// source, from the node or not, and sent to the node or not: their
// Rulesets of dst's family have the same settings, the same entries for
// the keys such a packet is looked up by (in the Firewall, Services and
// NoEndpoints lists, and for any NodePort, in the NodePort lists), dst is
// a cluster IP of both or of neither, and every chain the entries lead to
// is the same. False means that the Results may differ.
func (c *TraceComparison) Same(dst netip.Addr, proto Protocol, port uint16) bool {
	dst = dst.Unmap()
	fam := familyOfAddr(dst)
	for _, fc := range c.families {
		if fc.a.rs.Family != fam {
			continue
		}
		if !fc.settings || fc.a.clusterIPs[dst] != fc.b.clusterIPs[dst] {
			return false
		}
		sk, nk := serviceKey{dst, proto, port}, nodePortKey{proto, port}
		return fc.sameEntry(fc.a.firewall, fc.b.firewall, sk) &&
			fc.sameEntry(fc.a.services, fc.b.services, sk) &&
			fc.sameEntry(fc.a.noEndpoints, fc.b.noEndpoints, sk) &&
			fc.sameNodePortEntry(fc.a.nodePorts, fc.b.nodePorts, nk) &&
			fc.sameNodePortEntry(fc.a.noEndpointNodePorts, fc.b.noEndpointNodePorts, nk)
	}
	return false // a family only one side has, or neither
}

// sameEntry reports whether key k has the same entry in a and b (or none
// in both), leading to the same chains.
func (fc *familyComparison) sameEntry(a, b map[serviceKey]ServiceEntry, k serviceKey) bool {
	ea, oka := a[k]
	eb, okb := b[k]
	return oka == okb && (!oka || ea == eb && fc.sameTarget(ea.Target))
}

// sameNodePortEntry is sameEntry for the NodePort lists.
func (fc *familyComparison) sameNodePortEntry(a, b map[nodePortKey]NodePortEntry, k nodePortKey) bool {
	ea, oka := a[k]
	eb, okb := b[k]
	return oka == okb && (!oka || ea == eb && fc.sameTarget(ea.Target))
}

// sameTarget reports whether a target, the same on both sides, leads to
// the same chains.
func (fc *familyComparison) sameTarget(t Target) bool {
	return t.Chain == "" || fc.chains[t.Chain]
}

// sameSettings reports whether a trace reads the same of a and b beside
// their keyed lists and chains (TestRulesetReads lists what a trace
// reads of each field): their Settings, and their health-check ports.
func sameSettings(a, b *Ruleset) bool {
	return reflect.DeepEqual(a.Settings(), b.Settings()) && slices.Equal(a.HealthCheckNodePorts, b.HealthCheckNodePorts)
}

// sameChains returns the names of the chains that are equal in a and b
// and lead only to chains that are. The chains are compared on every
// CPU, then followed.
func sameChains(a, b map[string]*Chain) map[string]bool {
	const (
		equal uint8 = iota + 1 // equal, not yet followed
		visiting
		same
		differs
	)
	names := slices.Collect(maps.Keys(a))
	eq := make([]bool, len(names))
	par.Runs(len(names), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			cb := b[names[i]]
			eq[i] = cb != nil && equalChain(a[names[i]], cb)
		}
	})
	state := make(map[string]uint8, len(names))
	for i, name := range names {
		state[name] = differs
		if eq[i] {
			state[name] = equal
		}
	}
	var visit func(name string) bool
	visit = func(name string) bool {
		switch state[name] {
		case same:
			return true
		case equal:
		default: // differs, missing, or a loop (which Validate rejects)
			return false
		}
		state[name] = visiting
		ok := true
		for _, r := range a[name].Rules {
			switch x := r.Action.(type) {
			case *Goto:
				if x != nil {
					ok = ok && visit(x.Chain)
				}
			case *Balance:
				if x != nil {
					for _, next := range x.Chains {
						ok = ok && visit(next)
					}
				}
			}
		}
		state[name] = differs
		if ok {
			state[name] = same
		}
		return ok
	}
	out := make(map[string]bool, len(names))
	for _, name := range names {
		if visit(name) {
			out[name] = true
		}
	}
	return out
}

// equalChain reports whether a and b hold the same rules (names aside).
func equalChain(a, b *Chain) bool {
	if a.Kind != b.Kind || a.Service != b.Service || a.Protocol != b.Protocol || a.Comment != b.Comment {
		return false
	}
	if a.Endpoint != nil || b.Endpoint != nil {
		return a.Endpoint != nil && b.Endpoint != nil && *a.Endpoint == *b.Endpoint && len(a.Rules) == 0 && len(b.Rules) == 0
	}
	return reflect.DeepEqual(a.Rules, b.Rules)
}
