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
// are left to the real decoder; but one in a later document stops this
// decoder before it hands over the documents in front of it, which CUE's
// decoder expands before it meets the error (a merge of a mapping into
// itself recursing until the stack overflows), so then each document,
// split at its "---" line, is checked on its own.
func checkAliases(name string, data []byte) (diag.Pos, string, bool) {
	if !bytes.Contains(data, []byte("<<")) || !bytes.ContainsRune(data, '*') {
		return diag.Pos{}, "", true
	}
	pos, msg, ok, complete := checkAliasesOf(name, data, 0)
	if !ok || complete {
		return pos, msg, ok
	}
	// The documents' first lines: after each "---" or "..." line but the
	// first line's.
	start, startLine := 0, 0
	for off, l := 0, 0; ; l++ {
		b := lineOf(data[off:])
		if off == len(data) || l > 0 && (isMarkerLine(b) || isEndMarker(b)) {
			if pos, msg, ok, _ := checkAliasesOf(name, data[start:off], startLine); !ok {
				return pos, msg, false
			}
			start, startLine = off, l
		}
		if off == len(data) {
			return diag.Pos{}, "", true
		}
		off = min(off+len(b)+1, len(data))
	}
}

// checkAliasesOf checks the documents of data, whose first line is line+1
// of the file, until one does not parse (complete false).
func checkAliasesOf(name string, data []byte, line int) (pos diag.Pos, msg string, ok, complete bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return diag.Pos{}, "", true, true
		}
		if err != nil {
			return diag.Pos{}, "", true, false
		}
		c := &expansion{memo: map[*yaml.Node]int{}, busy: map[*yaml.Node]bool{}}
		if c.size(&n) > MaxNodes {
			return diag.Pos{File: name, Line: line + n.Line, Col: n.Column},
				fmt.Sprintf("YAML aliases and merge keys expand to more than %d values", MaxNodes), false, false
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
