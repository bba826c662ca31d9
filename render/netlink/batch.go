//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A batch's messages are encoded here and sent on a netlink socket of our
// own rather than with google/nftables' Conn.Flush, for three reasons:
//
//   - Rules are encoded here, so that expressions google/nftables v0.3.0
//     cannot encode are possible: "ct original ip saddr" needs a
//     direction, which its Ct expression only sends with the generic
//     address keys (see marshalExpr).
//   - No message asks for an acknowledgement or an echo. The kernel
//     processes a batch, commit included, while the sendmsg call that
//     carries it runs, and queues an error for each message it refuses
//     (and one for the batch when the commit fails) on the socket, so the
//     errors are all there when sendmsg returns: reading what is queued
//     then is the whole answer. A batch of a hundred thousand messages no
//     longer waits for as many acknowledgements and echoed rules.
//   - An error names the message it answers (by sequence number), so a
//     refused batch says which object the kernel refused.
//
// Tables, chains, sets and elements are still encoded by google/nftables:
// its Conn methods run on a connection whose socket is a function that
// keeps the messages it is given (mdlayher/netlink's nltest).

// rawBatch collects the messages of one batch in order.
type rawBatch struct {
	enc  *nftables.Conn // encodes into captured
	msgs []mdnetlink.Message
	err  error
}

// newRawBatch returns an empty batch.
func newRawBatch() *rawBatch {
	b := &rawBatch{}
	ack := []mdnetlink.Message{{Header: mdnetlink.Header{Type: mdnetlink.Error}, Data: make([]byte, 20)}}
	c, err := nftables.New(nftables.WithTestDial(func(req []mdnetlink.Message) ([]mdnetlink.Message, error) {
		if req == nil {
			return ack, nil // the acknowledgement Conn.Flush waits for
		}
		for _, m := range req {
			switch m.Header.Type {
			case mdnetlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), mdnetlink.HeaderType(unix.NFNL_MSG_BATCH_END):
				continue
			}
			b.msgs = append(b.msgs, mdnetlink.Message{Header: mdnetlink.Header{Type: m.Header.Type, Flags: m.Header.Flags},
				Data: m.Data})
		}
		return nil, nil
	}))
	if err != nil {
		b.err = err
	}
	b.enc = c
	return b
}

// sync moves what the encoder holds into the batch, so that a message
// appended next comes after it.
func (b *rawBatch) sync() {
	if b.err == nil {
		if err := b.enc.Flush(); err != nil {
			b.err = fmt.Errorf("netlink: encoding the batch: %w", err)
		}
	}
}

// addRule appends a rule, encoded here (see marshalExpr).
func (b *rawBatch) addRule(r *nftables.Rule) {
	b.sync()
	list := make([]mdnetlink.Attribute, len(r.Exprs))
	fam := byte(r.Table.Family)
	for i, e := range r.Exprs {
		data, err := marshalExpr(fam, e)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("netlink: encoding a rule of chain %s: %w", r.Chain.Name, err)
		}
		list[i] = mdnetlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: data}
	}
	exprs, err := mdnetlink.MarshalAttributes(list)
	if err != nil && b.err == nil {
		b.err = err
	}
	attrs := []mdnetlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: append([]byte(r.Table.Name), 0)},
		{Type: unix.NFTA_RULE_CHAIN, Data: append([]byte(r.Chain.Name), 0)},
		{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: exprs},
	}
	if r.UserData != nil {
		attrs = append(attrs, mdnetlink.Attribute{Type: unix.NFTA_RULE_USERDATA, Data: r.UserData})
	}
	data, err := mdnetlink.MarshalAttributes(attrs)
	if err != nil && b.err == nil {
		b.err = err
	}
	b.msgs = append(b.msgs, mdnetlink.Message{
		Header: mdnetlink.Header{Type: mdnetlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE),
			Flags: mdnetlink.Request | mdnetlink.Create | unix.NLM_F_APPEND},
		Data: append([]byte{fam, unix.NFNETLINK_V0, 0, 0}, data...),
	})
}

