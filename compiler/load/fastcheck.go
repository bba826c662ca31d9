package load

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"cuelang.org/go/cue"
)

// Fast parameter checks.
//
// A memoised document's parameters are checked one by one against their
// constraints (see memo.go). Unifying a value with a constraint in CUE
// costs about ten microseconds, and names and addresses are unique, so
// the checks of a large input cost more than the rest of its validation.
// Most constraints of the schema are made of a few forms whose meaning
// for one concrete value Go states exactly: a regular expression (CUE
// matches with Go's regexp package), a rune count (strings.MaxRunes and
// MinRunes), a numeric bound, a literal, a basic type, and conjunctions
// and disjunctions of those. fastCheck translates a constraint made only
// of such forms into a Go predicate; any other constraint keeps CUE's
// check.

// paramCheck reports whether a parameter value unifies, without error and
// concretely, with the constraint it was made from.
type paramCheck func(p param) bool

// fastCheck returns the predicate of constraint c, or nil when c holds a
// form it does not translate. Compiled regular expressions are shared
// through res.
func fastCheck(c cue.Value, res map[string]*regexp.Regexp) paramCheck {
	op, args := c.Expr()
	switch op {
	case cue.AndOp, cue.OrOp:
		if len(args) < 2 {
			return nil
		}
		parts := make([]paramCheck, len(args))
		for i, a := range args {
			if parts[i] = fastCheck(a, res); parts[i] == nil {
				return nil
			}
		}
		if op == cue.AndOp {
			return func(p param) bool {
				for _, f := range parts {
					if !f(p) {
						return false
					}
				}
				return true
			}
		}
		return func(p param) bool {
			for _, f := range parts {
				if f(p) {
					return true
				}
			}
			return false
		}
	case cue.RegexMatchOp, cue.NotRegexMatchOp:
		if len(args) != 1 {
			return nil
		}
		pat, ok := literalString(args[0])
		if !ok {
			return nil
		}
		want := op == cue.RegexMatchOp
		if m := patternMatchers[pat]; m != nil {
			return func(p param) bool { return p.kind == 's' && m(p.s) == want }
		}
		re := res[pat]
		if re == nil {
			var err error
			if re, err = regexp.Compile(pat); err != nil {
				return nil
			}
			res[pat] = re
		}
		return func(p param) bool { return p.kind == 's' && re.MatchString(p.s) == want }
	case cue.GreaterThanOp, cue.GreaterThanEqualOp, cue.LessThanOp, cue.LessThanEqualOp:
		if len(args) != 1 {
			return nil
		}
		n, ok := literalInt(args[0])
		if !ok {
			return nil
		}
		return boundCheck(op, n)
	case cue.CallOp:
		if len(args) != 2 {
			return nil
		}
		n, ok := literalInt(args[1])
		if !ok {
			return nil
		}
		switch fmt.Sprint(args[0]) {
		case "strings.MaxRunes":
			return func(p param) bool { return p.kind == 's' && int64(utf8.RuneCountInString(p.s)) <= n }
		case "strings.MinRunes":
			return func(p param) bool { return p.kind == 's' && int64(utf8.RuneCountInString(p.s)) >= n }
		}
		return nil
	case cue.NoOp:
		if d, ok := c.Default(); ok {
			return defaultCheck(d, args, res)
		}
		return leafCheck(c)
	}
	return nil
}

// defaultCheck is the predicate of a disjunction with a default, whose
// Expr is the default d and the other disjuncts as one value: a value
// unifies with it when it equals d or unifies with the others.
func defaultCheck(d cue.Value, args []cue.Value, res map[string]*regexp.Regexp) paramCheck {
	if len(args) != 1 || !d.IsConcrete() {
		return nil
	}
	if _, hasDefault := args[0].Default(); hasDefault {
		return nil
	}
	def, rest := leafCheck(d), fastCheck(args[0], res)
	if def == nil || rest == nil {
		return nil
	}
	return func(p param) bool { return def(p) || rest(p) }
}

// boundCheck is the predicate of a numeric bound on integers.
func boundCheck(op cue.Op, n int64) paramCheck {
	switch op {
	case cue.GreaterThanOp:
		return func(p param) bool { return p.kind == 'i' && p.n > n }
	case cue.GreaterThanEqualOp:
		return func(p param) bool { return p.kind == 'i' && p.n >= n }
	case cue.LessThanOp:
		return func(p param) bool { return p.kind == 'i' && p.n < n }
	}
	return func(p param) bool { return p.kind == 'i' && p.n <= n }
}

// leafCheck is the predicate of a constraint without an operator: a
// literal without a default, or a basic type.
func leafCheck(c cue.Value) paramCheck {
	if _, hasDefault := c.Default(); hasDefault {
		return nil
	}
	if c.IsConcrete() {
		switch c.Kind() {
		case cue.StringKind:
			s, ok := literalString(c)
			if !ok {
				return nil
			}
			return func(p param) bool { return p.kind == 's' && p.s == s }
		case cue.IntKind:
			n, ok := literalInt(c)
			if !ok {
				return nil
			}
			return func(p param) bool { return p.kind == 'i' && p.n == n }
		case cue.BoolKind:
			b, err := c.Bool()
			if err != nil {
				return nil
			}
			return func(p param) bool { return p.kind == 'b' && (p.n != 0) == b }
		}
		return nil
	}
	// A basic type prints as its name; anything else (a validator such
	// as net.IP, a reference) does not translate.
	switch fmt.Sprint(c) {
	case "string":
		return func(p param) bool { return p.kind == 's' }
	case "int":
		return func(p param) bool { return p.kind == 'i' }
	case "uint":
		return func(p param) bool { return p.kind == 'i' && p.n >= 0 }
	case "bool":
		return func(p param) bool { return p.kind == 'b' }
	}
	return nil
}

// literalString returns the value of a concrete string without a default.
func literalString(v cue.Value) (string, bool) {
	if _, hasDefault := v.Default(); hasDefault || !v.IsConcrete() || v.Kind() != cue.StringKind {
		return "", false
	}
	s, err := v.String()
	return s, err == nil
}

// literalInt returns the value of a concrete integer without a default.
func literalInt(v cue.Value) (int64, bool) {
	if _, hasDefault := v.Default(); hasDefault || !v.IsConcrete() || v.Kind() != cue.IntKind {
		return 0, false
	}
	n, err := v.Int64()
	return n, err == nil
}
