package load

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// The corpus (testdata/corpus/cross) covers each cross-document rule; these
// tests cover what a corpus file cannot: nil input, input order and
// duplicate Services.

func TestCrossCheckNil(t *testing.T) {
	if d := CrossCheck(nil); len(d) != 0 {
		t.Errorf("CrossCheck(nil) = %v", d)
	}
	if d := CrossCheck(&api.Input{}); len(d) != 0 {
		t.Errorf("CrossCheck(empty) = %v", d)
	}
}

// TestCrossCheckOrder checks that the objects' order in the Input does not
// change the result (the first endpoint is the first by position).
func TestCrossCheckOrder(t *testing.T) {
	in, diags := Load([]string{"testdata/corpus/cross/x6-address-in-two-slices-with-different-conditions.yaml"}, nil, Options{})
	if diags.Err() != nil {
		t.Fatal(diags)
	}
	want := CrossCheck(in)
	if len(want) != 1 || !strings.Contains(want[0].Msg, "default/web-1") {
		t.Fatalf("CrossCheck = %v", want)
	}
	rev := &api.Input{Services: slices.Clone(in.Services), EndpointSlices: slices.Clone(in.EndpointSlices)}
	slices.Reverse(rev.EndpointSlices)
	if diff := cmp.Diff(want, CrossCheck(rev)); diff != "" {
		t.Errorf("reversed input (-want +got):\n%s", diff)
	}
}

// TestCrossCheckDuplicateService checks that of two Services with one
// name the first (by position) is the one slices are checked against.
func TestCrossCheckDuplicateService(t *testing.T) {
	doc := `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: https, port: 8443}]
endpoints: [{addresses: [192.0.2.10]}]
`
	got := crossCheckText(t, doc)
	want := []string{`-:13:1: warning: EndpointSlice default/web-1: ports[0]: port "https"/TCP matches no port of Service default/web (ports are joined by name and protocol): its endpoints get no traffic`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CrossCheck (-want +got):\n%s", diff)
	}
}

// crossCheckText loads doc, which must be valid, and returns CrossCheck's
// findings as text.
func crossCheckText(t *testing.T, doc string) []string {
	t.Helper()
	in, diags := Load([]string{"-"}, strings.NewReader(doc), Options{})
	if diags.Err() != nil {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range CrossCheck(in) {
		got = append(got, d.Error())
	}
	return got
}

// TestCrossCheckCopies checks that a copy of a slice or an Endpoints (a
// dump saved twice), which the compiler leaves out with a warning of its
// own, does not repeat the first's findings; a different object of the
// same name is checked.
func TestCrossCheckCopies(t *testing.T) {
	slice := `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: orphan-1
  labels: {kubernetes.io/service-name: orphan}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [192.0.2.10]}]
`
	endpoints := `apiVersion: v1
kind: Endpoints
metadata: {name: lone}
subsets: [{addresses: [{ip: 192.0.2.11}], ports: [{port: 80}]}]
`
	other := strings.Replace(slice, "192.0.2.10", "192.0.2.12", 1)
	doc := slice + "---\n" + endpoints + "---\n" + slice + "---\n" + endpoints + "---\n" + other
	got := crossCheckText(t, doc)
	want := []string{
		`-:1:1: warning: EndpointSlice default/orphan-1: metadata.labels[kubernetes.io/service-name]: Service default/orphan is not in the input: kube-proxy ignores this slice`,
		`-:10:1: warning: Endpoints default/lone: metadata.name: Service default/lone is not in the input: the EndpointSlice mirroring controller mirrors only the Endpoints of a Service without a selector, and kube-proxy reads only EndpointSlices`,
		`-:29:1: warning: EndpointSlice default/orphan-1: metadata.labels[kubernetes.io/service-name]: Service default/orphan is not in the input: kube-proxy ignores this slice`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CrossCheck (-want +got):\n%s", diff)
	}
}

// TestCrossCheckInvalid checks the slices and Endpoints of an input with
// invalid documents: those of a valid Service are checked, those of a
// Service that an invalid document is, or may be, are not.
func TestCrossCheckInvalid(t *testing.T) {
	doc := `apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 0}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [192.0.2.10]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 192.0.2.11}], ports: [{name: http, port: 8080}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [192.0.2.12]}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{name: sql, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{name: sql, port: 5432, protocol: NOPE}]}
---
apiVersion: v1
kind: Service
metadata: {name: cache}
spec: {ports: [{name: redis, port: 6379}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: other, port: 5432}]
endpoints: [{addresses: [192.0.2.13]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cache-1
  labels: {kubernetes.io/service-name: cache}
addressType: IPv4
ports: [{name: other, port: 6379}]
endpoints: [{addresses: [192.0.2.14]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cache-2
  labels: {kubernetes.io/service-name: cache}
addressType: IPv4
ports: [{name: other, port: 6379}]
endpoints: [{addresses: [192.0.2.15]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cache-2
  labels: {kubernetes.io/service-name: cache}
addressType: IPv5
endpoints: [{addresses: [192.0.2.15]}]
`
	in, diags := Load([]string{"-"}, strings.NewReader(doc), Options{})
	var errs []string
	for _, d := range diags.Errors() {
		errs = append(errs, d.Error())
	}
	wantErrs := []string{
		"-:4:23: Service default/web: spec.ports[0].port: invalid value 0: must be between 1 and 65535, inclusive",
		`-:37:50: Service default/db: spec.ports[0].protocol: unsupported value "NOPE": must be one of "TCP", "UDP", "SCTP"`,
		`-:76:14: EndpointSlice default/cache-2: addressType: unsupported value "IPv5": must be one of "IPv4", "IPv6", "FQDN"`,
	}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Fatalf("Load errors (-want +got):\n%s", diff)
	}
	check := func(name string, in *api.Input, want []string) {
		t.Helper()
		var got []string
		for _, d := range CrossCheck(in) {
			got = append(got, d.Error())
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: CrossCheck (-want +got):\n%s", name, diff)
		}
	}
	// web is invalid, and so is one of the two documents of db: their
	// slices and Endpoints are not checked; cache's and api's are, but
	// for cache-2, which an invalid document is too.
	check("invalid documents", in, []string{
		`-:20:1: warning: EndpointSlice default/api-1: metadata.labels[kubernetes.io/service-name]: Service default/api is not in the input: kube-proxy ignores this slice`,
		`-:53:1: warning: EndpointSlice default/cache-1: ports[0]: port "other"/TCP matches no port of Service default/cache (ports are joined by name and protocol): its endpoints get no traffic`,
	})
	// A document that could not be read may be any Service.
	in.Invalid = append(in.Invalid, api.Invalid{Pos: diag.Pos{File: "other.yaml", Line: 3}})
	check("an unread document", in, []string{
		`-:53:1: warning: EndpointSlice default/cache-1: ports[0]: port "other"/TCP matches no port of Service default/cache (ports are joined by name and protocol): its endpoints get no traffic`,
	})
}
