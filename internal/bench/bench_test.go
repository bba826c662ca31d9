package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"kpc/compiler"
	"kpc/compiler/api"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/gcpolicy"
	"kpc/render"
)

// shapes returns the benchmarked clusters: plain and mixed at every size,
// without 50,000 Services under -short.
func shapes() []Shape {
	var out []Shape
	for _, plain := range []bool{true, false} {
		for _, n := range Sizes {
			if testing.Short() && n > 10000 {
				continue
			}
			out = append(out, Shape{Services: n, Endpoints: Endpoints, Plain: plain})
		}
	}
	return out
}

// fixtures caches loaded inputs and compiled Programs across benchmarks
// (loading 50,000 Services takes long).
var fixtures struct {
	sync.Mutex
	dir    string
	inputs map[Shape]*api.Input
	progs  map[Shape]*ir.Program
}

// TestMain applies the kpc command's garbage-collector policy and removes
// the fixture directory.
func TestMain(m *testing.M) {
	gcpolicy.Apply()
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

// fixtureDir returns the directory holding the manifest files.
func fixtureDir(b *testing.B) string {
	if fixtures.dir == "" {
		dir, err := os.MkdirTemp("", "kpc-bench-")
		if err != nil {
			b.Fatal(err)
		}
		fixtures.dir = dir
	}
	return fixtures.dir
}

// manifest returns the path of the manifest file of s, writing it once.
func manifest(b *testing.B, s Shape) string {
	fixtures.Lock()
	defer fixtures.Unlock()
	path, err := WriteYAML(fixtureDir(b), s)
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// input returns the loaded input of s.
func input(b *testing.B, s Shape) *api.Input {
	path := manifest(b, s)
	fixtures.Lock()
	defer fixtures.Unlock()
	if in := fixtures.inputs[s]; in != nil {
		return in
	}
	in, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	if fixtures.inputs == nil {
		fixtures.inputs = map[Shape]*api.Input{}
	}
	fixtures.inputs[s] = in
	return in
}

// program returns the compiled Program of s.
func program(b *testing.B, s Shape) *ir.Program {
	in := input(b, s)
	fixtures.Lock()
	defer fixtures.Unlock()
	if p := fixtures.progs[s]; p != nil {
		return p
	}
	p, err := Compile(in)
	if err != nil {
		b.Fatal(err)
	}
	if fixtures.progs == nil {
		fixtures.progs = map[Shape]*ir.Program{}
	}
	fixtures.progs[s] = p
	return p
}

// BenchmarkLoad times load.Load of a synthetic cluster's manifest file:
// reading, decoding, schema validation and defaulting.
func BenchmarkLoad(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			path := manifest(b, s)
			defer reportCPU(b)()
			for b.Loop() {
				in, diags := load.Load([]string{path}, nil, load.Options{})
				if err := diags.Err(); err != nil {
					b.Fatal(err)
				}
				if len(in.Services) != s.Services {
					b.Fatalf("loaded %d Services, want %d", len(in.Services), s.Services)
				}
			}
		})
	}
}

// BenchmarkCompile times compiler.Compile of a loaded input (including its
// validation of the IR).
func BenchmarkCompile(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			in := input(b, s)
			defer reportCPU(b)()
			for b.Loop() {
				if _, diags := compiler.Compile(in, compiler.Options{}); diags.Err() != nil {
					b.Fatal(diags.Err())
				}
			}
		})
	}
}

// BenchmarkValidate times ir.Program.Validate, which Compile and every
// renderer run.
func BenchmarkValidate(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			p := program(b, s)
			defer reportCPU(b)()
			for b.Loop() {
				if err := p.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderNFT times render.NFT (the default, lowered layout).
func BenchmarkRenderNFT(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			benchRender(b, render.NFT{}, program(b, s))
		})
	}
}

// BenchmarkRenderIPTables times render.IPTables (IPv4).
func BenchmarkRenderIPTables(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			benchRender(b, render.IPTables{Family: ir.IPv4}, program(b, s))
		})
	}
}

