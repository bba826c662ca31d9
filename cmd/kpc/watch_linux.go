//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"kpc/compiler"
	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/gcpolicy"
	"kpc/render/netlink"
)

// watchDebounce is how long kpc apply --watch waits after a file event for
// more before it reads the files: an editor's save is often several
// events, and a tool that writes many files writes them in a burst.
const watchDebounce = 10 * time.Millisecond

// watchWriterWait bounds how long kpc apply --watch waits for a changed
// file's writer to close it (see beingWritten) before it reads the file
// all the same.
const watchWriterWait = 10 * time.Second

// A watcher keeps kpc's tables equal to the manifests under its paths as
// they change (kpc apply --watch). It keeps every file's documents and, per
// Service ("ns/name": the Service, its EndpointSlices and Endpoints), the
// Service's contribution to the tables (netlink.Part). A change of some
// files is sent as a netlink.Union update of the Services it touches: only
// those are compiled and built. Whatever the union cannot decide alone is
// a full apply of the whole input, as kpc apply does it:
//
//   - a change of the node context (Node, KubeProxyConfiguration,
//     ServiceCIDR documents);
//   - an input in which kpc allocates a cluster IP or a nodePort (the
//     allocation depends on every other Service), or a Service that claims
//     a name, cluster IP or nodePort another Service holds (the full
//     compile reports it);
//   - what netlink.Union.Update refuses (ErrNeedFull: a layout change, or
//     a commit to nftables in the namespace that was not the watcher's);
//   - a file that loads again after it did not.
//
// While a file does not load, or a changed Service does not compile,
// nothing is applied: the kernel keeps the last valid input's tables.
type watcher struct {
	paths []string
	in    *inputFlags
	copts compiler.Options
	// nl are the options of a full apply; partOpts those of a Service's
	// part, which also number the numbered maps as the last full apply's
	// tables do.
	nl, partOpts netlink.Options
	// out gets a line per apply, errw the diagnostics.
	out, errw io.Writer
	// applied, when set (tests), is called after each batch of changes
	// with what was done: "full", "full-kept" (a full apply that kept the
	// Services' parts), "update", "unchanged" or "invalid".
	applied func(what string)

	files map[string]*api.Input
	keys  map[string]*watchKey
	// claims maps each name, cluster IP and nodePort a Service claims
	// to the key of the Service that claims it.
	claims map[string]string
	// context holds the node context documents of every file.
	context api.Input
	// u is nil when changes cannot be sent as updates (why says why).
	u   *netlink.Union
	why string
	// wit follows the namespace's nftables commits since the last full
	// apply, so that a commit to another table does not make the next
	// change a full apply (nil: every such commit does).
	wit *netlink.Witness
	ids uint32
	// broken holds the files that did not load at their last change.
	broken map[string]bool
	// where holds, per Service key, the files with its documents.
	where map[string]map[string]bool
	// failed is the kernel's refusal of the last full apply.
	failed error
	// docs holds the split of each file whose documents files holds
	// (none: the file is loaded whole at its next change).
	docs map[string][]docSpan
	// links holds, per directory of the input, its files that are
	// symbolic links through a hidden name of the directory (from the
	// last whole apply). A ConfigMap mounted as a directory updates all
	// its files at once by replacing the hidden link "..data" they go
	// through: an event on that name has them read again.
	links map[string][]viaLink
	// waited is how long the changes being applied were waited for, from
	// their first file event (watchDebounce, or longer for a writer to
	// close a file).
	waited time.Duration
	// spare holds, for a file of many documents, the array of its split
	// before the last, which resplit reuses for the next one.
	spare map[string][]docSpan
	// readBuf is reused to read changed files (readReused). While a
	// change is applied, justRead holds the last file read into it, by
	// name, for the diagnostics' positions (load.RefineFrom); nil
	// otherwise.
	readBuf  []byte
	justRead map[string][]byte
}

// locate records the files of the keys of in's documents.
func (w *watcher) locate(f string, in *api.Input) {
	keys := map[string]bool{}
	markKeys(in, keys)
	for id := range keys {
		w.place(id, f)
	}
}

// unlocate forgets the files of the keys of in's documents.
func (w *watcher) unlocate(f string, in *api.Input) {
	keys := map[string]bool{}
	markKeys(in, keys)
	for id := range keys {
		w.displace(id, f)
	}
}

// place records that key id has documents in file f.
func (w *watcher) place(id, f string) {
	if w.where[id] == nil {
		w.where[id] = map[string]bool{}
	}
	w.where[id][f] = true
}

// displace records that key id has no documents in file f.
func (w *watcher) displace(id, f string) {
	delete(w.where[id], f)
	if len(w.where[id]) == 0 {
		delete(w.where, id)
	}
}

// watchKey is what the input holds for one Service name.
type watchKey struct {
	svcs   []*api.Service
	slices []*api.EndpointSlice
	eps    []*api.Endpoints
	claims []string
	part   *netlink.Part
}

// inFile reports whether one of the key's documents is in file f.
func (k *watchKey) inFile(f string) bool {
	for _, s := range k.svcs {
		if s.Pos.File == f {
			return true
		}
	}
	for _, s := range k.slices {
		if s.Pos.File == f {
			return true
		}
	}
	for _, e := range k.eps {
		if e.Pos.File == f {
			return true
		}
	}
	return false
}

