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
	// Verified says that kpc's tables were read back from the kernel and
	// found to hold what the Sync assumed (the cached tables, or the
	// Program's), because the nftables generation was not the one kpc's
	// last commit left: something was committed since, to these tables or
	// to others. Had they differed, the Sync would have replaced them
	// (Mode SyncFull, with the difference in Reason).
	Verified bool
	// Checked says why, when Verified: CheckedNote, or that there was no
	// cache to trust.
	Checked string
	// Generation is the nftables generation at which the kernel's tables
	// are known to hold the Program after the Sync (see generation.go): the
	// one its commit left, or the one it found them at; 0 when that is not
	// known (a dry run that would change them, or another commit that came
	// between two batches of the Sync).
	Generation uint32
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
	// read the kernel's generation and fingerprints and the cache and
	// compute the difference, Verify to read kpc's tables back and compare
	// them (when Verified, or when they differed), Kernel to send the batch
	// and get its answer, and Cache to write the new cache.
	Build, Diff, Verify, Kernel, Cache time.Duration
}

// String summarizes the report on one line.
func (r *SyncReport) String() string {
	checked := ""
	if r.Verified {
		checked = "; " + r.Checked
	}
	switch r.Mode {
	case SyncUnchanged:
		return "unchanged: the kernel's tables already hold this program; nothing was sent" + checked
	case SyncIncremental:
		return fmt.Sprintf("incremental: %d netlink messages (%d elements added, %d deleted; %d chains created, %d rewritten, %d deleted; %d sets created, %d deleted)%s",
			r.Sent.Messages, r.Sent.Elements, r.DeletedElements, r.Sent.Chains, r.FlushedChains-r.DeletedChains, r.DeletedChains,
			r.Sent.Sets, r.DeletedSets, checked)
	}
	return fmt.Sprintf("full replace (%s): %s", r.Reason, r.Sent)
}

// CheckedNote says, in a report, what a Verified Sync did when the cache
// was older than the kernel's last commit.
const CheckedNote = "something was committed to nftables since kpc's last commit: kpc's tables were read back and found unchanged"

// uncachedNote says it when there was no cache to trust.
const uncachedNote = "no cache of kpc's last apply here: kpc's tables were read back and found to hold them"

// ChangedReason starts the Reason of a Sync that found kpc's tables
// changed by something else; the difference follows.
const ChangedReason = "kpc's tables were changed by something else: "

// Sync brings kpc's tables in the kernel to p in one batch, sending only
// the difference when it can.
//
// Each table kpc defines holds a fingerprint of its definition (see
// fingerprint.go), and Sync keeps, under o.StateDir, the comparable state
// of the tables it applied last in each network namespace, with the
// nftables generation that apply left (see generation.go). When the
// kernel's fingerprints are p's, nothing is sent. When they are the
// cached tables', the kernel holds those, and one batch sends the
// difference between them and p's: element additions and deletions, new,
// rewritten (flushed and refilled) and deleted chains, new, remade and
// deleted sets, and the new fingerprint. Everything else, and o.Full,
// replaces the tables as Apply does: no cache or StateDir, a fingerprint
// that differs (tables changed by someone else, or by a kpc whose layout
// differs), a change an update cannot make (a base chain's hook), or an
// incremental batch the kernel refuses. Sets the kernel fills (affinity)
// keep their elements across updates unless their declaration changes.
//
// A fingerprint only says what kpc put there: a table edited without it
// (a rule or an element added by hand) keeps it. So unless the nftables
// generation is still the cached one (nothing at all was committed in the
// namespace since), Sync first reads kpc's tables back and compares them
// with the state it is about to update (or, when the fingerprints say the
// kernel holds p, with p's), and replaces them when they differ (see
// verifyTables for what is compared). An update is sent at the generation
// read before the tables (NFNL_BATCH_GENID): if anything was committed
// meanwhile, the kernel refuses it and Sync replaces the tables instead.
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
	pl, err := b.plan(want, path, o)
	if err != nil {
		return nil, err
	}
	rep.Verified, rep.Verify, rep.Checked = pl.verified, pl.verify, pl.checked
	rep.Diff = time.Since(start) - pl.verify
	reason := pl.reason
	if o.afterPlan != nil {
		o.afterPlan()
	}

	if pl.diffs != nil {
		rep.Mode = SyncIncremental
		q := &queue{}
		empty := true
		for _, d := range pl.diffs {
			q.update(d)
			empty = empty && d.empty()
			rep.count(d)
		}
		rep.Sent.Messages = q.messages
		if empty {
			return b.unchanged(rep, pl, path, want, o)
		}
		if o.DryRun {
			return rep, nil
		}
		start = time.Now()
		gen, err := sendDiffs(b.tables, pl.diffs, o, rep, pl.gen)
		rep.Kernel = time.Since(start)
		switch {
		case err == nil:
			start = time.Now()
			rep.Generation = gen
			err = writeCache(path, want, gen)
			rep.Cache = time.Since(start)
			return rep, err
		case unknownOutcome(err):
			_ = removeCache(path)
			return rep, err
		case generationMoved(err):
			reason = "something was committed to nftables while kpc read its tables"
		default:
			// The kernel refused the update, so nothing changed: replace.
			reason = fmt.Sprintf("the kernel refused the incremental batch (%v)", err)
		}
		*rep = SyncReport{Batch: rep.Batch, Verified: rep.Verified, Checked: rep.Checked, Build: rep.Build, Diff: rep.Diff, Verify: rep.Verify}
	}

	if reason == "" {
		return b.unchanged(rep, pl, path, want, o)
	}
	rep.Mode, rep.Reason, rep.Sent = SyncFull, reason, b.stats
	if o.DryRun {
		return rep, nil
	}
	start = time.Now()
	gen, err := b.send(o)
	rep.Kernel = time.Since(start)
	if err != nil {
		if unknownOutcome(err) && path != "" {
			_ = removeCache(path)
		}
		return rep, err
	}
	rep.Generation = gen
	if path != "" {
		start = time.Now()
		err = writeCache(path, want, gen)
		rep.Cache = time.Since(start)
	}
	return rep, err
}

