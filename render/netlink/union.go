//go:build linux

package netlink

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"

	"kpc/compiler/ir"
	"kpc/render/internal/nftdirect"
	"kpc/render/internal/nftplan"
)

// A Union keeps kpc's tables in the kernel as the union of the
// contributions of independent parts of the input (a Service with its
// EndpointSlices, say), so that a change of one part is sent without
// compiling or building the others.
//
// A part's contribution is the batch of a Program compiled from that part
// alone: its chains (name, head and rules), its sets (declaration) and
// their elements. The Union counts, for every chain, set and element, how
// many parts contribute each version of it. A full Program whose tables
// are the union of its parts' is one where every object is contributed in
// one version, apart from a few objects (the base chains, say) whose
// version depends on which features the parts use: for those the kernel
// holds the full Program's version, and it stays right as long as the set
// of versions the parts contribute does not change.
//
// Adopt checks that a full Program is that union, object by object, and
// records its versions; Update then turns a change of some parts into one
// batch: the objects whose contributors all left are deleted, those that
// gain their first contributor are created from the part that brings
// them, and those whose only version changes are rewritten. Whatever the
// union cannot decide (an object that gains a second version, a base
// chain or a set declaration that changes, a set whose declared size no
// longer fits its elements, a table that appears or goes) is refused with
// ErrNeedFull, and the caller replaces the tables with a full build
// (Replace). Adopt reads only a Summary of the full batch, and a counted
// Part is taken back by its names, keys and sums alone (Part.Slim), so the
// Union of 50,000 Services does not hold their batches.
type Union struct {
	o Options
	// tables holds the IPv4 and the IPv6 table, in that order.
	tables [2]*unionTable
	// adopted: Adopt succeeded, and nothing since made the kernel's
	// tables unknown.
	adopted bool
	// gen is the nftables generation at which the kernel holds the
	// Union's tables: the one the adopted apply or the last update left
	// (0: unknown).
	gen uint32
	// w, when set (Follow), tells whether the commits since gen left
	// kpc's tables alone.
	w *Witness
	// Update writes into the fingerprint set of a table it changes a
	// prefix unique to this Union and a sequence number (so that Sync no
	// longer takes the table for the one it cached).
	fpPrefix string
	fpSeq    int
	// bare holds, per family, the distinct tables of no Service that
	// Share found in slim Parts (at most maxBare each).
	bare [2][]*partTable
}

// maxBare bounds the distinct tables of no Service a Union shares per
// family.
const maxBare = 8

// ErrNeedFull says that a change cannot be sent as an update of the
// Union's tables; the caller replaces them (Replace).
var ErrNeedFull = errors.New("needs a full replace")

// needFull wraps ErrNeedFull with the reason.
func needFull(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNeedFull, fmt.Sprintf(format, args...))
}

// tally counts the contributors of one object by version (a sum over
// everything the object is).
type tally struct {
	sum    uint64
	n      int32
	others []version
}

type version struct {
	sum uint64
	n   int32
}

// total is the number of contributors.
func (t *tally) total() int32 {
	n := t.n
	for _, v := range t.others {
		n += v.n
	}
	return n
}

// add counts d more (or fewer) contributors of version sum.
func (t *tally) add(sum uint64, d int32) {
	switch {
	case t.n != 0 && t.sum == sum || t.n == 0 && len(t.others) == 0:
		t.sum, t.n = sum, t.n+d
	default:
		i := slices.IndexFunc(t.others, func(v version) bool { return v.sum == sum })
		if i < 0 {
			t.others = append(t.others, version{sum, d})
		} else {
			t.others[i].n += d
		}
	}
	// Keep the first slot filled while any version is counted.
	if t.n == 0 && len(t.others) > 0 {
		for i, v := range t.others {
			if v.n != 0 {
				t.sum, t.n = v.sum, v.n
				t.others = slices.Delete(t.others, i, i+1)
				break
			}
		}
	}
	t.others = slices.DeleteFunc(t.others, func(v version) bool { return v.n == 0 })
	if len(t.others) == 0 {
		t.others = nil
	}
}

// versions returns the counted versions, sorted.
func (t *tally) versions() []uint64 {
	var out []uint64
	if t.n != 0 {
		out = append(out, t.sum)
	}
	for _, v := range t.others {
		out = append(out, v.sum)
	}
	slices.Sort(out)
	return out
}

// unionTable is one table of a Union.
type unionTable struct {
	table *nftables.Table
	fam   family
	// parts counts the contributions that define the table; exists says
	// whether the kernel holds it, fingerprinted whether it has a
	// fingerprint set.
	parts                 int
	exists, fingerprinted bool
	chains                map[string]*tally
	// base names the chains with a hook.
	base map[string]bool
	sets map[string]*unionSet
	// present holds the kernel's version of each object with several
	// versions (see objectKey).
	present map[string]uint64
	// maps is the number of numbered maps of each kind of the kernel's
	// table (Adopt's); slotted counts the parts' elements of Balances with
	// a slot in them, whose total decides that number (nftplan.Maps).
	maps, slotted int
}

