//go:build linux

package netlink

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
)

// errNeedFull says that a difference cannot be applied incrementally (a
// base chain changed its hook, say); the caller replaces the tables.
var errNeedFull = errors.New("the change needs a full replace")

// elemOp is a group of elements to add to or delete from one set.
type elemOp struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

// tableDiff is what one table's incremental update sends, phase by phase
// (see update for the order and why).
type tableDiff struct {
	table *nftables.Table
	// create: the table does not exist and is created whole (spec);
	// remove: the table exists and is deleted.
	create, remove bool
	spec           *tableSpec

	newChains   []*nftables.Chain
	newSets     []*setSpec
	delElems    []elemOp
	flushChains []*nftables.Chain
	delSets     []*nftables.Set
	remakeSets  []*setSpec
	addElems    []elemOp
	rules       []*ruleSpec
	delChains   []*nftables.Chain

	// Counts for the report.
	addedElems, deletedElems, changedChains int
}

// empty reports whether the diff changes nothing.
func (d *tableDiff) empty() bool {
	return !d.create && !d.remove && len(d.newChains) == 0 && len(d.newSets) == 0 && len(d.delElems) == 0 &&
		len(d.flushChains) == 0 && len(d.delSets) == 0 && len(d.remakeSets) == 0 && len(d.addElems) == 0 &&
		len(d.rules) == 0 && len(d.delChains) == 0
}

// diffTable computes how to turn table old (the kernel's, as cached) into
// the batch's table spec, whose state is want.
func diffTable(old, want *tableState, spec *tableSpec) (*tableDiff, error) {
	d := &tableDiff{table: spec.table, spec: spec}
	switch {
	case !old.defined && !want.defined:
		return d, nil
	case !old.defined:
		d.create = true
		return d, nil
	case !want.defined:
		d.remove = true
		return d, nil
	}

	// Sets: new, removed, remade (declaration changed), or diffed by
	// element.
	oldSets := make(map[string]*setState, len(old.sets))
	for _, s := range old.sets {
		oldSets[s.name] = s
	}
	wantSets := make(map[string]bool, len(want.sets))
	remade := map[string]bool{}
	for i, ws := range want.sets {
		wantSets[ws.name] = true
		spec := spec.sets[i]
		os := oldSets[ws.name]
		if os == nil {
			d.newSets = append(d.newSets, spec)
			d.addedElems += len(spec.elems)
			continue
		}
		if os.head != ws.head || os.unmanaged != ws.unmanaged {
			remade[ws.name] = true
			d.delSets = append(d.delSets, spec.set)
			d.remakeSets = append(d.remakeSets, spec)
			d.deletedElems += os.count()
			d.addedElems += len(spec.elems)
			continue
		}
		if ws.unmanaged {
			continue
		}
		del, add, err := diffElems(os, ws)
		if err != nil {
			return nil, fmt.Errorf("netlink: set %s: %w", ws.name, err)
		}
		if (len(del) > 0 || len(add) > 0) && spec.set.Interval {
			// Interval elements come in pairs; remake the set instead.
			remade[ws.name] = true
			d.delSets = append(d.delSets, spec.set)
			d.remakeSets = append(d.remakeSets, spec)
			d.deletedElems += os.count()
			d.addedElems += len(spec.elems)
			continue
		}
		if len(del) > 0 {
			d.delElems = append(d.delElems, elemOp{set: spec.set, elems: del})
			d.deletedElems += len(del)
		}
		if len(add) > 0 {
			d.addElems = append(d.addElems, elemOp{set: spec.set, elems: add})
			d.addedElems += len(add)
		}
	}
	for _, os := range old.sets {
		if !wantSets[os.name] {
			d.delSets = append(d.delSets, &nftables.Set{Table: spec.table, Name: os.name})
			d.deletedElems += os.count()
		}
	}

	// Chains: new, removed, or changed (rules differ, or they refer to a
	// remade set, whose old rules must go before it can be deleted).
	oldChains := make(map[string]*chainState, len(old.chains))
	for i := range old.chains {
		oldChains[old.chains[i].name] = &old.chains[i]
	}
	wantChains := make(map[string]bool, len(want.chains))
	rewrite := map[string]bool{}
	for i := range want.chains {
		wc := &want.chains[i]
		wantChains[wc.name] = true
		c := spec.chains[i]
		oc := oldChains[wc.name]
		if oc == nil {
			d.newChains = append(d.newChains, c)
			rewrite[wc.name] = true
			continue
		}
		if oc.head != wc.head {
			return nil, fmt.Errorf("%w: chain %s changes from %q to %q", errNeedFull, wc.name, oc.head, wc.head)
		}
		changed := oc.rules != wc.rules
		for _, r := range append(append([]string(nil), oc.refs...), wc.refs...) {
			changed = changed || remade[r]
		}
		if changed {
			d.flushChains = append(d.flushChains, c)
			rewrite[wc.name] = true
			d.changedChains++
		}
	}
	for i := range old.chains {
		oc := &old.chains[i]
		if wantChains[oc.name] {
			continue
		}
		if oc.head != "regular" {
			return nil, fmt.Errorf("%w: base chain %s is removed", errNeedFull, oc.name)
		}
		c := &nftables.Chain{Table: spec.table, Name: oc.name}
		d.flushChains = append(d.flushChains, c)
		d.delChains = append(d.delChains, c)
	}
	for _, r := range spec.rules {
		if rewrite[r.rule.Chain.Name] {
			d.rules = append(d.rules, r)
		}
	}
	return d, nil
}

