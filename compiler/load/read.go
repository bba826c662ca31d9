package load

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"kpc/compiler/diag"
)

// stdinName is the file name of standard input in positions.
const stdinName = "-"

// readAll reads every path and passes its documents to out, in input
// order. Problems with a path or a file are added to diags.
func readAll(paths []string, stdin io.Reader, opts Options, diags *diag.List, out *sink) {
	sawStdin := false
	for _, p := range paths {
		if p == stdinName {
			if sawStdin {
				diags.Add(diag.Pos{File: stdinName}, "", "", "standard input (\"-\") given more than once")
				continue
			}
			sawStdin = true
			if stdin == nil {
				diags.Add(diag.Pos{File: stdinName}, "", "", "no standard input available")
				continue
			}
			var t text
			var err error
			if fastYAMLEnabled {
				t, err = readDedented(stdin, 0, MaxFileSize)
			} else {
				t.data, err = readLimited(stdin, 0, MaxFileSize)
			}
			if err != nil {
				diags.Add(diag.Pos{File: stdinName}, "", "", fmt.Sprintf("reading standard input: %v", err))
				continue
			}
			if t.indent != nil {
				decodeDedented(stdinName, t, opts, diags, out)
				continue
			}
			data, pos, msg, ok := fromUTF16(stdinName, t.data)
			if !ok {
				diags.Add(pos, "", "", msg)
				continue
			}
			decodeStdin(crlfToLF(data), opts, diags, out)
			continue
		}
		readPath(p, diags, fastYAMLEnabled, func(f string, t text) {
			if t.indent != nil {
				decodeDedented(f, t, opts, diags, out)
				return
			}
			decodeData(f, t.data, opts, diags, out)
		})
	}
}

// readPath reads the files of path p (expand) and passes each to use, in
// order, large JSON files dedented when dedent is set (see readText);
// what cannot be read is added to diags.
func readPath(p string, diags *diag.List, dedent bool, use func(name string, t text)) {
	files, odd, err := expand(p)
	if err != nil {
		diags.Add(diag.Pos{File: p}, "", "", err.Error())
	}
	for _, f := range odd {
		diags.Add(diag.Pos{File: f}, "", "", "cannot read input: not a regular file: a directory's manifests must be regular files (or links to them)")
	}
	for _, f := range files {
		t, err := readText(f, dedent)
		if err != nil {
			diags.Add(diag.Pos{File: f}, "", "", err.Error())
			continue
		}
		use(f, t)
	}
}

// decodeData decodes the contents of file name as readAll read them.
func decodeData(name string, data []byte, opts Options, diags *diag.List, out *sink) {
	data, pos, msg, ok := fromUTF16(name, data)
	if !ok {
		diags.Add(pos, "", "", msg)
		return
	}
	data = crlfToLF(data)
	decodeFileTo(name, data, isJSON(name, data), opts, diags, out)
}

// File is an input file's name and contents.
type File struct {
	Name string
	Data []byte
}

// ReadFiles expands paths as Load does (a directory gives its *.yaml,
// *.yml and *.json files, walked in lexical order) and reads the files,
// for LoadFiles. A path or file that cannot be read gives a diagnostic;
// "-" is a file name here, not standard input.
func ReadFiles(paths []string) ([]File, diag.List) {
	var diags diag.List
	var out []File
	for _, p := range paths {
		readPath(p, &diags, false, func(f string, t text) { out = append(out, File{Name: f, Data: t.data}) })
	}
	return out, diags
}

// isURL reports whether p is an http or https URL, which kubectl's -f
// reads and kpc does not.
func isURL(p string) bool {
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

// expand returns p itself if it is not a directory, or the *.yaml, *.yml
// and *.json files under it, walked in lexical order, but for hidden ones
// (Hidden). Those of them that
// are not regular files, nor links to one, are returned apart (odd), not
// to be read: opening a named pipe waits for a writer, and a device such
// as /dev/zero has no end.
func expand(p string) (files, odd []string, err error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && isURL(p) {
			return nil, nil, fmt.Errorf("cannot read input: kpc reads files, not URLs (it works offline): download it first, e.g. curl -fsSL '%s' | kpc compile -f -", p)
		}
		return nil, nil, fmt.Errorf("cannot read input: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil, nil
	}
	root := p
	if lst, err := os.Lstat(p); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
		root += string(filepath.Separator) // a link to a directory: walk the directory
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root && Hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			mode := d.Type()
			if mode&fs.ModeSymlink != 0 {
				if st, err := os.Stat(path); err == nil {
					mode = st.Mode().Type()
				} else {
					mode = 0 // read, to name the problem
				}
			}
			if mode.IsRegular() {
				files = append(files, path)
			} else {
				odd = append(odd, path)
			}
		}
		return nil
	})
	if err != nil {
		return files, odd, fmt.Errorf("walking directory: %w", err)
	}
	return files, odd, nil
}