// unionSet is one named set of a unionTable.
type unionSet struct {
	head tally // the declaration, without its size
	// decl is the declaration of a part (the first counted), and sized
	// whether such a set declares a size (nftplan.SetSize).
	decl  *nftables.Set
	sized bool
	// size is the size the kernel's set declares; count the number of
	// elements it holds (both known once adopted).
	size  uint32
	count int
	elems map[string]*tally
}

func newUnionTable(name string, fam family) *unionTable {
	return &unionTable{table: &nftables.Table{Name: name, Family: fam.table}, fam: fam,
		chains: map[string]*tally{}, base: map[string]bool{}, sets: map[string]*unionSet{}, present: map[string]uint64{}}
}

// objectKey names an object of a table for unionTable.present.
func objectKey(kind byte, name string, key []byte) string {
	return string(kind) + name + "\x00" + string(key)
}

// NewUnion returns an empty Union of the tables named table, for the
// namespace and options of o.
func NewUnion(table string, o Options) *Union {
	u := &Union{o: o, fpPrefix: fmt.Sprintf("kpc-watch:%x:", time.Now().UnixNano())}
	u.tables[0] = newUnionTable(table, famIPv4)
	u.tables[1] = newUnionTable(table, famIPv6)
	return u
}

// Part is the contribution of one part of the input: its Program's batch.
type Part struct {
	tables []*partTable
	slim   bool
}

// partTable is a Part's share of one table. Its table, define, slotted
// and maps are spec's; spec is nil once the Part is slim.
type partTable struct {
	spec          *tableSpec
	table         *nftables.Table
	define        bool
	slotted, maps int
	chains        []partChain
	sets          []partSet
	// serviceless: the Program's Ruleset of the table's family holds no
	// Service (see Union.Share).
	serviceless bool
}

// partChain is a chain of a Part: its name, whether it has a hook, and a
// sum over its head and rules; chain and rules are nil once the Part is
// slim.
type partChain struct {
	name  string
	base  bool
	sum   uint64
	chain *nftables.Chain
	rules []*ruleSpec
}

// partSet is a set of a Part: its name, a sum over its declaration
// without the size, its declared size, and the keys and sums of its
// elements (none for a dynamic set); spec is nil once the Part is slim.
type partSet struct {
	name string
	head uint64
	size uint32
	keys [][]byte
	sums []uint64
	spec *setSpec
}

// newPartTable starts the partTable of t.
func newPartTable(t *tableSpec) *partTable {
	return &partTable{spec: t, table: t.table, define: t.define, slotted: t.slotted, maps: t.maps}
}

// Slim drops what only sending the Part needs (its rules, its chains' and
// sets' declarations, its elements' data), keeping the names, keys and
// sums by which Uncount or a Change's Old takes it back. A slim Part cannot
// be counted again or be a Change's New. The Update that sends a Part (or
// the Adopt after it was counted) is the last to need all of it.
func (p *Part) Slim() {
	p.slim = true
	for _, pt := range p.tables {
		pt.slim()
	}
}

// slim drops the table's batch objects, keeping names, keys and sums.
func (pt *partTable) slim() {
	pt.spec = nil
	for i := range pt.chains {
		pt.chains[i].chain, pt.chains[i].rules = nil, nil
	}
	for i := range pt.sets {
		pt.sets[i].spec = nil
	}
}

// NewPart builds the contribution of a part's Program. ids gives out the
// set IDs: the Parts whose objects one Update may send must share it.
func NewPart(p *ir.Program, o Options, ids *uint32) (*Part, error) {
	b, err := build(p, o, ids, false)
	if err != nil {
		return nil, err
	}
	part := &Part{}
	for _, t := range b.tables {
		if !t.define {
			part.tables = append(part.tables, newPartTable(t))
			continue
		}
		pt, err := partOf(t)
		if err != nil {
			return nil, err
		}
		fam := familyOf(t).ir
		pt.serviceless = !slices.ContainsFunc(p.Rulesets, func(rs *ir.Ruleset) bool { return rs != nil && rs.Family == fam && rs.HoldsServices() })
		part.tables = append(part.tables, pt)
		byChain := map[string][]*ruleSpec{}
		for _, r := range t.rules {
			byChain[r.rule.Chain.Name] = append(byChain[r.rule.Chain.Name], r)
		}
		for i := range pt.chains {
			pt.chains[i].rules = byChain[pt.chains[i].name]
		}
	}
	return part, nil
}

