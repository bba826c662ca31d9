//go:build linux

package netlink

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"kpc/internal/hashmix"
)

// This file describes a batch's tables as comparable state: what an
// incremental apply diffs (see Sync). A chain is its name, its head (type,
// hook, priority, policy) and one sum over its rules; a set is its name,
// one sum over its declaration, and its elements, each a key and a sum over
// the whole element. The elements of a set are spread over buckets by a
// hash of their key, and each bucket keeps the sum of its elements' sums,
// so that two states of a large set are compared bucket by bucket and only
// the elements of the buckets that differ are compared one by one.

// tableState is the comparable state of one table.
type tableState struct {
	family  nftables.TableFamily
	name    string
	defined bool
	// fingerprint is the comment of the fingerprint element ("" when the
	// table has none).
	fingerprint string
	chains      []chainState // in creation order
	sets        []*setState  // in creation order
}

// chainState is the comparable state of one chain.
type chainState struct {
	name  string
	head  string
	rules uint64 // sum over the rules, in order
	// refs names the named sets its rules look up or update.
	refs []string
}

// setState is the comparable state of one named set: either a batch's set
// (spec, with a hash of each element's key and a sum over each element) or
// a set read from a cache (buckets, with the elements of each bucket
// decoded on demand).
type setState struct {
	name string
	head uint64 // sum over the declaration
	// unmanaged: the kernel fills the set (dynamic sets), so its elements
	// are neither compared nor sent.
	unmanaged bool

	spec   *setSpec
	hashes []uint64 // keyHash of each element of spec
	sums   []uint64 // elemSum of each element of spec

	// buckets[i] is the sum of the sums of the elements whose key hash
	// modulo len(buckets) is i; len(buckets) is a power of two.
	buckets []uint64
	cached  cachedElems
}

// elemState is one element: its key and the sum over the whole element.
type elemState struct {
	key []byte
	sum uint64
}

// cachedElems gives the elements of one bucket of a cached set.
type cachedElems interface {
	bucket(i int) ([]elemState, error)
}

// hasher computes FNV-1a over fields, each preceded by its length so that
// concatenations cannot collide.
type hasher uint64

func newHasher() hasher { return hashmix.FNVOffset }

func (h *hasher) bytes(b []byte) { *h = hashField(*h, b) }

func (h *hasher) str(s string) { *h = hashField(*h, s) }

// hashField adds a field to h: its length, then its bytes.
func hashField[T string | []byte](h hasher, b T) hasher {
	x := uint64(h)
	n := uint64(len(b))
	for i := 0; i < 8; i++ {
		x ^= n & 0xff
		x *= hashmix.FNVPrime
		n >>= 8
	}
	for i := 0; i < len(b); i++ {
		x ^= uint64(b[i])
		x *= hashmix.FNVPrime
	}
	return hasher(x)
}

func (h *hasher) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.bytes(b[:])
}

// sum finalizes the hash, mixing its bits (so that sums of sums stay well
// spread).
func (h hasher) sum() uint64 { return hashmix.Mix64(uint64(h)) }

// keyHash is the hash of a key that picks its bucket.
func keyHash(key []byte) uint64 {
	h := newHasher()
	h.bytes(key)
	return h.sum()
}

// elemSum is the sum over every field of an element.
func elemSum(e *nftables.SetElement) uint64 {
	h := newHasher()
	h.bytes(e.Key)
	h.bytes(e.KeyEnd)
	h.bytes(e.Val)
	if e.VerdictData != nil {
		h.u64(1)
		h.u64(uint64(e.VerdictData.Kind))
		h.str(e.VerdictData.Chain)
	} else {
		h.u64(0)
	}
	h.str(e.Comment)
	h.u64(uint64(e.Timeout))
	if e.IntervalEnd {
		h.u64(1)
	} else {
		h.u64(0)
	}
	return h.sum()
}

// bucketCount is the number of buckets for n elements: about 16 elements
// a bucket, at least 1 and at most 1<<16.
func bucketCount(n int) int {
	b := 1
	for b < 1<<16 && b*16 < n {
		b <<= 1
	}
	return b
}

// setHead is the sum over everything a set's declaration says.
func setHeadSum(s *nftables.Set) uint64 {
	h := newHasher()
	h.str(fmt.Sprintf("%q %v %v %v %v %v %v %v %v %v %v %d %d %d %d %v %d %q %v",
		s.Name, s.Anonymous, s.Constant, s.Interval, s.AutoMerge, s.IsMap, s.HasTimeout, s.Counter, s.Dynamic,
		s.Concatenation, s.KeyByteOrder, s.KeyType.GetNFTMagic(), s.KeyType.Bytes, s.DataType.GetNFTMagic(),
		s.DataType.Bytes, s.Timeout, s.Size, s.Comment, s.DataType.Name == nftables.TypeVerdict.Name))
	return h.sum()
}

