package load

import (
	"cmp"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"

	"kpc/compiler/api"
	"kpc/compiler/diag"
	"kpc/schema"
)

// recycleAfter is how many documents one CUE context validates before it
// is dropped. A context keeps every value built in it (about 6 KB per
// small document) until it is garbage; recycling bounds a worker's memory
// on large inputs at the cost of recompiling the schema (a few ms).
const recycleAfter = 1024

// schemaPrefix is prepended to the schema's file names in CUE positions,
// so that positions in the schema are never mistaken for input positions.
const schemaPrefix = "<kpc-schema>/"

// evaluator is one worker's CUE context with the schema compiled in it.
// CUE does not document concurrent building in one context as safe, so
// each worker goroutine owns one evaluator.
type evaluator struct {
	ctx   *cue.Context
	defs  [2]map[string]cue.Value // [0] open, [1] strict; compiled lazily
	memos [2]*memo                // shapes, per schema
	// docs counts the documents evaluated in full, checks the parameters
	// checked: both grow the context.
	docs   int
	checks int
	types  map[byte]cue.Value        // parameter types, for memo
	res    map[string]*regexp.Regexp // compiled patterns, for fastCheck
}

// evaluators keeps idle evaluators for reuse by later Load calls, so that
// a process compiles the schema once per worker rather than once per Load.
var evaluators struct {
	sync.Mutex
	free []*evaluator
}

func getEvaluator() *evaluator {
	evaluators.Lock()
	defer evaluators.Unlock()
	if n := len(evaluators.free); n > 0 {
		e := evaluators.free[n-1]
		evaluators.free = evaluators.free[:n-1]
		return e
	}
	return &evaluator{ctx: cuecontext.New()}
}

func putEvaluator(e *evaluator) {
	if e == nil || e.full() >= recycleAfter {
		return
	}
	evaluators.Lock()
	defer evaluators.Unlock()
	if len(evaluators.free) < runtime.GOMAXPROCS(0) {
		evaluators.free = append(evaluators.free, e)
	}
}

// DropCaches drops the evaluators kept for later Load calls, and with them
// what they remember of the documents they validated (the shapes' CUE
// values, which hold on to the documents' source positions). A process
// that loads once calls it when the Load is done, to free that memory;
// the next Load compiles the schema again.
func DropCaches() {
	evaluators.Lock()
	defer evaluators.Unlock()
	clear(evaluators.free)
	evaluators.free = nil
}

// schema returns the definitions compiled in e's context.
func (e *evaluator) schema(strict bool) (map[string]cue.Value, error) {
	i := 0
	if strict {
		i = 1
	}
	if e.defs[i] != nil {
		return e.defs[i], nil
	}
	files := schema.Files()
	if strict {
		files = schema.StrictFiles()
	}
	inst := build.NewContext().NewInstance("", nil)
	var parsed []*ast.File
	for _, f := range files {
		af, err := parser.ParseFile(schemaPrefix+f.Name, f.Source)
		if err != nil {
			return nil, fmt.Errorf("parsing schema %s: %w", f.Name, err)
		}
		parsed = append(parsed, af)
		if err := inst.AddSyntax(af); err != nil {
			return nil, fmt.Errorf("adding schema %s: %w", f.Name, err)
		}
	}
	// The analysis reads the syntax before BuildInstance resolves it.
	deps := analyzeSchema(parsed)
	root := e.ctx.BuildInstance(inst)
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("building schema: %w", err)
	}
	defs := make(map[string]cue.Value, len(kinds))
	for _, k := range kinds {
		v := root.LookupPath(cue.ParsePath(k.def))
		if !v.Exists() {
			return nil, fmt.Errorf("schema definition %s is missing", k.def)
		}
		defs[k.def] = v
	}
	e.defs[i] = defs
	e.memos[i] = &memo{deps: deps, templates: map[string]*template{}, sightings: map[string]bool{}}
	return defs, nil
}

// validator validates documents in parallel as they are decoded, one
// evaluator per worker goroutine. Each document's results go to the
// document itself, so the outcome does not depend on scheduling.
type validator struct {
	jobs chan job
	wg   sync.WaitGroup
}

// job is a document to validate, or a chunk of a file to parse and
// validate.
type job struct {
	doc   *document
	chunk *chunk
}

