package gcpolicy

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
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

// TestSteady checks that Steady does nothing unless Apply set the soft
// limit, and otherwise raises its floor above the memory in use, which
// followLiveHeap then makes the limit.
func TestSteady(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer floor.Store(floor.Load())
	floor.Store(0)
	Steady()
	if got := floor.Load(); got != 0 {
		t.Fatalf("Steady without Apply set the floor to %d", got)
	}
	floor.Store(1 << 20)                  // below any heap
	keep := make([]*[1 << 10]byte, 1<<12) // 4 MiB live
	for i := range keep {
		keep[i] = new([1 << 10]byte)
	}
	Steady()
	got := floor.Load()
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	inUse := int64(s[0].Value.Uint64() - s[1].Value.Uint64())
	if got < 4<<20+int64(float64(4<<20)*SteadyPerLive) || got < inUse/2 {
		t.Errorf("floor %d MiB after Steady, with %d MiB in use and 4 MiB live", got>>20, inUse>>20)
	}
	Steady() // a lower floor is not taken
	if again := floor.Load(); again < got {
		t.Errorf("a second Steady lowered the floor from %d to %d", got, again)
	}
	runtime.KeepAlive(keep)
}
