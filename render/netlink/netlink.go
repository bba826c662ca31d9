//go:build linux

// Package netlink programs a compiled ir.Program into the kernel through
// nf_tables netlink messages (github.com/google/nftables), without the nft
// tool. It creates exactly the table that loading render.NFT's text with
// "nft -f" creates: the same sets, maps, chains and rules under the same
// names, in the same order, with the same element comments, built from
// the same layout plan (package nftplan).
//
// Everything goes into one netlink batch, which the kernel applies as one
// transaction: for IPv4 and IPv6, "add table; delete table; add table"
// followed by the table's objects, so that an apply replaces kpc's tables
// atomically whether or not they exist, touches no other table, and leaves
// the previous tables in place if anything in the batch is rejected.
//
// Within the batch, chains are created before any rule or map element
// names them, sets before the rules that look them up, and set elements
// are sent in messages of at most ElementChunkBytes (google/nftables
// v0.3.0 silently truncates an element list above 64 KiB). The socket's
// buffers are raised so that a batch of any size fits in one sendmsg and
// its acknowledgements fit in the receive queue.
//
// Known differences from the text, none of which changes a packet's fate:
//
//   - The endpoint-choice-K and endpoints-K maps are declared in the text
//     as "typeof numgen random mod 1 : ...". nft records that typeof
//     expression in set userdata, which google/nftables cannot write; the
//     maps get the same key type (integer, host byte order) and data type,
//     so "nft list" shows "type integer : verdict" and "type integer :
//     ipv4_addr . inet_service" instead of the typeof lines. Their
//     elements list identically.
//   - Chains and tables carry no comments in either form (the text's
//     "#" lines before chains are script comments), so nothing is lost.
//
// Compare reads the tables back over netlink and reports any drift from
// what Apply would create (see Drift).
//
// The package is Linux-only and needs CAP_NET_ADMIN in the target network
// namespace for Apply, Delete and Compare.
package netlink

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"kpc/compiler/ir"
	"kpc/render"
)

// ElementChunkBytes bounds the estimated size of the elements sent in one
// netlink message, well under the 64 KiB that a netlink attribute's length
// can express.
const ElementChunkBytes = 32 << 10

// DefaultTimeout bounds the wait for the kernel's answer to a batch when
// Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// Options say where and how to apply.
type Options struct {
	// NetNS is the path of the network namespace to program (for example
	// /var/run/netns/NAME); "" is the caller's namespace.
	NetNS string
	// DryRun builds and checks the batch but does not contact the kernel.
	DryRun bool
	// EndpointChains disables the lowering of plain endpoint chains, as
	// render.NFT's field of that name does.
	EndpointChains bool
	// Table names the tables that Delete removes; "" means "kpc". Apply
	// and Compare take the name from the Program.
	Table string
	// Timeout bounds the wait for the kernel's answer; 0 is
	// DefaultTimeout.
	Timeout time.Duration

	// beforeFlush, when set (by tests), runs after the batch has been
	// queued and before it is sent.
	beforeFlush func(c *nftables.Conn, tables []*nftables.Table)
}

// Stats counts the objects and messages of a batch.
type Stats struct {
	// Tables counts the tables defined (Apply) or removed (Delete).
	Tables int
	// Chains, Sets and Rules count the objects created; Sets includes the
	// maps and the anonymous sets of rules.
	Chains, Sets, Rules int
	// Elements counts the elements of all sets and maps.
	Elements int
	// Messages counts the netlink messages of the batch (without the
	// batch's begin and end markers).
	Messages int
}

// String summarizes the counts on one line.
func (s Stats) String() string {
	return fmt.Sprintf("%d tables, %d chains, %d sets and maps, %d rules, %d elements in %d netlink messages",
		s.Tables, s.Chains, s.Sets, s.Rules, s.Elements, s.Messages)
}

// Batch is a Program turned into the objects of one netlink batch. It is
// built without contacting the kernel.
type Batch struct {
	tables []*tableSpec
	script []byte
	stats  Stats
}

// Build checks p with render.NFT (every check of the text renderer
// applies) and builds its batch.
func Build(p *ir.Program, o Options) (*Batch, error) {
	var script bytes.Buffer
	if err := (render.NFT{EndpointChains: o.EndpointChains}).Render(&script, p); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	var byFamily [2]*ir.Ruleset
	name := ""
	for _, rs := range p.Rulesets {
		slot := 0
		if rs.Family == ir.IPv6 {
			slot = 1
		}
		byFamily[slot] = rs
		if name == "" {
			name = rs.Table
		}
	}
	if name == "" {
		name = defaultTable
	}
	b := &Batch{script: script.Bytes()}
	var ids uint32
	for slot, fam := range []family{famIPv4, famIPv6} {
		rs := byFamily[slot]
		if rs == nil {
			t := &tableSpec{table: &nftables.Table{Name: name, Family: fam.table}}
			// The text defines an empty IPv4 table for an empty Program.
			t.define = slot == 0 && byFamily[1] == nil
			b.tables = append(b.tables, t)
			continue
		}
		t, err := buildTable(rs, fam, !o.EndpointChains, &ids)
		if err != nil {
			return nil, fmt.Errorf("netlink: %v ruleset: %w", rs.Family, err)
		}
		b.tables = append(b.tables, t)
	}
	b.stats = b.count()
	return b, nil
}

