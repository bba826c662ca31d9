package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// text is an input as read: its bytes, or, for a large JSON input read by
// readDedented, its bytes without the spaces that begin each line, with
// those spaces counted in indent (a line for each). kubectl indents the
// JSON it prints by four spaces a level, which is more than half of the
// bytes of a List of Services and EndpointSlices (260 of the 474 MB of one
// of 50,000 Services x 10 endpoints). JSON has no line breaks within its
// tokens, so the text without those spaces is the same JSON; the fast List
// decoder (decodeJSONList) reads it so, giving the positions of the full
// text (setLines), and every other reader gets the full text (plain).
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

// readDedented reads r to the end as readLimited does, failing beyond
// limit bytes (of the input as it is); size is how many bytes r is
// expected to hold (0 if unknown). When the input starts with '{', as a
// JSON List from kubectl does, it leaves out the spaces that begin each
// line as it reads (see text), so that the input is never held whole;
// otherwise it returns the input as it is.
func readDedented(r io.Reader, size int, limit int64) (text, error) {
	buf := make([]byte, 1<<20)
	n, err := io.ReadAtLeast(r, buf, 1)
	if n == 0 || buf[0] != '{' {
		if err != nil && !errors.Is(err, io.EOF) {
			return text{}, err
		}
		data, err := readLimited(io.MultiReader(bytes.NewReader(buf[:n]), r), size, limit)
		return text{data: data}, err
	}
	d := dedenter{indent: make([]uint16, 0, size/32+1), atLine: true} // kubectl's JSON has a line every 36 bytes
	var blocks [][]byte
	cur := make([]byte, 0, min(dedentBlock, max(size, len(buf))))
	read := int64(0)
	for {
		read += int64(n)
		if read > limit {
			return text{}, tooLarge(limit)
		}
		for b := d.feed(buf[:n]); len(b) > 0; {
			if len(cur) == cap(cur) {
				blocks = append(blocks, cur)
				cur = make([]byte, 0, dedentBlock)
			}
			k := min(len(b), cap(cur)-len(cur))
			cur = append(cur, b[:k]...)
			b = b[k:]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return text{}, err
		}
		n, err = r.Read(buf)
	}
	if d.atLine {
		d.indent = append(d.indent, uint16(d.lead)) // the last line, empty or of spaces
	}
	if len(blocks) == 0 {
		return text{data: cur, indent: d.indent}, nil
	}
	total := len(cur)
	for _, b := range blocks {
		total += len(b)
	}
	data := make([]byte, 0, total)
	for _, b := range blocks {
		data = append(data, b...)
	}
	return text{data: append(data, cur...), indent: d.indent}, nil
}

// dedentBlock is the size of the blocks readDedented collects a text in
// before it copies them into one slice of the text's size.
const dedentBlock = 16 << 20

// dedenter leaves out the spaces that begin the lines of a text it is
// given a part at a time.
type dedenter struct {
	indent []uint16 // the spaces left out of each line so far
	atLine bool     // the next byte is in a line's leading spaces
	lead   int      // the spaces of that line so far
}

// feed dedents the next part of the text in place and returns what is
// left of it.
func (d *dedenter) feed(b []byte) []byte {
	const eight = 0x2020202020202020 // eight spaces
	w := 0
	for i := 0; i < len(b); {
		if d.atLine {
			s := i
			for i+8 <= len(b) && d.lead+i-s+8 <= maxIndent && binary.LittleEndian.Uint64(b[i:]) == eight {
				i += 8
			}
			for i < len(b) && d.lead+i-s < maxIndent && b[i] == ' ' {
				i++
			}
			d.lead += i - s
			if i == len(b) && d.lead < maxIndent {
				break // the spaces may go on in the next part
			}
			d.indent = append(d.indent, uint16(d.lead))
			d.atLine, d.lead = false, 0
		}
		end := len(b)
		if nl := bytes.IndexByte(b[i:], '\n'); nl >= 0 {
			end, d.atLine = i+nl+1, true
		}
		w += copy(b[w:], b[i:end])
		i = end
	}
	return b[:w]
}
