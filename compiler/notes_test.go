package compiler

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// TestDuplicateObjects checks that a second document of the same object
// (kubectl applies it unchanged) is a warning and left out, and that a
// second, different document of the same name is an error.
func TestDuplicateObjects(t *testing.T) {
	svc := func(line int, ip string) *api.Service { return mkSvc("ns", "a", at(line), withClusterIP(ip)) }
	slice := func(line int, ip string) *api.EndpointSlice {
		return withPos(mkSlice("ns", "a", "a-1", "IPv4", 80, mkEp(ip)), line)
	}
	eps := func(line int, ip string) *api.Endpoints {
		e := mkEndpoints("ns", "b", []string{ip}, nil, "p80/80")
		e.Pos = diag.Pos{File: "svc.yaml", Line: line, Col: 1}
		return e
	}
	selectorless := mkSvc("ns", "b", at(90), withClusterIP("172.30.0.9"), func(s *api.Service) { s.Spec.Selector = nil })
	tests := []struct {
		name string
		in   api.Input
		want []string
	}{{
		name: "the same Service twice",
		in:   api.Input{Services: []*api.Service{svc(20, "172.30.0.5"), svc(1, "172.30.0.5")}},
		want: []string{"svc.yaml:20:1: warning: Service ns/a: metadata.name: the same Service as at svc.yaml:1:1: this copy is left out"},
	}, {
		name: "two Services of one name",
		in:   api.Input{Services: []*api.Service{svc(1, "172.30.0.5"), svc(20, "172.30.0.6")}},
		want: []string{"svc.yaml:20:1: Service ns/a: metadata.name: duplicate Service (first defined at svc.yaml:1:1)"},
	}, {
		name: "the same EndpointSlice twice",
		in:   api.Input{Services: []*api.Service{svc(1, "172.30.0.5")}, EndpointSlices: []*api.EndpointSlice{slice(30, "10.0.0.1"), slice(10, "10.0.0.1")}},
		want: []string{"svc.yaml:30:1: warning: EndpointSlice ns/a-1: metadata.name: the same EndpointSlice as at svc.yaml:10:1: this copy is left out"},
	}, {
		name: "two EndpointSlices of one name",
		in:   api.Input{Services: []*api.Service{svc(1, "172.30.0.5")}, EndpointSlices: []*api.EndpointSlice{slice(10, "10.0.0.1"), slice(30, "10.0.0.2")}},
		want: []string{"svc.yaml:30:1: EndpointSlice ns/a-1: metadata.name: duplicate EndpointSlice (first defined at svc.yaml:10:1)"},
	}, {
		name: "the same Endpoints twice",
		in:   api.Input{Services: []*api.Service{selectorless}, Endpoints: []*api.Endpoints{eps(40, "10.0.0.3"), eps(50, "10.0.0.3")}},
		want: []string{"svc.yaml:50:1: warning: Endpoints ns/b: metadata.name: the same Endpoints as at svc.yaml:40:1: this copy is left out"},
	}, {
		// A dump saved twice draws one warning, not one for each object.
		name: "a file of copies",
		in: api.Input{
			Services:       []*api.Service{svc(1, "172.30.0.5"), inFile(svc(1, "172.30.0.5"), "svc2.yaml")},
			EndpointSlices: []*api.EndpointSlice{slice(10, "10.0.0.1"), inFile(slice(10, "10.0.0.1"), "svc2.yaml")},
		},
		want: []string{"svc2.yaml:1:1: warning: Service ns/a: metadata.name: the same Service as at svc.yaml:1:1: this copy is left out; " +
			"so is 1 more copy in svc2.yaml of an object of svc.yaml"},
	}, {
		name: "two Endpoints of one name",
		in:   api.Input{Services: []*api.Service{selectorless}, Endpoints: []*api.Endpoints{eps(40, "10.0.0.3"), eps(50, "10.0.0.4")}},
		want: []string{"svc.yaml:50:1: Endpoints ns/b: metadata.name: duplicate Endpoints (first defined at svc.yaml:40:1)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, diags := Compile(&tt.in, kubeProxyTestOpts())
			var got []string
			for _, d := range diags {
				got = append(got, d.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("diagnostics (-want +got):\n%s", diff)
			}
			if diags.Err() != nil {
				return
			}
			// The copy changes nothing: the program is that of the input
			// without it.
			once := tt.in
			once.Services = once.Services[:1]
			if len(once.EndpointSlices) > 0 {
				once.EndpointSlices = once.EndpointSlices[:1]
			}
			if len(once.Endpoints) > 0 {
				once.Endpoints = once.Endpoints[:1]
			}
			want, _ := Compile(&once, kubeProxyTestOpts())
			if diff := cmp.Diff(dumpString(t, want, nil), dumpString(t, prog, nil)); diff != "" {
				t.Errorf("the program differs from the one without the copy (-without +with):\n%s", diff)
			}
		})
	}
}

// inFile moves a Service's or a slice's position to file f.
func inFile[T api.Service | api.EndpointSlice](o *T, f string) *T {
	switch x := any(o).(type) {
	case *api.Service:
		x.Pos.File = f
	case *api.EndpointSlice:
		x.Pos.File = f
	}
	return o
}

// TestNoEndpointSliceNote checks the note of an input whose Services with
// a selector have no EndpointSlice or Endpoints at all.
func TestNoEndpointSliceNote(t *testing.T) {
	const note = "the input holds no EndpointSlice"
	selector := func(s *api.Service) { s.Spec.Selector = map[string]string{"app": "a"} }
	tests := []noteCase{
		{"a Service with a selector, no slice", api.Input{Services: []*api.Service{mkSvc("ns", "a", withClusterIP("172.30.0.5"), selector)}}, true},
		{"with a slice", api.Input{Services: []*api.Service{mkSvc("ns", "a", withClusterIP("172.30.0.5"), selector)},
			EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "a", "a-1", "IPv4", 80, mkEp("10.0.0.1"))}}, false},
		{"a Service without a selector", api.Input{Services: []*api.Service{mkSvc("ns", "a", withClusterIP("172.30.0.5"), func(s *api.Service) { s.Spec.Selector = nil })}}, false},
	}
	checkNote(t, note, tests)
}