// sliceKey is the Service key of a slice ("" for one without a Service name,
// which kube-proxy ignores).
func sliceKey(s *api.EndpointSlice) string {
	name := s.Metadata.Labels[api.ServiceNameLabel]
	if name == "" {
		return ""
	}
	return s.Metadata.Namespace + "/" + name
}

// sameContext reports whether two loads of a file (nil: none) hold the
// same node context documents, positions aside.
func sameContext(a, b *api.Input) bool {
	if a == nil {
		a = &api.Input{}
	}
	if b == nil {
		b = &api.Input{}
	}
	return sameDocs(a.Nodes, b.Nodes, func(n *api.Node) *diag.Pos { return &n.Pos }) &&
		sameDocs(a.ProxyConfigs, b.ProxyConfigs, func(c *api.KubeProxyConfiguration) *diag.Pos { return &c.Pos }) &&
		sameDocs(a.ServiceCIDRs, b.ServiceCIDRs, func(c *api.ServiceCIDR) *diag.Pos { return &c.Pos })
}

// hasContext reports whether in (nil: none) holds node context
// documents.
func hasContext(in *api.Input) bool {
	return in != nil && len(in.Nodes)+len(in.ProxyConfigs)+len(in.ServiceCIDRs) > 0
}

// setContext gathers the node context documents of every file.
func (w *watcher) setContext() {
	w.context = api.Input{}
	for _, f := range sortedFiles(w.files) {
		in := w.files[f]
		w.context.Nodes = append(w.context.Nodes, in.Nodes...)
		w.context.ProxyConfigs = append(w.context.ProxyConfigs, in.ProxyConfigs...)
		w.context.ServiceCIDRs = append(w.context.ServiceCIDRs, in.ServiceCIDRs...)
	}
}

