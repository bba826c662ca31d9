//go:build linux

package netlink

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// google/nftables v0.3.0 reads a conntrack expression's direction as a
// 32-bit attribute, but the kernel dumps it as 8 bits, so reading a rule
// with "ct original ip saddr" fails. readConn returns a google/nftables
// connection for reading whose requests go out on a socket of the dumper's
// and whose answers are widened to what the library expects first.

// readConn returns a connection that reads through d.
func readConn(d *dumper) (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithTestDial(func(req []mdnetlink.Message) ([]mdnetlink.Message, error) {
		if len(req) == 0 {
			return nil, nil
		}
		var out []mdnetlink.Message
		for _, m := range req {
			sent := m
			replies, err := d.conn.Execute(mdnetlink.Message{Header: mdnetlink.Header{Type: m.Header.Type,
				Flags: m.Header.Flags &^ mdnetlink.Acknowledge}, Data: m.Data})
			if err != nil {
				return nil, err
			}
			for _, r := range replies {
				r.Header.Sequence, r.Header.PID = sent.Header.Sequence, sent.Header.PID
				if r.Header.Type&0xff == unix.NFT_MSG_NEWRULE && len(r.Data) >= 4 {
					data, err := widenRule(r.Data[4:])
					if err != nil {
						return nil, err
					}
					r.Data = append(r.Data[:4:4], data...)
				}
				out = append(out, r)
			}
			if sent.Header.Flags&mdnetlink.Dump != 0 {
				out = append(out, mdnetlink.Message{Header: mdnetlink.Header{Type: mdnetlink.Done,
					Flags: mdnetlink.Multi, Sequence: sent.Header.Sequence, PID: sent.Header.PID}, Data: make([]byte, 4)})
				for i := range out[:len(out)-1] {
					out[i].Header.Flags |= mdnetlink.Multi
				}
			}
		}
		return out, nil
	}))
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return c, nil
}

// widenRule rewrites the attributes of a dumped rule so that every
// conntrack direction is 32 bits wide.
func widenRule(b []byte) ([]byte, error) {
	return rewrite(b, func(t uint16, v []byte) ([]byte, error) {
		if t&^unix.NLA_F_NESTED != unix.NFTA_RULE_EXPRESSIONS {
			return v, nil
		}
		return rewrite(v, func(_ uint16, elem []byte) ([]byte, error) {
			name := ""
			ad, err := mdnetlink.NewAttributeDecoder(elem)
			if err != nil {
				return nil, err
			}
			for ad.Next() {
				if ad.Type() == unix.NFTA_EXPR_NAME {
					name = nulString(ad.Bytes())
				}
			}
			if name != "ct" {
				return elem, nil
			}
			return rewrite(elem, func(t uint16, data []byte) ([]byte, error) {
				if t&^unix.NLA_F_NESTED != unix.NFTA_EXPR_DATA {
					return data, nil
				}
				return rewrite(data, func(t uint16, v []byte) ([]byte, error) {
					if t == unix.NFTA_CT_DIRECTION && len(v) == 1 {
						return binary.BigEndian.AppendUint32(nil, uint32(v[0])), nil
					}
					return v, nil
				})
			})
		})
	})
}

// rewrite re-encodes a list of attributes with f applied to each value.
func rewrite(b []byte, f func(t uint16, v []byte) ([]byte, error)) ([]byte, error) {
	ad, err := mdnetlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var attrs []mdnetlink.Attribute
	for ad.Next() {
		// Type strips the flags (nested, byte order), which are kept.
		t := ad.Type() | ad.TypeFlags()
		v, err := f(t, ad.Bytes())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mdnetlink.Attribute{Type: t, Data: v})
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return mdnetlink.MarshalAttributes(attrs)
}
