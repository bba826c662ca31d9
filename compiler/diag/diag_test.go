package diag

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		e    Error
		want string
	}{
		{"full", Error{Pos: Pos{"svc.yaml", 12, 15}, Object: "Service default/web", Path: "spec.ports[0].port", Msg: "must be between 1 and 65535"},
			"svc.yaml:12:15: Service default/web: spec.ports[0].port: must be between 1 and 65535"},
		{"no column", Error{Pos: Pos{"x.yaml", 5, 0}, Msg: "YAML syntax error"}, "x.yaml:5: YAML syntax error"},
		{"no position", Error{Msg: "boom"}, "<input>: boom"},
		{"stdin warning", Error{Pos: Pos{"-", 1, 1}, Object: "EndpointSlice a/b", Msg: "no Service", Severity: SevWarning},
			"-:1:1: warning: EndpointSlice a/b: no Service"},
		// Names, fields and kinds from the input are escaped where they
		// are not printable; what is printable, quotes and backslashes
		// included, is left as it is.
		{"control characters", Error{Pos: Pos{"-", 1, 2}, Object: "Service n\a/a\x1b[2J", Path: "spec.\x1b[31mred", Msg: `unknown field "spec.\x1b[31mred"`},
			`-:1:2: Service n\a/a\x1b[2J: spec.\x1b[31mred: unknown field "spec.\x1b[31mred"`},
		{"line breaks and tabs", Error{Msg: "skipping Pod\r\na\tb"}, `<input>: skipping Pod\r\na\tb`},
		{"invalid UTF-8 and format characters", Error{Object: "Service d/\xff\u202e", Msg: "x"}, `<input>: Service d/\xff\u202e: x`},
		{"printable", Error{Object: "Service d/caf\u00e9 \ufffd", Msg: `a "b" \c 日本`}, "<input>: Service d/caf\u00e9 \ufffd: a \"b\" \\c 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListSortErr(t *testing.T) {
	var l List
	if l.Err() != nil {
		t.Fatal("empty list has an error")
	}
	l.Add(Pos{"b.yaml", 1, 1}, "", "", "second file")
	l.Warn(Pos{"a.yaml", 9, 1}, "", "", "a warning")
	l.Add(Pos{"a.yaml", 2, 3}, "", "x", "first")
	l.Add(Pos{"a.yaml", 2, 3}, "", "x", "first") // exact duplicate
	l.Sort()
	if len(l) != 3 {
		t.Fatalf("duplicates not removed: %v", l)
	}
	if l[0].Msg != "first" || l[1].Msg != "a warning" || l[2].Msg != "second file" {
		t.Errorf("wrong order: %v", l)
	}
	if n := len(l.Errors()); n != 2 {
		t.Errorf("%d errors, want 2", n)
	}
	if n := len(l.Warnings()); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
	var list List
	if !errors.As(l.Err(), &list) || len(list) != 2 {
		t.Errorf("Err() = %v", l.Err())
	}
}

// TestShorten checks that long texts keep their start and end, cut at
// rune boundaries, and that short ones are left alone.
func TestShorten(t *testing.T) {
	long := strings.Repeat("a", 600) + strings.Repeat("é", 300) + strings.Repeat("z", 600)
	for _, tc := range []struct {
		name, in string
		want     string
	}{
		{"short", "spec.ports[0].port", "spec.ports[0].port"},
		{"at the bound", strings.Repeat("x", MaxText), strings.Repeat("x", MaxText)},
		{"long", long, strings.Repeat("a", 480) + "…[840 bytes]…" + strings.Repeat("z", 480)},
		{"cut inside runes", strings.Repeat("é", 1000), strings.Repeat("é", 240) + "…[1040 bytes]…" + strings.Repeat("é", 240)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Shorten(tc.in); got != tc.want {
				t.Errorf("Shorten = %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
	var l List
	l.Add(Pos{File: "f"}, "Service default/"+long, long, long)
	if got := len(l[0].Error()); got > 4*MaxText {
		t.Errorf("a diagnostic of three long texts is %d bytes", got)
	}
}

// TestStrict checks which warnings Strict makes errors: all but the
// skipped documents' and the lasting ones.
func TestStrict(t *testing.T) {
	var l List
	pos := Pos{File: "a.yaml", Line: 1, Col: 1}
	l.Add(pos, "Service default/a", "spec", "an error")
	l.Warn(pos, "Service default/a", "spec.x", "a warning")
	l.Skip(pos, "Deployment", "skipped")
	l.WarnLasting(pos, "KubeProxyConfiguration", "masqueradeAll", "read all the same")
	l.Strict()
	want := []Severity{SevError, SevError, SevWarning, SevWarning}
	for i, e := range l {
		if e.Severity != want[i] {
			t.Errorf("%q: severity %v after Strict, want %v", e.Msg, e.Severity, want[i])
		}
	}
}
