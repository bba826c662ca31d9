//go:build linux

package netlink

import (
	"encoding/hex"

	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nft records a set declared with "typeof" in the set's userdata, as the
// expressions the key and data come from, and lists the set that way.
// google/nftables v0.3.0 cannot write that record, so the batch carries
// the bytes nft 1.0.6 writes for the typeof declarations kpc uses (read
// back from sets that nft created), followed by the set's comment: a set
// made here then lists exactly as one loaded from render.NFT's text.

// Userdata records of the typeof declarations, without the comment.
var (
	// typeof numgen random mod 1 : verdict
	typeofChoice = mustHex("000401000000010400000000031a000417000000011200040100000001040100000002040000000004080004010000000100060400000000")
	// typeof numgen random mod 1 : ip daddr . th dport
	typeofEndpoints4 = mustHex("000401000000010400000000031a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")
	// typeof numgen random mod 1 : ip6 daddr . th dport
	typeofEndpoints6 = mustHex("000401000000010400000000031a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040d0000000104090000000114000407000000010c00040b000000010402000000060400000000")
	// typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
	typeofServiceEndpoints4 = mustHex("000400000000010400000000036000040d00000001580014000407000000010c00040c00000001040c000000010e00040900000001060004100000000214000407000000010c00040b000000010402000000031a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")
	// typeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
	// typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
	typeofNodePortEndpoints4 = mustHex("000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")
	// typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport
	typeofNodePortEndpoints6 = mustHex("000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040d0000000104090000000114000407000000010c00040b000000010402000000060400000000")
	typeofServiceEndpoints6  = mustHex("000400000000010400000000036000040d00000001580014000407000000010c00040d000000010409000000010e00040900000001060004100000000214000407000000010c00040b000000010402000000031a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040d0000000104090000000114000407000000010c00040b000000010402000000060400000000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// typeofUserdata is a typeof record followed by the set's comment.
func typeofUserdata(record []byte, comment string) []byte {
	out := append([]byte(nil), record...)
	if comment != "" {
		out = append(out, 7, byte(len(comment)+1)) // NFTNL_UDATA_SET_COMMENT
		out = append(out, comment...)
		out = append(out, 0)
	}
	return out
}

// setUserdata replaces the userdata of a NEWSET message.
func setUserdata(m *mdnetlink.Message, ud []byte) error {
	ad, err := mdnetlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return err
	}
	var attrs []mdnetlink.Attribute
	for ad.Next() {
		if ad.Type() == unix.NFTA_SET_USERDATA {
			continue
		}
		attrs = append(attrs, mdnetlink.Attribute{Type: ad.Type() | ad.TypeFlags(), Data: ad.Bytes()})
	}
	if err := ad.Err(); err != nil {
		return err
	}
	attrs = append(attrs, mdnetlink.Attribute{Type: unix.NFTA_SET_USERDATA, Data: ud})
	data, err := mdnetlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	m.Data = append(m.Data[:4:4], data...)
	return nil
}
