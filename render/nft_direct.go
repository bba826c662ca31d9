package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
)

// This file writes the objects of the direct layout (package nftdirect)
// and the fingerprint set.

// nftFingerprintSet holds a table's fingerprint (see NFT).
const nftFingerprintSet = "fingerprint"

// nftStickyClientsSize is the capacity of sticky-clients: kube-proxy gives
// each endpoint's affinity set 65535 clients; one map serves every client
// of every Service with affinity here.
const nftStickyClientsSize = 1 << 20

// nftDirectReserved reports whether name belongs to the direct layout or
// the fingerprint.
func nftDirectReserved(name string) bool {
	switch name {
	case nftdirect.ClientsMap, nftdirect.UpdateChain, nftFingerprintSet:
		return true
	}
	for _, p := range []string{nftdirect.DNATPrefix, nftdirect.StickyPrefix, nftdirect.SharedPrefix,
		nftdirect.EndpointsMap, nftdirect.NodePortEndpointsMap} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// direct is the table's direct layout, or nil.
func (t *nftTable) direct() *nftdirect.Result {
	if !t.lowering || !t.plan.Direct.Lowered() {
		return nil
	}
	return t.plan.Direct
}

// sticky reports whether the table records affinity clients.
func (t *nftTable) sticky() bool {
	d := t.direct()
	return d != nil && d.Sticky()
}

// writeDispatchElems writes the elements of service-ips or firewall-ips:
// an entry of the direct layout goes to its shared chain.
func (t *nftTable) writeDispatchElems(buf *bytes.Buffer, l nftdirect.List, es []ir.ServiceEntry) {
	nftServiceElems(buf, es, t.sharedChain(l))
}

// writeNodePortElems writes the elements of service-nodeports.
func (t *nftTable) writeNodePortElems(buf *bytes.Buffer) {
	nftNodePortElems(buf, t.nodePorts, t.sharedChain(nftdirect.NodePortsList))
}

// sharedChain looks dispatch entries of list l up in the direct layout
// (nil without one).
func (t *nftTable) sharedChain(l nftdirect.List) nftChainFor {
	d := t.direct()
	if d == nil {
		return nil
	}
	return func(k nftdirect.Key) (string, bool) {
		de, ok := d.Lookup(l, k)
		if !ok {
			return "", false
		}
		return de.Chain, true
	}
}

// nftMapTypeof is the typeof declaration of an endpoints map.
func (f nftFamily) mapTypeof(kind nftdirect.KeyKind) string {
	if kind == nftdirect.PortKey {
		return "typeof meta l4proto . th dport . numgen random mod 1 : " + f.l3 + " daddr . th dport"
	}
	return "typeof " + f.l3 + " daddr . meta l4proto . th dport . numgen random mod 1 : " + f.l3 + " daddr . th dport"
}

// nftMapComment is the comment of an endpoints map.
func nftMapComment(m nftdirect.MapUse) string {
	what := "service address, protocol, port"
	if m.Kind == nftdirect.PortKey {
		what = "NodePort protocol, port"
	}
	if m.Variant > 0 {
		return what + " and bucket: endpoint of the choice numbered " + strconv.Itoa(m.Variant)
	}
	return what + " and bucket: endpoint"
}

// writeDirectSets writes the endpoint maps, sticky-clients and
// sticky-timeouts.
func (t *nftTable) writeDirectSets(buf *bytes.Buffer) {
	d := t.direct()
	if d == nil {
		return
	}
	f := t.fam
	for _, m := range d.Maps {
		nftSetHead(buf, "map", nftdirect.MapName(m.Kind, m.Variant), f.mapTypeof(m.Kind), nftMapComment(m), d.MapLen(m))
		buf.WriteString("\t\telements = {\n")
		for i := range d.Entries {
			e := &d.Entries[i]
			if e.Key.Kind != m.Kind || m.Variant >= len(e.Choices) {
				continue
			}
			for n, ep := range e.Choices[m.Variant] {
				buf.WriteString("\t\t\t")
				addr := e.Key.Addr
				if e.Key.Kind != nftdirect.AddrKey {
					addr = netip.Addr{}
				}
				nftWriteKey(buf, addr, e.Key.Protocol, e.Key.Port)
				buf.WriteString(" . ")
				nftWriteUint(buf, uint64(n))
				buf.WriteString(" : ")
				nftWriteDest(buf, ep.Addr, ep.Port)
				buf.WriteString(",\n")
			}
		}
		buf.WriteString("\t\t}\n\t}\n")
	}
	if !d.Sticky() {
		return
	}
	a := f.addrType
	fmt.Fprintf(buf, "\tmap %s {\n\t\ttype %s . %s . inet_proto . inet_service : %s . inet_service\n\t\tsize %d\n\t\tflags dynamic,timeout\n\t\tcomment %s\n\t}\n",
		nftdirect.ClientsMap, a, a, a, nftStickyClientsSize,
		nftQuote("session affinity: client and service address, protocol and port: endpoint"))
	n := 0
	for _, tk := range d.Timeouts {
		n += len(tk.Keys)
	}
	nftSetHead(buf, "map", nftdirect.TimeoutsMap, "type "+a+" . inet_proto . inet_service : verdict", nftTimeoutsComment, n)
	buf.WriteString("\t\telements = {\n")
	for _, tk := range d.Timeouts {
		chain := nftdirect.TimeoutChain(tk.Timeout)
		for _, k := range tk.Keys {
			buf.WriteString("\t\t\t")
			nftWriteKey(buf, k.Addr, k.Protocol, k.Port)
			buf.WriteString(" : goto ")
			buf.WriteString(chain)
			buf.WriteString(",\n")
		}
	}
	buf.WriteString("\t\t}\n\t}\n")
}

// nftTimeoutsComment is the comment of sticky-timeouts.
const nftTimeoutsComment = "session affinity: service address, protocol and port: the chain that records its clients"

// stickyJump is the rule of the filter chains that records affinity
// clients.
const nftStickyJump = "ct state new ct status dnat jump " + nftdirect.UpdateChain

// writeDirectChains writes sticky-update, its timeout chains and the
// shared chains.
func (t *nftTable) writeDirectChains(buf *bytes.Buffer) {
	d := t.direct()
	if d == nil {
		return
	}
	f := t.fam
	if d.Sticky() {
		buf.WriteString("\t# after DNAT: record the endpoint of each new connection to a Service with session affinity\n")
		fmt.Fprintf(buf, "\tchain %s {\n", nftdirect.UpdateChain)
		for _, p := range nftdirect.Protocols {
			fmt.Fprintf(buf, "\t\tmeta l4proto %s ct original %s daddr . meta l4proto . ct original proto-dst vmap @%s\n",
				nftProto(p), f.l3, nftdirect.TimeoutsMap)
		}
		buf.WriteString("\t}\n")
		for _, tk := range d.Timeouts {
			dur := nftDuration(tk.Timeout)
			fmt.Fprintf(buf, "\t# record the client's endpoint for %s\n\tchain %s {\n", dur, nftdirect.TimeoutChain(tk.Timeout))
			for _, p := range nftdirect.Protocols {
				fmt.Fprintf(buf, "\t\tmeta l4proto %s update @%s { ct original %s saddr . ct original %s daddr . meta l4proto . ct original proto-dst timeout %s : %s daddr . ct reply proto-src }\n",
					nftProto(p), nftdirect.ClientsMap, f.l3, f.l3, dur, f.l3)
			}
			buf.WriteString("\t}\n")
		}
	}
	for _, s := range d.Shared {
		entries := "entries"
		if s.Entries == 1 {
			entries = "entry"
		}
		fmt.Fprintf(buf, "\t# %s, shared by %d dispatch %s\n", nftSharedComment(s), s.Entries, entries)
		fmt.Fprintf(buf, "\tchain %s {\n", s.Name)
		c := &ir.Chain{Name: s.Name}
		for j := range s.Rules {
			r := &s.Rules[j]
			buf.WriteString("\t\t")
			t.spellMatch(buf, c, &r.Match)
			switch r.Action {
			case nftdirect.MarkAction:
				buf.WriteString("jump " + nftMarkMasqChain)
			case nftdirect.DropAction:
				buf.WriteString("drop")
			case nftdirect.RejectAction:
				buf.WriteString("reject")
			case nftdirect.GotoAction:
				buf.WriteString("goto " + r.Goto)
			case nftdirect.StickyAction:
				fmt.Fprintf(buf, "dnat %s to %s saddr . %s daddr . meta l4proto . th dport map @%s", f.l3, f.l3, f.l3, nftdirect.ClientsMap)
			case nftdirect.ChoiceAction:
				fmt.Fprintf(buf, "dnat %s to ", f.l3)
				if r.Kind == nftdirect.AddrKey {
					fmt.Fprintf(buf, "%s daddr . ", f.l3)
				}
				fmt.Fprintf(buf, "meta l4proto . th dport . numgen random mod %d map @%s", r.N, nftdirect.MapName(r.Kind, r.Variant))
			}
			buf.WriteString("\n")
		}
		buf.WriteString("\t}\n")
	}
}

// nftSharedComment describes a shared chain.
func nftSharedComment(s nftdirect.Shared) string {
	for _, r := range s.Rules {
		if r.Action == nftdirect.StickyAction {
			return "the client's endpoint (sticky-clients), else a uniform choice"
		}
	}
	if n := len(s.Rules); n > 0 && strings.HasPrefix(s.Name, nftdirect.DNATPrefix) {
		if k := s.Rules[n-1].N; k != 1 {
			return fmt.Sprintf("uniform choice among %d endpoints", k)
		}
		return "the one endpoint"
	}
	return "the " + s.From.String() + " chain of Services of the same shape"
}

// writeFingerprint writes the fingerprint set of a table whose text,
// without it, is head, sets and chains.
func writeFingerprint(buf *bytes.Buffer, head, sets, chains []byte) {
	h := sha256.New()
	h.Write(head)
	h.Write(sets)
	h.Write(chains)
	fmt.Fprintf(buf, "\tset %s {\n\t\ttype inet_service\n\t\tcomment %s\n\t\telements = {\n\t\t\t1 comment \"sha256:%s\",\n\t\t}\n\t}\n",
		nftFingerprintSet, nftQuote("what kpc apply compares with its cache of the last applied table"),
		hex.EncodeToString(h.Sum(nil)))
}
