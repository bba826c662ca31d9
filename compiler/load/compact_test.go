package load

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/internal/synth"
)

// TestCompactTypes checks that every type an api.Input holds is one that
// compactor.clone copies: booleans, numbers, strings, pointers, structs,
// slices and maps, with exported fields only.
func TestCompactTypes(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		switch ty.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64,
			reflect.String:
		case reflect.Pointer, reflect.Slice:
			walk(ty.Elem(), path+"[]")
		case reflect.Map:
			walk(ty.Key(), path+"{key}")
			walk(ty.Elem(), path+"{}")
		case reflect.Struct:
			for i := range ty.NumField() {
				f := ty.Field(i)
				if !f.IsExported() {
					t.Errorf("%s.%s: unexported field", path, f.Name)
				}
				walk(f.Type, path+"."+f.Name)
			}
		default:
			t.Errorf("%s: %v is not copied", path, ty.Kind())
		}
	}
	walk(reflect.TypeFor[api.Input](), "Input")
}

// TestCompact loads every golden input and a synthetic cluster and checks
// that a compact copy equals the loaded objects and shares no memory with
// them (no pointer, slice, map or string's bytes).
func TestCompact(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "golden", "testdata", "*", "input.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	dir := t.TempDir()
	synthetic := filepath.Join(dir, "synth.yaml")
	if err := writeSynth(synthetic, synth.Config{Services: 300, Endpoints: 3}); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(paths, synthetic) {
		in, _ := Load([]string{p}, nil, Options{})
		cp := &api.Input{
			Services:       append([]*api.Service(nil), in.Services...),
			EndpointSlices: append([]*api.EndpointSlice(nil), in.EndpointSlices...),
			Endpoints:      append([]*api.Endpoints(nil), in.Endpoints...),
			ServiceCIDRs:   append([]*api.ServiceCIDR(nil), in.ServiceCIDRs...),
			Nodes:          append([]*api.Node(nil), in.Nodes...),
			ProxyConfigs:   append([]*api.KubeProxyConfiguration(nil), in.ProxyConfigs...),
		}
		compactInput(cp)
		// Invalid is not compacted: an invalid input is not compiled.
		in.Invalid = nil
		if d := cmp.Diff(in, cp); d != "" {
			t.Errorf("%s: the copy differs (-loaded +copy):\n%s", p, d)
			continue
		}
		// Short slices share slabs: none may have room to grow into the
		// next one's elements.
		if s := roomySlice(reflect.ValueOf(cp).Elem(), "input"); s != "" {
			t.Errorf("%s: the copied slice %s has a capacity beyond its length", p, s)
		}
		orig := memoryOf(reflect.ValueOf(in).Elem(), map[uintptr]bool{})
		for addr := range memoryOf(reflect.ValueOf(cp).Elem(), map[uintptr]bool{}) {
			if orig[addr] {
				t.Errorf("%s: the copy shares memory at %#x with the loaded objects", p, addr)
				break
			}
		}
	}
}

// roomySlice returns the path of a slice below v whose capacity exceeds
// its length, below the top-level slices of an api.Input, or "".
func roomySlice(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return roomySlice(v.Elem(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if s := roomySlice(v.Field(i), path+"."+v.Type().Field(i).Name); s != "" {
				return s
			}
		}
	case reflect.Slice:
		if v.Cap() > v.Len() && path != "input.Services" && path != "input.EndpointSlices" &&
			path != "input.Nodes" && path != "input.ProxyConfigs" && path != "input.Endpoints" && path != "input.ServiceCIDRs" {
			return path
		}
		for i := range v.Len() {
			if s := roomySlice(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); s != "" {
				return s
			}
		}
	}
	return ""
}

// memoryOf adds to seen the addresses of the memory v refers to, below the
// top-level slices of an api.Input, and returns seen.
func memoryOf(v reflect.Value, seen map[uintptr]bool) map[uintptr]bool {
	switch v.Kind() {
	case reflect.String:
		if v.Len() > 0 {
			seen[uintptr(unsafe.Pointer(unsafe.StringData(v.String())))] = true
		}
	case reflect.Pointer:
		if !v.IsNil() {
			seen[v.Pointer()] = true
			memoryOf(v.Elem(), seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			memoryOf(v.Field(i), seen)
		}
	case reflect.Slice:
		if v.Len() > 0 && v.Type() != reflect.TypeFor[[]*api.Service]() && v.Type() != reflect.TypeFor[[]*api.EndpointSlice]() &&
			v.Type() != reflect.TypeFor[[]*api.Node]() && v.Type() != reflect.TypeFor[[]*api.KubeProxyConfiguration]() {
			seen[v.Pointer()] = true
		}
		for i := range v.Len() {
			memoryOf(v.Index(i), seen)
		}
	case reflect.Map:
		if v.Len() > 0 {
			seen[v.Pointer()] = true
		}
		for it := v.MapRange(); it.Next(); {
			memoryOf(it.Key(), seen)
			memoryOf(it.Value(), seen)
		}
	}
	return seen
}

// BenchmarkCompact times compactInput of a synthetic cluster of 10,000
// Services (mixed, 10 endpoints).
func BenchmarkCompact(b *testing.B) {
	path := filepath.Join(b.TempDir(), "synth.yaml")
	if err := writeSynth(path, synth.Config{Services: 10000, Endpoints: 10}); err != nil {
		b.Fatal(err)
	}
	in, diags := Load([]string{path}, nil, Options{})
	if err := diags.Err(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		compactInput(&api.Input{
			Services:       append([]*api.Service(nil), in.Services...),
			EndpointSlices: append([]*api.EndpointSlice(nil), in.EndpointSlices...),
		})
	}
}

// writeSynth writes the synthetic cluster c to path.
func writeSynth(path string, c synth.Config) error {
	var b bytes.Buffer
	if err := synth.Write(&b, c); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