// Share has p, once slim, hold the same copy as the Parts shared before it
// of each table it contributes for a family in which it holds no Service.
// Such a table (kept for the family's service CIDRs) is the same in the
// Part of every Service of the other family: at 50,000 Services its copies
// held about 100 MB.
func (u *Union) Share(p *Part) {
	if !p.slim {
		return
	}
	for i, pt := range p.tables {
		if !pt.serviceless {
			continue
		}
		f := familyIndex(pt.table)
		j := slices.IndexFunc(u.bare[f], pt.same)
		switch {
		case j >= 0:
			p.tables[i] = u.bare[f][j]
		case len(u.bare[f]) < maxBare:
			u.bare[f] = append(u.bare[f], pt)
		}
	}
}

// same reports whether two slim tables are equal.
func (pt *partTable) same(o *partTable) bool {
	if pt.table.Name != o.table.Name || pt.table.Family != o.table.Family || pt.define != o.define ||
		pt.slotted != o.slotted || pt.maps != o.maps || len(pt.chains) != len(o.chains) || len(pt.sets) != len(o.sets) {
		return false
	}
	for i, c := range pt.chains {
		d := o.chains[i]
		if c.name != d.name || c.base != d.base || c.sum != d.sum {
			return false
		}
	}
	for i, s := range pt.sets {
		t := o.sets[i]
		if s.name != t.name || s.head != t.head || s.size != t.size || !slices.Equal(s.sums, t.sums) ||
			!slices.EqualFunc(s.keys, t.keys, bytes.Equal) {
			return false
		}
	}
	return true
}

// unsizedHeadSum is setHeadSum without the declared size, which depends on
// the number of elements of the whole set.
func unsizedHeadSum(s *nftables.Set) uint64 {
	c := *s
	c.Size = 0
	return setHeadSum(&c)
}

// familyIndex is the index of t's family in the Union's per-family
// arrays: 0 for IPv4, 1 for IPv6.
func familyIndex(t *nftables.Table) int {
	if t.Family == famIPv6.table {
		return 1
	}
	return 0
}

// slot is the unionTable of a table.
func (u *Union) slot(t *nftables.Table) (*unionTable, error) {
	ut := u.tables[familyIndex(t)]
	if t.Name != ut.table.Name {
		return nil, fmt.Errorf("netlink: a part defines table %s, the union holds %s", t.Name, ut.table.Name)
	}
	return ut, nil
}

// Count adds a part's contribution (before Adopt, or to follow a change
// that Replace applied).
func (u *Union) Count(p *Part) error { return u.count(p, 1, nil) }

// Uncount removes a part's contribution.
func (u *Union) Uncount(p *Part) error { return u.count(p, -1, nil) }

// undo records the tallies an Update touched, to restore them if the
// update is refused.
type undo struct {
	tallies map[*tally]tally
	sets    map[*unionSet]unionSet
	tables  map[*unionTable][2]int // parts, slotted
	// before holds, by table slot and objectKey, whether the object was in
	// the kernel and its version, before the update.
	touched [2]map[string]before
}

type before struct {
	t        *tally
	has      bool
	sum      uint64
	versions []uint64
}

func (d *undo) save(t *tally) {
	if _, ok := d.tallies[t]; !ok {
		c := *t
		c.others = slices.Clone(t.others)
		d.tallies[t] = c
	}
}

// count adds (d = 1) or removes (d = -1) a contribution, recording what
// it touches in un when given.
func (u *Union) count(p *Part, d int32, un *undo) error {
	if p.slim && d > 0 {
		return errors.New("netlink: a slim part cannot be counted again")
	}
	for _, pt := range p.tables {
		ut, err := u.slot(pt.table)
		if err != nil {
			return err
		}
		if !pt.define || len(pt.chains) == 0 && len(pt.sets) == 0 {
			// A Program without Rulesets defines an empty IPv4 table:
			// that part contributes nothing.
			continue
		}
		idx := 0
		if ut == u.tables[1] {
			idx = 1
		}
		if un != nil {
			if _, ok := un.tables[ut]; !ok {
				un.tables[ut] = [2]int{ut.parts, ut.slotted}
			}
		}
		if un != nil && pt.slotted > 0 && pt.maps != ut.maps {
			return needFull("table %s: a part was built for %d numbered maps, the table has %d", tableLabel(ut.table), pt.maps, ut.maps)
		}
		ut.parts += int(d)
		ut.slotted += int(d) * pt.slotted
		for _, c := range pt.chains {
			t := ut.chains[c.name]
			if t == nil {
				t = &tally{}
				ut.chains[c.name] = t
			}
			if un != nil {
				un.note(idx, objectKey('c', c.name, nil), t, ut)
				un.save(t)
			}
			t.add(c.sum, d)
			if c.base {
				ut.base[c.name] = true
			}
		}
		for _, s := range pt.sets {
			us := ut.sets[s.name]
			if us == nil {
				if s.spec == nil {
					return fmt.Errorf("netlink: set %s of a slim part is not counted", s.name)
				}
				us = &unionSet{elems: map[string]*tally{}, decl: s.spec.set, sized: sizedSet(s.spec.set)}
				ut.sets[s.name] = us
			}
			if un != nil {
				if _, ok := un.sets[us]; !ok {
					un.sets[us] = unionSet{size: us.size, count: us.count}
				}
				un.note(idx, objectKey('s', s.name, nil), &us.head, ut)
				un.save(&us.head)
			}
			us.head.add(s.head, d)
			for i := range s.sums {
				key := s.keys[i]
				t := us.elems[string(key)]
				if t == nil {
					t = &tally{}
					us.elems[string(key)] = t
				}
				if un != nil {
					un.note(idx, objectKey('e', s.name, key), t, ut)
					un.save(t)
				}
				t.add(s.sums[i], d)
			}
		}
	}
	return nil
}

