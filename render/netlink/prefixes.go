//go:build linux

package netlink

import (
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// interval is a closed range of addresses.
type interval struct{ lo, hi netip.Addr }

// lastAddr returns the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// intervals turns prefixes into sorted intervals, merging those that
// overlap or touch, as nft does for the elements of an anonymous set (and
// as render.NFT does when a list covers one contiguous range).
func intervals(ps []netip.Prefix) []interval {
	ivs := make([]interval, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		ivs = append(ivs, interval{p.Masked().Addr(), lastAddr(p)})
	}
	sort.Slice(ivs, func(i, j int) bool {
		if c := ivs[i].lo.Compare(ivs[j].lo); c != 0 {
			return c < 0
		}
		return ivs[i].hi.Compare(ivs[j].hi) > 0
	})
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next := last.hi.Next()
			if iv.lo.Compare(last.hi) <= 0 || next.IsValid() && iv.lo == next {
				if iv.hi.Compare(last.hi) > 0 {
					last.hi = iv.hi
				}
				continue
			}
		}
		out = append(out, iv)
	}
	return out
}

// asPrefix reports whether iv is exactly one prefix.
func (iv interval) asPrefix() (netip.Prefix, bool) {
	for bits := 0; bits <= iv.lo.BitLen(); bits++ {
		p := netip.PrefixFrom(iv.lo, bits)
		if p.Masked().Addr() == iv.lo && lastAddr(p) == iv.hi {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// intervalElems spells intervals as the elements of an interval set: a
// start key per interval and an end key (the first address after it,
// flagged interval-end), with the gap before the first interval closed by
// an end key at the zero address, as nft sends them.
func intervalElems(ivs []interval, addrLen int) []nftables.SetElement {
	var out []nftables.SetElement
	zero := make([]byte, addrLen)
	if len(ivs) > 0 && !isZero(ivs[0].lo.AsSlice()) {
		out = append(out, nftables.SetElement{Key: zero, IntervalEnd: true})
	}
	for _, iv := range ivs {
		out = append(out, nftables.SetElement{Key: iv.lo.AsSlice()})
		if next := iv.hi.Next(); next.IsValid() {
			out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// prefixesMatch spells "ip saddr PREFIXES" (src) or "ip daddr PREFIXES",
// or with neq "!=": one prefix or one contiguous range is compared
// directly, several ranges are looked up in an anonymous interval set,
// which is returned (nil otherwise) so that it can be added before the
// rule.
func (b *builder) prefixesMatch(src bool, ps []netip.Prefix, neq bool) ([]expr.Any, *setSpec) {
	f := b.fam
	ivs := intervals(ps)
	if len(ivs) == 0 {
		return nil, nil
	}
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	if len(ivs) == 1 {
		if p, ok := ivs[0].asPrefix(); ok {
			if p.Bits() == p.Addr().BitLen() {
				return f.addrEq(src, p.Addr(), op), nil
			}
			return f.prefixMatch(src, p, op), nil
		}
		return f.rangeMatch(src, ivs[0].lo, ivs[0].hi, neq), nil
	}
	s := &nftables.Set{
		Table: b.table, Name: "__set%d", ID: b.nextID(), Anonymous: true, Constant: true, Interval: true,
		KeyType: f.addrType,
	}
	spec := &setSpec{set: s, elems: intervalElems(ivs, int(f.addrLen))}
	return []expr.Any{f.loadAddr(src, 1), lookup(s, neq)}, spec
}
