package golden

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/render"
)

// rulesetBodies are the fields of a Ruleset that SkipRulesetBodies
// leaves out.
var rulesetBodies = []string{"Services", "NodePorts", "Firewall", "NoEndpoints", "NoEndpointNodePorts", "ClusterIPs", "HealthCheckNodePorts", "Chains", "AffinitySets"}

// TestSkipRulesetBodies compiles every case in full and with
// SkipRulesetBodies: the diagnostics, notes, catalog, rulesets' settings
// and DNS zone must be the same, and the rulesets' bodies empty.
func TestSkipRulesetBodies(t *testing.T) {
	for _, c := range cases(t) {
		compile := func(opts compiler.Options) (*ir.Program, string) {
			input, diags := load.Load([]string{filepath.Join(c.dir, "input.yaml")}, nil, load.Options{})
			if diags.Err() != nil {
				return nil, diags.Error()
			}
			prog, cd := compiler.Compile(input, opts)
			diags = append(diags, load.Refine(cd)...)
			diags.Sort()
			return prog, diags.Error()
		}
		full, fullDiags := compile(compiler.Options{})
		settings, settingsDiags := compile(compiler.Options{SkipRulesetBodies: true})
		if fullDiags != settingsDiags {
			t.Errorf("%s: diagnostics differ:\nfull:\n%s\nsettings only:\n%s", c.name, fullDiags, settingsDiags)
		}
		if full == nil || settings == nil {
			if (full == nil) != (settings == nil) {
				t.Errorf("%s: a program in one compile only", c.name)
			}
			continue
		}
		opts := cmp.Options{cmpopts.IgnoreFields(ir.Ruleset{}, rulesetBodies...), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}
		if d := cmp.Diff(full, settings, opts); d != "" {
			t.Errorf("%s: programs differ (-full +settings only):\n%s", c.name, d)
		}
		for _, rs := range settings.Rulesets {
			v := reflect.ValueOf(rs).Elem()
			for _, name := range rulesetBodies {
				if n := v.FieldByName(name).Len(); n != 0 {
					t.Errorf("%s: %s ruleset has %d %s", c.name, rs.Family, n, name)
				}
			}
		}
		var want, got bytes.Buffer
		if err := (render.DNS{}).Render(&want, full); err != nil {
			t.Errorf("%s: DNS of the full program: %v", c.name, err)
		}
		if err := (render.DNS{}).Render(&got, settings); err != nil {
			t.Errorf("%s: DNS: %v", c.name, err)
		}
		if d := cmp.Diff(want.String(), got.String()); d != "" {
			t.Errorf("%s: zones differ (-full +settings only):\n%s", c.name, d)
		}
	}
}
