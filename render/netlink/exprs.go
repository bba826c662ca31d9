//go:build linux

package netlink

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"kpc/compiler/ir"
)

// This file spells single nft statements as the expressions nft 1.0.6
// generates for them (verified with "nft --debug=netlink"), so that a
// table built here lists exactly like one loaded from render.NFT's text.

// family holds what differs between the IPv4 and the IPv6 table.
type family struct {
	ir       ir.Family
	table    nftables.TableFamily
	proto    uint32 // NFPROTO_* for NAT
	addrLen  uint32 // bytes of an address
	saddrOff uint32 // network-header offset of the source address
	daddrOff uint32 // ... and of the destination address
	addrType nftables.SetDatatype
	// loopback is the destination never served as a NodePort.
	loopback netip.Prefix
	// rejectCode is ICMP(v6) port unreachable.
	rejectCode uint8
}

var (
	famIPv4 = family{ir.IPv4, nftables.TableFamilyIPv4, unix.NFPROTO_IPV4, 4, 12, 16, nftables.TypeIPAddr,
		netip.MustParsePrefix("127.0.0.0/8"), 3}
	famIPv6 = family{ir.IPv6, nftables.TableFamilyIPv6, unix.NFPROTO_IPV6, 16, 8, 24, nftables.TypeIP6Addr,
		netip.MustParsePrefix("::1/128"), 4}
)

// words is the number of 32-bit registers an address takes.
func (f family) words() uint32 { return f.addrLen / 4 }

// reg converts an offset in 32-bit registers from the start of register 1
// to the register number nft uses: the 128-bit register when the offset is
// aligned to one, the 32-bit register otherwise (as nft's
// netlink_put_register does).
func reg(off uint32) uint32 {
	if off%4 == 0 {
		return unix.NFT_REG_1 + off/4
	}
	return unix.NFT_REG32_00 + off
}

// Values of ct state, ct status and fib results, in host byte order as the
// kernel keeps them.
const (
	ctStateNew     = 1 << 3 // NF_CT_STATE_BIT(IP_CT_NEW)
	ctStatusDNAT   = 1 << 5 // IPS_DST_NAT
	fibAddrLocal   = 2      // RTN_LOCAL
	rejectICMPType = unix.NFT_REJECT_ICMP_UNREACH
)

func ne32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }
func be16(v uint16) []byte { return binaryutil.BigEndian.PutUint16(v) }

// protoNum is the IP protocol number of a Service protocol.
func protoNum(p ir.Protocol) byte {
	switch p {
	case ir.UDP:
		return unix.IPPROTO_UDP
	case ir.SCTP:
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

// verdict spells "jump", "goto", "drop" or "return".
func verdict(kind expr.VerdictKind, chain string) expr.Any {
	return &expr.Verdict{Kind: kind, Chain: chain}
}

// ctStateNewExprs is "ct state new".
func ctStateNewExprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne32(ctStateNew), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne32(0)},
	}
}

// ctStatusDNATExprs is "ct status dnat".
func ctStatusDNATExprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne32(ctStatusDNAT), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ne32(0)},
	}
}

// markSet is "meta mark set meta mark | m", or with xor "meta mark set
// meta mark ^ m".
func markSet(m uint32, xor bool) []expr.Any {
	mask := ^m
	if xor {
		mask = 0xffffffff
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne32(mask), Xor: ne32(m)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// markClear is "meta mark & m == 0x00000000".
func markClear(m uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne32(m), Xor: ne32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne32(0)},
	}
}

// loadAddr loads the source or destination address into register r.
func (f family) loadAddr(src bool, r uint32) *expr.Payload {
	off := f.daddrOff
	if src {
		off = f.saddrOff
	}
	return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen}
}