// claimsOf lists what a Service key's documents claim in the whole input.
func claimsOf(k *watchKey) []string {
	var c []string
	for _, s := range k.svcs {
		c = append(c, "Service "+s.ID())
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if ip != "" && ip != "None" {
				c = append(c, "cluster IP "+ip)
			}
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				c = append(c, fmt.Sprint("nodePort ", p.NodePort))
			}
		}
		if s.Spec.HealthCheckNodePort != 0 {
			c = append(c, fmt.Sprint("nodePort ", s.Spec.HealthCheckNodePort))
		}
	}
	for _, s := range k.slices {
		c = append(c, "EndpointSlice "+s.ID())
	}
	for _, e := range k.eps {
		c = append(c, "Endpoints "+e.ID())
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// sameDocs reports whether two lists of documents are equal but for their
// positions.
func sameDocs[T any](a, b []*T, pos func(*T) *diag.Pos) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := *a[i], *b[i]
		*pos(&x), *pos(&y) = diag.Pos{}, diag.Pos{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func (k *watchKey) same(o *watchKey) bool {
	return sameDocs(k.svcs, o.svcs, func(s *api.Service) *diag.Pos { return &s.Pos }) &&
		sameDocs(k.slices, o.slices, func(s *api.EndpointSlice) *diag.Pos { return &s.Pos }) &&
		sameDocs(k.eps, o.eps, func(e *api.Endpoints) *diag.Pos { return &e.Pos })
}

// input is the Input of one Service key: its documents and the node
// context.
func (w *watcher) input(k *watchKey) *api.Input {
	return &api.Input{Services: k.svcs, EndpointSlices: k.slices, Endpoints: k.eps,
		Nodes: w.context.Nodes, ProxyConfigs: w.context.ProxyConfigs, ServiceCIDRs: w.context.ServiceCIDRs}
}

// allocates reports whether the compiler allocated an address or a port.
func allocates(p *ir.Program) bool {
	for _, n := range p.Notes {
		if strings.HasPrefix(n, "allocated ") {
			return true
		}
	}
	return false
}

// compile cross-checks and compiles loaded documents, as kpc apply does
// after loading them.
func (w *watcher) compile(in *api.Input) (*ir.Program, diag.List) {
	diags := load.RefineFrom(load.CrossCheck(in), w.justRead)
	prog, cd := compiler.Compile(in, w.copts)
	diags = append(diags, load.RefineFrom(cd, w.justRead)...)
	diags.Sort()
	if w.in.strict {
		diags.Strict()
	}
	return prog, diags
}

// compileKey compiles one Service key alone; it prints the diagnostics
// and returns nil when the key does not compile.
func (w *watcher) compileKey(k *watchKey) *ir.Program {
	prog, diags := w.compile(w.input(k))
	printDiags(w.errw, diags)
	if diags.Err() != nil {
		return nil
	}
	return prog
}

// byFile splits an Input by the files its documents come from.
func byFile(in *api.Input) map[string]*api.Input {
	files := map[string]*api.Input{}
	get := func(p diag.Pos) *api.Input {
		if files[p.File] == nil {
			files[p.File] = &api.Input{}
		}
		return files[p.File]
	}
	split(in.Services, func(s *api.Service) *[]*api.Service { f := get(s.Pos); return &f.Services })
	split(in.EndpointSlices, func(s *api.EndpointSlice) *[]*api.EndpointSlice { f := get(s.Pos); return &f.EndpointSlices })
	split(in.Endpoints, func(e *api.Endpoints) *[]*api.Endpoints { f := get(e.Pos); return &f.Endpoints })
	split(in.Nodes, func(n *api.Node) *[]*api.Node { f := get(n.Pos); return &f.Nodes })
	split(in.ProxyConfigs, func(c *api.KubeProxyConfiguration) *[]*api.KubeProxyConfiguration {
		f := get(c.Pos)
		return &f.ProxyConfigs
	})
	split(in.ServiceCIDRs, func(c *api.ServiceCIDR) *[]*api.ServiceCIDR { f := get(c.Pos); return &f.ServiceCIDRs })
	return files
}

// split appends each document to the list to gives it.
func split[T any](docs []*T, to func(*T) *[]*T) {
	for _, d := range docs {
		l := to(d)
		*l = append(*l, d)
	}
}

// sortedFiles returns the names of files, sorted.
func sortedFiles(files map[string]*api.Input) []string {
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	slices.Sort(names)
	return names
}

// full applies the whole input as kpc apply does, then counts every
// Service's part and adopts the result, so that the next changes can be
// updates. A failure is printed; the kernel then keeps what it held.
func (w *watcher) full(reason string) string {
	start := time.Now()
	w.justRead = nil // the whole load reads every file again
	w.u, w.why = nil, "the last input was not valid"
	prog, input, docs, ok := w.loadAll()
	if !ok {
		fmt.Fprintf(w.out, "kpc apply --watch: the input is not valid; the kernel keeps the last valid input's tables\n")
		return "invalid"
	}
	w.docs = docs
	clear(w.broken)
	b, rep, ok := w.applyWhole(prog)
	if !ok {
		return "invalid"
	}
	applied := time.Since(start)

	w.files = byFile(input)
	w.links = symlinked(slices.Concat(slices.Collect(maps.Keys(w.files)), slices.Collect(maps.Keys(w.docs))))
	w.keys = map[string]*watchKey{}
	w.claims = map[string]string{}
	w.setContext()
	w.where = map[string]map[string]bool{}
	all := map[string]bool{}
	for _, f := range sortedFiles(w.files) {
		in := w.files[f]
		w.locate(f, in)
		markKeys(in, all)
	}
	for id := range all {
		w.keys[id] = &watchKey{}
	}
	names := keyNames(all)
	for _, f := range sortedFiles(w.files) {
		collectNamed(w.keys, w.files[f], all, names)
	}
	for id, k := range w.keys {
		k.claims = claimsOf(k)
		for _, c := range k.claims {
			w.claims[c] = id
		}
	}
	what := wholeLine(reason, applied, rep)
	if allocates(prog) {
		w.why = "kpc allocates a cluster IP or nodePort of the input"
		fmt.Fprintf(w.out, "%s; changes are applied whole while %s\n", what, w.why)
		return "full"
	}
	done := w.adoptAll(what, b, rep.Generation)
	if w.u != nil {
		w.readyReadBuf()
	}
	return done
}

// readyReadBuf makes the buffer that changed files are read into
// (readReused) as large as the largest file split, its pages touched,
// once the whole apply is done: the first change then reads the file as
// fast as the next ones (in a 46 MB file it took 25 ms instead of 5, to
// allocate and fault in the buffer).
func (w *watcher) readyReadBuf() {
	largest := 0
	for _, spans := range w.docs {
		largest = max(largest, spans[0].size)
	}
	if largest == 0 || cap(w.readBuf) >= largest+1 {
		return
	}
	b := make([]byte, largest+largest/8+1)
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 0
	}
	w.readBuf = b[:0]
}

// loadAll loads and compiles every file as kpc apply does, and splits
// each into its documents (splitDocs) from the bytes it loaded. It prints
// the diagnostics.
func (w *watcher) loadAll() (*ir.Program, *api.Input, map[string][]docSpan, bool) {
	files, diags := load.ReadFiles(w.paths)
	input, ld := load.LoadFiles(files, w.loadOptions())
	load.DropCaches()
	load.AddUnread(input, diags)
	if diags.Err() == nil && ld.Err() == nil && !holdsObjects(input) {
		// A file truncated to be written again (a shell's >), say: kpc
		// apply refuses such an input, and the watcher keeps the tables.
		noObjects(&diags, w.paths, true)
	}
	diags = checkAcross(input, append(diags, ld...), w.copts)
	docs := map[string][]docSpan{}
	for _, f := range files {
		if spans, ok := splitDocs(f.Name, f.Data); ok {
			docs[f.Name] = spans
		}
	}
	if diags.Err() != nil {
		if w.in.strict {
			diags.Strict()
		}
		printDiags(w.errw, diags)
		return nil, nil, nil, false
	}
	prog, ok := compileInput(input, diags, w.in, w.copts, nil, w.errw)
	return prog, input, docs, ok
}

// applyWhole builds prog's tables and applies them (SyncBatch). A
// failure is printed, and the kernel keeps what it held. The Witness of
// the namespace's commits is closed during the apply, whose notifications
// would only slow it down, and started again after it.
func (w *watcher) applyWhole(prog *ir.Program) (*netlink.Batch, *netlink.SyncReport, bool) {
	b, err := netlink.Build(prog, w.nl)
	if err != nil {
		fmt.Fprintf(w.errw, "kpc apply --watch: %v\n", err)
		return nil, nil, false
	}
	w.wit.Close()
	w.wit = nil
	rep, err := netlink.SyncBatch(b, w.nl)
	if w.failed = err; err != nil {
		fmt.Fprintf(w.errw, "kpc apply --watch: %v\n", err)
		w.why = "the last apply failed"
		return nil, nil, false
	}
	if w.wit, err = netlink.Follow(w.nl, b.TableName()); err != nil {
		fmt.Fprintf(w.errw, "kpc apply --watch: %v; after a commit to any table, the next change is applied whole\n", err)
	}
	return b, rep, true
}

// wholeLine starts the line that reports a full apply.
func wholeLine(reason string, took time.Duration, rep *netlink.SyncReport) string {
	var sent fmt.Stringer = rep.Sent
	if rep.Mode == netlink.SyncIncremental {
		sent = rep
	}
	return fmt.Sprintf("kpc apply --watch: applied the whole input (%s) in %s: %s", reason, ms(took), sent)
}

// adoptAll builds every Service's part and a Union of them that adopts
// b, the batch just applied (which left the nftables generation gen), and
// finishes the line what.
func (w *watcher) adoptAll(what string, b *netlink.Batch, gen uint32) string {
	start := time.Now()
	// Only the summary of the whole batch is kept while the parts are
	// built (nothing uses the batch after this): it is much smaller.
	var u *netlink.Union
	sum, err := b.Summary()
	if err == nil {
		u, err = w.adopt(sum, gen)
	}
	if err != nil {
		for _, k := range w.keys {
			k.part = nil // changes go whole: no part is taken back
		}
		w.why = err.Error()
		fmt.Fprintf(w.out, "%s; changes are applied whole: %s\n", what, w.why)
		return "full"
	}
	u.Follow(w.wit)
	w.u = u
	fmt.Fprintf(w.out, "%s; %d Services counted for updates in %s\n", what, len(w.keys), ms(time.Since(start)))
	return "full"
}

// wholeKept applies the whole input once the Union refused the update of
// changes, already committed to the watcher's documents and keys. It
// compiles the documents the watcher holds, reading no file again, and
// has the Union, with changes counted, adopt the result: every other
// Service keeps its part. What does not work out that way is left to
// full or adoptAll.
func (w *watcher) wholeKept(reason string, changes []netlink.Change) string {
	start := time.Now()
	u := w.u
	w.u, w.why = nil, "the last input was not valid"
	in := &api.Input{}
	for _, f := range sortedFiles(w.files) {
		fi := w.files[f]
		in.Services = append(in.Services, fi.Services...)
		in.EndpointSlices = append(in.EndpointSlices, fi.EndpointSlices...)
		in.Endpoints = append(in.Endpoints, fi.Endpoints...)
		in.Nodes = append(in.Nodes, fi.Nodes...)
		in.ProxyConfigs = append(in.ProxyConfigs, fi.ProxyConfigs...)
		in.ServiceCIDRs = append(in.ServiceCIDRs, fi.ServiceCIDRs...)
	}
	prog, diags := w.compile(in)
	if diags.Err() != nil || prog == nil || allocates(prog) {
		return w.full(reason) // which reports it
	}
	printDiags(w.errw, diags)
	for _, n := range prog.Notes {
		fmt.Fprintf(w.errw, "kpc: %s\n", n)
	}
	b, rep, ok := w.applyWhole(prog)
	if !ok {
		return "invalid"
	}
	what := wholeLine(reason, time.Since(start), rep)
	start = time.Now()
	sum, err := b.Summary()
	if err == nil && sum.NumberedMaps() == w.partOpts.NumberedMaps && recount(u, changes) && u.Adopt(sum, rep.Generation) == nil {
		for _, c := range changes {
			if c.New != nil {
				c.New.Slim()
				u.Share(c.New)
			}
		}
		u.Follow(w.wit)
		w.u = u
		fmt.Fprintf(w.out, "%s; the other Services' parts were kept, adopted in %s\n", what, ms(time.Since(start)))
		return "full-kept"
	}
	return w.adoptAll(what, b, rep.Generation)
}

// recount counts changes in u, as Update would have.
func recount(u *netlink.Union, changes []netlink.Change) bool {
	for _, c := range changes {
		if c.Old != nil && u.Uncount(c.Old) != nil || c.New != nil && u.Count(c.New) != nil {
			return false
		}
	}
	return true
}

// adopt builds every Service key's part (on every CPU), counts it in a
// new Union and slims it (from now on a part is only ever taken back),
// and returns the Union once it adopted b, the summary of the whole
// input's batch, which the kernel holds at nftables generation gen.
func (w *watcher) adopt(b *netlink.Summary, gen uint32) (*netlink.Union, error) {
	w.partOpts = w.nl
	w.partOpts.NumberedMaps = b.NumberedMaps()
	ids := make([]string, 0, len(w.keys))
	for id := range w.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  int
	)
	quiet := *w
	quiet.errw = io.Discard // the full compile printed the diagnostics
	u := netlink.NewUnion(b.TableName(), w.nl)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var setIDs uint32
			for {
				mu.Lock()
				i, stop := next, first != nil
				next++
				mu.Unlock()
				if i >= len(ids) || stop {
					return
				}
				k := w.keys[ids[i]]
				prog := quiet.compileKey(k)
				var err error
				if prog == nil {
					err = fmt.Errorf("the Service %s does not compile alone", ids[i])
				} else {
					k.part, err = netlink.NewPart(prog, w.partOpts, &setIDs)
				}
				mu.Lock()
				if err == nil {
					err = u.Count(k.part)
					k.part.Slim()
					u.Share(k.part)
				}
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := u.Adopt(b, gen); err != nil {
		return nil, fmt.Errorf("the tables are not the union of their Services: %w", err)
	}
	return u, nil
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// change applies a change of files: as an update of the Services they
// touch when it can, else whole. It returns what it did (see applied).
func (w *watcher) change(files []string, seen time.Time) string {
	loaded := map[string]*fileLoad{}
	defer w.giveUp(loaded)
	defer func() { w.justRead = nil }()
	fixed := false
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) && !w.explicit(f) {
			loaded[f] = &fileLoad{in: &api.Input{}, whole: true} // a file under a directory went
			fixed = fixed || w.broken[f]
			delete(w.broken, f)
			continue
		}
		l, diags := w.loadFile(f)
		printDiags(w.errw, diags) // warnings too, as kpc apply prints them
		if l == nil {
			w.broken[f] = true
			continue
		}
		fixed = fixed || w.broken[f]
		delete(w.broken, f)
		loaded[f] = l
	}
	if len(w.broken) > 0 {
		what := fmt.Sprintf("%d files do not load", len(w.broken))
		if len(w.broken) == 1 {
			what = "1 file does not load"
		}
		fmt.Fprintf(w.out, "kpc apply --watch: %s; the kernel keeps the last valid input's tables\n", what)
		return "invalid"
	}
	switch {
	case fixed:
		return w.full("the input loads again")
	case w.u == nil:
		return w.full(w.why)
	}
	if !w.holdsObjects(loaded) {
		var diags diag.List
		noObjects(&diags, w.paths, true)
		printDiags(w.errw, diags)
		fmt.Fprintf(w.out, "kpc apply --watch: the input is not valid; the kernel keeps the last valid input's tables\n")
		return "invalid"
	}
	// The keys whose documents changed (those of documents that only
	// moved down or up a file are the same documents).
	touched := map[string]bool{}
	for f, l := range loaded {
		if !sameContext(l.in, w.files[f]) {
			return w.full("the node context changed")
		}
		if !l.whole {
			maps.Copy(touched, l.touched)
			continue
		}
		markKeys(w.files[f], touched)
		markKeys(l.in, touched)
	}
	// The new documents of every touched key, in file order: in a file
	// not changed, and in a changed file's documents that stayed, those
	// the key had; those of the changed documents, and of a file loaded
	// whole, found by going over them. A file of 100,000 documents is not
	// gone over for the few keys that changed.
	newKeys := map[string]*watchKey{}
	had := map[string][]string{} // per file, the touched keys it had
	for id := range touched {
		newKeys[id] = &watchKey{}
		for f := range w.where[id] {
			had[f] = append(had[f], id)
		}
	}
	names := make([]string, 0, len(had)+len(loaded))
	for f := range had {
		names = append(names, f)
	}
	for f := range loaded {
		if had[f] == nil {
			names = append(names, f)
		}
	}
	slices.Sort(names)
	var touchedNames map[string]bool // made once, for the files loaded whole
	for _, f := range names {
		l := loaded[f]
		if l != nil && l.whole {
			if touchedNames == nil {
				touchedNames = keyNames(touched)
			}
			collectNamed(newKeys, l.in, touched, touchedNames)
			continue
		}
		ids, mid, gone := had[f], map[string]*watchKey{}, map[any]bool(nil)
		if l != nil {
			in := map[string]bool{}
			markKeys(l.mid, in)
			for id := range in {
				mid[id] = &watchKey{}
				if !w.where[id][f] {
					ids = append(ids, id)
				}
			}
			collect(mid, l.mid, in)
			gone = l.gone
		}
		for _, id := range ids {
			now, was, m := newKeys[id], w.keys[id], mid[id]
			if was == nil {
				was = &watchKey{}
			}
			if m == nil {
				m = &watchKey{}
			}
			now.svcs = mergeDocs(now.svcs, was.svcs, m.svcs, f, gone, func(s *api.Service) *diag.Pos { return &s.Pos })
			now.slices = mergeDocs(now.slices, was.slices, m.slices, f, gone, func(s *api.EndpointSlice) *diag.Pos { return &s.Pos })
			now.eps = mergeDocs(now.eps, was.eps, m.eps, f, gone, func(e *api.Endpoints) *diag.Pos { return &e.Pos })
		}
	}

	// Compile what changed, and check its claims.
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	claims := map[string]string{}
	var changes []netlink.Change
	var changed []string
	for _, id := range ids {
		was, now := w.keys[id], newKeys[id]
		if was != nil && was.same(now) {
			continue
		}
		changed = append(changed, id)
		var oldPart *netlink.Part
		if was != nil {
			oldPart = was.part
		}
		if len(now.svcs)+len(now.slices)+len(now.eps) == 0 {
			changes = append(changes, netlink.Change{Old: oldPart})
			continue
		}
		prog := w.compileKey(now)
		if prog == nil {
			// The next change reads the whole input again.
			w.u, w.why = nil, "the last input was not valid"
			fmt.Fprintf(w.out, "kpc apply --watch: Service %s does not compile; the kernel keeps the last valid input's tables\n", id)
			return "invalid"
		}
		if allocates(prog) {
			return w.full("kpc allocates an address or port of Service " + id)
		}
		now.claims = claimsOf(now)
		for _, c := range now.claims {
			if other, ok := claims[c]; ok && other != id {
				return w.full(fmt.Sprintf("Services %s and %s claim the %s", other, id, c))
			}
			claims[c] = id
		}
		part, err := netlink.NewPart(prog, w.partOpts, &w.ids)
		if err != nil {
			return w.full(fmt.Sprintf("Service %s: %v", id, err))
		}
		now.part = part
		changes = append(changes, netlink.Change{Old: oldPart, New: part})
	}
	if len(changed) == 0 {
		w.commit(loaded, newKeys, nil)
		fmt.Fprintf(w.out, "kpc apply --watch: %s: no Service changed\n", strings.Join(files, ", "))
		return "unchanged"
	}
	for c, id := range claims {
		if owner, ok := w.claims[c]; ok && owner != id && !slices.Contains(changed, owner) {
			return w.full(fmt.Sprintf("Service %s claims the %s of Service %s", id, c, owner))
		}
	}
	compiled := time.Since(seen)
	rep, err := w.u.Update(changes)
	if errors.Is(err, netlink.ErrNeedFull) {
		w.commit(loaded, newKeys, changed)
		return w.wholeKept(err.Error(), changes)
	}
	if err != nil {
		fmt.Fprintf(w.errw, "kpc apply --watch: %v\n", err)
		w.u, w.why = nil, "the last update failed"
		return "invalid"
	}
	for _, c := range changes {
		if c.New != nil {
			c.New.Slim()
			w.u.Share(c.New)
		}
	}
	w.commit(loaded, newKeys, changed)
	if rep.Messages == 0 {
		fmt.Fprintf(w.out, "kpc apply --watch: %d Services changed (%s), their rules did not; nothing was sent (%s)\n",
			len(changed), abbrev(changed), ms(time.Since(seen)))
		return "update"
	}
	fmt.Fprintf(w.out, "kpc apply --watch: updated %d Services (%s) in %s since the first file event: read and compile %s (with a %s wait for more events), diff %s, kernel %s; %s\n",
		len(changed), abbrev(changed), ms(time.Since(seen)), ms(compiled), ms(w.waited), ms(rep.Diff), ms(rep.Kernel), rep)
	return "update"
}

