//go:build linux

package netlink

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCompareModelsSides checks, without a kernel, which side each sign
// of Drift stands for: the lines are a diff from the kernel's table (got)
// to the one Apply would install (want), so "-" is what only the kernel
// holds and "+" what only Apply would install, the kernel's first.
func TestCompareModelsSides(t *testing.T) {
	absent := &model{}
	kernel := &model{present: true,
		chains: map[string]*chainModel{
			"both":   {head: "regular chain", rules: []string{"kernel rule"}},
			"kernel": {head: "regular chain", rules: []string{"r"}},
		},
		sets: map[string]*setModel{
			"eps":    {head: "type ipv4_addr (4 bytes)", elems: []string{"10.244.1.4", "10.244.9.9"}},
			"kernel": {head: "type ipv4_addr (4 bytes)", elems: []string{"1.1.1.1"}},
		},
	}
	manifests := &model{present: true,
		chains: map[string]*chainModel{
			"both":      {head: "regular chain", rules: []string{"kpc rule", "second"}},
			"manifests": {head: "regular chain"},
		},
		sets: map[string]*setModel{
			"eps":       {head: "type ipv4_addr (4 bytes) size 8", elems: []string{"10.244.2.5", "10.244.9.9"}},
			"manifests": {head: "type ipv4_addr (4 bytes)", elems: []string{"2.2.2.2", "3.3.3.3"}},
		},
	}
	tests := []struct {
		name      string
		want, got *model
		lines     []string
	}{
		{name: "empty kernel", want: manifests, got: absent, lines: []string{"+ table ip kpc (not in the kernel)"}},
		{name: "nothing to install", want: absent, got: kernel, lines: []string{"- table ip kpc (kpc would delete it)"}},
		{name: "both absent", want: absent, got: absent},
		{name: "equal", want: manifests, got: manifests},
		{name: "drift", want: manifests, got: kernel, lines: []string{
			"~ ip kpc chain both",
			"    rule 1 kernel: kernel rule",
			"    rule 1 kpc:    kpc rule",
			"    rule 2 kernel: (none)",
			"    rule 2 kpc:    second",
			"- ip kpc chain kernel (1 rules)",
			"+ ip kpc chain manifests (0 rules)",
			"~ ip kpc set eps",
			"    kernel: type ipv4_addr (4 bytes)",
			"    kpc:    type ipv4_addr (4 bytes) size 8",
			"    - element 10.244.1.4",
			"    + element 10.244.2.5",
			"- ip kpc set kernel (1 elements)",
			"+ ip kpc set manifests (2 elements)",
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.lines, compareModels("ip kpc", tt.want, tt.got)); diff != "" {
			t.Errorf("%s: compareModels (-want +got):\n%s", tt.name, diff)
		}
	}
}