// finish returns the batch's messages.
func (b *rawBatch) finish() ([]mdnetlink.Message, error) {
	b.sync()
	return b.msgs, b.err
}

// The conntrack keys of one address of a tuple (NFT_CT_SRC_IP and so on in
// the kernel's nf_tables.h), which need a direction.
const (
	ctKeySrcIP  = 19
	ctKeyDstIP  = 20
	ctKeySrcIP6 = 21
	ctKeyDstIP6 = 22
)

// marshalExpr encodes an expression as expr.Marshal does, except that a
// conntrack load of a tuple field ("ct original ip saddr", "ct reply
// proto-src") carries its direction as the kernel reads it: 8 bits (
// expr.Marshal writes 32 bits big endian, which the kernel reads as 0,
// "original", whatever the direction, and leaves it out for the address
// keys of one family).
func marshalExpr(fam byte, e expr.Any) ([]byte, error) {
	ct, ok := e.(*expr.Ct)
	if !ok || ct.SourceRegister {
		return expr.Marshal(fam, e)
	}
	switch ct.Key {
	case expr.CtKeySRC, expr.CtKeyDST, expr.CtKeyPROTOSRC, expr.CtKeyPROTODST,
		ctKeySrcIP, ctKeyDstIP, ctKeySrcIP6, ctKeyDstIP6:
	default:
		return expr.Marshal(fam, e)
	}
	data, err := mdnetlink.MarshalAttributes([]mdnetlink.Attribute{
		{Type: unix.NFTA_CT_KEY, Data: binary.BigEndian.AppendUint32(nil, uint32(ct.Key))},
		{Type: unix.NFTA_CT_DREG, Data: binary.BigEndian.AppendUint32(nil, ct.Register)},
		{Type: unix.NFTA_CT_DIRECTION, Data: []byte{byte(ct.Direction)}},
	})
	if err != nil {
		return nil, err
	}
	return mdnetlink.MarshalAttributes([]mdnetlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: []byte("ct\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
	})
}

// errUnknownOutcome marks errors after which it is unknown whether the
// kernel committed the batch.
var errUnknownOutcome = errors.New("the outcome is unknown")

