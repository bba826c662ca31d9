//go:build linux

package netlink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"golang.org/x/sys/unix"
)

// Every table kpc defines holds a fingerprint of its own definition: the
// comment of the one element of its set "fingerprint", "sha256:" and the
// SHA-256 of the table's text in render.NFT's script (the "table ... {"
// block, without the fingerprint set). Two tables with equal fingerprints
// were made from equal definitions, so Sync trusts its cache of a table
// only when the kernel's table holds the fingerprint cached with it.

// fingerprintSet names the set that holds a table's fingerprint.
const fingerprintSet = "fingerprint"

// fingerprintKey is the key of the fingerprint element.
var fingerprintKey = be16(1)

// fingerprintHead starts the fingerprint set in the text, and
// fingerprintElem its element.
const (
	fingerprintHead = "\n\tset " + fingerprintSet + " {\n"
	fingerprintElem = "\t\t\t1 comment \""
)

// tableFingerprint returns the fingerprint of a table in script: the one
// the script's fingerprint set holds (inText), or else the SHA-256 of the
// table's block.
func tableFingerprint(script []byte, fam family, name string) (fp string, inText bool) {
	head := []byte(fmt.Sprintf("\ntable %s %s {\n", famName(fam), name))
	i := bytes.Index(script, head)
	if i < 0 {
		return "", false
	}
	block := script[i+1:]
	if j := bytes.Index(block, []byte("\n}\n")); j >= 0 {
		block = block[:j+3]
	}
	if k := bytes.Index(block, []byte(fingerprintHead)); k >= 0 {
		rest := block[k:]
		if e := bytes.Index(rest, []byte(fingerprintElem)); e >= 0 {
			rest = rest[e+len(fingerprintElem):]
			if q := bytes.IndexByte(rest, '"'); q >= 0 {
				return string(rest[:q]), true
			}
		}
	}
	sum := sha256.Sum256(block)
	return "sha256:" + hex.EncodeToString(sum[:]), false
}

func famName(f family) string {
	if f.table == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}

// addFingerprint adds the fingerprint set, last of the sets.
func (b *builder) addFingerprint(fp string) {
	b.addSet(&nftables.Set{Name: fingerprintSet, KeyType: nftables.TypeInetService, KeyByteOrder: binaryutil.BigEndian,
		Comment: "what kpc apply compares with its cache of the last applied table"},
		[]nftables.SetElement{{Key: fingerprintKey, Comment: fp}})
}

// kernelFingerprint reads the fingerprint of table t from the kernel:
// exists says whether the table exists, fp is "" when it holds none.
func kernelFingerprint(c *conn, d *dumper, t *nftables.Table) (exists bool, fp string, err error) {
	exists, err = c.tableExists(t)
	if err != nil || !exists {
		return exists, "", err
	}
	s := &dumpedSet{name: fingerprintSet}
	if err := d.elements(byte(t.Family), t.Name, s); err != nil {
		if isNotFound(err) {
			return true, "", nil
		}
		return true, "", err
	}
	for _, e := range s.elems {
		if bytes.Equal(e.key, fingerprintKey) {
			return true, e.comment, nil
		}
	}
	return true, "", nil
}

// isNotFound reports whether err is the kernel's "no such object".
func isNotFound(err error) bool { return errors.Is(err, unix.ENOENT) }