// Hidden reports whether a file or directory found in a directory of the
// input is left out: its name starts with a dot. A directory mounted from
// a ConfigMap holds each file twice, the one named by its key a link into
// the hidden "..data" directory; a repository holds ".github" workflows,
// and editors keep lock and swap files so. A hidden path given itself is
// read.
func Hidden(name string) bool {
	return strings.HasPrefix(name, ".")
}

// readFile reads a file of at most MaxFileSize bytes.
func readFile(name string) ([]byte, error) {
	t, err := readText(name, false)
	return t.data, err
}

// readText reads a file of at most MaxFileSize bytes; with dedent, a JSON
// file (by its name) large enough for decodeJSONList is read dedented
// (readDedented).
func readText(name string, dedent bool) (text, error) {
	f, err := os.Open(name)
	if err != nil {
		return text{}, fmt.Errorf("cannot read input: %w", err)
	}
	defer f.Close()
	// A regular file is read into a buffer of its size, not grown to it;
	// one too large is not read at all.
	size := 0
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > MaxFileSize {
			return text{}, fmt.Errorf("cannot read input: %w", tooLarge(MaxFileSize))
		}
		size = int(st.Size())
	}
	var t text
	if dedent && size >= 2*chunkBytes && isJSON(name, nil) {
		t, err = readDedented(f, size, MaxFileSize)
	} else {
		t.data, err = readLimited(f, size, MaxFileSize)
	}
	if err != nil {
		return text{}, fmt.Errorf("cannot read input: %w", err)
	}
	return t, nil
}

// readLimited reads r to the end, failing beyond limit bytes. size is how
// many bytes r is expected to hold (0 if unknown).
func readLimited(r io.Reader, size int, limit int64) ([]byte, error) {
	buf := new(bytes.Buffer)
	if size > 0 {
		// A slice made at the expected size is first touched by the
		// read that fills it; a buffer grown to it is cleared first, a
		// page fault per page: a 474 MB file took 0.56-1.07 s to read
		// so, 0.26 s into the slice.
		data := make([]byte, size+1) // one more, to see the end
		n, err := io.ReadFull(r, data)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return data[:n], nil
		case err != nil:
			return nil, err
		}
		buf = bytes.NewBuffer(data) // the input grew since it was sized
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1-int64(buf.Len()))); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge(limit)
	}
	return buf.Bytes(), nil
}

// tooLarge is the error of an input over limit bytes.
func tooLarge(limit int64) error {
	return fmt.Errorf("larger than %d MiB: split the input into several files", limit>>20)
}

// isJSON reports whether a file is read as JSON: by its name, or for stdin
// by its content, when its first byte that is not a space is '{' or '['
// (as kubectl's JSON and JSON files are); decodeText reads such standard
// input as YAML if it is not JSON but is YAML (in flow style).
func isJSON(name string, data []byte) bool {
	if name != stdinName {
		return strings.EqualFold(filepath.Ext(name), ".json")
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// validJSON reports whether data is a stream of JSON values.
func validJSON(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			return true
		} else if err != nil {
			return false
		}
	}
}

// fromUTF16 returns data as UTF-8 without a byte order mark, as kubectl
// reads files: UTF-16 text that starts with a mark (Windows PowerShell
// writes what it redirects to a file so) is transcoded, and the mark of
// UTF-8 text (which Windows PowerShell's Out-File writes) dropped; other
// data is returned as is. Lines and characters stay where they were, so
// positions are those an editor shows of the file. It fails, with a
// position and a message, on an odd number of bytes or a surrogate half
// without its pair.
func fromUTF16(name string, data []byte) ([]byte, diag.Pos, string, bool) {
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		return data[3:], diag.Pos{}, "", true
	}
	var order binary.ByteOrder
	switch {
	case len(data) >= 2 && data[0] == 0xff && data[1] == 0xfe:
		order = binary.LittleEndian
	case len(data) >= 2 && data[0] == 0xfe && data[1] == 0xff:
		order = binary.BigEndian
	default:
		return data, diag.Pos{}, "", true
	}
	out := make([]byte, 0, len(data)/2+len(data)/8)
	line, col := 1, 1
	for i := 2; i < len(data); i += 2 {
		if i+1 == len(data) {
			return nil, diag.Pos{File: name, Line: line, Col: col}, "UTF-16 text (it starts with a byte order mark) of an odd number of bytes", false
		}
		r := rune(order.Uint16(data[i:]))
		if utf16.IsSurrogate(r) {
			var r2 rune = utf8.RuneError
			if i+3 < len(data) {
				r2 = utf16.DecodeRune(r, rune(order.Uint16(data[i+2:])))
			}
			if r2 == utf8.RuneError {
				return nil, diag.Pos{File: name, Line: line, Col: col}, fmt.Sprintf("invalid UTF-16 text: surrogate half 0x%04x without its pair", r), false
			}
			r = r2
			i += 2
		}
		out = utf8.AppendRune(out, r)
		if col++; r == '\n' {
			line, col = line+1, 1
		}
	}
	return out, diag.Pos{}, "", true
}

