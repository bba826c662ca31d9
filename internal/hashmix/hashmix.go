// Package hashmix holds the pieces of kpc's non-cryptographic hashes: the
// FNV-1a parameters and a final mix that spreads every input bit over
// every output bit.
package hashmix

// The 64-bit FNV-1a parameters.
const (
	FNVOffset = 14695981039346656037
	FNVPrime  = 1099511628211
)

// Mix64 is MurmurHash3's 64-bit finalizer: FNV-1a leaves its high bits
// poorly mixed, which sums of sums and ranges taken from the top bits
// need spread.
func Mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