// sendBatch sends msgs as one batch on a socket in the namespace of o and
// returns the kernel's verdict. Nothing is changed when it returns an error
// other than one wrapping errUnknownOutcome. When at is not 0, the kernel
// commits the batch only at that nftables generation, and refuses it when
// another commit came since (see generationMoved); an accepted batch then
// leaves the kernel at nextGeneration(at).
func sendBatch(o Options, msgs []mdnetlink.Message, at uint32) error {
	cfg := &mdnetlink.Config{}
	if o.NetNS != "" {
		f, err := os.Open(o.NetNS)
		if err != nil {
			return fmt.Errorf("netlink: opening network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := mdnetlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return fmt.Errorf("netlink: connecting to nf_tables: %w", err)
	}
	defer c.Close()
	raiseBuffers(c)
	if err := c.SetWriteDeadline(time.Now().Add(o.timeout())); err != nil {
		return fmt.Errorf("netlink: setting a deadline: %w", err)
	}

	all := make([]mdnetlink.Message, 0, len(msgs)+2)
	marker := mdnetlink.Message{Header: mdnetlink.Header{Flags: mdnetlink.Request},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}}
	begin, end := marker, marker
	begin.Header.Type = mdnetlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN)
	if at != 0 {
		genid, err := mdnetlink.MarshalAttributes([]mdnetlink.Attribute{
			{Type: unix.NFNL_BATCH_GENID, Data: binary.BigEndian.AppendUint32(nil, at)}})
		if err != nil {
			return fmt.Errorf("netlink: encoding the batch's generation: %w", err)
		}
		begin.Data = append(append([]byte(nil), marker.Data...), genid...)
	}
	end.Header.Type = mdnetlink.HeaderType(unix.NFNL_MSG_BATCH_END)
	all = append(all, begin)
	for _, m := range msgs {
		m.Header.Flags &^= mdnetlink.Acknowledge | unix.NLM_F_ECHO
		m.Header.Length, m.Header.Sequence, m.Header.PID = 0, 0, 0
		all = append(all, m)
	}
	all = append(all, end)
	sent, err := c.SendMessages(all)
	if err != nil {
		if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("netlink: the batch of %d messages could not be sent, so nothing was changed: %w", len(msgs), err)
		}
		return fmt.Errorf("netlink: sending the batch of %d messages (%w): %w", len(msgs), errUnknownOutcome, err)
	}
	first := sent[0].Header.Sequence
	replies, err := drain(c)
	if err != nil {
		return fmt.Errorf("netlink: reading the kernel's answer to the batch of %d messages (%w): %w", len(msgs), errUnknownOutcome, err)
	}
	var errs []error
	for _, r := range replies {
		if r.Header.Type != mdnetlink.Error || len(r.Data) < 4 {
			continue
		}
		code := int32(binary.NativeEndian.Uint32(r.Data[:4]))
		if code == 0 {
			continue
		}
		what := "the batch"
		if len(r.Data) >= 20 {
			seq := binary.NativeEndian.Uint32(r.Data[12:16])
			if i := int(seq - first); i > 0 && i <= len(msgs) {
				what = fmt.Sprintf("message %d of %d (%s)", i, len(msgs), describe(msgs[i-1]))
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", what, unix.Errno(-code)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("netlink: the kernel refused the batch of %d messages, so nothing was changed: %w", len(msgs), errors.Join(errs...))
	}
	return nil
}

// drain returns the messages queued on c, without waiting for more.
func drain(c *mdnetlink.Conn) ([]mdnetlink.Message, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var out []mdnetlink.Message
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		cerr := rc.Control(func(fd uintptr) {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		})
		if cerr != nil {
			return nil, cerr
		}
		if errors.Is(rerr, unix.EAGAIN) {
			return out, nil
		}
		if rerr != nil {
			return nil, rerr
		}
		for b := buf[:n]; len(b) >= 16; {
			l := int(binary.NativeEndian.Uint32(b[:4]))
			if l < 16 || l > len(b) {
				return nil, errors.New("malformed netlink message")
			}
			var m mdnetlink.Message
			if err := m.UnmarshalBinary(b[:l]); err != nil {
				return nil, err
			}
			m.Data = append([]byte(nil), m.Data...)
			out = append(out, m)
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// describe names what a message of a batch does, for error messages.
func describe(m mdnetlink.Message) string {
	names := map[int]string{
		unix.NFT_MSG_NEWTABLE: "add table", unix.NFT_MSG_DELTABLE: "delete table",
		unix.NFT_MSG_NEWCHAIN: "add chain", unix.NFT_MSG_DELCHAIN: "delete chain",
		unix.NFT_MSG_NEWRULE: "add rule", unix.NFT_MSG_DELRULE: "flush chain",
		unix.NFT_MSG_NEWSET: "add set", unix.NFT_MSG_DELSET: "delete set",
		unix.NFT_MSG_NEWSETELEM: "add elements", unix.NFT_MSG_DELSETELEM: "delete elements",
	}
	op, ok := names[int(m.Header.Type&0xff)]
	if !ok {
		op = fmt.Sprintf("message type %d", m.Header.Type&0xff)
	}
	if len(m.Data) < 4 {
		return op
	}
	ad, err := mdnetlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return op
	}
	var table, name string
	for ad.Next() {
		// The table and the object's name are the first two string
		// attributes of every message kind here (table 1; chain, set or
		// rule's chain 2 or 3).
		switch ad.Type() {
		case 1:
			table = nulString(ad.Bytes())
		case 2, 3:
			if name == "" && len(ad.Bytes()) > 0 && ad.Bytes()[len(ad.Bytes())-1] == 0 {
				name = nulString(ad.Bytes())
			}
		}
	}
	return fmt.Sprintf("%s %s %s", op, table, name)
}
