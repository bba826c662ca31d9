package load

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// text is an input as read: its bytes, or, for a large JSON input read by
// readDedented, its bytes without the spaces that begin each line, with
// those spaces counted in indent (a line for each). kubectl indents the
// JSON it prints by four spaces a level, which is more than half of the
// bytes of a List of Services and EndpointSlices (260 of the 474 MB of one
// of 50,000 Services x 10 endpoints). JSON has no line breaks within its
// tokens, so the text without them is the same JSON; the fast List decoder
// (decodeJSONList) reads it so, giving the positions of the full text
// (setLines), and every other reader gets the full text (plain).
type text struct {
	data   []byte
	indent []uint16 // nil: data is the input as it is
}

// maxIndent is the most spaces a line of a dedented text leaves out: the
// rest stay in its data.
const maxIndent = 1<<16 - 1

// plain returns the input as it is.
func (t text) plain() []byte {
	if t.indent == nil {
		return t.data
	}
	n := len(t.data)
	for _, k := range t.indent {
		n += int(k)
	}
	out := make([]byte, 0, n)
	rest := t.data
	for _, k := range t.indent {
		out = append(out, spaces(int(k))...)
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		out = append(out, line...)
		rest = rest[len(line):]
	}
	return out
}

// spaces returns n spaces.
func spaces(n int) []byte { return bytes.Repeat([]byte{' '}, n) }

// dedentBlock is the size of the blocks readDedented collects the text in
// before it copies them into one slice.
const dedentBlock = 16 << 20

// readDedented reads r to the end as readLimited does, failing beyond
// limit bytes (of the input as it is); size is how many bytes r is expected
// to hold (0 if unknown). When the input starts with '{', as a JSON List
// from kubectl does, it leaves out the spaces that begin each line (see
// text); otherwise it reads the input as it is.
func readDedented(r io.Reader, size int, limit int64) (text, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if first, err := br.Peek(1); err != nil || first[0] != '{' {
		data, err := readLimited(br, size, limit)
		return text{data: data}, err
	}
	var (
		blocks [][]byte
		cur    = make([]byte, 0, min(dedentBlock, max(size, 4096)))
		indent = make([]uint16, 0, size/32+1) // kubectl's JSON has a line every 36 bytes
		read   int64                          // bytes of the input
		atLine = true                         // at the start of a line
		lead   = 0                            // its spaces so far
	)
	put := func(b []byte) {
		for len(b) > 0 {
			if len(cur) == cap(cur) {
				blocks = append(blocks, cur)
				cur = make([]byte, 0, dedentBlock)
			}
			n := min(len(b), cap(cur)-len(cur))
			cur = append(cur, b[:n]...)
			b = b[n:]
		}
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := br.Read(buf)
		read += int64(n)
		if read > limit {
			return text{}, tooLarge(limit)
		}
		b := buf[:n]
		for len(b) > 0 {
			if atLine {
				i := 0
				for i < len(b) && b[i] == ' ' && lead+i < maxIndent {
					i++
				}
				lead += i
				b = b[i:]
				if len(b) == 0 {
					break // the line's spaces may go on in the next read
				}
				indent = append(indent, uint16(lead))
				atLine, lead = false, 0
			}
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, atLine = b[:i+1], true
			}
			put(line)
			b = b[len(line):]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return text{}, err
		}
	}
	if atLine {
		indent = append(indent, uint16(lead)) // the last line, empty or of spaces
	}
	total := len(cur)
	for _, b := range blocks {
		total += len(b)
	}
	data := make([]byte, 0, total)
	for _, b := range blocks {
		data = append(data, b...)
	}
	return text{data: append(data, cur...), indent: indent}, nil
}