// note records an object's state before its first change in an update.
func (d *undo) note(idx int, key string, t *tally, ut *unionTable) {
	if d.touched[idx] == nil {
		d.touched[idx] = map[string]before{}
	}
	if _, ok := d.touched[idx][key]; ok {
		return
	}
	has, sum := ut.version(key, t)
	d.touched[idx][key] = before{t: t, has: has, sum: sum, versions: t.versions()}
}

// version is the kernel's version of an object: none when no part
// contributes it, the one version when there is one, and otherwise the
// version recorded by Adopt.
func (ut *unionTable) version(key string, t *tally) (bool, uint64) {
	switch {
	case t.total() == 0:
		return false, 0
	case len(t.others) == 0:
		return true, t.sum
	}
	sum, ok := ut.present[key]
	return ok, sum
}

// restore puts back what an update touched.
func (u *Union) restore(un *undo) {
	for t, c := range un.tallies {
		*t = c
	}
	for s, c := range un.sets {
		s.size, s.count = c.size, c.count
	}
	for t, n := range un.tables {
		t.parts, t.slotted = n[0], n[1]
	}
}

// Adopt checks that the Union's counts describe full, the summary of the
// whole input's batch (Batch.Summary), and takes the kernel's versions
// of multi-version objects, the set sizes and the tables from it. gen is
// the nftables generation at which the kernel holds full's tables (the
// SyncReport's Generation of the apply of full). It returns an error
// naming the first object that differs: then the Union cannot update these
// tables, and every change needs Replace.
func (u *Union) Adopt(full *Summary, gen uint32) error {
	u.adopted = false
	u.gen = gen
	for _, st := range full.tables {
		part := st.part
		ut, err := u.slot(part.table)
		if err != nil {
			return err
		}
		ut.present = map[string]uint64{}
		ut.exists, ut.fingerprinted = part.define, st.fingerprinted
		if !part.define {
			if ut.parts != 0 {
				return fmt.Errorf("table %s: the parts define it, the whole input does not", tableLabel(part.table))
			}
			continue
		}
		if ut.parts == 0 && (len(part.chains) > 0 || len(part.sets) > 0) {
			return fmt.Errorf("table %s: the whole input defines it, no part does", tableLabel(part.table))
		}
		ut.maps = part.maps
		if ut.slotted != part.slotted {
			return fmt.Errorf("table %s: the parts' Balances have %d elements in numbered maps, the whole input's %d", tableLabel(part.table), ut.slotted, part.slotted)
		}
		seen := map[string]bool{}
		for _, c := range part.chains {
			seen[c.name] = true
			tl := ut.chains[c.name]
			if err := ut.adoptVersion(objectKey('c', c.name, nil), tl, c.sum); err != nil {
				return fmt.Errorf("table %s, chain %s: %w", tableLabel(part.table), c.name, err)
			}
		}
		for name, tl := range ut.chains {
			if tl.total() > 0 && !seen[name] {
				return fmt.Errorf("table %s, chain %s: the parts have it, the whole input does not", tableLabel(part.table), name)
			}
		}
		clear(seen)
		for _, s := range part.sets {
			name := s.name
			seen[name] = true
			us := ut.sets[name]
			if us == nil {
				return fmt.Errorf("table %s, set %s: the whole input has it, no part does", tableLabel(part.table), name)
			}
			if err := ut.adoptVersion(objectKey('s', name, nil), &us.head, s.head); err != nil {
				return fmt.Errorf("table %s, set %s: %w", tableLabel(part.table), name, err)
			}
			us.size, us.count = s.size, len(s.sums)
			n := 0
			for _, tl := range us.elems {
				if tl.total() > 0 {
					n++
				}
			}
			if n != len(s.sums) {
				return fmt.Errorf("table %s, set %s: the parts have %d elements, the whole input %d", tableLabel(part.table), name, n, len(s.sums))
			}
			for i, sum := range s.sums {
				key := s.keys[i]
				if err := ut.adoptVersion(objectKey('e', name, key), us.elems[string(key)], sum); err != nil {
					return fmt.Errorf("table %s, set %s, element %x: %w", tableLabel(part.table), name, key, err)
				}
			}
		}
		for name, us := range ut.sets {
			if us.head.total() > 0 && !seen[name] {
				return fmt.Errorf("table %s, set %s: the parts have it, the whole input does not", tableLabel(part.table), name)
			}
		}
	}
	u.adopted = true
	return nil
}

