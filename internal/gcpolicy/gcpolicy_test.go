package gcpolicy

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestApply checks that Apply sets GOGC's percentage unless GOGC is set.
// GOMEMLIMIT is set throughout, so that the soft limit is left alone.
func TestApply(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "off")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tests := []struct {
		name string
		gogc string // "" = unset
		want int
	}{
		{"GOGC unset", "", Percent},
		{"GOGC set", "100", 123},
	}
	for _, tt := range tests {
		t.Setenv("GOGC", tt.gogc)
		if tt.gogc == "" {
			os.Unsetenv("GOGC")
		}
		debug.SetGCPercent(123)
		Apply()
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("%s: GC percentage %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestLimitFor checks the soft limit for a live heap: the floor until the
// live heap outgrows it, then LimitPerLive times the live heap.
func TestLimitFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live uint64
		want int64
	}{
		{0, MemoryLimit},
		{500 * mib, MemoryLimit},
		{MemoryLimit * 10 / 13, MemoryLimit},
		{1000 * mib, 1300 * mib},
		{800 * mib, 1040 * mib},
		{2000 * mib, 2600 * mib},
	}
	for _, tt := range tests {
		// LimitPerLive is not exact in binary: a byte off is right.
		if got := limitFor(tt.live, MemoryLimit); got < tt.want-1 || got > tt.want+1 {
			t.Errorf("limitFor(%d MiB) = %d MiB, want %d MiB", tt.live/mib, got/mib, tt.want/mib)
		}
	}
}