// Script returns the nft -f script that creates the same tables (the
// output of render.NFT for the same Program and options).
func (b *Batch) Script() []byte { return bytes.Clone(b.script) }

// Stats returns the batch's counts.
func (b *Batch) Stats() Stats { return b.stats }

// count counts the batch's objects and messages.
func (b *Batch) count() Stats {
	var s Stats
	q := &queue{}
	for _, t := range b.tables {
		q.table(t)
		if !t.define {
			continue
		}
		s.Tables++
		s.Chains += len(t.chains)
		s.Sets += len(t.sets)
		s.Rules += len(t.rules)
		for _, set := range t.sets {
			s.Elements += len(set.elems)
		}
		for _, r := range t.rules {
			s.Sets += len(r.anon)
			for _, a := range r.anon {
				s.Elements += len(a.elems)
			}
		}
	}
	s.Messages = q.messages
	return s
}

// Apply replaces kpc's tables with p's in one batch (see the package
// documentation) and returns what the batch holds. With DryRun it only
// builds the batch. On error the kernel's tables are as before.
func Apply(p *ir.Program, o Options) (Stats, error) {
	b, err := Build(p, o)
	if err != nil {
		return Stats{}, err
	}
	if o.DryRun {
		return b.stats, nil
	}
	if err := b.send(o); err != nil {
		return b.stats, err
	}
	return b.stats, nil
}

// send queues the batch on a connection to the kernel and sends it.
func (b *Batch) send(o Options) error {
	c, err := dial(o)
	if err != nil {
		return err
	}
	defer c.close()
	q := &queue{conn: c.nft}
	var tables []*nftables.Table
	for _, t := range b.tables {
		q.table(t)
		tables = append(tables, t.table)
	}
	if q.err != nil {
		return fmt.Errorf("netlink: building the batch: %w", q.err)
	}
	if o.beforeFlush != nil {
		o.beforeFlush(c.nft, tables)
	}
	if err := c.flush(o); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, unix.ENOBUFS) {
			// The batch went out but its answer did not come back: the
			// kernel may or may not have committed it.
			return fmt.Errorf("netlink: no complete answer to the batch of %d messages, so whether it was applied "+
				"is unknown (compare the kernel's tables with the manifests, e.g. kpc diff --live): %w", q.messages, err)
		}
		return fmt.Errorf("netlink: the kernel rejected the batch of %d messages, so nothing was changed "+
			"(the error does not say which message; \"nft -c -f\" of the equivalent script locates it): %w", q.messages, err)
	}
	return nil
}

// timeout is Timeout or DefaultTimeout.
func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// tableName is the name Delete and Compare use.
func (o Options) tableName() string {
	if o.Table == "" {
		return defaultTable
	}
	return o.Table
}

// Delete removes kpc's IPv4 and IPv6 tables (named Options.Table) in one
// batch; a missing table is not an error. Stats.Tables counts the tables
// that existed. With DryRun nothing is removed.
func Delete(o Options) (Stats, error) {
	name := o.tableName()
	if err := checkTableName(name); err != nil {
		return Stats{}, err
	}
	c, err := dial(o)
	if err != nil {
		return Stats{}, err
	}
	defer c.close()
	var s Stats
	q := &queue{conn: c.nft}
	for _, fam := range []family{famIPv4, famIPv6} {
		t := &nftables.Table{Name: name, Family: fam.table}
		exists, err := c.tableExists(t)
		if err != nil {
			return Stats{}, err
		}
		if exists {
			s.Tables++
		}
		q.table(&tableSpec{table: t})
	}
	s.Messages = q.messages
	if o.DryRun {
		return s, nil
	}
	if err := c.flush(o); err != nil {
		return s, fmt.Errorf("netlink: deleting table %s: %w", name, err)
	}
	return s, nil
}

// checkTableName rejects names the kernel or nft would not take.
func checkTableName(name string) error {
	if name == "" || len(name) > 255 {
		return errors.New("netlink: table name must be 1-255 bytes")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("netlink: table name %q has a character nft cannot spell", name)
		}
	}
	return nil
}
