//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/google/nftables/userdata"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// google/nftables v0.3.0 reads sets and elements back incompletely: a
// verdict map's key type is overwritten by "verdict", set comments are not
// decoded, and the verdict of a vmap element is dropped; and it reads a
// table's flags and use count in the host's byte order, not the kernel's
// big endian. This file dumps tables, sets and elements with its own small
// decoder instead.

// dumpedTable is a table as the kernel dumps it: its flags, and use, the
// number of its chains, named sets, stateful objects and flowtables.
type dumpedTable struct {
	flags, use uint32
}

// dumpedSet is a set or map as the kernel dumps it.
type dumpedSet struct {
	name               string
	flags              uint32
	keyType, keyLen    uint32
	dataType, dataLen  uint32
	timeout            time.Duration
	size               uint32 // NFTA_SET_DESC_SIZE, 0 when absent
	comment            string
	userdata           []byte
	elems              []dumpedElem
	isMap, isAnonymous bool
}

// dumpedElem is one element as the kernel dumps it.
type dumpedElem struct {
	key, data   []byte
	verdictCode int32
	verdictTo   string
	hasVerdict  bool
	intervalEnd bool
	comment     string
}

// dumper sends nf_tables GET requests on its own netlink socket.
type dumper struct {
	conn *mdnetlink.Conn
}

// newDumper opens a netfilter netlink socket in the namespace of o.
func newDumper(o Options) (*dumper, error) {
	c, err := dialNetfilter(o)
	if err != nil {
		return nil, err
	}
	raiseBuffers(c)
	_ = c.SetDeadline(time.Now().Add(o.timeout()))
	return &dumper{conn: c}, nil
}

func (d *dumper) close() { d.conn.Close() }

// dialNetfilter opens a netfilter netlink socket in the network namespace
// of o.
func dialNetfilter(o Options) (*mdnetlink.Conn, error) {
	cfg := &mdnetlink.Config{}
	if o.NetNS != "" {
		f, err := os.Open(o.NetNS)
		if err != nil {
			return nil, fmt.Errorf("netlink: opening network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := mdnetlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("netlink: connecting to nf_tables: %w", err)
	}
	return c, nil
}

// dumpBuffer is the size of the buffer a dump's answers are read into.
// The kernel fills each message of a dump up to the largest buffer the
// socket was read with, at most 32 KiB, where mdlayher/netlink reads a
// page at a time; and it walks a hashed set from the start for every
// message of the dump of its elements, so that a large set dumps several
// times faster in larger messages.
const dumpBuffer = 1 << 16

// dump sends one dump request and returns the answers' attributes (after
// the nfgenmsg header).
func (d *dumper) dump(msgType uint16, family byte, attrs []mdnetlink.Attribute) ([][]byte, error) {
	b, err := mdnetlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, err
	}
	req := mdnetlink.Message{
		Header: mdnetlink.Header{
			Type:  mdnetlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType),
			Flags: mdnetlink.Request | mdnetlink.Dump,
		},
		Data: append([]byte{family, unix.NFNETLINK_V0, 0, 0}, b...),
	}
	sent, err := d.conn.Send(req)
	if err != nil {
		return nil, fmt.Errorf("netlink: sending a dump request: %w", err)
	}
	rc, err := d.conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netlink: reading a dump: %w", err)
	}
	buf := make([]byte, dumpBuffer)
	var out [][]byte
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		}); err != nil {
			return nil, fmt.Errorf("netlink: reading a dump: %w", err)
		}
		if rerr != nil {
			return nil, fmt.Errorf("netlink: reading a dump: %w", rerr)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink: reading a dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != sent.Header.Sequence {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
						return nil, unix.Errno(-code)
					}
				}
				if m.Header.Type == unix.NLMSG_DONE {
					return out, nil
				}
			default:
				if len(m.Data) >= 4 {
					out = append(out, append([]byte(nil), m.Data[4:]...))
				}
			}
		}
	}
}

