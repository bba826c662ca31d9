package ir

import (
	"testing"
	"unsafe"
)

// TestRuleLayout keeps Rule free of padding on 64-bit platforms: a large
// Ruleset holds hundreds of thousands of rules in its Service chains (one
// per endpoint with affinity; endpoint chains themselves are compact), so
// a field placed where it needs a word of its own costs megabytes at
// 50,000 Services.
func TestRuleLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the sizes below are those of 64-bit platforms")
	}
	for _, tt := range []struct {
		name      string
		got, want uintptr
	}{
		// Two addresses (24 bytes each), two slices, a string, and the
		// port and flag in one word.
		{"Match", unsafe.Sizeof(Match{}), 2*24 + 2*24 + 16 + 8},
		{"Rule", unsafe.Sizeof(Rule{}), 120 + 16 + 16},
	} {
		if tt.got != tt.want {
			t.Errorf("%s is %d bytes, want %d", tt.name, tt.got, tt.want)
		}
	}
}