// startValidation starts GOMAXPROCS workers.
func startValidation(opts Options) *validator {
	v := &validator{jobs: make(chan job, 64)}
	for range runtime.GOMAXPROCS(0) {
		v.wg.Go(func() {
			var e *evaluator
			ws := &workspace{}
			check := func(d *document) {
				if e == nil {
					e = getEvaluator()
				}
				ok := e.validate(d, opts)
				d.expr = nil // no longer needed; let it be collected
				if !ok || e.full() >= recycleAfter {
					e = &evaluator{ctx: cuecontext.New()}
				}
			}
			for j := range v.jobs {
				if j.chunk != nil {
					j.chunk.run(check, ws)
				} else {
					check(j.doc)
				}
			}
			putEvaluator(e)
		})
	}
	return v
}

// wait waits for every queued job.
func (v *validator) wait() {
	close(v.jobs)
	v.wg.Wait()
}

// sink receives the decoded documents and chunks of the input, in input
// order, and queues them for validation; without a validator, it passes
// documents to emit (and takes no chunks).
type sink struct {
	v       *validator
	emit    func(*document)
	entries []job
}

// doc queues a document.
func (s *sink) doc(d *document) {
	if s.v == nil {
		s.emit(d)
		return
	}
	s.entries = append(s.entries, job{doc: d})
	s.v.jobs <- job{doc: d}
}

// chunk queues a chunk.
func (s *sink) chunk(c *chunk) {
	s.entries = append(s.entries, job{chunk: c})
	s.v.jobs <- job{chunk: c}
}

// documents returns the documents in input order, with the diagnostics
// of decoding the chunks.
func (s *sink) documents() ([]*document, diag.List) {
	var docs []*document
	var diags diag.List
	for _, j := range s.entries {
		switch {
		case j.doc != nil:
			docs = append(docs, j.doc)
		case !j.chunk.discard:
			docs = append(docs, j.chunk.docs...)
			diags = append(diags, j.chunk.diags...)
		}
	}
	return docs, diags
}

