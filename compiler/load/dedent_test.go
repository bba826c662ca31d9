package load

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadDedented checks that a dedented text gives back its input
// (plain), leaves out every space that begins a line (up to maxIndent) and
// no other byte, and keeps the input as it is when it does not start with
// '{'; each input is read whole and a byte at a time.
func TestReadDedented(t *testing.T) {
	const limit = 1 << 20
	deep := strings.Repeat(" ", maxIndent+3) + "x"
	tests := []struct {
		name    string
		in      string
		size    int
		plain   bool // read as it is
		wantErr string
	}{
		{name: "empty", in: "", plain: true},
		{name: "YAML", in: "kind: Service\n  x: 1\n", plain: true},
		{name: "leading space", in: " {\n  \"a\": 1\n}\n", plain: true},
		{name: "one brace", in: "{"},
		{name: "kubectl layout", in: "{\n    \"items\": [\n        {\n            \"a\": 1\n        }\n    ]\n}\n"},
		{name: "no final newline", in: "{\n    \"a\": 1\n  }"},
		{name: "trailing line of spaces", in: "{}\n   "},
		{name: "blank lines", in: "{\n\n    \n\"a\":\n 1}\n\n"},
		{name: "spaces inside lines", in: "{\n    \"a b\":   [1,  2]  \n}"},
		{name: "CRLF", in: "{\r\n    \"a\": 1\r\n}\r\n"},
		{name: "tabs stay", in: "{\n\t\"a\": 1,\n  \t\"b\": 2\n}"},
		{name: "more spaces than an indent holds", in: "{\n" + deep + "\n}"},
		{name: "with its size", in: "{\n    \"a\": 1\n}\n", size: 15},
		{name: "over the limit", in: "{\n" + strings.Repeat("    \n", limit/5+1), wantErr: "larger than 1 MiB"},
		{name: "over the limit as it is", in: "[" + strings.Repeat(" ", limit), plain: true, wantErr: "larger than 1 MiB"},
	}
	for _, tt := range tests {
		for _, r := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"bytewise", iotest.OneByteReader}} {
			t.Run(tt.name+"/"+r.name, func(t *testing.T) {
				got, err := readDedented(r.r(strings.NewReader(tt.in)), tt.size, limit)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("error = %v, want %q", err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if plain := got.indent == nil; plain != tt.plain {
					t.Fatalf("read as it is: %v, want %v", plain, tt.plain)
				}
				if string(got.plain()) != tt.in {
					t.Fatalf("plain() = %q, want %q", got.plain(), tt.in)
				}
				if tt.plain {
					return
				}
				lines := bytes.Split(got.data, []byte{'\n'})
				if len(lines) != len(got.indent) {
					t.Fatalf("%d lines, %d indents", len(lines), len(got.indent))
				}
				left := 0
				for i, l := range lines {
					if bytes.HasPrefix(l, []byte{' '}) && got.indent[i] != maxIndent {
						t.Errorf("line %d keeps a space after %d left out: %q", i+1, got.indent[i], l)
					}
					left += int(got.indent[i])
				}
				if want := strings.Count(tt.in, " ") - strings.Count(string(got.data), " "); left != want {
					t.Errorf("%d spaces counted, %d left out", left, want)
				}
			})
		}
	}
}

// FuzzReadDedented checks that any input read dedented gives itself back
// and that its parser's positions are those of the input as it is.
func FuzzReadDedented(f *testing.F) {
	f.Add([]byte("{\n    \"items\": [\n        {\n            \"a\": 1\n        }\n    ]\n}\n"))
	f.Add([]byte("{\r\n  \r\n   x\n"))
	f.Add([]byte("kind: List\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readDedented(iotest.HalfReader(bytes.NewReader(in)), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.plain(), in) {
			t.Fatalf("plain() = %q, want %q", got.plain(), in)
		}
		if got.indent == nil {
			return
		}
		// Every byte of the dedented text is where it is in the input.
		p := newTextParser("in.json", got)
		q := newYParser("in.json", in)
		if p.lines() != q.lines() || len(p.dedent) != p.lines() {
			t.Fatalf("%d lines dedented (%d indents), %d as it is", p.lines(), len(p.dedent), q.lines())
		}
		for l := range p.lines() {
			off := p.start(l)
			plainOff := q.start(l) + int(p.dedent[l])
			for i := range p.lineEnd(l) - off {
				a, b := toPos(p.file.Pos(off+i, 0)), toPos(q.file.Pos(plainOff+i, 0))
				if a != b {
					t.Fatalf("line %d byte %d: at %v dedented, %v as it is", l+1, i, a, b)
				}
			}
		}
	})
}