// A Summary is what Adopt reads of the batch of a whole input: for each
// table, whether it is defined and has a fingerprint set, and the names,
// keys and sums of its objects (those of a slim Part). It is much smaller
// than the batch, which the caller can drop once it is summarized.
type Summary struct {
	name   string
	maps   [2]int
	tables []summaryTable
}

type summaryTable struct {
	part          *partTable
	fingerprinted bool
}

// Summary summarizes the batch for Adopt.
func (b *Batch) Summary() (*Summary, error) {
	s := &Summary{name: b.TableName(), maps: b.NumberedMaps()}
	for _, t := range b.tables {
		st := summaryTable{part: newPartTable(t), fingerprinted: t.hasSet(fingerprintSet)}
		if t.define {
			pt, err := partOf(t)
			if err != nil {
				return nil, err
			}
			st.part = pt
		}
		st.part.slim()
		s.tables = append(s.tables, st)
	}
	return s, nil
}

// TableName returns the name of the summarized tables.
func (s *Summary) TableName() string { return s.name }

// NumberedMaps returns the number of numbered maps of each kind of the
// summarized IPv4 and IPv6 tables (Batch.NumberedMaps).
func (s *Summary) NumberedMaps() [2]int { return s.maps }

// partOf describes a whole table as a Part's table.
func partOf(t *tableSpec) (*partTable, error) {
	chains, err := t.chainStates()
	if err != nil {
		return nil, err
	}
	pt := newPartTable(t)
	for i, c := range t.chains {
		h := newHasher()
		h.str(chains[i].head)
		h.u64(chains[i].rules)
		pt.chains = append(pt.chains, partChain{name: c.Name, base: c.Hooknum != nil, chain: c, sum: h.sum()})
	}
	for _, s := range t.sets {
		if s.set.Name == fingerprintSet {
			continue
		}
		ps := partSet{name: s.set.Name, spec: s, head: unsizedHeadSum(s.set), size: s.set.Size}
		if !s.set.Dynamic {
			ps.sums = make([]uint64, len(s.elems))
			ps.keys = make([][]byte, len(s.elems))
			for i := range s.elems {
				ps.sums[i] = elemSum(&s.elems[i])
				ps.keys[i] = s.elems[i].Key
			}
		}
		pt.sets = append(pt.sets, ps)
	}
	return pt, nil
}

// adoptVersion checks the whole input's version of an object against its
// tally and records it when the tally has several.
func (ut *unionTable) adoptVersion(key string, t *tally, sum uint64) error {
	switch {
	case t == nil || t.total() == 0:
		return errors.New("the whole input has it, no part does")
	case len(t.others) == 0 && t.sum != sum:
		return errors.New("the whole input's differs from the parts'")
	case len(t.others) > 0:
		if !slices.Contains(t.versions(), sum) {
			return errors.New("the whole input's is none of the parts'")
		}
		ut.present[key] = sum
	}
	return nil
}

// Adopted reports whether the Union can update the kernel's tables.
func (u *Union) Adopted() bool { return u.adopted }

// Change is one part's change: Old is its contribution the kernel holds
// (nil for a new part), New the one to send (nil for a part that goes).
type Change struct {
	Old, New *Part
}

// UpdateReport says what an Update sent.
type UpdateReport struct {
	// Messages counts the netlink messages of the batch; the other fields
	// count objects added, deleted and rewritten.
	Messages                                   int
	AddedElements, DeletedElements             int
	AddedChains, DeletedChains, RewrittenChain int
	AddedSets, DeletedSets                     int
	StaleClients                               int
	// Foreign counts the commits of others since the Union's last one,
	// which its Witness saw leave kpc's tables alone; Resent, the times
	// the batch was sent again after the kernel refused it because of
	// such a commit.
	Foreign, Resent int
	// Diff is the time taken to work out the batch, Kernel to send it
	// and get the kernel's answer.
	Diff, Kernel time.Duration
}

