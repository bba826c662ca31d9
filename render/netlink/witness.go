//go:build linux

package netlink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A Witness follows the commits of a network namespace's nftables as they
// happen, as "nft monitor" does: it listens to the kernel's notifications
// (the NFNLGRP_NFTABLES group), one message per object a commit changes,
// then one naming the generation the commit made (NFT_MSG_NEWGEN; see
// generation.go). It records which generations changed a table of kpc's
// name, in any family, so that a Union whose generation moved can tell a
// commit to another tool's table (its tables are as it left them, and its
// update can go on) from one that edited kpc's tables (only a full apply
// can tell what they hold). Notifications it could not read (the kernel
// drops them when the socket's buffer is full) count as edits of kpc's
// tables, and so does any commit before the Witness started.
//
// The kernel builds the notifications only while someone listens, one per
// element: a Witness should not be open during a full apply of a large
// input, whose own notifications would cost the commit time and overflow
// it anyway. Close it before, and Follow again after.
type Witness struct {
	conn  *mdnetlink.Conn
	table []byte

	mu sync.Mutex
	// known is the generation from which commits are known: the one read
	// once the socket listened, or the latest a Clean forgot up to.
	known uint32
	// seen is the generation of the last NFT_MSG_NEWGEN read.
	seen uint32
	// touched says that a message of the commit being read named one of
	// kpc's tables; lost, that messages were dropped since the last
	// NFT_MSG_NEWGEN read.
	touched, lost bool
	// dirty holds the ranges of generations after known whose commits
	// changed kpc's tables or were not read.
	dirty []genRange
	// err is why the reader stopped (nil while it runs).
	err error
	// wake is closed, and replaced, at every NFT_MSG_NEWGEN read and when
	// the reader stops.
	wake chan struct{}
	done chan struct{}
}

// genRange is the range of generations (lo, hi].
type genRange struct{ lo, hi uint32 }

// witnessBuffer is the receive buffer a Witness asks for: room for the
// notifications of a commit of some ten thousand objects.
var witnessBuffer = 8 << 20

// witnessWait bounds how long Clean waits for the notifications of a
// generation it was asked about: the kernel queues them before the commit
// returns, so they are normally there already.
const witnessWait = 200 * time.Millisecond

// Follow starts a Witness of the commits in the network namespace of o,
// for the tables named table (in any family). The caller closes it.
func Follow(o Options, table string) (*Witness, error) {
	c, err := dialNetfilter(o)
	if err != nil {
		return nil, err
	}
	setBuffers(c, 0, witnessBuffer)
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return nil, fmt.Errorf("netlink: following nftables commits: %w", err)
	}
	// The generation after joining: every later commit is notified.
	d, err := newDumper(o)
	if err != nil {
		c.Close()
		return nil, err
	}
	gen, err := d.generation()
	d.close()
	if err != nil {
		c.Close()
		return nil, err
	}
	w := &Witness{conn: c, table: []byte(table), known: gen, seen: gen,
		wake: make(chan struct{}), done: make(chan struct{})}
	go w.read()
	return w, nil
}

// Close stops the Witness.
func (w *Witness) Close() {
	if w == nil {
		return
	}
	w.conn.Close()
	<-w.done
}

// read reads the notifications until the socket is closed or fails.
func (w *Witness) read() {
	defer close(w.done)
	for {
		msgs, err := w.conn.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				w.mu.Lock()
				w.lost = true
				w.mu.Unlock()
				continue
			}
			w.mu.Lock()
			w.err = fmt.Errorf("netlink: following nftables commits: %w", err)
			close(w.wake)
			w.mu.Unlock()
			return
		}
		for _, m := range msgs {
			w.note(m)
		}
	}
}

// note takes in one notification.
func (w *Witness) note(m mdnetlink.Message) {
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
		return
	}
	if m.Header.Type&0xff != unix.NFT_MSG_NEWGEN {
		// Every object's message names its table in attribute 1
		// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_SET_ELEM_LIST_TABLE, ...).
		if name, ok := firstAttr(m.Data[4:], 1); ok && bytes.Equal(bytes.TrimRight(name, "\x00"), w.table) {
			w.mu.Lock()
			w.touched = true
			w.mu.Unlock()
		}
		return
	}
	id, ok := firstAttr(m.Data[4:], unix.NFTA_GEN_ID)
	if !ok || len(id) != 4 {
		w.mu.Lock()
		w.lost = true
		w.mu.Unlock()
		return
	}
	gen := binary.BigEndian.Uint32(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !genAfter(gen, w.seen) {
		// Committed before the Witness read the generation: the messages
		// before this one were that commit's. (Lost messages may have
		// been a later one's.)
		w.touched = false
		return
	}
	if w.touched || w.lost {
		w.dirty = append(w.dirty, genRange{w.seen, gen})
	}
	w.seen, w.touched, w.lost = gen, false, false
	close(w.wake)
	w.wake = make(chan struct{})
}

// firstAttr returns the payload of the first attribute of type typ in b
// (nested or not).
func firstAttr(b []byte, typ uint16) ([]byte, bool) {
	ad, err := mdnetlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, false
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.Bytes(), true
		}
	}
	return nil, false
}

// genAfter reports whether generation a comes after b (generations wrap).
func genAfter(a, b uint32) bool { return int32(a-b) > 0 }

// Clean reports whether no commit after generation from, up to and
// including generation to, changed a table of the Witness's name, and
// every one of them was seen. It waits briefly for the notifications of
// generation to when they are not read yet. It then forgets the
// generations up to from: a later Clean from one of them is false.
func (w *Witness) Clean(from, to uint32) bool {
	if w == nil || from == 0 || to == 0 {
		return false
	}
	timer := time.NewTimer(witnessWait)
	defer timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if genAfter(w.known, from) {
		return false // commits after from were not followed
	}
	w.forget(from)
	for genAfter(to, w.seen) {
		if w.err != nil {
			return false
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			w.mu.Lock()
			return false
		}
		w.mu.Lock()
	}
	for _, r := range w.dirty {
		if genAfter(r.hi, from) && genAfter(to, r.lo) {
			return false
		}
	}
	return true
}

// forget drops the dirty ranges that end at or before generation g, and
// with them what was known of the generations before g.
func (w *Witness) forget(g uint32) {
	if genAfter(g, w.known) {
		w.known = g
	}
	kept := w.dirty[:0]
	for _, r := range w.dirty {
		if genAfter(r.hi, g) {
			kept = append(kept, r)
		}
	}
	w.dirty = kept
}
