package load

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int64, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			// Sparse: the size without writing it.
			if err := os.Truncate(p, size); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	text := bytes.Repeat([]byte("kind: Service\n"), 100_000) // 1.4 MB: several reads
	tests := []struct {
		name    string
		path    string
		want    []byte
		wantErr string
	}{
		{name: "empty", path: write("empty.yaml", 0, nil), want: []byte{}},
		{name: "small", path: write("small.yaml", 0, []byte("a: 1\n")), want: []byte("a: 1\n")},
		{name: "larger than a read", path: write("text.yaml", 0, text), want: text},
		{name: "one byte over the limit", path: write("big.yaml", MaxFileSize+1, nil), wantErr: "larger than 512 MiB: split the input into several files"},
		{name: "missing", path: filepath.Join(dir, "missing.yaml"), wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFile(tt.path)
			checkRead(t, "readFile", got, err, tt.want, tt.wantErr)
		})
	}
}

// TestReadLimited checks the limit on a stream (standard input), at a
// small limit: up to it is read, one byte more is refused.
func TestReadLimited(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name    string
		n       int // bytes in the stream
		size    int // the size hint
		wantErr string
	}{
		{name: "empty", n: 0},
		{name: "at the limit", n: limit},
		{name: "at the limit, with its size", n: limit, size: limit},
		{name: "one byte over", n: limit + 1, wantErr: "larger than 1 MiB: split the input into several files"},
		{name: "far over", n: 3 * limit, size: limit, wantErr: "larger than 1 MiB"},
		// The size hint is a stat taken before the read: the input may
		// have grown or shrunk since.
		{name: "grown since its size", n: 5000, size: 1000},
		{name: "grown by one byte", n: 1001, size: 1000},
		{name: "grown over the limit", n: limit + 1, size: 1000, wantErr: "larger than 1 MiB"},
		{name: "shrunk since its size", n: 1000, size: 5000},
		{name: "emptied since its size", n: 0, size: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Repeat([]byte("#\n"), tt.n/2+1)[:tt.n]
			got, err := readLimited(bytes.NewReader(in), tt.size, limit)
			checkRead(t, "readLimited", got, err, in, tt.wantErr)
		})
	}
}

// checkRead checks what a read function returned: an error containing
// wantErr when that is set, else want.
func checkRead(t *testing.T, fn string, got []byte, err error, want []byte, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s() error = %v, want %q", fn, err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s() error = %v", fn, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s() = %d bytes, want %d", fn, len(got), len(want))
	}
}

// utf16Text encodes s as UTF-16 with a byte order mark.
func utf16Text(s string, big bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	out := []byte{0xff, 0xfe}
	if big {
		order, out = binary.BigEndian, []byte{0xfe, 0xff}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		out = order.AppendUint16(out, u)
	}
	return out
}

func TestFromUTF16(t *testing.T) {
	text := "a: caf\u00e9\nb: \U0001F600 x\n"
	tests := []struct {
		name string
		in   []byte
		want string
		err  string
	}{
		{"UTF-8", []byte(text), text, ""},
		{"UTF-8 with a mark", append([]byte("\ufeff"), text...), text, ""},
		{"UTF-8 mark only", []byte("\ufeff"), "", ""},
		{"little-endian", utf16Text(text, false), text, ""},
		{"big-endian", utf16Text(text, true), text, ""},
		{"mark only", []byte{0xff, 0xfe}, "", ""},
		{"odd length", append(utf16Text("a: 1\nb", false), 'x'), "", "f.yaml:2:2: UTF-16 text (it starts with a byte order mark) of an odd number of bytes"},
		{"surrogate half", append(utf16Text("a: 1\nbc", true), 0xd8, 0x3d, 0, 'x'), "", "f.yaml:2:3: invalid UTF-16 text: surrogate half 0xd83d without its pair"},
		{"surrogate half at the end", append(utf16Text("a", false), 0x3d, 0xd8), "", "f.yaml:1:2: invalid UTF-16 text: surrogate half 0xd83d without its pair"},
	}
	for _, tt := range tests {
		got, pos, msg, ok := fromUTF16("f.yaml", tt.in)
		if tt.err != "" {
			if ok || pos.String()+": "+msg != tt.err {
				t.Errorf("%s: %v %s: %s, want %s", tt.name, ok, pos, msg, tt.err)
			}
			continue
		}
		if !ok || string(got) != tt.want {
			t.Errorf("%s: %q (%v %s), want %q", tt.name, got, ok, msg, tt.want)
		}
	}
}

// TestLoadUTF16 checks that a manifest saved as UTF-16 loads as the same
// manifest in UTF-8 does, positions included.
func TestLoadUTF16(t *testing.T) {
	text := "# caf\u00e9 \U0001F600\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations: {note: \"\u00e9\u00e9\", x: 1}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: \"\u00e9\", port: 0}]\n"
	dir := t.TempDir()
	for _, big := range []bool{false, true} {
		utf8Path, utf16Path := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
		if err := os.WriteFile(utf8Path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(utf16Path, utf16Text(text, big), 0o600); err != nil {
			t.Fatal(err)
		}
		_, want := Load([]string{utf8Path}, nil, Options{})
		_, got := Load([]string{utf16Path}, nil, Options{})
		if len(want.Errors()) == 0 {
			t.Fatal("no errors")
		}
		if w, g := strings.ReplaceAll(want.Error(), utf8Path, "F"), strings.ReplaceAll(got.Error(), utf16Path, "F"); w != g {
			t.Errorf("big-endian %v:\n%s\nwant\n%s", big, g, w)
		}
	}
}

func TestCRLFToLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a: 1\n", "a: 1\n"},
		{"a: 1\r\nb: 2\r\n", "a: 1\nb: 2\n"},
		{"\r\n\r\n", "\n\n"},
		{"a: |\r\n  x\r\n  y\nb: 1", "a: |\n  x\n  y\nb: 1"},
		{"a: 1\r\nb: 2", "a: 1\nb: 2"},
		// A carriage return of its own: left for the decoders to report.
		{"a: 1\r\nb: 2\rc: 3\r\n", "a: 1\r\nb: 2\rc: 3\r\n"},
		{"a: 1\r", "a: 1\r"},
	}
	for _, tt := range tests {
		if got := string(crlfToLF([]byte(tt.in))); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLoadByteOrderMark checks that YAML and JSON files that start with
// UTF-8's byte order mark load as they do without it, positions on the
// first line included.
func TestLoadByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"a.yaml": "{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 0}]}}\n",
		"a.json": `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 0}]}}` + "\n",
	} {
		plain, marked := filepath.Join(dir, "plain-"+name), filepath.Join(dir, "marked-"+name)
		if err := os.WriteFile(plain, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(marked, []byte("\ufeff"+text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, want := Load([]string{plain}, nil, Options{})
		_, got := Load([]string{marked}, nil, Options{})
		if len(want.Errors()) == 0 {
			t.Fatalf("%s: no errors", name)
		}
		if w, g := strings.ReplaceAll(want.Error(), plain, "F"), strings.ReplaceAll(got.Error(), marked, "F"); w != g {
			t.Errorf("%s:\n%s\nwant\n%s", name, g, w)
		}
		// Standard input too.
		_, got = Load([]string{"-"}, strings.NewReader("\ufeff"+text), Options{})
		if w, g := strings.ReplaceAll(want.Error(), plain, "F"), strings.ReplaceAll(got.Error(), "-:", "F:"); w != g {
			t.Errorf("%s on stdin:\n%s\nwant\n%s", name, g, w)
		}
	}
}