// giveUp undoes the loads of a change that commit did not record: the
// files' documents go back where they were.
func (w *watcher) giveUp(loaded map[string]*fileLoad) {
	for _, l := range loaded {
		if l.unshift != nil {
			l.unshift()
		}
	}
}

// mergeDocs appends to out a key's documents in file f: those of old (its
// documents before the change, in file order) in f but not gone (the
// documents a change of f replaced), and mid (its new documents in f), in
// the order of their lines.
func mergeDocs[T any](out, old, mid []*T, f string, gone map[any]bool, pos func(*T) *diag.Pos) []*T {
	for _, d := range old {
		if pos(d).File != f || gone[d] {
			continue
		}
		for len(mid) > 0 && pos(mid[0]).Line < pos(d).Line {
			out, mid = append(out, mid[0]), mid[1:]
		}
		out = append(out, d)
	}
	return append(out, mid...)
}

// markKeys adds to set the Service keys of in's documents.
func markKeys(in *api.Input, set map[string]bool) {
	if in == nil {
		return
	}
	var kb keyBuf
	mark := func(k []byte) {
		if !set[string(k)] { // no allocation but for a new key
			set[string(k)] = true
		}
	}
	for _, s := range in.Services {
		mark(kb.of(s.Metadata.Namespace, s.Metadata.Name))
	}
	for _, s := range in.EndpointSlices {
		if name := s.Metadata.Labels[api.ServiceNameLabel]; name != "" {
			mark(kb.of(s.Metadata.Namespace, name))
		}
	}
	for _, e := range in.Endpoints {
		mark(kb.of(e.Metadata.Namespace, e.Metadata.Name))
	}
}

