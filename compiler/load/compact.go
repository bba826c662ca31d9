package load

import (
	"reflect"
	"unsafe"

	"kpc/compiler/api"
	"kpc/internal/par"
)

// Loading interleaves the objects it returns with many more that it only
// needs for a while (the YAML trees, CUE's values). When those die, the
// returned objects are left scattered over memory that the garbage
// collector can only reuse for objects of the same sizes: for 50,000
// Services, 270 MB of it beside 160 MB of objects, kept until the input
// is dropped. compactInput copies the objects into fresh memory, next to
// each other and their strings packed in large blocks, so that the memory
// of the originals is freed whole.

// compactor copies values deeply. It is not safe for concurrent use.
type compactor struct {
	block []byte // the strings' current block
	// slabs holds, per type, a slice whose elements are handed out, in
	// order, as the targets of copied pointers and as the elements of
	// short copied slices.
	slabs map[reflect.Type]*slab
}

// slab is a slice of elements and the number handed out.
type slab struct {
	elems reflect.Value
	used  int
}

// slabLen is the number of elements of a slab.
const slabLen = 256

// stringBlock is the size of the blocks strings are copied to; a longer
// string gets memory of its own.
const stringBlock = 64 << 10

// compactInput replaces every object of in with a compact deep copy, the
// objects on all CPUs.
func compactInput(in *api.Input) {
	compactAll(in.Services)
	compactAll(in.EndpointSlices)
	compactAll(in.Endpoints)
	compactAll(in.ServiceCIDRs)
	compactAll(in.Nodes)
	compactAll(in.ProxyConfigs)
}

// compactAll replaces each object of objs with a compact deep copy.
func compactAll[T any](objs []*T) {
	par.Runs(len(objs), 1024, func(lo, hi int) {
		var c compactor
		for i := lo; i < hi; i++ {
			if objs[i] == nil {
				continue
			}
			cp := new(T)
			c.clone(reflect.ValueOf(cp).Elem(), reflect.ValueOf(objs[i]).Elem())
			objs[i] = cp
		}
	})
}

// clone sets dst, a settable zero value, to a deep copy of src.
// Booleans, numbers, strings, pointers, structs, slices and maps are
// copied; the api types hold nothing else.
func (c *compactor) clone(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.String:
		dst.SetString(c.string(src.String()))
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := c.alloc(src.Type().Elem())
		c.clone(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Struct:
		for i := range src.NumField() {
			c.clone(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		n := src.Len()
		if n > 0 && n <= maxSlabSlice {
			c.allocSlice(dst, n)
		} else {
			dst.Grow(n) // the only allocation
			dst.SetLen(n)
		}
		for i := range n {
			c.clone(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if ms, ok := src.Interface().(map[string]string); ok {
			cp := make(map[string]string, len(ms))
			for k, v := range ms {
				cp[c.string(k)] = c.string(v)
			}
			dst.Set(reflect.ValueOf(cp))
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		kt, vt := src.Type().Key(), src.Type().Elem()
		for it := src.MapRange(); it.Next(); {
			k, v := reflect.New(kt).Elem(), reflect.New(vt).Elem()
			c.clone(k, it.Key())
			c.clone(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	default: // booleans and numbers
		dst.Set(src)
	}
}

// take returns the slab of type t from which n more elements are handed
// out, starting at the returned index: the type's current slab, or a new
// one when the current has not n left.
func (c *compactor) take(t reflect.Type, n int) (*slab, int) {
	if c.slabs == nil {
		c.slabs = map[reflect.Type]*slab{}
	}
	sl := c.slabs[t]
	if sl == nil || sl.used+n > slabLen {
		sl = &slab{elems: reflect.MakeSlice(reflect.SliceOf(t), slabLen, slabLen)}
		c.slabs[t] = sl
	}
	sl.used += n
	return sl, sl.used - n
}

// alloc returns a pointer to a new zero value of type t, taken from the
// type's slab.
func (c *compactor) alloc(t reflect.Type) reflect.Value {
	sl, i := c.take(t, 1)
	return sl.elems.Index(i).Addr()
}

// maxSlabSlice is the longest slice allocSlice takes from a slab.
const maxSlabSlice = slabLen / 8

// allocSlice sets dst, a settable nil slice, to n zero elements (at most
// maxSlabSlice) taken from the slab of its element type. The slice header
// is written in place: reflect would allocate one to hand it over.
func (c *compactor) allocSlice(dst reflect.Value, n int) {
	e := dst.Type().Elem()
	sl, i := c.take(e, n)
	h := (*sliceHeader)(dst.Addr().UnsafePointer())
	h.data = unsafe.Add(sl.elems.UnsafePointer(), uintptr(i)*e.Size())
	h.len, h.cap = n, n
}

// sliceHeader is the layout of a slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// string returns a copy of s in the current block.
func (c *compactor) string(s string) string {
	n := len(s)
	switch {
	case n == 0:
		return ""
	case n > stringBlock/8:
		return string([]byte(s))
	case n > cap(c.block)-len(c.block):
		c.block = make([]byte, 0, stringBlock)
	}
	start := len(c.block)
	c.block = append(c.block, s...)
	// The block's bytes are never written again.
	return unsafe.String(&c.block[start], n)
}