// noteCase is an input, and whether its Program has a note.
type noteCase struct {
	name string
	in   api.Input
	want bool
}

// checkNote compiles each case's input, which must be valid, and checks
// whether its Program has a note that starts with note.
func checkNote(t *testing.T, note string, tests []noteCase) {
	t.Helper()
	for _, tt := range tests {
		p, diags := Compile(&tt.in, kubeProxyTestOpts())
		if err := diags.Err(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := slices.ContainsFunc(p.Notes, func(n string) bool { return strings.HasPrefix(n, note) })
		if got != tt.want {
			t.Errorf("%s: note %v, want %v (notes %q)", tt.name, got, tt.want, p.Notes)
		}
	}
}

// TestIgnoredEndpoints checks what is said of the Endpoints of a Service
// with a selector, which serve nothing: a warning when the input holds
// EndpointSlices but none of that Service, a clause of the no-slice note
// when it holds none.
func TestIgnoredEndpoints(t *testing.T) {
	const warning = "ignored: Service ns/a has a selector, so its endpoints come from its EndpointSlices"
	const clause = "the Endpoints of a Service with a selector are the endpoints controller's"
	selector := func(s *api.Service) { s.Spec.Selector = map[string]string{"app": "a"} }
	a := mkSvc("ns", "a", withClusterIP("172.30.0.5"), selector)
	eps := mkEndpoints("ns", "a", []string{"192.0.2.51"}, nil, "p80/8080")
	other := mkSvc("ns", "b", withClusterIP("172.30.0.6"), selector)
	otherSlice := mkSlice("ns", "b", "b-1", "IPv4", 80, mkEp("10.0.0.2"))
	tests := []struct {
		name            string
		in              api.Input
		warned, clauses bool
	}{
		{"another Service's slice", api.Input{Services: []*api.Service{a, other}, Endpoints: []*api.Endpoints{eps},
			EndpointSlices: []*api.EndpointSlice{otherSlice}}, true, false},
		{"no slice at all", api.Input{Services: []*api.Service{a}, Endpoints: []*api.Endpoints{eps}}, false, true},
		{"the Service's own slice (a dump)", api.Input{Services: []*api.Service{a}, Endpoints: []*api.Endpoints{eps},
			EndpointSlices: []*api.EndpointSlice{mkSlice("ns", "a", "a-1", "IPv4", 80, mkEp("10.0.0.1"))}}, false, false},
		{"no selector: mirrored", api.Input{Services: []*api.Service{mkSvc("ns", "a", withClusterIP("172.30.0.5"))},
			Endpoints: []*api.Endpoints{eps}, EndpointSlices: []*api.EndpointSlice{otherSlice}}, false, false},
	}
	for _, tt := range tests {
		p, diags := Compile(&tt.in, kubeProxyTestOpts())
		if err := diags.Err(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		warned := slices.ContainsFunc(diags, func(d *diag.Error) bool { return strings.HasPrefix(d.Msg, warning) })
		clauses := slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, clause) })
		if warned != tt.warned || clauses != tt.clauses {
			t.Errorf("%s: warning %v, note's clause %v; want %v, %v (diagnostics %v, notes %q)", tt.name, warned, clauses, tt.warned, tt.clauses, diags, p.Notes)
		}
	}
}