// collect appends the documents of in whose keys are in only to keys.
// It runs over every document of a file loaded whole (100,000 in a file
// of 50,000 Services), so it passes over those whose name is no key's
// without making their keys, and looks the others up without making them.
func collect(keys map[string]*watchKey, in *api.Input, only map[string]bool) {
	collectNamed(keys, in, only, keyNames(only))
}

// keyNames is the set of the names (without namespace) of keys, by
// which collectNamed passes over documents. One set serves every file of
// a load: made for each of 50,000 files, the set of 50,000 names took
// minutes.
func keyNames(keys map[string]bool) map[string]bool {
	names := make(map[string]bool, len(keys))
	for id := range keys {
		if _, name, ok := strings.Cut(id, "/"); ok {
			names[name] = true
		}
	}
	return names
}

// collectNamed is collect with the names of only's keys (keyNames).
func collectNamed(keys map[string]*watchKey, in *api.Input, only, names map[string]bool) {
	if in == nil {
		return
	}
	var kb keyBuf
	for _, s := range in.Services {
		if !names[s.Metadata.Name] {
			continue
		}
		if k := kb.of(s.Metadata.Namespace, s.Metadata.Name); only[string(k)] {
			w := keys[string(k)]
			w.svcs = append(w.svcs, s)
		}
	}
	for _, s := range in.EndpointSlices {
		name := s.Metadata.Labels[api.ServiceNameLabel]
		if name == "" || !names[name] {
			continue
		}
		if k := kb.of(s.Metadata.Namespace, name); only[string(k)] {
			w := keys[string(k)]
			w.slices = append(w.slices, s)
		}
	}
	for _, e := range in.Endpoints {
		if !names[e.Metadata.Name] {
			continue
		}
		if k := kb.of(e.Metadata.Namespace, e.Metadata.Name); only[string(k)] {
			w := keys[string(k)]
			w.eps = append(w.eps, e)
		}
	}
}