// validate checks one document and decodes it. It reports false if the
// evaluator must not be used again (it panicked).
func (e *evaluator) validate(d *document, opts Options) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			d.diags.Add(d.pos, d.object, "", fmt.Sprintf("internal error validating the document: %v", r))
			// Not named: what panicked may not be read again.
			d.out = &api.Invalid{Pos: d.pos, Kind: d.info.kind}
			ok = false
		}
	}()
	strict := opts.Strict && d.info.strict
	// Without Strict, the fields of such a kind that the closed schema does
	// not declare are warnings, as in the API server's Warn mode.
	warn := !opts.Strict && d.info.strict
	defs, err := e.schema(strict)
	if err != nil {
		d.diags.Add(d.pos, d.object, "", "internal error: "+err.Error())
		d.out = d.invalid()
		return true
	}
	def := defs[d.info.def]
	m := e.memos[0]
	if strict {
		m = e.memos[1]
	}
	var key string
	var params []param
	shaped := false
	if shapeMemo {
		key, params, shaped = m.shapeOf(d)
	}
	var t *template
	if shaped {
		t = m.templates[key]
	}
	fast := t != nil && e.accept(t, params)
	var v cue.Value
	var errs []fieldError
	var unknown []fpath // the fields to warn of
	if fast {
		unknown = t.unknown
	} else {
		// The kinds that Strict applies to are evaluated with the closed
		// schema in either mode, which finds their unknown fields.
		full := def
		if warn {
			defs, err := e.schema(true)
			if err != nil {
				d.diags.Add(d.pos, d.object, "", "internal error: "+err.Error())
				return true
			}
			full = defs[d.info.def]
		}
		e.docs++
		d.evaluated = true
		doc := e.ctx.BuildExpr(d.expr)
		v = doc.Unify(full)
		errs = evalErrors(doc, v, d)
		if strict || warn {
			var found []fpath
			errs, found = e.splitUnknown(d, errs, full)
			if strict {
				for _, p := range found {
					errs = append(errs, fieldError{path: p, msg: unknownFieldMsg(p), unknown: true})
				}
			} else if unknown = found; len(unknown) > 0 {
				// The closed schema differs from the open one only in
				// rejecting undeclared fields: if it rejects none, its
				// evaluation is the open schema's; if it does, the open
				// schema gives the value and the other errors.
				e.docs++
				v = doc.Unify(def)
				errs = evalErrors(doc, v, d)
			}
		}
	}
	if len(errs) > 0 {
		errs = append(errs, e.hiddenRequired(d, v, def, errs)...)
	}
	for _, p := range unknown {
		fe := fieldError{path: p, unknown: true}
		d.diags.Warn(fe.position(d), d.object, p.String(), unknownFieldMsg(p))
	}
	cueValid := len(errs) == 0
	schemaErrs := len(errs)
	// The node context kinds' unknown fields: warnings, or errors with
	// Strict.
	for _, u := range lenientUnknown(d.info.kind, d.expr) {
		fe := fieldError{path: u.path, msg: u.msg, unknown: true}
		switch {
		case u.warn:
			d.diags.WarnLasting(fe.position(d), d.object, u.path.String(), u.msg)
		case opts.Strict:
			errs = append(errs, fe)
		default:
			d.diags.Warn(fe.position(d), d.object, u.path.String(), u.msg)
		}
	}
	// M1. The schema requires a name too, but CUE reports a missing field
	// only when the document has no other error, and hiddenRequired finds
	// it only in a metadata that is there.
	if d.info.named && field(asStruct(get(d.expr, "metadata")), "name") == nil {
		errs = append(errs, fieldError{path: fpath{"metadata", "name"}, msg: "required value"})
	}
	switch d.info.kind {
	case "Service":
		errs = append(errs, checkService(d.expr, opts)...)
	case "EndpointSlice":
		errs = append(errs, checkEndpointSlice(d.expr)...)
		errs, schemaErrs = skipAfterTooMany(errs, schemaErrs)
	case "Endpoints":
		errs = append(errs, checkEndpoints(d.expr)...)
	case "ServiceCIDR":
		errs = append(errs, checkServiceCIDR(d.expr)...)
	case "KubeProxyConfiguration":
		errs = append(errs, checkKubeProxyConfig(d.expr)...)
	}
	// The schema's first error on a path stands for all of them, and the
	// checks add none on that path; the checks may report several reasons
	// on one path, as the API server does (two on spec.ipFamilyPolicy for
	// SingleStack with two cluster IPs and two families).
	schemaPath := make(map[string]bool, schemaErrs)
	seen := make(map[string]bool, len(errs))
	for i, fe := range errs {
		p := fe.path.String()
		if i < schemaErrs {
			if schemaPath[p] {
				continue
			}
			schemaPath[p] = true
		} else if k := p + "\x00" + fe.msg; schemaPath[p] || seen[k] {
			continue
		} else {
			seen[k] = true
		}
		d.diags.Add(fe.position(d), d.object, p, fe.msg)
	}
	// d.diags may hold the strict mode's duplicate keys (decoder.object);
	// its warnings (unknown fields, duplicate keys) leave d valid.
	if len(errs) > 0 || d.diags.Err() != nil {
		d.out = d.invalid()
		return true
	}
	if d.info.kind == "Service" {
		// The API server's warnings, which fail no create: warnings under
		// Strict too. Their paths spell loadBalancerSourceRanges as the
		// warnings do, with a small l.
		for _, w := range serviceWarnings(d.expr) {
			p := strings.Replace(w.path.String(), "spec.LoadBalancerSourceRanges", "spec.loadBalancerSourceRanges", 1)
			d.diags.WarnLasting(w.position(d), d.object, p, w.msg)
		}
	}
	if fast {
		out, err := decodeObject(d, func(rv reflect.Value) error { return decodeTree(t.tree, params, rv) })
		if err == nil {
			d.out = out
			return true
		}
		// Not expected; the full evaluation says what is wrong.
		e.docs++
		d.evaluated = true
		v = e.ctx.BuildExpr(d.expr).Unify(def)
	}
	out, err := decode(d, v)
	if err != nil {
		d.diags.Add(d.pos, d.object, "", fmt.Sprintf("cannot decode the validated object: %v", err))
		d.out = d.invalid()
		return true
	}
	d.out = out
	if shaped && cueValid && !fast {
		e.learn(m, key, d, def, v, unknown)
	}
	return true
}