// String summarizes the report on one line.
func (r *UpdateReport) String() string {
	s := fmt.Sprintf("%d netlink messages (%d elements added, %d deleted; %d chains created, %d rewritten, %d deleted; %d sets created, %d deleted)",
		r.Messages, r.AddedElements, r.DeletedElements, r.AddedChains, r.RewrittenChain, r.DeletedChains, r.AddedSets, r.DeletedSets)
	switch {
	case r.Foreign == 1:
		s += ", after 1 commit to another table"
	case r.Foreign > 1:
		s += fmt.Sprintf(", after %d commits to other tables", r.Foreign)
	}
	if r.Resent > 0 {
		s += fmt.Sprintf(", sent %d times", r.Resent+1)
	}
	return s
}

// Update sends the changes as one batch. It first checks that the
// nftables generation is still the one this Union's last update (or the
// adopted apply) left, so that tables changed since by anyone else are not
// updated, and sends the batch at that generation, so that the kernel
// refuses it if anything is committed meanwhile. A generation that moved
// is refused with ErrNeedFull, unless the Union follows the namespace's
// commits (Follow) and they all left kpc's tables alone: then the batch is
// sent at the new generation (and sent again, a few times at most, when
// the kernel refuses it because of another such commit). Without a
// Witness, the Union cannot tell another table's commit from an edit of
// its own tables, and the caller's full apply (Sync) reads them back. An
// error wrapping ErrNeedFull leaves the kernel and the Union as they
// were; any other error leaves the kernel's tables unknown, and the next
// change needs Replace.
func (u *Union) Update(changes []Change) (*UpdateReport, error) {
	if !u.adopted {
		return nil, needFull("the kernel's tables are not known to be the union of the parts")
	}
	start := time.Now()
	rep := &UpdateReport{}
	un := &undo{tallies: map[*tally]tally{}, sets: map[*unionSet]unionSet{}, tables: map[*unionTable][2]int{}}
	for _, c := range changes {
		if c.Old != nil {
			if err := u.count(c.Old, -1, un); err != nil {
				u.restore(un)
				return nil, err
			}
		}
		if c.New != nil {
			if err := u.count(c.New, 1, un); err != nil {
				u.restore(un)
				return nil, err
			}
		}
	}
	diffs, specs, err := u.plan(changes, un, rep)
	if err != nil {
		u.restore(un)
		return nil, err
	}
	rep.Diff = time.Since(start)
	if diffs == nil {
		return rep, nil
	}
	was := u.gen
	if !u.o.DryRun {
		if err := u.checkGeneration(); err != nil {
			u.restore(un)
			return nil, err
		}
		rep.Foreign = int(u.gen - was)
	}
	fp := fmt.Sprintf("%s%d", u.fpPrefix, u.fpSeq+1)
	for _, d := range diffs {
		fs := &nftables.Set{Table: d.table, Name: fingerprintSet, KeyType: nftables.TypeInetService, KeyByteOrder: binaryutil.BigEndian}
		d.delElems = append(d.delElems, elemOp{set: fs, elems: []nftables.SetElement{{Key: fingerprintKey}}})
		d.addElems = append(d.addElems, elemOp{set: fs, elems: []nftables.SetElement{{Key: fingerprintKey, Comment: fp}}})
	}
	q := &queue{}
	for _, d := range diffs {
		q.update(d)
	}
	rep.Messages = q.messages
	if u.o.DryRun {
		u.restore(un)
		return rep, nil
	}
	start = time.Now()
	sr := &SyncReport{}
	if u.o.afterPlan != nil {
		u.o.afterPlan()
	}
	gen, err := sendDiffs(specs, diffs, u.o, sr, u.gen)
	for try := 0; try < maxResends && u.w != nil && generationMoved(err); try++ {
		// Another commit came after the check: if it left kpc's
		// tables alone, the same batch goes at the new generation.
		if cerr := u.checkGeneration(); cerr != nil {
			break
		}
		rep.Resent++
		rep.Foreign = int(u.gen - was)
		gen, err = sendDiffs(specs, diffs, u.o, sr, u.gen)
	}
	rep.Kernel = time.Since(start)
	rep.Messages += sr.Sent.Messages
	rep.StaleClients = sr.StaleClients
	if err != nil {
		u.restore(un)
		if !unknownOutcome(err) {
			// Refused: the kernel holds what it held.
			return nil, fmt.Errorf("%w: the kernel refused the update (%v)", ErrNeedFull, err)
		}
		u.adopted = false
		return nil, err
	}
	u.fpSeq++
	u.gen = gen
	u.commit(un)
	return rep, nil
}

// commit drops the multi-version records of objects that now have one
// version or none.
func (u *Union) commit(un *undo) {
	for idx, m := range un.touched {
		ut := u.tables[idx]
		for key, b := range m {
			if _, ok := ut.present[key]; ok && len(b.t.others) == 0 {
				delete(ut.present, key)
			}
		}
	}
}