// diffElems compares the elements of a set in two states bucket by
// bucket, and returns the elements to delete (keys only) and to add. An
// element whose key stays but whose data or comment changes is deleted
// and added again.
func diffElems(old, want *setState) (del, add []nftables.SetElement, err error) {
	n := len(old.buckets)
	wantSums := want.bucketSums(n)
	var differ []int
	for i := range wantSums {
		if wantSums[i] != old.buckets[i] {
			differ = append(differ, i)
		}
	}
	if len(differ) == 0 {
		return nil, nil, nil
	}
	// The batch's elements of the buckets that differ.
	idx := make(map[int][]int, len(differ))
	for _, b := range differ {
		idx[b] = nil
	}
	mask := uint64(n - 1)
	for i, h := range want.hashes {
		b := int(h & mask)
		if l, ok := idx[b]; ok {
			idx[b] = append(l, i)
		}
	}
	for _, b := range differ {
		olds, err := old.cached.bucket(b)
		if err != nil {
			return nil, nil, err
		}
		have := make(map[string]uint64, len(olds))
		for _, e := range olds {
			have[string(e.key)] = e.sum
		}
		for _, i := range idx[b] {
			e := &want.spec.elems[i]
			sum, ok := have[string(e.Key)]
			switch {
			case !ok:
				add = append(add, *e)
			case sum != want.sums[i]:
				del = append(del, nftables.SetElement{Key: e.Key})
				add = append(add, *e)
			}
			delete(have, string(e.Key))
		}
		for _, e := range olds {
			if _, ok := have[string(e.key)]; ok {
				del = append(del, nftables.SetElement{Key: e.key})
			}
		}
	}
	return del, add, nil
}

// update queues a table's diff. The kernel resolves every name when it
// reads each message and refuses to delete what is still referenced, so
// the phases go: new chains (before anything names them); new sets with
// their elements; deleted elements (which may name chains about to go);
// flushed chains (changed and removed ones, whose rules may name sets and
// chains about to go); deleted sets (removed, and remade ones); remade sets
// with their elements; added elements; the rules of new and changed
// chains, each anonymous set just before its rule; deleted chains.
func (q *queue) update(d *tableDiff) {
	switch {
	case d.remove:
		q.send(func(nc *nftables.Conn) { nc.DelTable(d.table) })
		return
	case d.create:
		q.send(func(nc *nftables.Conn) { nc.AddTable(d.table) })
		q.objects(d.spec)
		return
	}
	for _, c := range d.newChains {
		q.send(func(nc *nftables.Conn) { nc.AddChain(c) })
	}
	for _, s := range d.newSets {
		q.set(s)
	}
	for _, op := range d.delElems {
		q.elems(op, true)
	}
	for _, c := range d.flushChains {
		q.send(func(nc *nftables.Conn) { nc.FlushChain(c) })
	}
	for _, s := range d.delSets {
		q.send(func(nc *nftables.Conn) { nc.DelSet(s) })
	}
	for _, s := range d.remakeSets {
		q.set(s)
	}
	for _, op := range d.addElems {
		q.elems(op, false)
	}
	for _, r := range d.rules {
		q.rule(r)
	}
	for _, c := range d.delChains {
		q.send(func(nc *nftables.Conn) { nc.DelChain(c) })
	}
}

// elems queues element additions or deletions in chunks.
func (q *queue) elems(op elemOp, del bool) {
	for _, c := range chunk(op.elems) {
		q.messages++
		if q.conn == nil {
			continue
		}
		if del {
			q.fail(q.conn.SetDeleteElements(op.set, c))
		} else {
			q.fail(q.conn.SetAddElements(op.set, c))
		}
	}
}
