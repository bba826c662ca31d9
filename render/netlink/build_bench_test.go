//go:build linux

package netlink

import (
	"testing"

	"kpc/internal/bench"
)

// BenchmarkSyncBuild times what Sync does before it reads the kernel:
// build the batch of a Program and the comparable state of its tables,
// for plain clusters of 10,000 and 50,000 Services x 10 endpoints (10,000
// only under -short).
func BenchmarkSyncBuild(b *testing.B) {
	dir := b.TempDir()
	for _, n := range []int{10000, 50000} {
		if testing.Short() && n > 10000 {
			continue
		}
		s := bench.Shape{Services: n, Endpoints: bench.Endpoints, Plain: true}
		b.Run(s.Name(), func(b *testing.B) {
			p, err := bench.Program(dir, s)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				bt, err := Build(p, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range bt.tables {
					fp, _ := tableFingerprint(bt.script, familyOf(t), t.table.Name)
					if _, err := t.state(fp); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
