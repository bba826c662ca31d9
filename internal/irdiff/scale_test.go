package irdiff

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/internal/synth"
)

// synthPrograms compiles a mixed synthetic cluster of n Services and the
// same cluster with edits applied to its manifests (old, new pairs of
// text, each replaced once).
func synthPrograms(t testing.TB, n int, edits ...[2]string) (*ir.Program, *ir.Program) {
	t.Helper()
	var b bytes.Buffer
	if err := synth.Write(&b, synth.Config{Services: n, Endpoints: 4}); err != nil {
		t.Fatal(err)
	}
	changed := b.String()
	for _, e := range edits {
		if !strings.Contains(changed, e[0]) {
			t.Fatalf("edit %q: not in the manifests", e[0])
		}
		changed = strings.Replace(changed, e[0], e[1], 1)
	}
	compile := func(text string) *ir.Program {
		in, diags := load.LoadFiles([]load.File{{Name: "cluster.yaml", Data: []byte(text)}}, load.Options{})
		if diags.Err() != nil {
			t.Fatal(diags.Err())
		}
		p, cd := compiler.Compile(in, compiler.Options{})
		if cd.Err() != nil {
			t.Fatal(cd.Err())
		}
		return p
	}
	return compile(b.String()), compile(changed)
}

// TestDiffRulesetsPruned checks that the Ruleset changes of a large diff,
// found among the entries and chains that differ only, are those of the
// whole views.
func TestDiffRulesetsPruned(t *testing.T) {
	a, b := synthPrograms(t, 400,
		[2]string{"- addresses: [\"10.128.0.2\"]", "- addresses: [\"10.1.3.250\"]"}, // an endpoint moves
		[2]string{"port: 80\n", "port: 81\n"},                                       // a Service port changes
		[2]string{"sessionAffinity: ClientIP", "sessionAffinity: None"},             // affinity goes
	)
	got := diffRulesets(a, b)
	var want []RulesetChange
	for _, f := range []ir.Family{ir.IPv4, ir.IPv6} {
		o, n := rulesetOf(a, f), rulesetOf(b, f)
		if ch := viewChanges(rulesetView(o, nil), rulesetView(n, nil)); len(ch) > 0 {
			want = append(want, RulesetChange{Family: f.String(), Change: Changed, Changes: ch})
		}
	}
	if len(want) == 0 {
		t.Fatal("the edits changed no Ruleset")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffRulesets mismatch (-whole views +pruned):\n%s", diff)
	}
	if got := diffRulesets(a, a); len(got) != 0 {
		t.Errorf("a Program against itself: %v", got)
	}
}

// TestDiffServicesSkipsEqual checks the Service changes against
// serviceChanges of every Service.
func TestDiffServicesSkipsEqual(t *testing.T) {
	a, b := synthPrograms(t, 400,
		[2]string{"- addresses: [\"10.128.0.42\"]", "- addresses: [\"10.1.3.250\"]"}, // the eleventh Service's
		[2]string{"port: 80\n", "port: 81\n"},                                        // the first's
	)
	got := diffServices(a.Services, b.Services)
	byID := map[string]ir.ServiceInfo{}
	for _, s := range b.Services {
		byID[s.ID()] = s
	}
	want := []ServiceChange{}
	for _, o := range a.Services {
		n := byID[o.ID()]
		if ch := serviceChanges(viewOf(&o), viewOf(&n)); len(ch) > 0 {
			want = append(want, ServiceChange{Service: o.ID(), Change: Changed, Summary: describeService(&n), Changes: ch})
		}
	}
	if len(want) != 2 {
		t.Fatalf("%d Services changed, want 2", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffServices mismatch (-every Service +skipping equal ones):\n%s", diff)
	}
}

// TestSameFate checks that sameFate agrees with the equality of the Fates
// of fateOf.
func TestSameFate(t *testing.T) {
	fateEqual := func(a, b Fate) bool {
		return a.Verdict == b.Verdict && a.Masquerade == b.Masquerade && slices.Equal(a.Endpoints, b.Endpoints)
	}
	ep := func(s string, masq bool) ir.Reach {
		return ir.Reach{Endpoint: netip.MustParseAddrPort(s), Probability: 0.5, Masquerade: masq}
	}
	dnat := func(rs ...ir.Reach) ir.Result { return ir.Result{Verdict: ir.VerdictDNAT, Reaches: rs} }
	results := []ir.Result{
		{},
		{Masquerade: true},
		{Verdict: ir.VerdictDrop},
		{Verdict: ir.VerdictReject},
		{Verdict: ir.VerdictReject, Path: []string{"x"}},
		dnat(ep("10.0.0.1:80", false)),
		dnat(ep("10.0.0.1:80", true)),
		dnat(ep("10.0.0.1:80", false), ep("10.0.0.1:80", true)),
		dnat(ep("10.0.0.1:80", false), ep("10.0.0.2:80", false)),
		dnat(ep("10.0.0.1:80", true), ep("10.0.0.2:80", false)),
		dnat(ep("10.0.0.10:80", false), ep("10.0.0.9:80", false)), // the text order differs
		dnat(ep("10.0.0.2:80", false)),
		dnat(ep("[2001:db8::1]:80", false)),
	}
	for i, x := range results {
		for j, y := range results {
			if got, want := sameFate(x, y), fateEqual(fateOf(x), fateOf(y)); got != want {
				t.Errorf("sameFate(results[%d], results[%d]) = %v, want %v", i, j, got, want)
			}
		}
	}
}

// BenchmarkCompare times Compare of a mixed cluster of 10,000 Services
// against itself with one endpoint moved: a trace of every dispatch key
// for every client, and the views and lines of both sides.
func BenchmarkCompare(b *testing.B) {
	old, new := synthPrograms(b, 10000, [2]string{"- addresses: [\"10.128.0.2\"]", "- addresses: [\"10.1.3.250\"]"})
	b.ReportAllocs()
	for b.Loop() {
		r, err := Compare(old, new, Options{})
		if err != nil || r.Equal {
			b.Fatalf("Compare: %v, equal %v", err, r.Equal)
		}
	}
}
