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
// v0.3.0 silently truncates an element list above 64 KiB). The batch is
// sent on a socket of its own (see batch.go): no message asks for an
// acknowledgement, the kernel's errors name the message they answer, and
// the few things google/nftables cannot encode (a conntrack direction,
// nft's typeof records) are encoded here, so that the kernel holds the
// same bytes as after "nft -f" and "nft list" shows the same text.
// Chains and tables carry no comments in either form (the text's "#"
// lines before chains are script comments).
//
// Sync applies incrementally: it keeps a cache of the tables it applied
// last and sends only the difference when the kernel's tables still hold
// what it applied (see Sync). Compare reads the tables back over netlink
// and reports any drift from what Apply would create (see Drift).
//
// The package is Linux-only and needs CAP_NET_ADMIN in the target network
// namespace for Apply, Sync, Delete and Compare.
package netlink

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"

	"kpc/compiler/ir"
	"kpc/render"
	"kpc/render/internal/nftplan"
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
	// StateDir is where Sync keeps its cache of the tables it applied
	// last, one file per network namespace and table name; "" disables the
	// cache, and every Sync replaces the tables, unless their fingerprints
	// say that they hold the Program (which it then reads back to check).
	StateDir string
	// Full makes Sync replace the tables even when an incremental update
	// is possible.
	Full bool
	// NumberedMaps is render.NFT's field of that name: where not zero, the
	// number of numbered maps of each kind in the IPv4 (0) and the IPv6
	// (1) table.
	NumberedMaps [2]int

	// beforeFlush, when set (by tests), returns messages to append to the
	// batch after everything else.
	beforeFlush func(tables []*tableSpec) []mdnetlink.Message
	// afterPlan, when set (by tests), runs between Sync's reading of the
	// kernel's tables and the batch it sends.
	afterPlan func()
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
	return fmt.Sprintf("%s, %s, %s, %s, %s in %s",
		count(s.Tables, "table", "tables"), count(s.Chains, "chain", "chains"), count(s.Sets, "set or map", "sets and maps"),
		count(s.Rules, "rule", "rules"), count(s.Elements, "element", "elements"), count(s.Messages, "netlink message", "netlink messages"))
}

// count is n with the noun's singular for 1, else its plural.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
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
	var ids uint32
	return build(p, o, &ids, true)
}

// build is Build with set IDs given out from *ids, so that several
// batches can share one transaction. Without script, the batch has no
// script and its tables no fingerprint set (a Part's, which needs
// neither).
func build(p *ir.Program, o Options, ids *uint32, script bool) (*Batch, error) {
	r := render.NFT{EndpointChains: o.EndpointChains, NumberedMaps: o.NumberedMaps}
	var (
		text  []byte
		plans [2]*nftplan.Plan
		err   error
	)
	if script {
		text, plans, err = r.Script(p)
	} else {
		plans, err = r.Plans(p)
	}
	if err != nil {
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
	b := &Batch{script: text}
	for slot, fam := range []family{famIPv4, famIPv6} {
		rs := byFamily[slot]
		if rs == nil {
			t := &tableSpec{table: &nftables.Table{Name: name, Family: fam.table}}
			// The text defines an empty IPv4 table for an empty Program.
			t.define = slot == 0 && byFamily[1] == nil
			b.tables = append(b.tables, t)
			continue
		}
		// The table holds the fingerprint set when the text does.
		fp, inText := tableFingerprint(b.script, fam, rs.Table)
		if !inText {
			fp = ""
		}
		t, err := buildTable(rs, fam, plans[slot], !o.EndpointChains, ids, fp)
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
	if _, err := b.send(o); err != nil {
		return b.stats, err
	}
	return b.stats, nil
}

// Send replaces kpc's tables with the batch's in one transaction, as
// Apply does.
func (b *Batch) Send(o Options) error {
	_, err := b.send(o)
	return err
}

// send queues the batch and sends it, and returns the nftables generation
// its commit left (see sendWhole).
func (b *Batch) send(o Options) (uint32, error) {
	q := newQueue()
	for _, t := range b.tables {
		q.table(t)
	}
	msgs, err := q.finish()
	if err != nil {
		return 0, err
	}
	if o.beforeFlush != nil {
		msgs = append(msgs, o.beforeFlush(b.tables)...)
	}
	return sendWhole(o, msgs)
}

// wholeAttempts is how many times sendWhole sends a batch at the
// generation it read before it sends it at any.
const wholeAttempts = 3

// sendWhole sends msgs, a batch whose outcome does not depend on what the
// kernel holds (it replaces kpc's tables whole), and returns the nftables
// generation its commit left: it reads the generation and sends the batch
// at it, and again when another commit came in between; after
// wholeAttempts such refusals it sends the batch at any generation, and
// returns 0 (unknown).
func sendWhole(o Options, msgs []mdnetlink.Message) (uint32, error) {
	for attempt := 1; ; attempt++ {
		var at uint32
		if attempt <= wholeAttempts {
			d, err := newDumper(o)
			if err != nil {
				return 0, err
			}
			at, err = d.generation()
			d.close()
			if err != nil {
				return 0, err
			}
		}
		err := sendBatch(o, msgs, at)
		switch {
		case at != 0 && generationMoved(err):
			continue
		case err != nil || at == 0:
			return 0, err
		}
		return nextGeneration(at), nil
	}
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
// batch, and Sync's cache of them; a missing table is not an error.
// Stats.Tables counts the tables that existed. With DryRun nothing is
// removed.
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
	q := newQueue()
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
	msgs, err := q.finish()
	if err != nil {
		return s, err
	}
	if err := sendBatch(o, msgs, 0); err != nil {
		return s, fmt.Errorf("netlink: deleting table %s: %w", name, err)
	}
	if o.StateDir != "" {
		path, err := cachePath(o, name)
		if err != nil {
			return s, err
		}
		if err := removeCache(path); err != nil {
			return s, err
		}
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

// NumberedMaps returns the number of numbered maps of each kind in the
// batch's IPv4 (0) and IPv6 (1) table: the Options.NumberedMaps with which
// a part of the same input gets the slots it has in this batch.
func (b *Batch) NumberedMaps() [2]int {
	var m [2]int
	for _, t := range b.tables {
		if t.define && t.table.Family == famIPv6.table {
			m[1] = t.maps
		} else if t.define {
			m[0] = t.maps
		}
	}
	return m
}

// TableName returns the name of the batch's tables.
func (b *Batch) TableName() string {
	if len(b.tables) == 0 {
		return defaultTable
	}
	return b.tables[0].table.Name
}
