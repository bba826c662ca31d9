//go:build linux

package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// The state cache: the comparable state (see state.go) of the tables that
// the last successful Sync left in one network namespace, in a file of its
// own under Options.StateDir, named after the namespace's device and inode
// numbers and the table name, with the nftables generation at which the
// kernel's tables were known to hold that state (see generation.go). It is
// only trusted when the fingerprint each table holds in the kernel equals
// the one cached for it, and, unless the generation is still the cached
// one, once kpc's tables read back from the kernel are found to hold it.
//
// Format (integers little endian, "uv" an unsigned varint, strings a uv
// length and the bytes): the magic "KPCNLST2"; uv generation (0 when
// unknown); uv table count; per table
// its family byte, name, defined byte and fingerprint; uv chain count, per
// chain its name, head, rules sum (8 bytes) and uv count of referenced
// sets with their names; uv set count, per set its name, head sum (8
// bytes), unmanaged byte, uv bucket count, the bucket sums (8 bytes each),
// the byte length of each bucket's elements (uv each), then the elements
// bucket after bucket, each a uv key length, the key and its sum (8
// bytes); at the end the CRC-32C of everything before it (4 bytes).

// cacheMagic starts a cache file; its last character is the version of
// the format and of the sums (state.go), which must change whenever either
// does. cacheMagicNoGeneration starts the version before, which is read as
// one whose generation is unknown.
const (
	cacheMagic             = "KPCNLST2"
	cacheMagicNoGeneration = "KPCNLST1"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// cachePath is the cache file of table name in the network namespace of o.
func cachePath(o Options, name string) (string, error) {
	ns := o.NetNS
	if ns == "" {
		ns = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if err := unix.Stat(ns, &st); err != nil {
		return "", fmt.Errorf("netlink: identifying network namespace %s: %w", ns, err)
	}
	return filepath.Join(o.StateDir, fmt.Sprintf("netns-%d-%d.%s.state", st.Dev, st.Ino, name)), nil
}

// encoder appends the cache format.
type encoder struct{ b []byte }

func (e *encoder) uv(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) u64(v uint64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, v)
}
func (e *encoder) str(s string) { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte) {
	e.uv(uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *encoder) flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// encodeStates writes tables and the generation they are known at in the
// cache format.
func encodeStates(tables []*tableState, gen uint32) []byte {
	e := &encoder{b: make([]byte, 0, 1<<16)}
	e.b = append(e.b, cacheMagic...)
	e.uv(uint64(gen))
	e.uv(uint64(len(tables)))
	for _, t := range tables {
		e.b = append(e.b, byte(t.family))
		e.str(t.name)
		e.flag(t.defined)
		e.str(t.fingerprint)
		e.uv(uint64(len(t.chains)))
		for _, c := range t.chains {
			e.str(c.name)
			e.str(c.head)
			e.u64(c.rules)
			e.uv(uint64(len(c.refs)))
			for _, r := range c.refs {
				e.str(r)
			}
		}
		e.uv(uint64(len(t.sets)))
		for _, s := range t.sets {
			e.encodeSet(s)
		}
	}
	e.b = binary.LittleEndian.AppendUint32(e.b, crc32.Checksum(e.b, crcTable))
	return e.b
}

// encodeSet writes a batch's set, its elements grouped by bucket.
func (e *encoder) encodeSet(s *setState) {
	e.str(s.name)
	e.u64(s.head)
	e.flag(s.unmanaged)
	n := bucketCount(s.count())
	e.uv(uint64(n))
	sums := s.bucketSums(n)
	for _, v := range sums {
		e.u64(v)
	}
	// Order the elements by bucket (a counting sort).
	mask := uint64(n - 1)
	start := make([]int, n+1)
	for _, h := range s.hashes {
		start[h&mask+1]++
	}
	for i := 1; i <= n; i++ {
		start[i] += start[i-1]
	}
	order := make([]int, len(s.hashes))
	next := append([]int(nil), start[:n]...)
	for i, h := range s.hashes {
		b := h & mask
		order[next[b]] = i
		next[b]++
	}
	lens := make([]int, n)
	for b := 0; b < n; b++ {
		for _, i := range order[start[b]:start[b+1]] {
			k := len(s.spec.elems[i].Key)
			lens[b] += uvLen(uint64(k)) + k + 8
		}
	}
	for _, l := range lens {
		e.uv(uint64(l))
	}
	for _, i := range order {
		e.bytes(s.spec.elems[i].Key)
		e.u64(s.sums[i])
	}
}

func uvLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// decoder reads the cache format.
type decoder struct {
	b   []byte
	off int
	err error
}

var errCorrupt = errors.New("corrupt state cache")

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = errCorrupt
		return nil
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p
}

func (d *decoder) u64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (d *decoder) str() string { return string(d.take(d.uv())) }

func (d *decoder) flag() bool {
	p := d.take(1)
	return p != nil && p[0] == 1
}

// cachedBuckets decodes the elements of a cached set's buckets on demand.
type cachedBuckets struct {
	data   []byte
	starts []int // starts[i] is the offset of bucket i in data; len n+1
}

func (c *cachedBuckets) bucket(i int) ([]elemState, error) {
	d := &decoder{b: c.data[c.starts[i]:c.starts[i+1]]}
	var out []elemState
	for d.off < len(d.b) && d.err == nil {
		k := d.take(d.uv())
		out = append(out, elemState{key: k, sum: d.u64()})
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

// decodeStates reads tables and their generation from the cache format.
func decodeStates(b []byte) ([]*tableState, uint32, error) {
	if len(b) < len(cacheMagic)+4 {
		return nil, 0, errCorrupt
	}
	magic := string(b[:len(cacheMagic)])
	if magic != cacheMagic && magic != cacheMagicNoGeneration {
		return nil, 0, errCorrupt
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, errCorrupt
	}
	d := &decoder{b: body, off: len(cacheMagic)}
	var gen uint32
	if magic == cacheMagic {
		g := d.uv()
		if g > 1<<32-1 {
			return nil, 0, errCorrupt
		}
		gen = uint32(g)
	}
	nt := d.uv()
	if nt > 2 {
		return nil, 0, errCorrupt
	}
	var tables []*tableState
	for i := uint64(0); i < nt && d.err == nil; i++ {
		t := &tableState{}
		fam := d.take(1)
		if fam != nil {
			t.family = nftables.TableFamily(fam[0])
		}
		t.name = d.str()
		t.defined = d.flag()
		t.fingerprint = d.str()
		nc := d.uv()
		for j := uint64(0); j < nc && d.err == nil; j++ {
			c := chainState{name: d.str(), head: d.str(), rules: d.u64()}
			nr := d.uv()
			for k := uint64(0); k < nr && d.err == nil; k++ {
				c.refs = append(c.refs, d.str())
			}
			t.chains = append(t.chains, c)
		}
		ns := d.uv()
		for j := uint64(0); j < ns && d.err == nil; j++ {
			s := &setState{name: d.str(), head: d.u64(), unmanaged: d.flag()}
			n := d.uv()
			if n == 0 || n > 1<<16 || n&(n-1) != 0 {
				return nil, 0, errCorrupt
			}
			s.buckets = make([]uint64, n)
			for k := range s.buckets {
				s.buckets[k] = d.u64()
			}
			cb := &cachedBuckets{starts: make([]int, n+1)}
			for k := uint64(0); k < n; k++ {
				cb.starts[k+1] = cb.starts[k] + int(d.uv())
			}
			cb.data = d.take(uint64(cb.starts[n]))
			s.cached = cb
			t.sets = append(t.sets, s)
		}
		tables = append(tables, t)
	}
	if d.err != nil {
		return nil, 0, d.err
	}
	if d.off != len(body) {
		return nil, 0, errCorrupt
	}
	return tables, gen, nil
}

// count is the number of elements of a cached set (decoding them all); it
// is only used for reports.
func (c *cachedBuckets) count() int {
	n := 0
	for i := 0; i+1 < len(c.starts); i++ {
		es, _ := c.bucket(i)
		n += len(es)
	}
	return n
}

// readCache reads the cache file at path: the tables and the generation
// they are known at; a missing file is (nil, 0, nil).
func readCache(path string) ([]*tableState, uint32, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("netlink: reading state cache: %w", err)
	}
	ts, gen, err := decodeStates(b)
	if err != nil {
		return nil, 0, fmt.Errorf("netlink: state cache %s: %w", path, err)
	}
	return ts, gen, nil
}

// writeCache replaces the cache file at path atomically with tables and
// the generation they are known at (0: unknown).
func writeCache(path string, tables []*tableState, gen uint32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("netlink: creating state directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("netlink: writing state cache: %w", err)
	}
	_, err = tmp.Write(encodeStates(tables, gen))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("netlink: writing state cache: %w", err)
	}
	return nil
}

// removeCache deletes the cache file, so that the next Sync replaces the
// tables.
func removeCache(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netlink: removing state cache: %w", err)
	}
	return nil
}

// lockCache takes an exclusive lock next to the cache file, so that two
// Syncs of one namespace do not interleave; unlock releases it.
func lockCache(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("netlink: creating state directory: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netlink: locking state cache: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("netlink: locking state cache: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
