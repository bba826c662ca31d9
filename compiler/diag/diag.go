// Package diag holds kpc's positioned diagnostics: an Error names the file,
// line and column of the offending value, the Kubernetes object and the API
// field path, in the style of go/scanner's ErrorList.
package diag

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pos is a position in an input file. Line and Col are 1-based; zero means
// unknown. File "-" is standard input.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as "file:line:col", dropping unknown parts.
func (p Pos) String() string {
	s := p.File
	if s == "" {
		s = "<input>"
	}
	if p.Line > 0 {
		s += fmt.Sprintf(":%d", p.Line)
		if p.Col > 0 {
			s += fmt.Sprintf(":%d", p.Col)
		}
	}
	return s
}

// Compare orders positions by file, line and column.
func (p Pos) Compare(q Pos) int {
	return cmp.Or(strings.Compare(p.File, q.File), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Severity says whether a diagnostic fails the run.
type Severity uint8

// The severities.
const (
	SevError Severity = iota
	SevWarning
)

// Error is one diagnostic.
type Error struct {
	Pos Pos
	// Object is "Kind ns/name" (or "Kind name" for cluster-scoped kinds);
	// empty when the problem is not in one object (a YAML syntax error).
	Object string
	// Path is the API field path ("spec.ports[0].port"); may be empty.
	Path string
	Msg  string
	// Severity is SevError unless the diagnostic is only a warning.
	Severity Severity
	// Skipped, in the warning that a document of a kind kpc does not read
	// was skipped, is that kind: Strict leaves such warnings warnings.
	Skipped string
	// Lasting marks a warning that Strict leaves a warning (see
	// List.WarnLasting).
	Lasting bool
}

// Error formats the diagnostic as "file:line:col: Kind ns/name: path: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Severity == SevWarning {
		b.WriteString("warning: ")
	}
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return printable(b.String())
}

// printable escapes, as strconv.Quote does, the runes of s that are not
// printable and the bytes that are not UTF-8: object names, field names
// and kinds come from the input, and a diagnostic must not write a
// terminal's control sequences or break into several lines.
func printable(s string) string {
	bad := func(r rune, size int) bool { return (r == utf8.RuneError && size == 1) || !strconv.IsPrint(r) }
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if bad(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case bad(r, size):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// List is a list of diagnostics. The zero value is empty and ready to use.
type List []*Error

// Add appends an error diagnostic.
func (l *List) Add(pos Pos, object, path, msg string) {
	*l = append(*l, &Error{Pos: pos, Object: Shorten(object), Path: Shorten(path), Msg: Shorten(msg)})
}

// Warn appends a warning diagnostic.
func (l *List) Warn(pos Pos, object, path, msg string) {
	*l = append(*l, &Error{Pos: pos, Object: Shorten(object), Path: Shorten(path), Msg: Shorten(msg), Severity: SevWarning})
}

// WarnLasting appends a warning that stays one under Strict: said of
// what kpc reads though kube-proxy's own configuration has no such field,
// whose input kpc follows whatever the strictness.
func (l *List) WarnLasting(pos Pos, object, path, msg string) {
	*l = append(*l, &Error{Pos: pos, Object: Shorten(object), Path: Shorten(path), Msg: Shorten(msg), Severity: SevWarning, Lasting: true})
}

// Skip appends the warning that a document of kind kind was skipped (see
// Error.Skipped).
func (l *List) Skip(pos Pos, kind, msg string) {
	*l = append(*l, &Error{Pos: pos, Msg: Shorten(msg), Severity: SevWarning, Skipped: kind})
}

// MaxText bounds the length of a diagnostic's object, path and message:
// they quote the input, whose names and values may be megabytes long.
const MaxText = 1024

// Shorten returns s, or when it is longer than MaxText bytes, its start
// and its end with the length of what was left out between them.
func Shorten(s string) string {
	if len(s) <= MaxText {
		return s
	}
	head, tail := MaxText/2-32, len(s)-(MaxText/2-32)
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return fmt.Sprintf("%s…[%d bytes]…%s", s[:head], tail-head, s[tail:])
}

// Strict makes every warning an error (the commands' --strict), except the
// warnings that a document was skipped (a directory of manifests holds
// Deployments and ConfigMaps beside its Services) and the lasting ones
// (WarnLasting).
func (l List) Strict() {
	for _, e := range l {
		if e.Skipped == "" && !e.Lasting {
			e.Severity = SevError
		}
	}
}

// Sort orders the list by position, then object, path and message, and
// removes exact duplicates.
func (l *List) Sort() {
	slices.SortStableFunc(*l, func(a, b *Error) int {
		return cmp.Or(a.Pos.Compare(b.Pos), strings.Compare(a.Object, b.Object),
			strings.Compare(a.Path, b.Path), strings.Compare(a.Msg, b.Msg))
	})
	*l = slices.CompactFunc(*l, func(a, b *Error) bool { return *a == *b })
}

// Errors returns only the error-severity diagnostics.
func (l List) Errors() List {
	var out List
	for _, e := range l {
		if e.Severity == SevError {
			out = append(out, e)
		}
	}
	return out
}

// Warnings returns only the warning diagnostics.
func (l List) Warnings() List {
	var out List
	for _, e := range l {
		if e.Severity == SevWarning {
			out = append(out, e)
		}
	}
	return out
}

// Error formats every diagnostic, one per line.
func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns the error-severity diagnostics as an error, or nil if there
// are none.
func (l List) Err() error {
	errs := l.Errors()
	if len(errs) == 0 {
		return nil
	}
	return errs
}