// after is an object's version once an update's counts are in: none, its
// one version, or the kernel's version when it had several and still has
// the same ones. Anything else needs a full replace.
func after(was before) (bool, uint64, error) {
	t := was.t
	switch {
	case t.total() == 0:
		return false, 0, nil
	case len(t.others) == 0:
		return true, t.sum, nil
	case was.has && len(was.versions) > 1 && slices.Equal(was.versions, t.versions()):
		return true, was.sum, nil
	}
	return false, 0, needFull("the parts contribute %d versions of it", len(t.versions()))
}

// maxResends bounds how many times Update sends its batch again after the
// kernel refused it because of a commit that left kpc's tables alone.
const maxResends = 3

// Follow has the Union take w's word on the commits since its last one
// (see Update); nil stops that. The caller keeps w and closes it.
func (u *Union) Follow(w *Witness) { u.w = w }

// checkGeneration reads the nftables generation and refuses when it is not
// the one the Union's last update or the adopted apply left and the
// Union's Witness (if any) cannot tell that every commit since left
// kpc's tables alone: only a full apply can then tell whether they still
// hold what the Union counts. When it can, the Union takes the new
// generation for its own.
func (u *Union) checkGeneration() error {
	d, err := newDumper(u.o)
	if err != nil {
		return err
	}
	defer d.close()
	gen, err := d.generation()
	if err != nil {
		return err
	}
	if u.gen != 0 && gen != u.gen && u.w.Clean(u.gen, gen) {
		u.gen = gen
		return nil
	}
	if u.gen == 0 || gen != u.gen {
		u.adopted = false
		return needFull("something was committed to nftables since kpc's last commit (generation %d, not %d)", gen, u.gen)
	}
	return nil
}