func nulString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// table dumps the table of a family and name; nil when there is none.
func (d *dumper) table(family byte, name string) (*dumpedTable, error) {
	msgs, err := d.dump(unix.NFT_MSG_GETTABLE, family, nil)
	if err != nil {
		return nil, fmt.Errorf("netlink: listing tables: %w", err)
	}
	for _, m := range msgs {
		ad, err := mdnetlink.NewAttributeDecoder(m)
		if err != nil {
			return nil, fmt.Errorf("netlink: decoding a table: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		t, tname := &dumpedTable{}, ""
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_NAME:
				tname = nulString(ad.Bytes())
			case unix.NFTA_TABLE_FLAGS:
				t.flags = ad.Uint32()
			case unix.NFTA_TABLE_USE:
				t.use = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("netlink: decoding a table: %w", err)
		}
		if tname == name {
			return t, nil
		}
	}
	return nil, nil
}

// sets dumps the sets of a table (without elements).
func (d *dumper) sets(family byte, table string) ([]*dumpedSet, error) {
	msgs, err := d.dump(unix.NFT_MSG_GETSET, family, []mdnetlink.Attribute{
		{Type: unix.NFTA_SET_TABLE, Data: append([]byte(table), 0)},
	})
	if err != nil {
		return nil, fmt.Errorf("netlink: listing sets of %s: %w", table, err)
	}
	var out []*dumpedSet
	for _, m := range msgs {
		ad, err := mdnetlink.NewAttributeDecoder(m)
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		s := &dumpedSet{}
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_NAME:
				s.name = nulString(ad.Bytes())
			case unix.NFTA_SET_FLAGS:
				s.flags = ad.Uint32()
			case unix.NFTA_SET_KEY_TYPE:
				s.keyType = ad.Uint32()
			case unix.NFTA_SET_KEY_LEN:
				s.keyLen = ad.Uint32()
			case unix.NFTA_SET_DATA_TYPE:
				s.dataType = ad.Uint32()
			case unix.NFTA_SET_DATA_LEN:
				s.dataLen = ad.Uint32()
			case unix.NFTA_SET_TIMEOUT:
				s.timeout = time.Duration(ad.Uint64()) * time.Millisecond
			case unix.NFTA_SET_DESC:
				ad.Nested(func(nd *mdnetlink.AttributeDecoder) error {
					nd.ByteOrder = binary.BigEndian
					for nd.Next() {
						if nd.Type() == unix.NFTA_SET_DESC_SIZE {
							s.size = nd.Uint32()
						}
					}
					return nil
				})
			case unix.NFTA_SET_USERDATA:
				s.userdata = ad.Bytes()
				s.comment, _ = userdata.GetString(s.userdata, userdata.NFTNL_UDATA_SET_COMMENT)
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		s.isMap = s.flags&unix.NFT_SET_MAP != 0
		s.isAnonymous = s.flags&unix.NFT_SET_ANONYMOUS != 0
		out = append(out, s)
	}
	return out, nil
}

// elements dumps the elements of a set.
func (d *dumper) elements(family byte, table string, s *dumpedSet) error {
	msgs, err := d.dump(unix.NFT_MSG_GETSETELEM, family, []mdnetlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: append([]byte(table), 0)},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: append([]byte(s.name), 0)},
	})
	if err != nil {
		return fmt.Errorf("netlink: listing elements of %s: %w", s.name, err)
	}
	for _, m := range msgs {
		ad, err := mdnetlink.NewAttributeDecoder(m)
		if err != nil {
			return err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			ad.Nested(func(list *mdnetlink.AttributeDecoder) error {
				for list.Next() {
					var e dumpedElem
					list.Nested(func(nd *mdnetlink.AttributeDecoder) error { return decodeElem(nd, &e) })
					s.elems = append(s.elems, e)
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return fmt.Errorf("netlink: decoding elements of %s: %w", s.name, err)
		}
	}
	return nil
}

// decodeElem decodes the attributes of one element.
func decodeElem(ad *mdnetlink.AttributeDecoder, e *dumpedElem) error {
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			ad.Nested(func(v *mdnetlink.AttributeDecoder) error {
				for v.Next() {
					if v.Type() == unix.NFTA_DATA_VALUE {
						e.key = v.Bytes()
					}
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_DATA:
			ad.Nested(func(v *mdnetlink.AttributeDecoder) error {
				v.ByteOrder = binary.BigEndian
				for v.Next() {
					switch v.Type() {
					case unix.NFTA_DATA_VALUE:
						e.data = v.Bytes()
					case unix.NFTA_DATA_VERDICT:
						e.hasVerdict = true
						v.Nested(func(vd *mdnetlink.AttributeDecoder) error {
							vd.ByteOrder = binary.BigEndian
							for vd.Next() {
								switch vd.Type() {
								case unix.NFTA_VERDICT_CODE:
									e.verdictCode = int32(vd.Uint32())
								case unix.NFTA_VERDICT_CHAIN:
									e.verdictTo = nulString(vd.Bytes())
								}
							}
							return nil
						})
					}
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			e.intervalEnd = ad.Uint32()&unix.NFT_SET_ELEM_INTERVAL_END != 0
		case unix.NFTA_SET_ELEM_USERDATA:
			e.comment, _ = userdata.GetString(ad.Bytes(), userdata.NFTNL_UDATA_SET_ELEM_COMMENT)
		}
	}
	return nil
}