// crlfToLF returns data with its CRLF line endings made LF, in place,
// unless it has a carriage return of its own (which the decoders report
// on, see bareCR). Nothing else changes: YAML reads both as one line
// break, and JSON as white space, and the lines and columns of positions
// are the same (the CR ends its line). The fast parsers then take files
// saved with Windows line endings (tests compare with the general
// decoders on the original, with fastYAMLEnabled off).
func crlfToLF(data []byte) []byte {
	i := bytes.IndexByte(data, '\r')
	if i < 0 || !fastYAMLEnabled {
		return data
	}
	if _, ok := bareCR("", data); !ok {
		return data
	}
	w := i
	for r := i; r < len(data); {
		// data[r] is the CR of a CRLF.
		j := bytes.IndexByte(data[r+1:], '\r')
		end := len(data)
		if j >= 0 {
			end = r + 1 + j
		}
		w += copy(data[w:], data[r+1:end])
		r = end
	}
	return data[:w]
}

// checkText returns the position and a description of the first byte that
// cannot appear in a YAML or JSON text file (invalid UTF-8, or a control
// character other than tab, newline and carriage return), or ok.
func checkText(name string, data []byte) (diag.Pos, string, bool) {
	if textOK(data) {
		return diag.Pos{}, "", true
	}
	return scanText(name, data)
}

// scanText is checkText rune by rune, counting lines and columns.
func scanText(name string, data []byte) (diag.Pos, string, bool) {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return diag.Pos{File: name, Line: line, Col: col},
				fmt.Sprintf("invalid UTF-8 byte 0x%02x: not a YAML or JSON text file", data[i]), false
		case r == '\n':
			line, col = line+1, 0
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return diag.Pos{File: name, Line: line, Col: col},
				fmt.Sprintf("control character 0x%02x: not a YAML or JSON text file", r), false
		}
		i += size
		col++
	}
	return diag.Pos{}, "", true
}

// yamlControl returns the position and a description of the first
// character that checkText takes but the YAML reader refuses anywhere in
// the text, comments included: a C1 control character other than NEL
// (U+0085), or the noncharacters U+FFFE and U+FFFF. JSON strings may hold
// them, so JSON input is not checked. In valid UTF-8 the C1 controls begin
// with the byte 0xc2 and the two noncharacters with 0xef, which keeps the
// scan of an ASCII file to two quick searches.
func yamlControl(name string, data []byte) (diag.Pos, string, bool) {
	at := -1
	for _, lead := range []byte{0xc2, 0xef} {
		for i := 0; i < len(data); {
			j := bytes.IndexByte(data[i:], lead)
			if j < 0 {
				break
			}
			i += j
			r, size := utf8.DecodeRune(data[i:])
			if r >= 0x80 && r <= 0x9f && r != 0x85 || r == 0xfffe || r == 0xffff {
				if at < 0 || i < at {
					at = i
				}
				break
			}
			i += size
		}
	}
	if at < 0 {
		return diag.Pos{}, "", true
	}
	r, _ := utf8.DecodeRune(data[at:])
	line := bytes.Count(data[:at], []byte{'\n'}) + 1
	col := utf8.RuneCount(data[bytes.LastIndexByte(data[:at], '\n')+1:at]) + 1
	return diag.Pos{File: name, Line: line, Col: col},
		fmt.Sprintf("control character U+%04X: YAML does not allow it (JSON does, in a string)", r), false
}

// textOK reports quickly whether checkText accepts data: valid UTF-8
// without control characters other than tab, line feed and carriage
// return (in valid UTF-8 those are bytes of their own).
func textOK(data []byte) bool {
	for _, c := range data {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(data)
}
