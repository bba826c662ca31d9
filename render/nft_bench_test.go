package render_test

import (
	"fmt"
	"io"
	"testing"

	"kpc/render"
	"kpc/render/internal/nftperf"
)

// BenchmarkNFT measures rendering alone (no kernel) at several sizes.
func BenchmarkNFT(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		p := nftperf.Program(n)
		for _, layout := range []string{"lowered", "chains"} {
			r := render.NFT{EndpointChains: layout == "chains"}
			b.Run(fmt.Sprintf("%s/%d", layout, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := r.Render(io.Discard, p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
