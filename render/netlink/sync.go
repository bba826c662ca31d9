//go:build linux

package netlink

import (
	"errors"
	"fmt"
	"os"
	"time"

	mdnetlink "github.com/mdlayher/netlink"

	"kpc/compiler/ir"
)

// SyncMode says how Sync brought the kernel's tables to the Program.
type SyncMode string

// The modes of a Sync.
const (
	// SyncUnchanged: the kernel's tables already hold the Program (their
	// fingerprints say so); nothing was sent.
	SyncUnchanged SyncMode = "unchanged"
	// SyncIncremental: one batch sent only the difference between the
	// cached tables and the Program's.
	SyncIncremental SyncMode = "incremental"
	// SyncFull: one batch replaced the tables, as Apply does.
	SyncFull SyncMode = "full"
)

// SyncReport says what a Sync did.
type SyncReport struct {
	Mode SyncMode
	// Reason says why a Sync replaced the tables rather than updating
	// them ("" for the other modes).
	Reason string
	// Sent counts the messages of the batch sent (zero when unchanged).
	// For a full replace it is Batch's; for an incremental update it counts
	// the difference: Messages, Chains (created), Sets (created or remade)
	// and Rules and Elements (added).
	Sent Stats
	// DeletedElements, FlushedChains and DeletedChains and DeletedSets
	// count what an incremental update removed or rewrote.
	DeletedElements, FlushedChains, DeletedChains, DeletedSets int
	// StaleClients counts the clients an incremental update removed from
	// sticky-clients because their endpoint is gone.
	StaleClients int
	// Batch counts the objects of the whole Program.
	Batch Stats
	// Build is the time taken to build the batch and its state, Diff to
	// read the kernel's fingerprints and the cache and compute the
	// difference, Kernel to send the batch and get its answer, and Cache to
	// write the new cache.
	Build, Diff, Kernel, Cache time.Duration
}

// String summarizes the report on one line.
func (r *SyncReport) String() string {
	switch r.Mode {
	case SyncUnchanged:
		return "unchanged: the kernel's tables already hold this program; nothing was sent"
	case SyncIncremental:
		return fmt.Sprintf("incremental: %d netlink messages (%d elements added, %d deleted; %d chains created, %d rewritten, %d deleted; %d sets created, %d deleted)",
			r.Sent.Messages, r.Sent.Elements, r.DeletedElements, r.Sent.Chains, r.FlushedChains-r.DeletedChains, r.DeletedChains,
			r.Sent.Sets, r.DeletedSets)
	}
	return fmt.Sprintf("full replace (%s): %s", r.Reason, r.Sent)
}

// Sync brings kpc's tables in the kernel to p in one batch, sending only
// the difference when it can.
//
// Each table kpc defines holds a fingerprint of its definition (see
// fingerprint.go), and Sync keeps, under o.StateDir, the comparable state
// of the tables it applied last in each network namespace. When the
// kernel's fingerprints are p's, nothing is sent. When they are the
// cached tables', the kernel holds exactly those, and one batch sends the
// difference between them and p's: element additions and deletions, new,
// rewritten (flushed and refilled) and deleted chains, new, remade and
// deleted sets, and the new fingerprint. Everything else, and o.Full,
// replaces the tables as Apply does: no cache or StateDir, a fingerprint
// that differs (tables changed by someone else, or by a kpc whose layout
// differs), a change an update cannot make (a base chain's hook), or an
// incremental batch the kernel refuses. Sets the kernel fills (affinity)
// keep their elements across updates unless their declaration changes.
//
// A changed table that still holds the cached fingerprint (edited by hand,
// say) is not noticed; Compare, or a Sync with o.Full, repairs it.
//
// The cache is rewritten after every successful batch and removed when
// the outcome of a batch is unknown. A lock file next to it keeps two
// Syncs of one namespace apart. With DryRun, Sync reports what it would
// send and changes nothing.
func Sync(p *ir.Program, o Options) (*SyncReport, error) {
	start := time.Now()
	b, err := Build(p, o)
	if err != nil {
		return nil, err
	}
	return b.sync(o, start)
}

// SyncBatch is Sync of a batch already built (Build, with the same
// options).
func SyncBatch(b *Batch, o Options) (*SyncReport, error) { return b.sync(o, time.Now()) }

