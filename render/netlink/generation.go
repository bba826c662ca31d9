//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The nftables generation of a network namespace (NFTA_GEN_ID, which
// NFT_MSG_GETGEN reads) counts the transactions committed in it: every
// commit that changes anything, in any table and by any process, adds one
// (skipping 0 when it wraps); nothing else changes it. A batch whose
// NFNL_MSG_BATCH_BEGIN carries NFNL_BATCH_GENID is committed only if the
// generation is still the one given, under the lock every commit takes,
// and is refused with ERESTART otherwise. So a batch sent at generation g
// and accepted leaves the kernel at nextGeneration(g), with nothing else
// committed since g was read: Sync records that generation with its cache,
// and a later Sync that finds it unchanged knows that nothing was
// committed since, without reading kpc's tables back.

// generation reads the namespace's nftables generation.
func (d *dumper) generation() (uint32, error) {
	msgs, err := d.conn.Execute(mdnetlink.Message{
		Header: mdnetlink.Header{Type: mdnetlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: mdnetlink.Request},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("netlink: reading the nftables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		if id, ok := firstAttr(m.Data[4:], unix.NFTA_GEN_ID); ok && len(id) == 4 {
			return binary.BigEndian.Uint32(id), nil
		}
	}
	return 0, errors.New("netlink: reading the nftables generation: the kernel's answer has none")
}

// nextGeneration is the generation one commit after g.
func nextGeneration(g uint32) uint32 {
	if g++; g == 0 {
		g = 1
	}
	return g
}

// generationMoved reports whether the kernel refused a batch because
// another commit came after the generation it was sent at (nothing was
// changed).
func generationMoved(err error) bool { return errors.Is(err, unix.ERESTART) }

// Probe checks, before any work, what Sync will need of the namespace of
// o: that its nftables can be read (CAP_NET_ADMIN in it), and, unless
// the cache is off, that the state directory can be written. A command
// that loads and compiles a large input first would otherwise learn of a
// missing privilege only after seconds of work.
func Probe(o Options) error {
	d, err := newDumper(o)
	if err != nil {
		return err
	}
	defer d.close()
	if _, err := d.generation(); err != nil {
		return err
	}
	if o.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("netlink: state directory: %w", err)
	}
	if err := unix.Access(o.StateDir, unix.W_OK); err != nil {
		return fmt.Errorf("netlink: state directory: %w", &os.PathError{Op: "access", Path: o.StateDir, Err: err})
	}
	return nil
}
