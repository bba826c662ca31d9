package load

import (
	"fmt"
	"reflect"
	"strconv"

	"cuelang.org/go/cue"

	"kpc/compiler/api"
)

// tnode is a defaulted object as decodeInto reads it, kept so that
// documents of one shape decode without CUE: the template's values, with
// the parameters marked for replacement by each document's own.
type tnode struct {
	null    bool
	fields  map[string]*tnode // map entries
	members []member          // struct fields present, in the type's order
	typ     reflect.Type      // the struct type of members
	elems   []*tnode
	kind    byte // scalar: 's', 'i', 'b'
	s       string
	n       int64
	param   int // index of the parameter replacing the value, or -1
}

// member is a struct field present in a tree: its index in the struct
// type, its JSON name and its node.
type member struct {
	index int
	name  string
	node  *tnode
}

// kindTypes are the api types of the kinds.
var kindTypes = map[string]reflect.Type{
	"Service":                reflect.TypeFor[api.Service](),
	"EndpointSlice":          reflect.TypeFor[api.EndpointSlice](),
	"Endpoints":              reflect.TypeFor[api.Endpoints](),
	"ServiceCIDR":            reflect.TypeFor[api.ServiceCIDR](),
	"Node":                   reflect.TypeFor[api.Node](),
	"KubeProxyConfiguration": reflect.TypeFor[api.KubeProxyConfiguration](),
}

// buildTree records v as decodeInto would read it into kind's api type.
// paths are the parameters' paths, in shapeWalker form.
func buildTree(v cue.Value, kind string, paths []string) (*tnode, bool) {
	t, ok := kindTypes[kind]
	if !ok {
		return nil, false
	}
	b := treeBuilder{params: make(map[string]int, len(paths))}
	for i, p := range paths {
		b.params[p] = i
	}
	n, err := b.node(v, t)
	if err != nil {
		return nil, false
	}
	return n, true
}

type treeBuilder struct {
	params map[string]int
	path   []byte
}

func (b *treeBuilder) node(v cue.Value, t reflect.Type) (*tnode, error) {
	n := &tnode{param: -1}
	if v.Kind() == cue.NullKind {
		n.null = true
		return n, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.node(v, t.Elem())
	case reflect.Struct:
		if t == intOrStringType {
			if v.IncompleteKind() == cue.StringKind {
				return b.scalar(v, reflect.String)
			}
			return b.scalar(v, reflect.Int64)
		}
		n.typ = t
		for _, f := range structPlan(t) {
			sub := v.LookupPath(f.path)
			if !sub.Exists() {
				continue
			}
			c, err := b.child(sub, t.Field(f.index).Type, f.name)
			if err != nil {
				return nil, err
			}
			n.members = append(n.members, member{f.index, f.name, c})
		}
		return n, nil
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return b.scalar(v, t.Kind())
	case reflect.Slice:
		it, err := v.List()
		if err != nil {
			return nil, err
		}
		for i := 0; it.Next(); i++ {
			l := len(b.path)
			b.path = append(b.path, 1)
			b.path = strconv.AppendInt(b.path, int64(i), 10)
			c, err := b.node(it.Value(), t.Elem())
			b.path = b.path[:l]
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, c)
		}
		return n, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			break
		}
		it, err := v.Fields()
		if err != nil {
			return nil, err
		}
		n.fields = map[string]*tnode{}
		for it.Next() {
			name := it.Selector().Unquoted()
			c, err := b.child(it.Value(), t.Elem(), name)
			if err != nil {
				return nil, err
			}
			n.fields[name] = c
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot decode into %s", t)
}

func (b *treeBuilder) child(v cue.Value, t reflect.Type, name string) (*tnode, error) {
	l := len(b.path)
	b.path = append(b.path, 0)
	b.path = append(b.path, name...)
	c, err := b.node(v, t)
	b.path = b.path[:l]
	return c, err
}

// scalar records a scalar and whether a parameter replaces it.
func (b *treeBuilder) scalar(v cue.Value, k reflect.Kind) (*tnode, error) {
	n := &tnode{param: -1}
	switch k {
	case reflect.String:
		s, err := v.String()
		if err != nil {
			return nil, err
		}
		n.kind, n.s = 's', s
	case reflect.Bool:
		x, err := v.Bool()
		if err != nil {
			return nil, err
		}
		n.kind = 'b'
		if x {
			n.n = 1
		}
	default:
		x, err := v.Int64()
		if err != nil {
			return nil, err
		}
		n.kind, n.n = 'i', x
	}
	if i, ok := b.params[string(b.path)]; ok {
		n.param = i
	}
	return n, nil
}

// decodeTree decodes n, with parameters ps, into rv as decodeInto decodes
// the evaluated document.
func decodeTree(n *tnode, ps []param, rv reflect.Value) error {
	if n.null {
		return nil
	}
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		return decodeTree(n, ps, rv.Elem())
	case reflect.Struct:
		if rv.Type() == intOrStringType {
			k, s, x := n.value(ps)
			x2 := rv.Addr().Interface().(*api.IntOrString)
			switch k {
			case 's':
				*x2 = api.IntOrString{IsString: true, StrVal: s}
				return nil
			case 'i':
				if x < -1<<31 || x >= 1<<31 {
					return fmt.Errorf("integer %d overflows int32", x)
				}
				*x2 = api.IntOrString{IntVal: int32(x)}
				return nil
			}
			return fmt.Errorf("cannot decode into %s", rv.Type())
		}
		if n.typ != rv.Type() {
			return fmt.Errorf("a tree of %v decoded into %v", n.typ, rv.Type())
		}
		for _, m := range n.members {
			if err := decodeTree(m.node, ps, rv.Field(m.index)); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		return nil
	case reflect.String:
		k, s, _ := n.value(ps)
		if k != 's' {
			return fmt.Errorf("not a string")
		}
		rv.SetString(s)
		return nil
	case reflect.Bool:
		k, _, x := n.value(ps)
		if k != 'b' {
			return fmt.Errorf("not a bool")
		}
		rv.SetBool(x != 0)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		k, _, x := n.value(ps)
		if k != 'i' {
			return fmt.Errorf("not an integer")
		}
		if rv.OverflowInt(x) {
			return fmt.Errorf("integer %d overflows %s", x, rv.Type())
		}
		rv.SetInt(x)
		return nil
	case reflect.Slice:
		s := reflect.MakeSlice(rv.Type(), len(n.elems), len(n.elems))
		for i, c := range n.elems {
			if err := decodeTree(c, ps, s.Index(i)); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		rv.Set(s)
		return nil
	case reflect.Map:
		m := reflect.MakeMapWithSize(rv.Type(), len(n.fields))
		for name, c := range n.fields {
			ev := reflect.New(rv.Type().Elem()).Elem()
			if err := decodeTree(c, ps, ev); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			m.SetMapIndex(reflect.ValueOf(name), ev)
		}
		rv.Set(m)
		return nil
	}
	return fmt.Errorf("cannot decode into %s", rv.Type())
}

// value is a scalar node's value: its own, or its parameter's.
func (n *tnode) value(ps []param) (byte, string, int64) {
	if n.param >= 0 && n.param < len(ps) {
		p := ps[n.param]
		return p.kind, p.s, p.n
	}
	return n.kind, n.s, n.n
}