// unchanged finishes the report of a Sync that found the kernel holding
// want: it makes sure the cache describes it at the generation it was
// found at, so that the next change can be an update.
func (b *Batch) unchanged(rep *SyncReport, pl *syncPlan, path string, want []*tableState, o Options) (*SyncReport, error) {
	rep.Mode, rep.Sent, rep.Generation = SyncUnchanged, Stats{}, pl.gen
	if path == "" || o.DryRun || pl.cacheCurrent {
		return rep, nil
	}
	start := time.Now()
	err := writeCache(path, want, pl.gen)
	rep.Cache = time.Since(start)
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

// syncPlan is what plan decided.
type syncPlan struct {
	// diffs are the table diffs of an update; reason says why the tables
	// are replaced instead; neither when the kernel already holds want.
	diffs  []*tableDiff
	reason string
	// gen is the generation read before anything else, at which the
	// update is sent.
	gen uint32
	// verified: kpc's tables were read back and found to hold the state
	// the plan starts from, in verify; cacheCurrent: the cache already
	// describes want at gen.
	verified, cacheCurrent bool
	verify                 time.Duration
	// checked says why the tables were read back (SyncReport.Checked).
	checked string
}

// plan decides between nothing, an update and a full replace.
func (b *Batch) plan(want []*tableState, path string, o Options) (*syncPlan, error) {
	d, err := newDumper(o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	c, err := dial(o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	// The generation first: whatever is read after it is what the kernel
	// holds at it, unless it moves.
	pl := &syncPlan{}
	if pl.gen, err = d.generation(); err != nil {
		return nil, err
	}
	type kernelTable struct {
		exists bool
		fp     string
	}
	kernel := make([]kernelTable, len(b.tables))
	same := true
	for i, t := range b.tables {
		exists, fp, err := kernelFingerprint(c, d, t.table)
		if err != nil {
			return nil, err
		}
		kernel[i] = kernelTable{exists, fp}
		same = same && exists == want[i].defined && (!exists || fp != "" && fp == want[i].fingerprint)
	}
	if o.Full {
		pl.reason = "requested"
		return pl, nil
	}
	var cached []*tableState
	var cachedGen uint32
	var cacheErr error
	if path != "" {
		cached, cachedGen, cacheErr = readCache(path)
	}
	if same {
		// The kernel's tables say they hold want. That is known when
		// nothing was committed since the cache of want was written, and
		// checked otherwise.
		if cacheErr == nil && cachedGen == pl.gen && sameFingerprints(cached, want) {
			pl.cacheCurrent = true
			return pl, nil
		}
		pl.checked = CheckedNote
		if path == "" || cacheErr != nil || cached == nil {
			pl.checked = uncachedNote
		}
		return pl, b.verify(pl, d, want, want)
	}
	switch {
	case path == "":
		pl.reason = "no state directory"
		return pl, nil
	case cacheErr != nil:
		pl.reason = cacheErr.Error()
		return pl, nil
	case cached == nil:
		pl.reason = "no cache of the last apply in this network namespace"
		return pl, nil
	case len(cached) != len(b.tables):
		pl.reason = "the cache describes other tables"
		return pl, nil
	}
	var diffs []*tableDiff
	for i, t := range b.tables {
		old := cached[i]
		switch {
		case old.family != t.table.Family || old.name != t.table.Name:
			pl.reason = "the cache describes other tables"
		case old.defined != kernel[i].exists:
			pl.reason = fmt.Sprintf("table %s was created or deleted since the last apply", tableLabel(t.table))
		case old.defined && kernel[i].fp == "" && len(old.chains) == 0 && len(old.sets) == 0:
			// An empty table (an input without Services) has no
			// fingerprint set to tell it from another empty table.
			pl.reason = fmt.Sprintf("the last apply left table %s empty, without a fingerprint to check it by", tableLabel(t.table))
		case old.defined && (kernel[i].fp == "" || kernel[i].fp != old.fingerprint):
			pl.reason = fmt.Sprintf("table %s is not the one last applied (its fingerprint differs from the cache's)", tableLabel(t.table))
		}
		if pl.reason != "" {
			return pl, nil
		}
		diff, err := diffTable(old, want[i], t)
		if errors.Is(err, errNeedFull) {
			pl.reason = err.Error()
			return pl, nil
		}
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, diff)
	}
	pl.diffs = diffs
	if cachedGen == pl.gen {
		return pl, nil
	}
	pl.checked = CheckedNote
	return pl, b.verify(pl, d, cached, want)
}

// verify reads kpc's tables back and checks that they hold old, the state
// an update to want starts from (see verifyTables); when they do not, the
// plan becomes a full replace that says why.
func (b *Batch) verify(pl *syncPlan, d *dumper, old, want []*tableState) error {
	start := time.Now()
	diff, err := verifyTables(d, b.tables, old, want)
	pl.verify = time.Since(start)
	if err != nil {
		return fmt.Errorf("netlink: reading kpc's tables back: %w", err)
	}
	if diff != "" {
		pl.diffs, pl.reason = nil, ChangedReason+diff
		return nil
	}
	pl.verified = true
	return nil
}

// sameFingerprints reports whether cached describes tables with the
// fingerprints of want.
func sameFingerprints(cached, want []*tableState) bool {
	if len(cached) != len(want) {
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

// sendDiffs sends table diffs as one batch at generation at (0: any), with
// the clients of sticky-clients whose endpoint is gone (see sticky.go),
// and afterwards destroys those recorded meanwhile. It returns the
// generation at which the kernel holds what the diffs make: 0 when at is,
// or when another commit came between the two batches.
func sendDiffs(specs []*tableSpec, diffs []*tableDiff, o Options, rep *SyncReport, at uint32) (uint32, error) {
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
		return 0, err
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
		return 0, err
	}
	rep.Sent.Messages += len(extra)
	rep.StaleClients = n
	if err := sendBatch(o, append(msgs, extra...), at); err != nil {
		return 0, err
	}
	var gen uint32
	if at != 0 {
		gen = nextGeneration(at)
	}
	// Clients recorded between the read and the commit.
	extra, n, err = destroy()
	if err != nil || len(extra) == 0 {
		return gen, err
	}
	rep.StaleClients += n
	rep.Sent.Messages += len(extra)
	err = sendBatch(o, extra, gen)
	switch {
	case err == nil && gen != 0:
		return nextGeneration(gen), nil
	case gen != 0 && generationMoved(err):
		// Something else committed after the update: the generation no
		// longer tells that the tables are kpc's alone.
		return 0, sendBatch(o, extra, 0)
	}
	return 0, err
}

// unknownOutcome reports whether err leaves unknown whether the kernel
// committed a batch.
func unknownOutcome(err error) bool {
	return errors.Is(err, errUnknownOutcome) || errors.Is(err, os.ErrDeadlineExceeded)
}
