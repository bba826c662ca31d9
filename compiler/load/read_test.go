package load

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