// TestUnmirroredNote checks the note of a Service without a selector
// whose Endpoints the mirroring controller leaves alone (as the API server
// labels default/kubernetes's), when the input holds no slice of it.
func TestUnmirroredNote(t *testing.T) {
	const note = "Service default/kubernetes has no endpoint: its Endpoints are not mirrored"
	svc := mkSvc("default", "kubernetes", withClusterIP("10.96.0.1"))
	eps := mkEndpoints("default", "kubernetes", []string{"192.0.2.10"}, nil, "https/6443")
	eps.Metadata.Labels = map[string]string{api.SkipMirrorLabel: "true"}
	tests := []noteCase{
		{"no slice", api.Input{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{eps}}, true},
		{"the API server's slice", api.Input{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{eps},
			EndpointSlices: []*api.EndpointSlice{mkSlice("default", "kubernetes", "kubernetes", "IPv4", 6443, mkEp("192.0.2.10"))}}, false},
		{"mirrored", api.Input{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{mkEndpoints("default", "kubernetes", []string{"192.0.2.10"}, nil, "https/6443")}}, false},
	}
	checkNote(t, note, tests)
}

// TestLoadBalancerIPNote checks the note of a LoadBalancer Service whose
// spec.loadBalancerIP is not among its status's ingress addresses.
func TestLoadBalancerIPNote(t *testing.T) {
	const note = "asks its cloud provider for load balancer IP 192.0.2.80"
	lb := func(status ...string) *api.Service {
		return mkSvc("ns", "a", withClusterIP("172.30.0.5"), withType("LoadBalancer"), withLB(status...),
			func(s *api.Service) { s.Spec.LoadBalancerIP = "192.0.2.80" })
	}
	for _, tt := range []struct {
		name string
		svc  *api.Service
		// want is the note's end, "" for no note.
		want string
	}{
		{"no ingress", lb(), "which the input does not give (its cloud provider sets it): that IP gets no rules"},
		{"another ingress address", lb("192.0.2.81"), "which holds other addresses in the input: that IP gets no rules"},
		{"the address in the ingress", lb("192.0.2.80"), ""},
	} {
		p, diags := Compile(&api.Input{Services: []*api.Service{tt.svc}}, kubeProxyTestOpts())
		if err := diags.Err(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		i := slices.IndexFunc(p.Notes, func(n string) bool { return strings.Contains(n, note) })
		switch {
		case tt.want == "" && i >= 0:
			t.Errorf("%s: note %q, want none", tt.name, p.Notes[i])
		case tt.want != "" && (i < 0 || !strings.HasSuffix(p.Notes[i], tt.want)):
			t.Errorf("%s: notes %q, want one ending %q", tt.name, p.Notes, tt.want)
		}
	}
}
