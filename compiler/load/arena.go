package load

import (
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue/ast"
)

// A large input's syntax is most of what loading allocates: a kubectl
// List of 50,000 Services and their EndpointSlices has 7.5 million keys,
// each an ast.Field and its label, some 200 bytes, which is 1.5 GB for
// the garbage collector to take back, a chunk at a time, while the file
// and the loaded objects are live. Yet a chunk's syntax is needed only
// until its documents are validated (chunk.run), so a validation worker
// lends the parser of each chunk it runs a workspace, whose blocks of
// nodes are handed out again for its next chunk.

// workspace is what a validation worker lends the parsers of its chunks:
// the nodes' blocks, and the plain keys, scalars and JSON strings
// remembered.
type workspace struct {
	nodes *nodeArena
	keys  map[string]keyLabel
	// scalars are the plain scalars of at most maxKnownScalar bytes.
	scalars map[string]resolved
	// strings are the JSON strings remembered (jparser.known).
	strings map[string]string
}

// lend gives p the workspace's nodes and memos.
func (w *workspace) lend(p *yparser) {
	if w.nodes == nil {
		w.nodes = &nodeArena{}
	}
	p.nodes, p.plainKeys, p.scalars = w.nodes, w.keys, w.scalars
}

// retrieve takes the memos back from p, which is done with its chunk,
// and readies the nodes for the next chunk: their blocks are reused when
// nothing can still reference them (reusable), and else let go.
func (w *workspace) retrieve(p *yparser, reusable bool) {
	w.keys, w.scalars = p.plainKeys, p.scalars
	if reusable {
		nodeReuses.Add(1)
		w.nodes.reset()
	} else {
		w.nodes = nil
	}
}

// nodeReuses counts the chunks whose nodes' blocks were handed out again
// (tests read it).
var nodeReuses atomic.Int64

// clearOnReuse makes reset clear every node handed out, so that a node
// still referenced after its chunk is seen empty at once (tests set it;
// take clears the nodes it hands out again in any case).
var clearOnReuse = false

// memos holds the memos of the parsers of small files (see fastDecode),
// in workspaces without nodes.
var memos = sync.Pool{New: func() any { return &workspace{} }}

// remember adds k to a memo of at most limit entries, emptying it first
// when it is full: the values that repeat (kinds, protocols, field names)
// come back at once, and a long run of unique ones (names, uids) does not
// shut them out.
func remember[V any](m *map[string]V, k string, v V, limit int) {
	if *m == nil {
		*m = map[string]V{}
	} else if len(*m) >= limit {
		clear(*m)
	}
	(*m)[k] = v
}

// labelledField is a field allocated with its identifier label.
type labelledField struct {
	f  ast.Field
	id ast.Ident
}

// nodeArena allocates syntax nodes in blocks. A nil arena allocates each
// node on its own (parsers that do not run a chunk).
type nodeArena struct {
	fields  nodeBlocks[labelledField]
	lits    nodeBlocks[ast.BasicLit]
	structs nodeBlocks[ast.StructLit]
	lists   nodeBlocks[ast.ListLit]
	decls   nodeBlocks[ast.Decl]
	exprs   nodeBlocks[ast.Expr]
}

// reset makes every block free for new nodes.
func (a *nodeArena) reset() {
	a.fields.reset()
	a.lits.reset()
	a.structs.reset()
	a.lists.reset()
	a.decls.reset()
	a.exprs.reset()
}

// identField returns a field labelled by the identifier name.
func (a *nodeArena) identField() *labelledField {
	if a == nil {
		return new(labelledField)
	}
	return &a.fields.take(1)[0]
}

// lit returns a zero literal.
func (a *nodeArena) lit() *ast.BasicLit {
	if a == nil {
		return new(ast.BasicLit)
	}
	return &a.lits.take(1)[0]
}

// structLit returns a zero struct.
func (a *nodeArena) structLit() *ast.StructLit {
	if a == nil {
		return new(ast.StructLit)
	}
	return &a.structs.take(1)[0]
}

// listLit returns a zero list.
func (a *nodeArena) listLit() *ast.ListLit {
	if a == nil {
		return new(ast.ListLit)
	}
	return &a.lists.take(1)[0]
}

// declSlice returns n zero declarations, with no room to append in place
// (nil for none).
func (a *nodeArena) declSlice(n int) []ast.Decl {
	switch {
	case n == 0:
		return nil
	case a == nil:
		return make([]ast.Decl, n)
	}
	return a.decls.take(n)
}

// exprSlice returns n zero expressions, with no room to append in place
// (nil for none).
func (a *nodeArena) exprSlice(n int) []ast.Expr {
	switch {
	case n == 0:
		return nil
	case a == nil:
		return make([]ast.Expr, n)
	}
	return a.exprs.take(n)
}

// nodeBlockLen is the length of a block, unless one value needs more.
const nodeBlockLen = 512

// nodeBlocks hands out values of type T from blocks; reset hands the same
// blocks out again. (The compactor's slabs are never handed out again.)
type nodeBlocks[T any] struct {
	blocks [][]T
	b, i   int // the block in use, and its first free value
}

// take returns n zero values, adjacent, with no room to append in place.
func (s *nodeBlocks[T]) take(n int) []T {
	for s.b < len(s.blocks) {
		if blk := s.blocks[s.b]; s.i+n <= len(blk) {
			vals := blk[s.i : s.i+n : s.i+n]
			s.i += n
			clear(vals)
			return vals
		}
		s.b, s.i = s.b+1, 0
	}
	blk := make([]T, max(nodeBlockLen, n))
	s.blocks = append(s.blocks, blk)
	s.b, s.i = len(s.blocks)-1, n
	return blk[:n:n]
}

// reset makes every block free again.
func (s *nodeBlocks[T]) reset() {
	if clearOnReuse {
		for _, blk := range s.blocks[:min(s.b+1, len(s.blocks))] {
			clear(blk)
		}
	}
	s.b, s.i = 0, 0
}
