package render

import (
	"bytes"
	"net/netip"
	"strconv"

	"kpc/compiler/ir"
)

// Writers for the hot loops of the nft script: they append to the buffer
// what the fmt verbs of the layout would print, without formatting
// through fmt or allocating.

// nftWriteAddr writes a.String().
func nftWriteAddr(buf *bytes.Buffer, a netip.Addr) {
	buf.Write(a.AppendTo(buf.AvailableBuffer()))
}

// nftWriteUint writes v in decimal.
func nftWriteUint(buf *bytes.Buffer, v uint64) {
	buf.Write(strconv.AppendUint(buf.AvailableBuffer(), v, 10))
}

// nftWriteKey writes a dispatch key "ADDR . PROTO . PORT", or
// "PROTO . PORT" when addr is invalid (a NodePort key).
func nftWriteKey(buf *bytes.Buffer, addr netip.Addr, proto ir.Protocol, port uint16) {
	if addr.IsValid() {
		nftWriteAddr(buf, addr)
		buf.WriteString(" . ")
	}
	buf.WriteString(nftProto(proto))
	buf.WriteString(" . ")
	nftWriteUint(buf, uint64(port))
}

// nftWriteDest writes a DNAT destination "ADDR . PORT".
func nftWriteDest(buf *bytes.Buffer, addr netip.Addr, port uint16) {
	nftWriteAddr(buf, addr)
	buf.WriteString(" . ")
	nftWriteUint(buf, uint64(port))
}

// nftWritePrefix writes p.String().
func nftWritePrefix(buf *bytes.Buffer, p netip.Prefix) {
	buf.Write(p.AppendTo(buf.AvailableBuffer()))
}

// nftPlainText reports whether s is printable ASCII without a double
// quote: text that nftLineText and nftQuote (up to nftCommentMax bytes)
// leave as it is.
func nftPlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' {
			return false
		}
	}
	return true
}

// nftWriteQuoted writes nftQuote(s).
func nftWriteQuoted(buf *bytes.Buffer, s string) {
	if len(s) > nftCommentMax || !nftPlainText(s) {
		buf.WriteString(nftQuote(s))
		return
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// nftWriteLineText writes nftLineText(s).
func nftWriteLineText(buf *bytes.Buffer, s string) {
	if !nftPlainText(s) {
		s = nftLineText(s)
	}
	buf.WriteString(s)
}

// nftWriteVerdict writes a dispatch Target as a map verdict. Reject cannot
// be a map verdict, so it goes to reject-chain.
func nftWriteVerdict(buf *bytes.Buffer, t ir.Target) {
	switch {
	case t.Drop:
		buf.WriteString("drop")
	case t.Reject:
		buf.WriteString("goto " + nftRejectChain)
	default:
		buf.WriteString("goto ")
		buf.WriteString(t.Chain)
	}
}

// nftWriteElemComment writes " comment \"c\"" (nothing for an empty c).
func nftWriteElemComment(buf *bytes.Buffer, c string) {
	if c == "" {
		return
	}
	buf.WriteString(" comment ")
	nftWriteQuoted(buf, c)
}

// nftWriteAddrPort writes a DNAT destination, an IPv6 address bracketed
// ("[2001:db8::1]:80").
func nftWriteAddrPort(buf *bytes.Buffer, a netip.Addr, port uint16) {
	if a.Is6() {
		buf.WriteByte('[')
		nftWriteAddr(buf, a)
		buf.WriteString("]:")
	} else {
		nftWriteAddr(buf, a)
		buf.WriteByte(':')
	}
	nftWriteUint(buf, uint64(port))
}
