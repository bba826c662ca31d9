package load

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// nested returns a Service whose spec has an unknown field nested n
// mappings deep (the document itself being 3 levels: root, spec, x).
func nested(n int) string {
	return svc("ports: [{port: 80}]\nx: " + strings.Repeat("{a: ", n) + "1" + strings.Repeat("}", n) + "\n")
}

func TestHostileInput(t *testing.T) {
	billionLaughs := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 10; i++ {
		billionLaughs += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
			'a'+i, 'a'+i, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1, 'a'+i-1)
	}
	mergeBomb := "m0: &m0 {k0: 1, k1: 2}\n"
	for i := 1; i < 30; i++ {
		mergeBomb += fmt.Sprintf("m%d: &m%d {<<: [*m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"alias bomb", []byte(billionLaughs),
			[]string{"-:1: YAML syntax error: aliases expand to more than 50000 nodes"}},
		{"merge-key bomb", []byte(mergeBomb),
			[]string{"-:1:1: YAML aliases and merge keys expand to more than 1000000 values"}},
		// A later document's syntax error stops go.yaml.in/yaml/v3 before
		// it hands over the first, which CUE's decoder merges into itself
		// until the stack overflows.
		{"a mapping merged into itself before a syntax error", []byte("x: &x\n  <<: *x\n  a: y\n---\n@\nd-"),
			[]string{"-:1:1: YAML aliases and merge keys expand to more than 1000000 values"}},
		{"the same in a later document", []byte("a: 1\n---\nx: &x\n  <<: *x\n  a: y\n---\n@\n"),
			[]string{"-:2:1: YAML aliases and merge keys expand to more than 1000000 values"}},
		{"recursive alias", []byte("a: &a [*a]\n"),
			[]string{"-:1: YAML syntax error: anchor \"a\" value contains itself"}},
		{"nested 101 levels", []byte(nested(99)),
			[]string{"-:7:398: document is nested more than 100 levels deep"}},
		{"deep JSON", []byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000)),
			[]string{"-:1:1: document is a list, not a Kubernetes object (a mapping with apiVersion and kind)"}},
		{"deep JSON object", []byte(`{"apiVersion": "v1", "kind": "Service", "x": ` + strings.Repeat(`{"a": `, 200) + "1" + strings.Repeat("}", 200) + "}"),
			[]string{"-:1:640: document is nested more than 100 levels deep"}},
		{"binary junk", []byte("apiVersion: v1\nkind: \xff\xfe\x00\x01"),
			[]string{"-:2:7: invalid UTF-8 byte 0xff: not a YAML or JSON text file"}},
		{"NUL byte", []byte("apiVersion: v1\n\x00"),
			[]string{"-:2:1: control character 0x00: not a YAML or JSON text file"}},
		{"C1 control character in a YAML comment", []byte("apiVersion: v1 # d\u00e9j\u00e0 \u0080\nkind: Service\n"),
			[]string{"-:1:23: control character U+0080: YAML does not allow it (JSON does, in a string)"}},
		{"noncharacter U+FFFF in a YAML value", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a, annotations: {x: \"\uffff\"}}\n"),
			[]string{"-:3:39: control character U+FFFF: YAML does not allow it (JSON does, in a string)"}},
		{"NEL is a YAML character", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a, annotations: {x: \"\u0085\"}}\n"),
			[]string{"-:1:1: Service default/a: spec.ports: required value"}},
		{"block sequences nested past the YAML parser's limit on the first line", []byte(strings.Repeat("- ", 10001) + "1\n"),
			[]string{"-:1: YAML syntax error: exceeded max depth of 10000"}},
		{"block sequences nested past the YAML parser's limit on a later line", []byte("a:\n" + strings.Repeat("- ", 10001) + "1\n"),
			[]string{"-:2: YAML syntax error: exceeded max depth of 10000"}},
		{"unterminated tag on the first line", []byte("a: !<x 1\n"),
			[]string{"-:1: YAML syntax error: did not find the expected '>'"}},
		{"a NEL after which CUE's decoder cannot place a value", []byte("#\u0085#\u0085y3"),
			[]string{"-:1:2: cannot decode the input after this line break U+0085: write LF line breaks"}},
		{"unterminated flow mapping", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s\n"),
			[]string{"-:3:11: YAML syntax error: did not find expected ',' or '}' in the flow mapping that starts here: close it, or separate its entries with commas"}},
		{"tab indentation", []byte("apiVersion: v1\nkind: Service\nmetadata:\n\tname: s\n"),
			[]string{"-:4:1: YAML syntax error: found character that cannot start any token"}},
		{"tab indentation reported a line early", []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n \tnamespace: b\n"),
			[]string{"-:5:2: YAML syntax error: found a tab character that violates indentation"}},
		{"a tab inside a value is not blamed", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: \"a\tb\"\n"),
			[]string{"-:3:11: YAML syntax error: did not find expected ',' or '}' in the flow mapping that starts here: close it, or separate its entries with commas"}},
		{"unknown anchor", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: *nope\n    name: '*nope'\n"),
			[]string{"-:6:11: YAML syntax error: unknown anchor 'nope' referenced"}},
		{"unknown anchor, a longer name first", []byte("a: [*nopes, *nope]\n"),
			[]string{"-:1:5: YAML syntax error: unknown anchor 'nopes' referenced"}},
		{"an unknown anchor's name in a comment and a block scalar first", []byte("a: 1 # *nope\nb: |\n  rm *nope\nc: *nope\n"),
			[]string{"-:4:4: YAML syntax error: unknown anchor 'nope' referenced"}},
		{"a tab on the line after another error is not blamed", []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: @bad\n\t# c\n"),
			[]string{"-:4:9: YAML syntax error: found character that cannot start any token"}},
		{"a list of more than MaxElements items", []byte(svc("ports: [{port: 80}]\nexternalIPs: [" + strings.Repeat("192.0.2.1, ", MaxElements) + "192.0.2.1]\n")),
			[]string{"-:7:16: Service default/s: spec.externalIPs: list of 25001 elements: kpc validates at most 25000 in one list or mapping"}},
		{"a mapping of more than MaxElements fields", []byte(svc("ports: [{port: 80}]\nx:\n" + manyKeys(MaxElements+1))),
			[]string{"-:8:5: Service default/s: spec.x: mapping of 25001 elements: kpc validates at most 25000 in one list or mapping"}},
		{"large lists of more than MaxLargeElements items in all", []byte(svc("ports: [{port: 80}]\nexternalIPs: [" + strings.Repeat("192.0.2.1, ", 20000) + "192.0.2.1]\n" +
			"loadBalancerSourceRanges: [" + strings.Repeat("192.0.2.0/24, ", 20000) + "192.0.2.0/24]\n")),
			[]string{"-:8:29: Service default/s: spec.LoadBalancerSourceRanges: list of 20001 elements: the document's lists and mappings of more than 1000 elements hold more than 40000 elements in all, more than kpc validates"}},
		{"more than MaxObjectValues values in small lists", []byte(svc("ports: [{port: 80}]\nx:\n" + strings.Repeat("- ["+strings.Repeat("1, ", 999)+"1]\n", 101))),
			[]string{"-:107:2676: Service default/s: document has more than 100000 values: kpc validates at most that many in one object"}},
		{"YAML 1.2 directive", []byte("# c\n%YAML 1.2\n---\napiVersion: v1\n"),
			[]string{"-:2:1: YAML syntax error: found incompatible YAML document: the %YAML directive asks for another version than YAML 1.1, which the decoder reads; remove the directive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Load([]string{"-"}, bytes.NewReader(tc.in), Options{})
			if diff := cmp.Diff(tc.want, diagStrings(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// manyKeys returns n lines "  kI: v" of a block mapping.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	return b.String()
}

// TestDepthLimit checks that 100 levels are accepted (with the warning
// that the field holding them is unknown).
func TestDepthLimit(t *testing.T) {
	_, diags := Load([]string{"-"}, strings.NewReader(nested(98)), Options{})
	want := []string{`-:7:3: warning: Service default/s: spec.x: unknown field "spec.x"`}
	if diff := cmp.Diff(want, diagStrings(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// TestDeterministic loads the same mix of valid and invalid documents with
// one and with several workers and expects identical results.
func TestDeterministic(t *testing.T) {
	var b strings.Builder
	for i := range 300 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: s%d}\nspec: {ports: [{port: %d}]}\n---\n", i, 70000+i)
		case 1:
			fmt.Fprintf(&b, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e%d}\naddressType: IPv4\nendpoints: [{addresses: [192.0.2.%d]}]\n---\n", i, i%250)
		default:
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: s%d}\nspec: {type: Bad, ports: [{port: 80}]}\n---\n", i)
		}
	}
	run := func(procs int) ([]string, []string) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		in, diags := Load([]string{"-"}, strings.NewReader(b.String()), Options{})
		return summary(in), diagStrings(diags)
	}
	objs1, diags1 := run(1)
	objs4, diags4 := run(4)
	if len(diags1) != 200 || len(objs1) != 100 {
		t.Fatalf("got %d objects, %d diagnostics", len(objs1), len(diags1))
	}
	if diff := cmp.Diff(objs1, objs4); diff != "" {
		t.Errorf("objects differ (-1 worker +4 workers):\n%s", diff)
	}
	if diff := cmp.Diff(diags1, diags4); diff != "" {
		t.Errorf("diagnostics differ (-1 worker +4 workers):\n%s", diff)
	}
}

// TestDecodeMatchesCUE checks the field-by-field decoder against
// cue.Value.Decode on valid documents.
func TestDecodeMatchesCUE(t *testing.T) {
	var diags diag.List
	var docs []*document
	emit := func(d *document) { docs = append(docs, d) }
	for _, f := range []string{"testdata/seed.yaml", "testdata/kubectl-list.yaml"} {
		data, err := readFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decodeFile(f, data, false, Options{}, &diags, emit)
	}
	decodeFile("gen", genServices(20), false, Options{}, &diags, emit)
	decodeFile("-", []byte(
		"apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\nspec: {podCIDRs: [10.244.0.0/24]}\nstatus: {addresses: [{type: InternalIP, address: 192.0.2.1}]}\n---\n"+
			"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\niptables: {masqueradeBit: 14, localhostNodePorts: false}\nnodePortAddresses: [primary]\n"),
		false, Options{}, &diags, emit)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	e := &evaluator{ctx: cuecontext.New()}
	defs, err := e.schema(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		v := e.ctx.BuildExpr(d.expr).Unify(defs[d.info.def])
		if err := v.Validate(cue.Concrete(true)); err != nil {
			t.Fatalf("%s: %v", d.object, err)
		}
		var want, got any
		switch d.info.kind {
		case "Service":
			want, got = &api.Service{}, &api.Service{}
		case "EndpointSlice":
			want, got = &api.EndpointSlice{}, &api.EndpointSlice{}
		case "Node":
			want, got = &api.Node{}, &api.Node{}
		case "KubeProxyConfiguration":
			want, got = &api.KubeProxyConfiguration{}, &api.KubeProxyConfiguration{}
		}
		if err := v.Decode(want); err != nil {
			t.Fatalf("%s: %v", d.object, err)
		}
		if err := decodeInto(v, reflect.ValueOf(got)); err != nil {
			t.Fatalf("%s: %v", d.object, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: decodeInto differs from cue Decode (-want +got):\n%s", d.object, diff)
		}
	}
}

// TestListItemsBoundedEach checks that MaxNodes bounds each item of a List
// rather than the List: kubectl's dump of a large cluster is one List with
// more values than any one object may have.
func TestListItemsBoundedEach(t *testing.T) {
	// list returns a List of n Services, each with an unknown field holding
	// a list of per values.
	list := func(n, per int) string {
		values := strings.TrimSuffix(strings.Repeat("0,", per), ",")
		var b strings.Builder
		b.WriteString("apiVersion: v1\nitems:\n")
		for i := range n {
			fmt.Fprintf(&b, "- apiVersion: v1\n  kind: Service\n  metadata: {name: s%d}\n  spec:\n    ports: [{port: 80}]\n    x: [%s]\n", i, values)
		}
		b.WriteString("kind: List\nmetadata: {resourceVersion: \"\"}\n")
		return b.String()
	}
	t.Run("many items", func(t *testing.T) {
		// 101 items of 10,000 values: more than MaxNodes in all.
		in, diags := Load([]string{"-"}, strings.NewReader(list(101, 10_000)), Options{})
		if err := diags.Err(); err != nil || len(diags) != 101 {
			t.Fatalf("want only the 101 warnings of the unknown fields, got:\n%v", diagStrings(diags))
		}
		if len(in.Services) != 101 {
			t.Errorf("got %d Services, want 101", len(in.Services))
		}
	})
	t.Run("one large item", func(t *testing.T) {
		in, diags := Load([]string{"-"}, strings.NewReader(list(2, MaxNodes)), Options{})
		// Each item is rejected at the value that goes over: its 999,991st
		// zero (after 10 other values), in column 9 + 2 x 999,990.
		want := []string{
			"-:8:1999989: document has more than 1000000 values",
			"-:14:1999989: document has more than 1000000 values",
		}
		if diff := cmp.Diff(want, diagStrings(diags)); diff != "" {
			t.Errorf("diagnostics (-want +got):\n%s", diff)
		}
		if len(in.Services) != 0 {
			t.Errorf("got %d Services, want none", len(in.Services))
		}
	})
}