// plan turns the counted changes into one diff per table the update
// changes, and the specs stickyChanges reads (the new parts' sets).
func (u *Union) plan(changes []Change, un *undo, rep *UpdateReport) ([]*tableDiff, []*tableSpec, error) {
	var diffs []*tableDiff
	var specs []*tableSpec
	for idx, ut := range u.tables {
		touched := un.touched[idx]
		n, ok := un.tables[ut]
		if ok && (n[0] == 0) != (ut.parts == 0) {
			return nil, nil, needFull("table %s would be created or removed", tableLabel(ut.table))
		}
		if m := nftplan.Maps(ut.slotted); ok && ut.parts > 0 && m != ut.maps {
			return nil, nil, needFull("table %s would have %d numbered maps of each kind, not %d", tableLabel(ut.table), m, ut.maps)
		}
		if len(touched) == 0 {
			continue
		}
		if !ut.exists || !ut.fingerprinted {
			return nil, nil, needFull("table %s has no fingerprint to check it by", tableLabel(ut.table))
		}
		// What the new parts bring, by object.
		newChains := map[string]*partChain{}
		newSets := map[string]*partSet{}
		type elemRef struct {
			set *partSet
			i   int
		}
		newElems := map[string]elemRef{}
		sticky := &tableSpec{table: ut.table}
		for _, c := range changes {
			if c.New == nil {
				continue
			}
			for _, pt := range c.New.tables {
				if pt.table.Family != ut.table.Family || !pt.define {
					continue
				}
				for i := range pt.chains {
					newChains[objectKey('c', pt.chains[i].chain.Name, nil)] = &pt.chains[i]
				}
				for i := range pt.sets {
					s := &pt.sets[i]
					newSets[objectKey('s', s.spec.set.Name, nil)] = s
					sticky.sets = append(sticky.sets, s.spec)
					for j := range s.sums {
						newElems[objectKey('e', s.spec.set.Name, s.spec.elems[j].Key)] = elemRef{s, j}
					}
				}
			}
		}
		d := &tableDiff{table: ut.table}
		keys := make([]string, 0, len(touched))
		for k := range touched {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rewrite := map[string]bool{}
		addSets := map[string]*setSpec{}
		delSets := map[string]bool{}
		// Sets first: their fate decides that of their elements.
		for _, key := range keys {
			if key[0] != 's' {
				continue
			}
			name := key[1 : len(key)-1]
			was := touched[key]
			has, sum, err := after(was)
			if err != nil {
				return nil, nil, fmt.Errorf("set %s: %w", name, err)
			}
			switch {
			case was.has == has && (!has || was.sum == sum):
			case !was.has:
				ps := newSets[key]
				if ps == nil {
					return nil, nil, needFull("set %s: no new part declares it", name)
				}
				s := *ps.spec.set
				spec := &setSpec{set: &s, userdata: ps.spec.userdata}
				addSets[name] = spec
				d.newSets = append(d.newSets, spec)
				rep.AddedSets++
			case !has:
				// No part contributes it, so no part's chain uses it: those
				// chains are rewritten or deleted in this batch, whose
				// flushes come before the set's deletion. Its elements go
				// with it.
				delSets[name] = true
				d.delSets = append(d.delSets, &nftables.Set{Table: ut.table, Name: name})
				rep.DeletedSets++
			default:
				return nil, nil, needFull("the declaration of set %s changes", name)
			}
		}
		// Elements.
		adds := map[string][]nftables.SetElement{}
		dels := map[string][]nftables.SetElement{}
		counts := map[string]int{} // by set: elements added less deleted
		for _, key := range keys {
			if key[0] != 'e' {
				continue
			}
			name, k, _ := strings.Cut(key[1:], "\x00")
			was := touched[key]
			has, sum, err := after(was)
			if err != nil {
				return nil, nil, fmt.Errorf("set %s, element %x: %w", name, k, err)
			}
			if was.has == has && (!has || was.sum == sum) {
				continue
			}
			us := ut.sets[name]
			if us == nil {
				return nil, nil, fmt.Errorf("netlink: set %s of an element is not counted", name)
			}
			if was.has {
				counts[name]--
				if addSets[name] == nil && !delSets[name] {
					dels[name] = append(dels[name], nftables.SetElement{Key: []byte(k)})
					rep.DeletedElements++
				}
			}
			if has {
				ref, ok := newElems[key]
				if !ok || ref.set.sums[ref.i] != sum {
					return nil, nil, needFull("set %s: element %x comes from no new part", name, k)
				}
				counts[name]++
				if s := addSets[name]; s != nil {
					s.elems = append(s.elems, ref.set.spec.elems[ref.i])
				} else {
					adds[name] = append(adds[name], ref.set.spec.elems[ref.i])
				}
				rep.AddedElements++
			}
		}
		for _, name := range sortedNames(counts) {
			us := ut.sets[name]
			if delSets[name] {
				us.count, us.size = 0, 0
				continue
			}
			if us.decl.Interval {
				return nil, nil, needFull("set %s holds intervals", name)
			}
			n := us.count + counts[name]
			var size uint32
			if us.sized {
				size = nftplan.SetSize(n)
			}
			if s := addSets[name]; s != nil {
				s.set.Size = size
			} else if size != us.size {
				return nil, nil, needFull("set %s: %d elements need another declared size than %d", name, n, us.size)
			}
			us.count, us.size = n, size
			set := us.decl
			if ps := newSets[objectKey('s', name, nil)]; ps != nil {
				set = ps.spec.set
			}
			c := *set
			c.Table, c.Size = ut.table, size
			if len(dels[name]) > 0 {
				d.delElems = append(d.delElems, elemOp{set: &c, elems: dels[name]})
			}
			if len(adds[name]) > 0 {
				d.addElems = append(d.addElems, elemOp{set: &c, elems: adds[name]})
			}
		}
		// Chains.
		for _, key := range keys {
			if key[0] != 'c' {
				continue
			}
			name := key[1 : len(key)-1]
			was := touched[key]
			has, sum, err := after(was)
			if err != nil {
				return nil, nil, fmt.Errorf("chain %s: %w", name, err)
			}
			if was.has == has && (!has || was.sum == sum) {
				continue
			}
			var pc *partChain
			if has {
				if pc = newChains[key]; pc == nil || pc.sum != sum {
					return nil, nil, needFull("chain %s: its version comes from no new part", name)
				}
				if pc.chain.Hooknum != nil && was.has {
					return nil, nil, needFull("base chain %s changes", name)
				}
			}
			switch {
			case !was.has:
				d.newChains = append(d.newChains, pc.chain)
				rewrite[name] = true
				rep.AddedChains++
			case !has:
				c := &nftables.Chain{Table: ut.table, Name: name}
				if ut.base[name] {
					return nil, nil, needFull("base chain %s would be deleted", name)
				}
				d.flushChains = append(d.flushChains, c)
				d.delChains = append(d.delChains, c)
				rep.DeletedChains++
			default:
				d.flushChains = append(d.flushChains, pc.chain)
				rewrite[name] = true
				rep.RewrittenChain++
			}
			if has {
				d.rules = append(d.rules, pc.rules...)
			}
		}
		if !d.empty() {
			diffs = append(diffs, d)
			specs = append(specs, sticky)
			if ut.sets[nftdirect.ClientsMap] != nil && ut.sets[nftdirect.ClientsMap].head.total() > 0 && !sticky.hasSet(nftdirect.ClientsMap) {
				sticky.sets = append(sticky.sets, &setSpec{set: &nftables.Set{Name: nftdirect.ClientsMap}})
			}
		}
	}
	if len(diffs) == 0 {
		return nil, nil, nil
	}
	return diffs, specs, nil
}

// sortedNames returns the keys of m, sorted.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