// skipAfterTooMany drops the errors of an EndpointSlice that the API
// server does not reach: it returns from validating the endpoints (E2),
// the ports (E12), an endpoint's hints (E10: its zones, then its nodes)
// or an endpoint's node hints (E11) once there are too many of them. The
// first n of errs are the schema's; it returns the errors kept and how
// many of them are the schema's.
func skipAfterTooMany(errs []fieldError, n int) ([]fieldError, int) {
	type skip struct{ under, keep fpath }
	var skips []skip
	for _, fe := range errs {
		if !strings.HasPrefix(fe.msg, "too many: ") {
			continue
		}
		switch p := fe.path; {
		case len(p) == 1 && (p[0] == "endpoints" || p[0] == "ports"):
			skips = append(skips, skip{p, p})
		case len(p) == 4 && p[0] == "endpoints" && p[2] == "hints" && p[3] == "forZones":
			skips = append(skips, skip{p[:3], p})
		case len(p) == 4 && p[0] == "endpoints" && p[2] == "hints" && p[3] == "forNodes":
			skips = append(skips, skip{p, p})
		}
	}
	if len(skips) == 0 {
		return errs, n
	}
	kept, schema := errs[:0:0], 0
	for i, fe := range errs {
		if slices.ContainsFunc(skips, func(s skip) bool { return pathUnder(fe.path, s.under) && !slices.Equal(fe.path, s.keep) }) {
			continue
		}
		kept = append(kept, fe)
		if i < n {
			schema++
		}
	}
	return kept, schema
}

// splitUnknown separates, of the errors of d evaluated with the closed
// schema closed, the fields it does not declare from the other errors.
func (e *evaluator) splitUnknown(d *document, errs []fieldError, closed cue.Value) (others []fieldError, unknown []fpath) {
	for _, fe := range errs {
		if fe.unknown {
			unknown = append(unknown, fe.path)
		} else {
			others = append(others, fe)
		}
	}
	if len(others) > 0 {
		unknown = e.unknownFields(d, closed)
	}
	return others, unknown
}

// skeletonRounds bounds the evaluations of unknownFields.
const skeletonRounds = 4