// BenchmarkCompileRenderNFT times what "kpc compile" does after loading:
// compile (without the Service catalog, which nft output does not read,
// and without the compiler's check of its output, which the renderer
// repeats), then render nft. kube-proxy's nftables proxier takes 411 ms
// for its full sync of 10,000 Services x 10 endpoints on the reference
// machine (docs: PERF.md).
func BenchmarkCompileRenderNFT(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			benchCompileRender(b, input(b, s))
		})
	}
}

// BenchmarkKubeProxyNFT times the reference generator (a fixture; for
// scale only).
func BenchmarkKubeProxyNFT(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.Name(), func(b *testing.B) {
			p := program(b, s)
			defer reportCPU(b)()
			for b.Loop() {
				if err := KubeProxyNFT(io.Discard, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchRender(b *testing.B, r render.Renderer, p *ir.Program) {
	defer reportCPU(b)()
	for b.Loop() {
		if err := r.Render(io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports allocations and, as "cpu-ns/op", the CPU time (user
// and system, all threads, so the garbage collector's too) the process
// spent per iteration: on a shared machine it varies less than the wall
// time of ns/op. Call it as "defer reportCPU(b)()" before the loop.
func reportCPU(b *testing.B) func() {
	b.ReportAllocs()
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompileRenderWideService times compile and nft render of one
// load-balancer Service of many ports, each port's firewall holding as
// many source ranges, with 10 endpoints: its ports share one list of
// sources, which the nft renderer spells once.
func BenchmarkCompileRenderWideService(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			benchCompileRender(b, wideService(n))
		})
	}
}

// benchCompileRender times compile and nft render of in as "kpc compile"
// does them after loading (see BenchmarkCompileRenderNFT).
func benchCompileRender(b *testing.B, in *api.Input) {
	defer reportCPU(b)()
	for b.Loop() {
		p, diags := compiler.Compile(in, compiler.Options{SkipServices: true, SkipSelfCheck: true})
		if diags.Err() != nil {
			b.Fatal(diags.Err())
		}
		if err := (render.NFT{}).Render(io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}

// wideService is the input of BenchmarkCompileRenderWideService.
func wideService(n int) *api.Input {
	svc := &api.Service{
		APIVersion: "v1", Kind: "Service",
		Metadata: api.ObjectMeta{Namespace: "default", Name: "wide"},
		Spec: api.ServiceSpec{
			Type: "LoadBalancer", ClusterIP: "10.96.8.8", ClusterIPs: []string{"10.96.8.8"},
			SessionAffinity: "None", InternalTrafficPolicy: "Cluster", ExternalTrafficPolicy: "Cluster",
			AllocateLoadBalancerNodePorts: ptr(false), Selector: map[string]string{"app": "wide"},
		},
		Status: api.ServiceStatus{LoadBalancer: api.LoadBalancerStatus{Ingress: []api.LoadBalancerIngress{{IP: "203.0.113.50"}}}},
	}
	slice := &api.EndpointSlice{
		APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice",
		Metadata:    api.ObjectMeta{Namespace: "default", Name: "wide-1", Labels: map[string]string{api.ServiceNameLabel: "wide"}},
		AddressType: "IPv4",
	}
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		port := int32(1000 + i)
		svc.Spec.Ports = append(svc.Spec.Ports, api.ServicePort{Name: name, Protocol: "TCP", Port: port, TargetPort: api.IntOrString{IntVal: port}})
		svc.Spec.LoadBalancerSourceRanges = append(svc.Spec.LoadBalancerSourceRanges, fmt.Sprintf("198.%d.%d.0/24", i/256, i%256))
		slice.Ports = append(slice.Ports, api.EndpointPort{Name: ptr(name), Protocol: ptr("TCP"), Port: ptr(port)})
	}
	for i := range 10 {
		slice.Endpoints = append(slice.Endpoints, api.Endpoint{Addresses: []string{fmt.Sprintf("10.200.0.%d", i+1)},
			Conditions: api.EndpointConditions{Ready: ptr(true)}})
	}
	return &api.Input{Services: []*api.Service{svc}, EndpointSlices: []*api.EndpointSlice{slice}}
}

func ptr[T any](v T) *T { return &v }