// newSetState describes a set of a batch.
func newSetState(s *setSpec) *setState {
	st := &setState{name: s.set.Name, head: setHeadSum(s.set), unmanaged: s.set.Dynamic, spec: s}
	if st.unmanaged {
		return st
	}
	st.hashes = make([]uint64, len(s.elems))
	st.sums = make([]uint64, len(s.elems))
	for i := range s.elems {
		st.hashes[i] = keyHash(s.elems[i].Key)
		st.sums[i] = elemSum(&s.elems[i])
	}
	return st
}

// count is the number of elements (for reports).
func (s *setState) count() int {
	if cb, ok := s.cached.(*cachedBuckets); ok {
		return cb.count()
	}
	return len(s.sums)
}

// bucketSums spreads a batch's set over n buckets (a power of two) and
// returns each bucket's sum.
func (s *setState) bucketSums(n int) []uint64 {
	out := make([]uint64, n)
	mask := uint64(n - 1)
	for i, h := range s.hashes {
		out[h&mask] += s.sums[i]
	}
	return out
}

// exprSum adds one expression to h. Set IDs are left out (they are given
// out per batch; sets are identified by name), and an anonymous set is
// identified by its elements.
func exprSum(h *hasher, fam byte, e expr.Any, anon map[uint32]*setSpec) error {
	switch x := e.(type) {
	case *expr.Lookup:
		c := *x
		if a := anon[c.SetID]; a != nil {
			h.u64(setHeadSum(a.set))
			for i := range a.elems {
				h.u64(elemSum(&a.elems[i]))
			}
			c.SetName = ""
		}
		c.SetID = 0
		e = &c
	case *expr.Dynset:
		c := *x
		c.SetID = 0
		e = &c
	}
	b, err := marshalExpr(fam, e)
	if err != nil {
		return fmt.Errorf("netlink: encoding %T: %w", e, err)
	}
	h.str(reflect.TypeOf(e).String()) // as %T spells it, without fmt's cost
	h.bytes(b)
	return nil
}

// setRefs returns the names of the named sets a rule refers to.
func setRefs(r *ruleSpec) []string {
	var out []string
	for _, e := range r.rule.Exprs {
		switch x := e.(type) {
		case *expr.Lookup:
			if !isAnon(r, x.SetID) {
				out = append(out, x.SetName)
			}
		case *expr.Dynset:
			out = append(out, x.SetName)
		}
	}
	return out
}

func isAnon(r *ruleSpec, id uint32) bool {
	for _, a := range r.anon {
		if a.set.ID == id {
			return true
		}
	}
	return false
}

// chainHeadString is the comparable head of a chain of a batch (live.go's
// chainHead, with the spelling of regular chains the cache format uses).
func chainHeadString(c *nftables.Chain) string {
	if c.Hooknum == nil {
		return "regular"
	}
	return chainHead(c)
}

// state describes a table of the batch.
func (t *tableSpec) state(fingerprint string) (*tableState, error) {
	st := &tableState{family: t.table.Family, name: t.table.Name, defined: t.define, fingerprint: fingerprint}
	if !t.define {
		return st, nil
	}
	chains, err := t.chainStates()
	if err != nil {
		return nil, err
	}
	st.chains = chains
	for _, s := range t.sets {
		st.sets = append(st.sets, newSetState(s))
	}
	return st, nil
}

// chainStates returns the state of each chain of a defined table, in
// order.
func (t *tableSpec) chainStates() ([]chainState, error) {
	fam := byte(t.table.Family)
	type acc struct {
		h    hasher
		refs map[string]bool
	}
	accs := make(map[string]*acc, len(t.chains))
	for _, c := range t.chains {
		accs[c.Name] = &acc{h: newHasher()}
	}
	for _, r := range t.rules {
		a := accs[r.rule.Chain.Name]
		if a == nil {
			return nil, fmt.Errorf("netlink: rule in unknown chain %q", r.rule.Chain.Name)
		}
		anon := make(map[uint32]*setSpec, len(r.anon))
		for _, s := range r.anon {
			anon[s.set.ID] = s
		}
		a.h.u64(uint64(len(r.rule.Exprs)))
		for _, e := range r.rule.Exprs {
			if err := exprSum(&a.h, fam, e, anon); err != nil {
				return nil, err
			}
		}
		a.h.bytes(r.rule.UserData)
		for _, name := range setRefs(r) {
			if a.refs == nil {
				a.refs = map[string]bool{}
			}
			a.refs[name] = true
		}
	}
	out := make([]chainState, 0, len(t.chains))
	for _, c := range t.chains {
		a := accs[c.Name]
		cs := chainState{name: c.Name, head: chainHeadString(c), rules: a.h.sum()}
		for name := range a.refs {
			cs.refs = append(cs.refs, name)
		}
		sort.Strings(cs.refs)
		out = append(out, cs)
	}
	return out, nil
}