// loadDport loads the transport destination port ("th dport") into r.
func loadDport(r uint32) *expr.Payload {
	return &expr.Payload{DestRegister: r, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// loadL4proto loads "meta l4proto" into r.
func loadL4proto(r uint32) *expr.Meta {
	return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r}
}

// addrEq is "ip saddr A" / "ip daddr A" (or !=).
func (f family) addrEq(src bool, a netip.Addr, op expr.CmpOp) []expr.Any {
	return []expr.Any{f.loadAddr(src, 1), &expr.Cmp{Op: op, Register: 1, Data: a.AsSlice()}}
}

// prefixMatch is "ip saddr P" (or !=) for one prefix: a byte-aligned prefix
// loads only its bytes, any other is masked with bitwise.
func (f family) prefixMatch(src bool, p netip.Prefix, op expr.CmpOp) []expr.Any {
	bits := uint32(p.Bits())
	a := p.Masked().Addr().AsSlice()
	if bits%8 == 0 && bits > 0 {
		ld := f.loadAddr(src, 1)
		ld.Len = bits / 8
		return []expr.Any{ld, &expr.Cmp{Op: op, Register: 1, Data: a[:bits/8]}}
	}
	mask := make([]byte, f.addrLen)
	for i := uint32(0); i < bits; i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		f.loadAddr(src, 1),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: f.addrLen, Mask: mask, Xor: make([]byte, f.addrLen)},
		&expr.Cmp{Op: op, Register: 1, Data: a},
	}
}

// rangeMatch is "ip saddr A-B" (or !=).
func (f family) rangeMatch(src bool, lo, hi netip.Addr, neq bool) []expr.Any {
	if neq {
		return []expr.Any{f.loadAddr(src, 1),
			&expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: lo.AsSlice(), ToData: hi.AsSlice()}}
	}
	return []expr.Any{
		f.loadAddr(src, 1),
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: lo.AsSlice()},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: hi.AsSlice()},
	}
}

// fibLocal is "fib saddr type local" or "fib daddr type local".
func fibLocal(src bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagSADDR: src, FlagDADDR: !src},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne32(fibAddrLocal)},
	}
}

// serviceKey loads "<l3> daddr . meta l4proto . th dport" from register 1.
func (f family) serviceKey() []expr.Any {
	w := f.words()
	return []expr.Any{f.loadAddr(false, 1), loadL4proto(reg(w)), loadDport(reg(w + 1))}
}

// nodePortKey loads "meta l4proto . th dport" from register 1.
func nodePortKey() []expr.Any {
	return []expr.Any{loadL4proto(1), loadDport(reg(1))}
}

// lookup is "@set" on register 1.
func lookup(s *nftables.Set, invert bool) *expr.Lookup {
	return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert}
}

// vmap is "vmap @set" on register 1.
func vmap(s *nftables.Set) *expr.Lookup {
	return &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: s.Name, SetID: s.ID}
}

// protoEq is "meta l4proto P".
func protoEq(p ir.Protocol) []expr.Any {
	return []expr.Any{loadL4proto(1), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNum(p)}}}
}

// dnat is "meta l4proto P dnat to A:port".
func (f family) dnat(d *ir.DNAT) []expr.Any {
	return append(protoEq(d.Protocol),
		&expr.Immediate{Register: 1, Data: d.Addr.AsSlice()},
		&expr.Immediate{Register: 2, Data: be16(d.Port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.proto, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

// numgen is "numgen random mod n offset off".
func numgen(n int, off uint32) *expr.Numgen {
	return &expr.Numgen{Register: 1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM, Offset: off}
}

// loweredDNAT is "meta l4proto P dnat <l3> to numgen random mod N offset
// B map @m".
func (f family) loweredDNAT(p ir.Protocol, n int, off uint32, m *nftables.Set) []expr.Any {
	return append(protoEq(p),
		numgen(n, off),
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.proto, RegAddrMin: 1, RegProtoMin: reg(f.words()), Specified: true},
	)
}

// reject is "reject" (ICMP or ICMPv6 port unreachable).
func (f family) reject() expr.Any {
	return &expr.Reject{Type: rejectICMPType, Code: f.rejectCode}
}
