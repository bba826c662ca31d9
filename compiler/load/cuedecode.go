package load

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"cuelang.org/go/cue"

	"kpc/compiler/api"
)

// decodeInto decodes a validated, concrete CUE value into the Go value rv
// points to, by the Go type's json tags. It does what cue.Value.Decode does
// for the api types, several times faster: it looks up each Go field by
// name instead of listing the CUE fields (which sorts them). Unknown CUE
// fields are ignored; absent and null fields leave the Go zero value.
func decodeInto(v cue.Value, rv reflect.Value) error {
	if v.Kind() == cue.NullKind {
		return nil
	}
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		return decodeInto(v, rv.Elem())
	case reflect.Struct:
		if rv.Type() == intOrStringType {
			return decodeIntOrString(v, rv.Addr().Interface().(*api.IntOrString))
		}
		for _, f := range structPlan(rv.Type()) {
			sub := v.LookupPath(f.path)
			if !sub.Exists() {
				continue
			}
			if err := decodeInto(sub, rv.Field(f.index)); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
		return nil
	case reflect.String:
		s, err := v.String()
		if err != nil {
			return err
		}
		rv.SetString(s)
		return nil
	case reflect.Bool:
		b, err := v.Bool()
		if err != nil {
			return err
		}
		rv.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := v.Int64()
		if err != nil {
			return err
		}
		if rv.OverflowInt(n) {
			return fmt.Errorf("integer %d overflows %s", n, rv.Type())
		}
		rv.SetInt(n)
		return nil
	case reflect.Slice:
		it, err := v.List()
		if err != nil {
			return err
		}
		s := reflect.MakeSlice(rv.Type(), 0, 4)
		for i := 0; it.Next(); i++ {
			s = reflect.Append(s, reflect.Zero(rv.Type().Elem()))
			if err := decodeInto(it.Value(), s.Index(i)); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		rv.Set(s)
		return nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		it, err := v.Fields()
		if err != nil {
			return err
		}
		m := reflect.MakeMap(rv.Type())
		for it.Next() {
			ev := reflect.New(rv.Type().Elem()).Elem()
			if err := decodeInto(it.Value(), ev); err != nil {
				return fmt.Errorf("%s: %w", it.Selector(), err)
			}
			m.SetMapIndex(reflect.ValueOf(it.Selector().Unquoted()), ev)
		}
		rv.Set(m)
		return nil
	}
	return fmt.Errorf("cannot decode into %s", rv.Type())
}

var intOrStringType = reflect.TypeFor[api.IntOrString]()

func decodeIntOrString(v cue.Value, x *api.IntOrString) error {
	if v.IncompleteKind() == cue.StringKind {
		s, err := v.String()
		if err != nil {
			return err
		}
		*x = api.IntOrString{IsString: true, StrVal: s}
		return nil
	}
	n, err := v.Int64()
	if err != nil {
		return err
	}
	if n < -1<<31 || n >= 1<<31 {
		return fmt.Errorf("integer %d overflows int32", n)
	}
	*x = api.IntOrString{IntVal: int32(n)}
	return nil
}

// fieldPlan is one Go struct field to decode.
type fieldPlan struct {
	index int
	name  string
	path  cue.Path
}

var plans sync.Map // reflect.Type -> []fieldPlan

// structPlan lists t's fields that have a JSON name.
func structPlan(t reflect.Type) []fieldPlan {
	if p, ok := plans.Load(t); ok {
		return p.([]fieldPlan)
	}
	var fs []fieldPlan
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		fs = append(fs, fieldPlan{index: i, name: name, path: cue.MakePath(cue.Str(name))})
	}
	plans.Store(t, fs)
	return fs
}
