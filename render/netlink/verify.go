//go:build linux

package netlink

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// When the nftables generation is not the one kpc's last commit left,
// something was committed since, to kpc's tables or to others, and a table
// may have been changed without its fingerprint. Before Sync trusts its
// cache (or a fingerprint that says the kernel already holds the Program),
// it reads kpc's tables back and checks them against that state.

// verifyTables compares kpc's tables in the kernel with old, the state an
// update from old to want (the batch's, specs) assumes, and returns the
// first difference found ("" when there is none). A table old does not
// define, or want removes, is not read.
//
// It compares what the update keeps, in the terms of Drift (see there
// for what they leave out): the table's flags, and that it holds nothing
// but chains and sets; the names of its chains and named sets; the head of
// every chain the update keeps, and the rules of those whose rules it does
// not change (with the batch's, which are old's); the declaration of every
// set the update neither creates nor remakes, and its elements, by their
// sums, bucket by bucket, except in the sets the kernel fills. Anonymous
// sets are compared as part of the rules that look them up.
func verifyTables(d *dumper, specs []*tableSpec, old, want []*tableState) (string, error) {
	for i, spec := range specs {
		if !old[i].defined || !want[i].defined {
			continue
		}
		diff, err := verifyTable(d, spec, old[i], want[i])
		if err != nil || diff != "" {
			return diff, err
		}
	}
	return "", nil
}

// verifyTable is verifyTables of one table.
func verifyTable(d *dumper, spec *tableSpec, old, want *tableState) (string, error) {
	t := spec.table
	label := tableLabel(t)
	fam := byte(t.Family)
	kt, err := d.table(fam, t.Name)
	switch {
	case err != nil:
		return "", err
	case kt == nil:
		return fmt.Sprintf("table %s is gone", label), nil
	case kt.flags != t.Flags:
		return fmt.Sprintf("table %s has flags %#x", label, kt.flags), nil
	}
	sets, err := d.sets(fam, t.Name)
	if err != nil {
		return "", err
	}
	named := map[string]*dumpedSet{}
	anon := map[string]*setModel{}
	for _, s := range sets {
		if !s.isAnonymous {
			named[s.name] = s
			continue
		}
		if err := d.elements(fam, t.Name, s); err != nil {
			return "", err
		}
		anon[s.name] = dumpedModel(s)
	}
	rc, err := readConn(d)
	if err != nil {
		return "", err
	}
	chains, err := liveChains(rc, t)
	if err != nil {
		return "", err
	}
	// A table's use counts its chains, named sets (an anonymous one stops
	// counting once its rule is committed), stateful objects and
	// flowtables; kpc makes only the first two.
	if n := len(chains) + len(named); int(kt.use) != n {
		return fmt.Sprintf("table %s holds objects other than chains and sets", label), nil
	}

	oldSets := make(map[string]*setState, len(old.sets))
	for _, s := range old.sets {
		oldSets[s.name] = s
		if named[s.name] == nil {
			return fmt.Sprintf("set %s of table %s is gone", s.name, label), nil
		}
	}
	for _, name := range sortedNames(named) {
		if oldSets[name] == nil {
			return fmt.Sprintf("table %s has a set %s that kpc did not make", label, name), nil
		}
	}
	for i, ws := range want.sets {
		os := oldSets[ws.name]
		if os == nil || os.head != ws.head || os.unmanaged != ws.unmanaged {
			continue // the update makes it afresh
		}
		ks := named[ws.name]
		if dumpedHead(ks) != specHead(spec.sets[i].set) {
			return fmt.Sprintf("set %s of table %s is declared otherwise", ws.name, label), nil
		}
		if ws.unmanaged {
			continue
		}
		if err := d.elements(fam, t.Name, ks); err != nil {
			return "", err
		}
		same := sameElements(os, ks.elems)
		ks.elems = nil
		if !same {
			return fmt.Sprintf("set %s of table %s holds other elements", ws.name, label), nil
		}
	}

	live := make(map[string]*nftables.Chain, len(chains))
	for _, ch := range chains {
		live[ch.Name] = ch
	}
	wantChains := make(map[string]*chainState, len(want.chains))
	for i := range want.chains {
		wantChains[want.chains[i].name] = &want.chains[i]
	}
	expected := expectedChains(spec)
	oldChains := make(map[string]bool, len(old.chains))
	for _, oc := range old.chains {
		oldChains[oc.name] = true
		ch := live[oc.name]
		if ch == nil {
			return fmt.Sprintf("chain %s of table %s is gone", oc.name, label), nil
		}
		wc := wantChains[oc.name]
		if wc == nil {
			continue // the update deletes it
		}
		ec := expected[oc.name]
		if chainHead(ch) != ec.head {
			return fmt.Sprintf("chain %s of table %s is declared otherwise", oc.name, label), nil
		}
		if wc.rules != oc.rules {
			continue // the update rewrites its rules
		}
		rules, err := liveRules(rc, t, ch, anon)
		if err != nil {
			return "", err
		}
		if !slices.Equal(rules, ec.rules) {
			return fmt.Sprintf("chain %s of table %s holds other rules", oc.name, label), nil
		}
	}
	for _, ch := range chains {
		if !oldChains[ch.Name] {
			return fmt.Sprintf("table %s has a chain %s that kpc did not make", label, ch.Name), nil
		}
	}
	return "", nil
}

// sameElements reports whether elems, the elements of a set as the kernel
// dumps them, have the sums of s's elements, bucket by bucket (as
// diffElems compares two states).
func sameElements(s *setState, elems []dumpedElem) bool {
	want := s.buckets
	if want == nil {
		want = s.bucketSums(bucketCount(len(s.sums)))
	}
	got := make([]uint64, len(want))
	mask := uint64(len(want) - 1)
	for i := range elems {
		e := elems[i].setElement()
		got[keyHash(e.Key)&mask] += elemSum(&e)
	}
	return slices.Equal(got, want)
}

// setElement is the element as a batch spells it, for elemSum. (The
// elements of the sets kpc fills have neither an interval end key nor a
// timeout, which the kernel refuses in such sets.)
func (e *dumpedElem) setElement() nftables.SetElement {
	se := nftables.SetElement{Key: e.key, Val: e.data, Comment: e.comment, IntervalEnd: e.intervalEnd}
	if e.hasVerdict {
		se.VerdictData = &expr.Verdict{Kind: expr.VerdictKind(e.verdictCode), Chain: e.verdictTo}
	}
	return se
}
