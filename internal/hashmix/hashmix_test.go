package hashmix

import "testing"

// TestMix64 pins the finalizer's values: the state cache of kpc apply and
// the offsets of the nft layout's numbered maps are made of them.
func TestMix64(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{
		{0, 0},
		{1, 0xb456bcfc34c2cb2c},
		{FNVOffset, 0xefd01f60ba992926},
	} {
		if got := Mix64(c.in); got != c.want {
			t.Errorf("Mix64(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
}