// sync is Sync of b, built since start.
func (b *Batch) sync(o Options, start time.Time) (*SyncReport, error) {
	rep := &SyncReport{}
	var err error
	rep.Batch = b.stats
	want := make([]*tableState, len(b.tables))
	for i, t := range b.tables {
		fp, _ := tableFingerprint(b.script, familyOf(t), t.table.Name)
		if want[i], err = t.state(fp); err != nil {
			return nil, err
		}
	}
	rep.Build = time.Since(start)

	start = time.Now()
	var path string
	if o.StateDir != "" {
		if path, err = cachePath(o, b.tables[0].table.Name); err != nil {
			return nil, err
		}
		if !o.DryRun {
			unlock, err := lockCache(path)
			if err != nil {
				return nil, err
			}
			defer unlock()
		}
	}
	diffs, reason, err := b.plan(want, path, o)
	if err != nil {
		return nil, err
	}
	rep.Diff = time.Since(start)

	if diffs != nil {
		rep.Mode = SyncIncremental
		q := &queue{}
		empty := true
		for _, d := range diffs {
			q.update(d)
			empty = empty && d.empty()
			rep.count(d)
		}
		rep.Sent.Messages = q.messages
		if empty {
			rep.Mode = SyncUnchanged
			rep.Sent = Stats{}
			return rep, nil
		}
		if o.DryRun {
			return rep, nil
		}
		start = time.Now()
		err := sendDiffs(b.tables, diffs, o, rep)
		rep.Kernel = time.Since(start)
		switch {
		case err == nil:
			start = time.Now()
			err = writeCache(path, want)
			rep.Cache = time.Since(start)
			return rep, err
		case unknownOutcome(err):
			_ = removeCache(path)
			return rep, err
		}
		// The kernel refused the update, so nothing changed: replace.
		reason = fmt.Sprintf("the kernel refused the incremental batch (%v)", err)
		*rep = SyncReport{Batch: rep.Batch, Build: rep.Build, Diff: rep.Diff}
	}

	if reason == "" {
		// The kernel holds p: make sure the cache describes it, so that
		// the next change can be an update.
		rep.Mode = SyncUnchanged
		if path == "" || o.DryRun || cacheHolds(path, want) {
			return rep, nil
		}
		start = time.Now()
		err = writeCache(path, want)
		rep.Cache = time.Since(start)
		return rep, err
	}
	rep.Mode, rep.Reason, rep.Sent = SyncFull, reason, b.stats
	if o.DryRun {
		return rep, nil
	}
	start = time.Now()
	err = b.send(o)
	rep.Kernel = time.Since(start)
	if err != nil {
		if unknownOutcome(err) && path != "" {
			_ = removeCache(path)
		}
		return rep, err
	}
	if path != "" {
		start = time.Now()
		err = writeCache(path, want)
		rep.Cache = time.Since(start)
	}
	return rep, err
}

// count adds a table diff to the report.
func (r *SyncReport) count(d *tableDiff) {
	switch {
	case d.create:
		s := (&Batch{tables: []*tableSpec{d.spec}}).count()
		r.Sent.Tables++
		r.Sent.Chains += s.Chains
		r.Sent.Sets += s.Sets
		r.Sent.Rules += s.Rules
		r.Sent.Elements += s.Elements
		return
	case d.remove:
		r.Sent.Tables++
		return
	}
	r.Sent.Chains += len(d.newChains)
	r.Sent.Sets += len(d.newSets) + len(d.remakeSets)
	r.Sent.Rules += len(d.rules)
	r.Sent.Elements += d.addedElems
	r.DeletedElements += d.deletedElems
	r.FlushedChains += len(d.flushChains)
	r.DeletedChains += len(d.delChains)
	r.DeletedSets += len(d.delSets)
	for _, rs := range d.rules {
		r.Sent.Sets += len(rs.anon)
	}
}

// familyOf returns the family spellings of a table of the batch.
func familyOf(t *tableSpec) family {
	if t.table.Family == famIPv6.table {
		return famIPv6
	}
	return famIPv4
}