// keyBuf makes Service keys (Service.ID, sliceKey) in a reused buffer,
// for map lookups that allocate nothing (m[string(b)]).
type keyBuf []byte

// of is the key of name in namespace ns, valid until the next call.
func (b *keyBuf) of(ns, name string) []byte {
	*b = append(append(append((*b)[:0], ns...), '/'), name...)
	return *b
}

// commit records the changed files' documents and the touched keys' new
// state; changed lists the keys whose claims changed.
func (w *watcher) commit(loaded map[string]*fileLoad, keys map[string]*watchKey, changed []string) {
	context := false // a file with node context documents changed
	for f, l := range loaded {
		l.unshift = nil // the moved documents stay where they are
		in := l.in
		context = context || hasContext(in) || hasContext(w.files[f])
		if !l.whole {
			// Only the touched keys can have come to or left the file.
			for id := range l.touched {
				if k := keys[id]; k != nil && k.inFile(f) {
					w.place(id, f)
				} else {
					w.displace(id, f)
				}
			}
		} else {
			w.unlocate(f, w.files[f])
			w.locate(f, in)
		}
		w.keepSpare(f, l.spans)
		if l.spans != nil {
			w.docs[f] = l.spans
		} else {
			delete(w.docs, f)
		}
		if len(in.Services)+len(in.EndpointSlices)+len(in.Endpoints) == 0 && !hasContext(in) && !w.explicit(f) {
			delete(w.files, f)
			delete(w.docs, f)
			delete(w.spare, f)
			continue
		}
		w.files[f] = in
	}
	if context {
		w.setContext() // the same documents, at their new positions
	}
	for _, id := range changed {
		if old := w.keys[id]; old != nil {
			for _, c := range old.claims {
				if w.claims[c] == id {
					delete(w.claims, c)
				}
			}
		}
	}
	for id, k := range keys {
		if old := w.keys[id]; old != nil && k.part == nil {
			k.part, k.claims = old.part, old.claims
		}
		if len(k.svcs)+len(k.slices)+len(k.eps) == 0 {
			delete(w.keys, id)
			continue
		}
		w.keys[id] = k
	}
	for _, id := range changed {
		if k := w.keys[id]; k != nil {
			for _, c := range k.claims {
				w.claims[c] = id
			}
		}
	}
}

