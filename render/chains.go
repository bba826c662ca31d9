package render

import (
	"fmt"
	"sync"

	"kpc/compiler/ir"
)

// The renderers index each Ruleset's chains once, for their own lookups
// and for ir.Program.ValidateWith, which they run alongside their work.

// chainIndex maps the name of each of rs's chains to its position, or
// fails on a nil chain or a name used twice.
func chainIndex(rs *ir.Ruleset) (map[string]int, error) {
	chains := make(map[string]int, len(rs.Chains))
	for i, c := range rs.Chains {
		if c == nil {
			return nil, fmt.Errorf("chain %d is nil", i)
		}
		n := len(chains)
		if chains[c.Name] = i; len(chains) == n {
			return nil, fmt.Errorf("duplicate chain %q", c.Name)
		}
	}
	return chains, nil
}

// chainIndexes returns the chain index of each of p's Rulesets (see
// chainIndex), made at the same time; an index is nil for a nil Ruleset
// and one with a nil chain or a name used twice, which Validate and the
// renderer then report.
func chainIndexes(p *ir.Program) []map[string]int {
	chains := make([]map[string]int, len(p.Rulesets))
	var wg sync.WaitGroup
	for i, rs := range p.Rulesets {
		if rs != nil {
			wg.Go(func() { chains[i], _ = chainIndex(rs) })
		}
	}
	wg.Wait()
	return chains
}
