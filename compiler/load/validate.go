package load

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
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
	ctx  *cue.Context
	defs [2]map[string]cue.Value // [0] open, [1] strict; compiled lazily
	docs int
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
	if e == nil || e.docs >= recycleAfter {
		return
	}
	evaluators.Lock()
	defer evaluators.Unlock()
	if len(evaluators.free) < runtime.GOMAXPROCS(0) {
		evaluators.free = append(evaluators.free, e)
	}
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
	for _, f := range files {
		af, err := parser.ParseFile(schemaPrefix+f.Name, f.Source)
		if err != nil {
			return nil, fmt.Errorf("parsing schema %s: %w", f.Name, err)
		}
		if err := inst.AddSyntax(af); err != nil {
			return nil, fmt.Errorf("adding schema %s: %w", f.Name, err)
		}
	}
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
	return defs, nil
}

// validator validates documents in parallel as they are decoded, one
// evaluator per worker goroutine. Each document's results go to the
// document itself, so the outcome does not depend on scheduling.
type validator struct {
	jobs chan *document
	wg   sync.WaitGroup
}

// startValidation starts GOMAXPROCS workers.
func startValidation(opts Options) *validator {
	v := &validator{jobs: make(chan *document, 64)}
	for range runtime.GOMAXPROCS(0) {
		v.wg.Go(func() {
			var e *evaluator
			for d := range v.jobs {
				if e == nil {
					e = getEvaluator()
				}
				ok := e.validate(d, opts)
				d.expr = nil // no longer needed; let it be collected
				if !ok || e.docs >= recycleAfter {
					e = &evaluator{ctx: cuecontext.New()}
				}
			}
			putEvaluator(e)
		})
	}
	return v
}

// add queues a document.
func (v *validator) add(d *document) { v.jobs <- d }

// wait waits for every queued document.
func (v *validator) wait() {
	close(v.jobs)
	v.wg.Wait()
}

// validate checks one document and decodes it. It reports false if the
// evaluator must not be used again (it panicked).
func (e *evaluator) validate(d *document, opts Options) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			d.diags.Add(d.pos, d.object, "", fmt.Sprintf("internal error validating the document: %v", r))
			d.out = nil
			ok = false
		}
	}()
	e.docs++
	strict := opts.Strict && d.info.strict
	defs, err := e.schema(strict)
	if err != nil {
		d.diags.Add(d.pos, d.object, "", "internal error: "+err.Error())
		return true
	}
	doc := e.ctx.BuildExpr(d.expr)
	v := doc.Unify(defs[d.info.def])
	var errs []fieldError
	if err := doc.Err(); err != nil {
		errs = cueErrors(err, d)
	} else if err := v.Validate(cue.Concrete(true)); err != nil {
		errs = cueErrors(err, d)
	}
	// M1. The schema requires a name too, but CUE reports a missing field
	// only when the document has no other error.
	if d.info.named && field(asStruct(get(d.expr, "metadata")), "name") == nil {
		errs = append(errs, fieldError{path: fpath{"metadata", "name"}, msg: "required value"})
	}
	switch d.info.kind {
	case "Service":
		errs = append(errs, checkService(d.expr, opts)...)
	case "EndpointSlice":
		errs = append(errs, checkEndpointSlice(d.expr)...)
	}
	seen := make(map[string]bool, len(errs))
	for _, fe := range errs {
		p := fe.path.String()
		if seen[p] {
			continue // one error per path, the schema's first
		}
		seen[p] = true
		d.diags.Add(fe.position(d), d.object, p, fe.msg)
	}
	if len(errs) > 0 {
		return true
	}
	out, err := decode(d, v)
	if err != nil {
		d.diags.Add(d.pos, d.object, "", fmt.Sprintf("cannot decode the validated object: %v", err))
		return true
	}
	d.out = out
	return true
}

// decode decodes a valid, defaulted value into its api type and applies
// the defaults CUE cannot express.
func decode(d *document, v cue.Value) (any, error) {
	switch d.info.kind {
	case "Service":
		s := &api.Service{}
		if err := decodeInto(v, reflect.ValueOf(s)); err != nil {
			return nil, err
		}
		s.Pos = d.pos
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
		return s, nil
	case "EndpointSlice":
		s := &api.EndpointSlice{}
		if err := decodeInto(v, reflect.ValueOf(s)); err != nil {
			return nil, err
		}
		s.Pos = d.pos
		return s, nil
	case "Node":
		n := &api.Node{}
		if err := decodeInto(v, reflect.ValueOf(n)); err != nil {
			return nil, err
		}
		n.Pos = d.pos
		return n, nil
	case "KubeProxyConfiguration":
		c := &api.KubeProxyConfiguration{}
		if err := decodeInto(v, reflect.ValueOf(c)); err != nil {
			return nil, err
		}
		c.Pos = d.pos
		return c, nil
	}
	return nil, fmt.Errorf("unknown kind %s", d.info.kind)
}

// fieldError is one problem at an API field path.
type fieldError struct {
	path fpath
	msg  string
	// at, if not nil, is the path whose position is reported (when the
	// API server's path names a field the user did not write, e.g.
	// spec.clusterIPs for a clusterIP).
	at fpath
}

// position returns where the error is reported.
func (fe fieldError) position(d *document) diag.Pos {
	at := fe.at
	if at == nil {
		at = fe.path
	}
	_, p := locate(d.expr, at)
	if q := toPos(p); q.File != "" {
		return q
	}
	return d.pos
}