// spareMin is the fewest spans of a split whose array is kept (spare).
const spareMin = 1024

// keepSpare keeps the array of file f's split as its spare when spans,
// its new split, is another array.
func (w *watcher) keepSpare(f string, spans []docSpan) {
	old := w.docs[f]
	if len(old) < spareMin || len(spans) > 0 && &spans[0] == &old[0] {
		return
	}
	if w.spare == nil {
		w.spare = map[string][]docSpan{}
	}
	w.spare[f] = old[:0]
}

// abbrev names the first few keys.
func abbrev(ids []string) string {
	if len(ids) <= 3 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:3], ", "), len(ids)-3)
}

// loadOptions are the load options of the inputs.
func (w *watcher) loadOptions() load.Options {
	opts := load.Options{Strict: w.in.strict, ServiceCIDRs: w.copts.ServiceCIDRs, KubeProxy: true}
	if w.in.nodePortRange != "" {
		r, _ := parsePortRange(w.in.nodePortRange)
		opts.NodePortRange = load.PortRange{Min: r[0], Max: r[1]}
	}
	return opts
}

// explicit reports whether f was given as a path itself (not found under a
// directory given).
func (w *watcher) explicit(f string) bool { return slices.Contains(w.paths, f) }

// manifest reports whether a file under a watched directory is one that
// kpc reads.
func manifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// watchPaths adds to fw every directory given, with the directories under
// it, and the directory of every file given.
func watchPaths(fw *fsnotify.Watcher, paths []string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot watch %s: %w", p, err)
		}
		if !st.IsDir() {
			if err := fw.Add(filepath.Dir(p)); err != nil {
				return fmt.Errorf("cannot watch %s: %w", p, err)
			}
			continue
		}
		root := p
		if lst, err := os.Lstat(p); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
			root += string(filepath.Separator) // a link to a directory: watch the directory
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && load.Hidden(d.Name()) {
					return filepath.SkipDir
				}
				return fw.Add(path)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot watch %s: %w", p, err)
		}
	}
	return nil
}

