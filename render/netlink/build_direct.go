//go:build linux

package netlink

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
)

// This file builds the objects of the direct layout (package nftdirect):
// the maps service-endpoints, sticky-clients and sticky-timeouts,
// sticky-update with its timeout chains and the shared chains, in
// render.NFT's order and spelling.

// stickyClientsSize is the capacity of sticky-clients (render.NFT's).
const stickyClientsSize = 1 << 20

// entryKeyBytes is an entry key as map keys lay it out.
func entryKeyBytes(k nftdirect.Key) []byte {
	if k.Kind == nftdirect.PortKey {
		return nodePortKeyBytes(k.Protocol, k.Port)
	}
	return serviceKeyBytes(k.Addr, k.Protocol, k.Port)
}

// addDirectSets adds the endpoint maps, sticky-clients and
// sticky-timeouts, in that order.
func (b *builder) addDirectSets() {
	d := b.direct
	if d == nil {
		return
	}
	f := b.fam
	dataType := nftables.MustConcatSetType(f.addrType, nftables.TypeInetService)
	for _, m := range d.Maps {
		elems := b.endpointElems(m)
		keyType := nftables.MustConcatSetType(f.addrType, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeInteger)
		record := typeofServiceEndpoints4
		switch {
		case m.Kind == nftdirect.PortKey && f.ir == ir.IPv6:
			record = typeofNodePortEndpoints6
		case m.Kind == nftdirect.PortKey:
			record = typeofNodePortEndpoints4
		case f.ir == ir.IPv6:
			record = typeofServiceEndpoints6
		}
		if m.Kind == nftdirect.PortKey {
			keyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeInteger)
		}
		spec := b.addSet(&nftables.Set{Name: nftdirect.MapName(m.Kind, m.Variant), IsMap: true, Concatenation: true,
			KeyType: keyType, DataType: dataType, Comment: mapComment(m)}, elems)
		spec.userdata = typeofUserdata(record, spec.set.Comment)
	}
	if !d.Sticky() {
		return
	}
	// Not flagged as a concatenation (nft does not either): the kernel
	// then picks a hash, which dynamic updates need.
	b.addSet(&nftables.Set{Name: nftdirect.ClientsMap, IsMap: true,
		KeyType:  nftables.MustConcatSetType(f.addrType, f.addrType, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: dataType, HasTimeout: true, Dynamic: true, Size: stickyClientsSize,
		Comment: "session affinity: client and service address, protocol and port: endpoint"}, nil)
	n := 0
	for _, t := range d.Timeouts {
		n += len(t.Keys)
	}
	es := make([]nftables.SetElement, 0, n)
	for _, t := range d.Timeouts {
		v := &expr.Verdict{Kind: expr.VerdictGoto, Chain: nftdirect.TimeoutChain(t.Timeout)}
		for _, k := range t.Keys {
			es = append(es, nftables.SetElement{Key: entryKeyBytes(k), VerdictData: v})
		}
	}
	b.addSet(&nftables.Set{Name: nftdirect.TimeoutsMap, IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(f.addrType, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: nftables.TypeVerdict, Comment: timeoutsComment}, es)
}

// timeoutsComment is render.NFT's comment of sticky-timeouts.
const timeoutsComment = "session affinity: service address, protocol and port: the chain that records its clients"

// endpointElems spells the elements of endpoints map m: entry key and
// bucket to endpoint address and port (padded to 4 bytes). The keys and
// data of all elements share two arrays.
func (b *builder) endpointElems(m nftdirect.MapUse) []nftables.SetElement {
	d := b.direct
	n := 0
	for i := range d.Entries {
		if e := &d.Entries[i]; e.Key.Kind == m.Kind && m.Variant < len(e.Choices) {
			n += len(e.Choices[m.Variant])
		}
	}
	if n == 0 {
		return nil
	}
	// Protocol and port (4 bytes each) and the bucket, after the address
	// of an address key; the address and port of an endpoint.
	keyLen, valLen := 12, int(b.fam.addrLen)+4
	if m.Kind != nftdirect.PortKey {
		keyLen += int(b.fam.addrLen)
	}
	elems := make([]nftables.SetElement, 0, n)
	keys, vals := make([]byte, 0, n*keyLen), make([]byte, 0, n*valLen)
	for i := range d.Entries {
		e := &d.Entries[i]
		if e.Key.Kind != m.Kind || m.Variant >= len(e.Choices) {
			continue
		}
		key := entryKeyBytes(e.Key)
		for j, ep := range e.Choices[m.Variant] {
			k, v := len(keys), len(vals)
			keys = binary.NativeEndian.AppendUint32(append(keys, key...), uint32(j))
			vals = appendAddr(vals, ep.Addr)
			vals = append(vals, byte(ep.Port>>8), byte(ep.Port), 0, 0)
			elems = append(elems, nftables.SetElement{Key: keys[k:len(keys):len(keys)], Val: vals[v:len(vals):len(vals)]})
		}
	}
	return elems
}

// mapComment is render.NFT's comment of an endpoints map.
func mapComment(m nftdirect.MapUse) string {
	what := "service address, protocol, port"
	if m.Kind == nftdirect.PortKey {
		what = "NodePort protocol, port"
	}
	if m.Variant > 0 {
		return fmt.Sprintf("%s and bucket: endpoint of the choice numbered %d", what, m.Variant)
	}
	return what + " and bucket: endpoint"
}

// addDirectChains creates sticky-update, its timeout chains and the
// shared chains.
func (b *builder) addDirectChains() {
	d := b.direct
	if d == nil {
		return
	}
	if d.Sticky() {
		b.addChain(&nftables.Chain{Name: nftdirect.UpdateChain, Table: b.table})
		for _, t := range d.Timeouts {
			b.addChain(&nftables.Chain{Name: nftdirect.TimeoutChain(t.Timeout), Table: b.table})
		}
	}
	for _, s := range d.Shared {
		b.addChain(&nftables.Chain{Name: s.Name, Table: b.table})
	}
}

// stickyJump is "ct state new ct status dnat jump sticky-update".
func stickyJump() []expr.Any {
	return append(append(ctStateNewExprs(), ctStatusDNATExprs()...), verdict(expr.VerdictJump, nftdirect.UpdateChain))
}

// addDirectRules adds the rules of sticky-update, its timeout chains and
// the shared chains.
func (b *builder) addDirectRules() {
	d := b.direct
	if d == nil {
		return
	}
	f := b.fam
	if d.Sticky() {
		for _, p := range nftdirect.Protocols {
			b.rule(nftdirect.UpdateChain, "", nil, protoEq(p), f.ctServiceKey(), one(vmap(b.sets[nftdirect.TimeoutsMap])))
		}
		for _, t := range d.Timeouts {
			for _, p := range nftdirect.Protocols {
				b.rule(nftdirect.TimeoutChain(t.Timeout), "", nil, protoEq(p), f.stickyRecord(b.sets[nftdirect.ClientsMap], t.Timeout))
			}
		}
	}
	for _, s := range d.Shared {
		c := &ir.Chain{Name: s.Name}
		for j := range s.Rules {
			r := &s.Rules[j]
			m, anon := b.match(c, &r.Match)
			var act []expr.Any
			switch r.Action {
			case nftdirect.MarkAction:
				act = one(verdict(expr.VerdictJump, markMasqChain))
			case nftdirect.DropAction:
				act = one(verdict(expr.VerdictDrop, ""))
			case nftdirect.RejectAction:
				act = one(f.reject())
			case nftdirect.GotoAction:
				act = one(verdict(expr.VerdictGoto, r.Goto))
			case nftdirect.StickyAction:
				act = f.stickyDNAT(b.sets[nftdirect.ClientsMap])
			case nftdirect.ChoiceAction:
				act = f.sharedDNAT(r.Kind, r.N, b.sets[nftdirect.MapName(r.Kind, r.Variant)])
			}
			b.rule(s.Name, "", anon, m, act)
		}
	}
}

// sharedDNAT is "dnat <l3> to <l3> daddr . meta l4proto . th dport .
// numgen random mod n map @m", or for a PortKey "dnat <l3> to meta
// l4proto . th dport . numgen random mod n map @m".
func (f family) sharedDNAT(kind nftdirect.KeyKind, n int, m *nftables.Set) []expr.Any {
	w := f.words()
	if kind == nftdirect.PortKey {
		return []expr.Any{
			loadL4proto(1), loadDport(reg(1)),
			&expr.Numgen{Register: reg(2), Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.proto, RegAddrMin: 1, RegProtoMin: reg(w), Specified: true},
		}
	}
	return []expr.Any{
		f.loadAddr(false, 1), loadL4proto(reg(w)), loadDport(reg(w + 1)),
		&expr.Numgen{Register: reg(w + 2), Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.proto, RegAddrMin: 1, RegProtoMin: reg(w), Specified: true},
	}
}

// stickyDNAT is "dnat <l3> to <l3> saddr . <l3> daddr . meta l4proto . th
// dport map @sticky-clients".
func (f family) stickyDNAT(m *nftables.Set) []expr.Any {
	w := f.words()
	return []expr.Any{
		f.loadAddr(true, 1), f.loadAddr(false, reg(w)), loadL4proto(reg(2 * w)), loadDport(reg(2*w + 1)),
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.proto, RegAddrMin: 1, RegProtoMin: reg(w), Specified: true},
	}
}

