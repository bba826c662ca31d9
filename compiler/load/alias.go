package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"kpc/compiler/diag"
)

// checkAliases bounds the work of expanding YAML aliases and merge keys.
//
// The CUE YAML decoder caps the nodes produced by aliases at 50,000, but
// it merges "<<" keys by re-extracting the merged mappings, recursively,
// without counting them: 30 levels of `<<: [*prev, *prev, ...]` take
// exponential time. So when a file has both merge keys and aliases, it is
// parsed once more with go.yaml.in/yaml/v3 and the expanded size of every
// document is computed (memoised per node, so in linear time). A document
// that expands to more than MaxNodes values rejects the file. Syntax errors
// are left to the real decoder.
func checkAliases(name string, data []byte) (diag.Pos, string, bool) {
	if !bytes.Contains(data, []byte("<<")) || !bytes.ContainsRune(data, '*') {
		return diag.Pos{}, "", true
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) || err != nil {
			return diag.Pos{}, "", true
		}
		c := &expansion{memo: map[*yaml.Node]int{}, busy: map[*yaml.Node]bool{}}
		if c.size(&n) > MaxNodes {
			return diag.Pos{File: name, Line: n.Line, Col: n.Column},
				fmt.Sprintf("YAML aliases and merge keys expand to more than %d values", MaxNodes), false
		}
	}
}

// expansion computes expanded node counts, saturating above MaxNodes.
type expansion struct {
	memo map[*yaml.Node]int
	busy map[*yaml.Node]bool
}

func (c *expansion) size(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if v, ok := c.memo[n]; ok {
		return v
	}
	if c.busy[n] {
		// A recursive alias: the decoder rejects it; count it as too big.
		return MaxNodes + 1
	}
	c.busy[n] = true
	total := 1
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, ch := range n.Content {
			total = sat(total + c.size(ch))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
				total = sat(total + c.merged(v))
			} else {
				total = sat(total + c.size(k) + c.size(v))
			}
		}
	case yaml.AliasNode:
		total = sat(total + c.size(n.Alias))
	}
	delete(c.busy, n)
	c.memo[n] = total
	return total
}

// merged is the work of merging v ("<<: v") into a mapping.
func (c *expansion) merged(v *yaml.Node) int {
	switch v.Kind {
	case yaml.AliasNode:
		return c.size(v.Alias)
	case yaml.SequenceNode:
		total := 0
		for _, ch := range v.Content {
			total = sat(total + c.merged(ch))
		}
		return total
	}
	return c.size(v)
}

// sat saturates counts just above MaxNodes.
func sat(n int) int { return min(n, MaxNodes+1) }