// unknownFields returns the paths of the fields of d that the closed
// schema closed does not declare, for a document with errors: CUE reports
// no undeclared field in a struct that holds another error. They are
// found from the document's structure alone, its mappings and lists with
// _ in place of every other value, which no constraint on a value
// rejects; a field that the schema rejects otherwise (a forbidden field,
// a mapping or list where it wants another type) is set aside, and the
// rest evaluated again.
func (e *evaluator) unknownFields(d *document, closed cue.Value) []fpath {
	aside := map[*ast.Field]bool{}
	var unknown []fpath
	for range skeletonRounds {
		e.docs++
		err := e.ctx.BuildExpr(skeleton(d.expr, aside)).Unify(closed).Validate()
		unknown = unknown[:0]
		progress := false
		for _, ce := range cueerrors.Errors(err) {
			elems := ce.Path()
			if notAllowed(ce) {
				unknown = append(unknown, apiPath(d.expr, elems))
				continue
			}
			if slices.ContainsFunc(elems, func(el string) bool { return strings.HasPrefix(el, "_") || strings.HasPrefix(el, "#") }) {
				continue // a helper of the schema, not a field of the document
			}
			if f := fieldAt(d.expr, apiPath(d.expr, elems)); f != nil && !aside[f] {
				aside[f] = true
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return unknown
}

// skeleton returns the mappings and lists of a document, with _ in place
// of every other value, and without the fields aside.
func skeleton(x ast.Expr, aside map[*ast.Field]bool) ast.Expr {
	switch x := x.(type) {
	case *ast.StructLit:
		out := &ast.StructLit{Elts: make([]ast.Decl, 0, len(x.Elts))}
		for _, el := range x.Elts {
			if f, ok := el.(*ast.Field); ok && !aside[f] {
				out.Elts = append(out.Elts, &ast.Field{Label: f.Label, Value: skeleton(f.Value, aside)})
			}
		}
		return out
	case *ast.ListLit:
		out := &ast.ListLit{Elts: make([]ast.Expr, len(x.Elts))}
		for i, el := range x.Elts {
			out.Elts[i] = skeleton(el, aside)
		}
		return out
	}
	return ast.NewIdent("_")
}

// evalErrors returns the errors of a document built as doc and evaluated
// as v.
func evalErrors(doc, v cue.Value, d *document) []fieldError {
	if err := doc.Err(); err != nil {
		return cueErrors(err, d)
	}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return cueErrors(err, d)
	}
	return nil
}

// invalid names d, which is invalid, for api.Input.Invalid.
func (d *document) invalid() *api.Invalid {
	// The names are copied: they may share the memory of the whole file.
	v := &api.Invalid{Pos: d.pos, Kind: d.info.kind}
	name, _ := metaString(d.expr, "name")
	v.Name = strings.Clone(name)
	if d.info.namespaced {
		ns, _ := metaString(d.expr, "namespace")
		v.Namespace = cmp.Or(strings.Clone(ns), "default")
	}
	return v
}

// shapeMemo enables shape memoisation (memo.go); tests compare with it
// off.
var shapeMemo = true

// full is the work done in e's context, in documents evaluated in full.
func (e *evaluator) full() int { return e.docs + e.checks/16 }

// decode decodes a valid, defaulted value into its api type and applies
// the defaults CUE cannot express.
func decode(d *document, v cue.Value) (any, error) {
	return decodeObject(d, func(rv reflect.Value) error { return decodeInto(v, rv) })
}

// decodeObject makes the api object of d's kind, fills it with dec, sets
// its Pos and applies the defaults CUE cannot express.
func decodeObject(d *document, dec func(reflect.Value) error) (any, error) {
	var obj any
	switch d.info.kind {
	case "Service":
		obj = &api.Service{}
	case "EndpointSlice":
		obj = &api.EndpointSlice{}
	case "Endpoints":
		obj = &api.Endpoints{}
	case "ServiceCIDR":
		obj = &api.ServiceCIDR{}
	case "Node":
		obj = &api.Node{}
	case "KubeProxyConfiguration":
		obj = &api.KubeProxyConfiguration{}
	default:
		return nil, fmt.Errorf("unknown kind %s", d.info.kind)
	}
	rv := reflect.ValueOf(obj)
	if err := dec(rv); err != nil {
		return nil, err
	}
	// Every api object has a Pos: where its document starts.
	rv.Elem().FieldByName("Pos").Set(reflect.ValueOf(d.pos))
	if s, ok := obj.(*api.Service); ok {
		serviceDefaults(s)
	}
	return obj, nil
}

// serviceDefaults applies the defaults of a Service that CUE cannot
// express.
func serviceDefaults(s *api.Service) {
	// D2: with sessionAffinity None the config is dropped.
	if s.Spec.SessionAffinity == "None" {
		s.Spec.SessionAffinityConfig = nil
	}
	// D11: clusterIPs starts with clusterIP.
	if s.Spec.ClusterIP != "" && len(s.Spec.ClusterIPs) == 0 {
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	}
	// D10: a load balancer's ingress with an IP is a VIP by default.
	for i := range s.Status.LoadBalancer.Ingress {
		if s.Spec.Type != "LoadBalancer" {
			break
		}
		if in := &s.Status.LoadBalancer.Ingress[i]; in.IP != "" && in.IPMode == nil {
			vip := "VIP"
			in.IPMode = &vip
		}
	}
}

// fieldError is one problem at an API field path.
type fieldError struct {
	path fpath
	msg  string
	// at, if not nil, is the path whose position is reported (when the
	// API server's path names a field the user did not write, e.g.
	// spec.clusterIPs for a clusterIP).
	at fpath
	// unknown says that the field at path is not declared by the closed
	// schema: it is reported at its key.
	unknown bool
}

// position returns where the error is reported.
func (fe fieldError) position(d *document) diag.Pos {
	at := fe.at
	if at == nil {
		at = fe.path
	}
	if fe.unknown {
		if q := toPos(keyPos(d.expr, at)); q.File != "" {
			return q
		}
	}
	_, p := locate(d.expr, at)
	if q := toPos(p); q.File != "" {
		return q
	}
	return d.pos
}
