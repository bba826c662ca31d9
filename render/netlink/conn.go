//go:build linux

package netlink

import (
	"fmt"
	"os"
	"time"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// socketBuffer is the send and receive buffer limit of the netlink socket.
// A batch goes out in one sendmsg, which must fit in the send buffer, and
// the kernel queues one acknowledgement per message (about 1 KiB of
// buffer each), which must fit in the receive buffer or they are lost
// (ENOBUFS) although the transaction was committed. A limit is not an
// allocation: memory is only used as the batch needs it.
const socketBuffer = 1 << 30

// conn is a connection to nf_tables in one network namespace.
type conn struct {
	nft  *nftables.Conn
	nsFD *os.File
}

// dial connects to nf_tables in the namespace of o. Every netlink socket
// it opens (one per operation) gets the raised buffers and a deadline of
// o.Timeout from when it is opened.
func dial(o Options) (*conn, error) {
	c := &conn{}
	timeout := o.timeout()
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(nl *mdnetlink.Conn) error {
		raiseBuffers(nl)
		if err := nl.SetDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Errorf("netlink: setting a deadline: %w", err)
		}
		return nil
	})}
	if o.NetNS != "" {
		f, err := os.Open(o.NetNS)
		if err != nil {
			return nil, fmt.Errorf("netlink: opening network namespace: %w", err)
		}
		var st unix.Statfs_t
		if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || st.Type != unix.NSFS_MAGIC {
			f.Close()
			return nil, fmt.Errorf("netlink: %s is not a network namespace", o.NetNS)
		}
		c.nsFD = f
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	nft, err := nftables.New(opts...)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("netlink: connecting to nf_tables: %w", err)
	}
	c.nft = nft
	return c, nil
}

// raiseBuffers raises the socket's buffer limits, beyond
// net.core.[rw]mem_max when the process may (CAP_NET_ADMIN), else as far
// as the sysctls allow.
func raiseBuffers(nl *mdnetlink.Conn) { setBuffers(nl, socketBuffer, socketBuffer) }

// setBuffers sets the socket's send and receive buffers (0: leave it) as
// raiseBuffers does.
func setBuffers(nl *mdnetlink.Conn, send, recv int) {
	forced := false
	if rc, err := nl.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			forced = true
			if send > 0 {
				forced = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, send) == nil
			}
			if recv > 0 {
				forced = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recv) == nil && forced
			}
		})
	}
	if !forced {
		if send > 0 {
			_ = nl.SetWriteBuffer(send)
		}
		if recv > 0 {
			_ = nl.SetReadBuffer(recv)
		}
	}
}

// close releases the connection.
func (c *conn) close() {
	if c.nft != nil {
		_ = c.nft.CloseLasting()
	}
	if c.nsFD != nil {
		c.nsFD.Close()
	}
}

// tableExists reports whether table t exists.
func (c *conn) tableExists(t *nftables.Table) (bool, error) {
	ts, err := c.nft.ListTablesOfFamily(t.Family)
	if err != nil {
		return false, fmt.Errorf("netlink: listing tables: %w", err)
	}
	for _, x := range ts {
		if x.Name == t.Name && x.Family == t.Family {
			return true, nil
		}
	}
	return false, nil
}

// queue puts a batch's messages in order into a rawBatch, and counts
// them. Without a batch it only counts.
type queue struct {
	b        *rawBatch
	conn     *nftables.Conn // b's encoder
	messages int
	err      error
}

// send counts one message and, unless the queue only counts, encodes it
// with f.
func (q *queue) send(f func(*nftables.Conn)) {
	q.messages++
	if q.conn != nil {
		f(q.conn)
	}
}

// newQueue returns a queue that fills a new batch.
func newQueue() *queue {
	b := newRawBatch()
	return &queue{b: b, conn: b.enc}
}

// finish returns the queued messages.
func (q *queue) finish() ([]mdnetlink.Message, error) {
	msgs, err := q.b.finish()
	if q.err != nil {
		return nil, fmt.Errorf("netlink: building the batch: %w", q.err)
	}
	return msgs, err
}

// table queues "add table; delete table" and, when the table is defined,
// "add table" and its objects: chains, then sets with their elements, then
// rules, each anonymous set just before its rule.
func (q *queue) table(t *tableSpec) {
	q.messages += 2
	if q.conn != nil {
		q.conn.AddTable(t.table)
		q.conn.DelTable(t.table)
	}
	if !t.define {
		return
	}
	q.send(func(nc *nftables.Conn) { nc.AddTable(t.table) })
	q.objects(t)
}

// objects queues a defined table's chains, then its sets with their
// elements, then its rules.
func (q *queue) objects(t *tableSpec) {
	for _, c := range t.chains {
		q.send(func(nc *nftables.Conn) { nc.AddChain(c) })
	}
	for _, s := range t.sets {
		q.set(s)
	}
	for _, r := range t.rules {
		q.rule(r)
	}
}

// rule queues a rule, after the anonymous sets it looks up.
func (q *queue) rule(r *ruleSpec) {
	for _, a := range r.anon {
		q.set(a)
	}
	q.messages++
	if q.b != nil {
		q.b.addRule(r.rule)
	}
}

// set queues a set and its elements, in chunks of at most
// ElementChunkBytes. An anonymous set takes its elements in the message
// that creates it, which must then fit in one chunk.
func (q *queue) set(s *setSpec) {
	chunks := chunk(s.elems)
	if s.set.Anonymous {
		if len(chunks) > 1 {
			q.fail(fmt.Errorf("anonymous set of %d elements is larger than one netlink message can carry", len(s.elems)))
			return
		}
		q.messages++
		if len(s.elems) > 0 {
			q.messages++
		}
		if q.conn != nil {
			q.fail(q.conn.AddSet(s.set, s.elems))
		}
		return
	}
	q.messages++
	if q.conn != nil {
		q.fail(q.conn.AddSet(s.set, nil))
		if s.userdata != nil {
			q.b.sync()
			if n := len(q.b.msgs); n > 0 {
				q.fail(setUserdata(&q.b.msgs[n-1], s.userdata))
			}
		}
	}
	for _, c := range chunks {
		q.messages++
		if q.conn != nil {
			q.fail(q.conn.SetAddElements(s.set, c))
		}
	}
}

func (q *queue) fail(err error) {
	if err != nil && q.err == nil {
		q.err = err
	}
}

// chunk splits elements into groups whose estimated encoded size stays
// under ElementChunkBytes.
func chunk(elems []nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	start, size := 0, 0
	for i := range elems {
		n := elemSize(&elems[i])
		if i > start && size+n > ElementChunkBytes {
			out = append(out, elems[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(elems) {
		out = append(out, elems[start:])
	}
	return out
}

// elemSize over-estimates the netlink encoding of an element: attribute
// headers, padded key, data or verdict, flags, timeout and comment.
func elemSize(e *nftables.SetElement) int {
	pad := func(n int) int { return (n + 3) &^ 3 }
	n := 64 + pad(len(e.Key)) + pad(len(e.KeyEnd)) + pad(len(e.Val))
	if e.VerdictData != nil {
		n += 32 + pad(len(e.VerdictData.Chain)+1)
	}
	if e.Comment != "" {
		n += 8 + pad(len(e.Comment)+3)
	}
	return n
}