// relevant reports whether an event's file is part of the input: a file
// given, or a manifest under a directory given, not hidden (load.Hidden).
func (w *watcher) relevant(name string) bool {
	for _, p := range w.paths {
		if name == p {
			return true
		}
		if within(p, name) && manifest(name) {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return false
}

// within reports whether name is under directory dir, and not hidden
// there: no part of its path below dir is hidden (load.Hidden), as the
// input's reading leaves out.
func within(dir, name string) bool {
	rel, err := filepath.Rel(dir, name)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return false
	}
	for part := range strings.SplitSeq(rel, "/") {
		if load.Hidden(part) {
			return false
		}
	}
	return true
}

// viaLink is a file that is a symbolic link whose target goes through
// a hidden name of the file's own directory ("..data/svc.yaml").
type viaLink struct{ file, via string }

// symlinked returns, by directory, the files that are symbolic links
// through a hidden name of their directory.
func symlinked(files []string) map[string][]viaLink {
	links := map[string][]viaLink{}
	for _, f := range files {
		to, err := os.Readlink(f)
		if err != nil || filepath.IsAbs(to) {
			continue
		}
		via, _, _ := strings.Cut(filepath.Clean(to), "/")
		if !load.Hidden(via) || via == ".." {
			continue
		}
		d := filepath.Dir(f)
		l := viaLink{f, via}
		if !slices.Contains(links[d], l) {
			links[d] = append(links[d], l)
		}
	}
	for _, l := range links {
		slices.SortFunc(l, func(a, b viaLink) int { return strings.Compare(a.file, b.file) })
	}
	return links
}

// run applies the whole input, then follows the files' changes until ctx
// is done. ready, when set, is called once the first apply is done and the
// files are watched.
func (w *watcher) run(ctx context.Context, ready func()) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("cannot watch the input: %w", err)
	}
	defer fw.Close()
	defer func() { w.wit.Close() }()
	for i, p := range w.paths {
		w.paths[i] = filepath.Clean(p)
	}
	if err := watchPaths(fw, w.paths); err != nil {
		return err
	}
	w.broken = map[string]bool{}
	w.report(w.full("start"))
	if w.failed != nil {
		// The kernel refused the first apply (no CAP_NET_ADMIN, say):
		// the next ones would fare no better. The reason is printed.
		return errors.New("the first apply failed")
	}
	if ready != nil {
		ready()
	}
	pending := map[string]bool{}
	var first time.Time
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("the file watcher stopped")
			}
			// The watcher names a file of the directory "." as "./f",
			// where the input says "f".
			name := filepath.Clean(ev.Name)
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(name); err == nil && st.IsDir() && w.relevantDir(name) {
					// A new directory: watch it, and read it whole.
					if err := watchPaths(fw, []string{name}); err != nil {
						fmt.Fprintf(w.errw, "kpc apply --watch: %v\n", err)
					}
					pending[""] = true
				}
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			changed := []string{name}
			if !w.relevant(name) {
				changed = nil
				for _, l := range w.links[filepath.Dir(name)] {
					if l.via == filepath.Base(name) { // a ConfigMap's "..data" replaced, say
						changed = append(changed, l.file)
					}
				}
			}
			if len(changed) == 0 {
				continue
			}
			if len(pending) == 0 {
				first = time.Now()
			}
			for _, f := range changed {
				pending[f] = true
			}
			if timer == nil {
				timer = time.After(watchDebounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("the file watcher stopped")
			}
			// Events may have been lost (an overflow): read everything.
			fmt.Fprintf(w.errw, "kpc apply --watch: %v\n", err)
			pending[""] = true
			if timer == nil {
				first, timer = time.Now(), time.After(watchDebounce)
			}
		case <-timer:
			timer = nil
			if w.writing(pending) && time.Since(first) < watchWriterWait {
				// A file is still open for writing (a shell's > or a
				// copy under way): half of it is no input to apply.
				timer = time.After(watchDebounce)
				continue
			}
			w.waited = time.Since(first)
			if pending[""] {
				w.report(w.full("files were added or events lost"))
			} else {
				files := make([]string, 0, len(pending))
				for f := range pending {
					files = append(files, f)
				}
				slices.Sort(files)
				w.report(w.change(files, first))
			}
			clear(pending)
		}
	}
}

// writing reports whether a file of pending is open for writing.
func (w *watcher) writing(pending map[string]bool) bool {
	for f := range pending {
		if f != "" && beingWritten(f) {
			return true
		}
	}
	return false
}

// beingWritten reports whether some process holds file f open for
// writing: the kernel then refuses a read lease on it (fcntl F_SETLEASE,
// which root, or the file's owner, may take). Where leases are not to be
// had (another owner without CAP_LEASE, a file system without them), it
// reports false.
func beingWritten(f string) bool {
	fd, err := unix.Open(f, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		return errors.Is(err, unix.EAGAIN)
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return false
}

// holdsObjects reports whether in holds a Service, an EndpointSlice or an
// Endpoints.
func holdsObjects(in *api.Input) bool {
	return len(in.Services)+len(in.EndpointSlices)+len(in.Endpoints) > 0
}

// holdsObjects reports whether the input, with the files of loaded as
// they now are, holds a Service, an EndpointSlice or an Endpoints.
func (w *watcher) holdsObjects(loaded map[string]*fileLoad) bool {
	for f, in := range w.files {
		if l, ok := loaded[f]; ok {
			in = l.in
		}
		if holdsObjects(in) {
			return true
		}
	}
	for f, l := range loaded {
		if _, ok := w.files[f]; !ok && holdsObjects(l.in) {
			return true
		}
	}
	return false
}

// relevantDir reports whether a new directory is under a directory given,
// and not hidden there.
func (w *watcher) relevantDir(dir string) bool {
	return slices.ContainsFunc(w.paths, func(p string) bool { return within(p, dir) })
}

// report follows what was done: after a whole apply, the heap the
// watcher keeps is built, and the collector's policy is set for the
// changes to come (gcpolicy.Steady); then the test hook is told.
func (w *watcher) report(what string) {
	if what == "full" || what == "full-kept" {
		gcpolicy.Steady()
	}
	if w.applied != nil {
		w.applied(what)
	}
}

// watchApply runs kpc apply --watch until SIGINT or SIGTERM.
func watchApply(paths []string, in *inputFlags, copts compiler.Options, o applyOptions, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := &watcher{paths: paths, in: in, copts: copts, nl: netlinkOptions(o), out: stdout, errw: stderr}
	return w.run(ctx, func() {
		fmt.Fprintf(stdout, "kpc apply --watch: watching %s for changes (interrupt to stop)\n", strings.Join(paths, ", "))
	})
}