// ctAddr loads "ct original <l3> saddr" or "daddr" into r.
func (f family) ctAddr(src bool, r uint32) *expr.Ct {
	key := expr.CtKey(ctKeyDstIP)
	switch {
	case src && f.ir == ir.IPv6:
		key = ctKeySrcIP6
	case src:
		key = ctKeySrcIP
	case f.ir == ir.IPv6:
		key = ctKeyDstIP6
	}
	return &expr.Ct{Register: r, Key: key, Direction: 0}
}

// ctServiceKey loads "ct original <l3> daddr . meta l4proto . ct original
// proto-dst": the key of the Service a DNATed connection was sent to.
func (f family) ctServiceKey() []expr.Any {
	w := f.words()
	return []expr.Any{f.ctAddr(false, 1), loadL4proto(reg(w)), &expr.Ct{Register: reg(w + 1), Key: expr.CtKeyPROTODST}}
}

// stickyRecord is "update @sticky-clients { ct original <l3> saddr . ct
// original <l3> daddr . meta l4proto . ct original proto-dst timeout T :
// <l3> daddr . ct reply proto-src }": the data is the endpoint, the reply's
// source.
func (f family) stickyRecord(m *nftables.Set, timeout time.Duration) []expr.Any {
	w := f.words()
	return []expr.Any{
		f.ctAddr(true, 1), f.ctAddr(false, reg(w)), loadL4proto(reg(2 * w)),
		&expr.Ct{Register: reg(2*w + 1), Key: expr.CtKeyPROTODST},
		f.loadAddr(false, 2), &expr.Ct{Register: reg(4 + w), Key: expr.CtKeyPROTOSRC, Direction: 1},
		&expr.Dynset{SrcRegKey: 1, SrcRegData: 2, SetName: m.Name, SetID: m.ID, Operation: unix.NFT_DYNSET_OP_UPDATE,
			Timeout: timeout},
	}
}

// hairpinKey loads "<l3> saddr . <l3> daddr".
func (f family) hairpinKey() []expr.Any {
	return []expr.Any{f.loadAddr(true, 1), f.loadAddr(false, reg(f.words()))}
}