// plan decides between nothing, an update and a full replace: it returns
// the table diffs of an update, or the reason for a full replace (nil
// diffs), or neither when the kernel already holds want.
func (b *Batch) plan(want []*tableState, path string, o Options) ([]*tableDiff, string, error) {
	d, err := newDumper(o)
	if err != nil {
		return nil, "", err
	}
	defer d.close()
	c, err := dial(o)
	if err != nil {
		return nil, "", err
	}
	defer c.close()
	type kernelTable struct {
		exists bool
		fp     string
	}
	kernel := make([]kernelTable, len(b.tables))
	same := true
	for i, t := range b.tables {
		exists, fp, err := kernelFingerprint(c, d, t.table)
		if err != nil {
			return nil, "", err
		}
		kernel[i] = kernelTable{exists, fp}
		same = same && exists == want[i].defined && (!exists || fp != "" && fp == want[i].fingerprint)
	}
	switch {
	case o.Full:
		return nil, "requested", nil
	case same:
		return nil, "", nil
	case path == "":
		return nil, "no state directory", nil
	}
	cached, err := readCache(path)
	switch {
	case err != nil:
		return nil, err.Error(), nil
	case cached == nil:
		return nil, "no cache of the last apply in this network namespace", nil
	case len(cached) != len(b.tables):
		return nil, "the cache describes other tables", nil
	}
	var diffs []*tableDiff
	for i, t := range b.tables {
		old := cached[i]
		switch {
		case old.family != t.table.Family || old.name != t.table.Name:
			return nil, "the cache describes other tables", nil
		case old.defined != kernel[i].exists:
			return nil, fmt.Sprintf("table %s was created or deleted since the last apply", tableLabel(t.table)), nil
		case old.defined && kernel[i].fp == "" && len(old.chains) == 0 && len(old.sets) == 0:
			// An empty table (an input without Services) has no
			// fingerprint set to tell it from another empty table.
			return nil, fmt.Sprintf("the last apply left table %s empty, without a fingerprint to check it by", tableLabel(t.table)), nil
		case old.defined && (kernel[i].fp == "" || kernel[i].fp != old.fingerprint):
			return nil, fmt.Sprintf("table %s is not the one last applied (its fingerprint differs from the cache's)", tableLabel(t.table)), nil
		}
		diff, err := diffTable(old, want[i], t)
		if errors.Is(err, errNeedFull) {
			return nil, err.Error(), nil
		}
		if err != nil {
			return nil, "", err
		}
		diffs = append(diffs, diff)
	}
	return diffs, "", nil
}

// cacheHolds reports whether the cache at path describes tables with the
// fingerprints of want.
func cacheHolds(path string, want []*tableState) bool {
	cached, err := readCache(path)
	if err != nil || len(cached) != len(want) {
		return false
	}
	for i, t := range want {
		c := cached[i]
		if c.family != t.family || c.name != t.name || c.defined != t.defined || c.fingerprint != t.fingerprint {
			return false
		}
	}
	return true
}

// sendDiffs sends table diffs as one batch, with the clients of
// sticky-clients whose endpoint is gone (see sticky.go), and afterwards
// destroys those recorded meanwhile.
func sendDiffs(specs []*tableSpec, diffs []*tableDiff, o Options, rep *SyncReport) error {
	q := newQueue()
	var work []*stickyWork
	for i, d := range diffs {
		q.update(d)
		if w := stickyChanges(specs[i], d, familyOf(specs[i])); w != nil {
			work = append(work, w)
		}
	}
	msgs, err := q.finish()
	if err != nil {
		return err
	}
	destroy := func() ([]mdnetlink.Message, int, error) {
		if len(work) == 0 {
			return nil, 0, nil
		}
		d, err := newDumper(o)
		if err != nil {
			return nil, 0, err
		}
		defer d.close()
		var out []mdnetlink.Message
		n := 0
		for _, w := range work {
			stale, err := w.stale(d)
			if err != nil {
				return nil, 0, err
			}
			m, err := destroyMessages(w.table, stale)
			if err != nil {
				return nil, 0, err
			}
			out, n = append(out, m...), n+len(stale)
		}
		return out, n, nil
	}
	extra, n, err := destroy()
	if err != nil {
		return err
	}
	rep.Sent.Messages += len(extra)
	rep.StaleClients = n
	if err := sendBatch(o, append(msgs, extra...)); err != nil {
		return err
	}
	// Clients recorded between the read and the commit.
	extra, n, err = destroy()
	if err != nil || len(extra) == 0 {
		return err
	}
	rep.StaleClients += n
	rep.Sent.Messages += len(extra)
	return sendBatch(o, extra)
}

// unknownOutcome reports whether err leaves unknown whether the kernel
// committed a batch.
func unknownOutcome(err error) bool {
	return errors.Is(err, errUnknownOutcome) || errors.Is(err, os.ErrDeadlineExceeded)
}
