package irdiff

import "slices"

// maxEdits bounds the Myers search: beyond this many differing lines (in
// the middle left after the common prefix and suffix) the middle is
// reported as one replacement, which is exact but not minimal. It bounds
// the search's memory to about maxEdits² integers.
const maxEdits = 2000

// Edit operations of a line script.
const (
	opEqual  = '='
	opDelete = '-'
	opInsert = '+'
)

// DiffLines compares the lines of a and b and returns the changed runs as
// hunks without context lines (see Hunk), in order. The script is minimal
// (Myers' algorithm) unless more than maxEdits lines differ.
func DiffLines(a, b []string) []Hunk {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	midA, midB := a[pre:len(a)-suf], b[pre:len(b)-suf]
	ops := myers(midA, midB)
	if ops == nil && (len(midA) > 0 || len(midB) > 0) {
		ops = make([]byte, 0, len(midA)+len(midB))
		for range midA {
			ops = append(ops, opDelete)
		}
		for range midB {
			ops = append(ops, opInsert)
		}
	}
	var hunks []Hunk
	ai, bi := pre, pre
	for i := 0; i < len(ops); {
		if ops[i] == opEqual {
			ai, bi, i = ai+1, bi+1, i+1
			continue
		}
		h := Hunk{OldStart: ai + 1, NewStart: bi + 1}
		var added []string
		for ; i < len(ops) && ops[i] != opEqual; i++ {
			if ops[i] == opDelete {
				h.Lines = append(h.Lines, "-"+a[ai])
				h.OldLines++
				ai++
			} else {
				added = append(added, "+"+b[bi])
				h.NewLines++
				bi++
			}
		}
		h.Lines = append(h.Lines, added...)
		if h.OldLines == 0 {
			h.OldStart--
		}
		if h.NewLines == 0 {
			h.NewStart--
		}
		hunks = append(hunks, h)
	}
	return hunks
}

// myers returns a minimal edit script turning a into b (one op per line of
// the result: opEqual, opDelete, opInsert), or nil when more than maxEdits
// edits are needed (or both are empty).
func myers(a, b []string) []byte {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	limit := min(n+m, maxEdits)
	off := limit + 1
	v := make([]int32, 2*limit+3)
	// trace[d] holds v[k] for k in [-d-1, d+1] before round d.
	var trace [][]int32
	for d := 0; d <= limit; d++ {
		trace = append(trace, slices.Clone(v[off-d-1:off+d+2]))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1])
			} else {
				x = int(v[off+k-1]) + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				return backtrack(trace, n, m, d)
			}
		}
	}
	return nil
}

func backtrack(trace [][]int32, n, m, dEnd int) []byte {
	var ops []byte
	x, y := n, m
	for d := dEnd; d > 0; d-- {
		prev := trace[d]
		get := func(k int) int { return int(prev[k+d+1]) }
		k := x - y
		prevK := k - 1
		if k == -d || (k != d && get(k-1) < get(k+1)) {
			prevK = k + 1
		}
		prevX := get(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			ops = append(ops, opEqual)
			x, y = x-1, y-1
		}
		if x == prevX {
			ops = append(ops, opInsert)
		} else {
			ops = append(ops, opDelete)
		}
		x, y = prevX, prevY
	}
	for ; x > 0 && y > 0; x, y = x-1, y-1 {
		ops = append(ops, opEqual)
	}
	slices.Reverse(ops)
	return ops
}
