// Package gcpolicy is the garbage collector's policy of the kpc command,
// shared with the benchmarks so that they measure what the command does.
//
// kpc is a batch job whose heap grows with its input and is dropped at
// exit, so it trades memory for time up to a bound. Unless GOGC and
// GOMEMLIMIT say otherwise, the garbage collector lets the heap grow to
// five times the live data (Percent), but no further than a soft limit of
// MemoryLimit bytes, near which it collects more often. An input whose
// live data outgrows the limit would make the collector run almost
// without pause; the limit then follows the live data (LimitPerLive times
// it: a heap that grows by 30 % of its live data between collections).
// The limit only rises: at 50,000 mixed Services x 10 endpoints (before
// endpoint chains were compact), the compile's last step held 984 MB and
// the rendering after it 800-1,000 MB; a limit that came down with the
// live data took the peak from 1,426 to 1,343 MiB (medians of 3), but the
// rendering took 0.2-0.75 s longer in three interleaved series.
//
// Measured on the 2-core reference machine: 10,000 Services x 10
// endpoints compile about 20 % faster than with Go's defaults for about
// 120 MB more. With the limit at 1.5 times the live data, kpc compile of
// 50,000 mixed Services x 5 endpoints took 8.2 s and 1,084 MiB, plain x 10
// 8.8 s and 1,073 MiB, mixed x 10 14.5 s and 1,739 MiB; at 1.4 times, 8.3 s
// and 987 MiB, 7.8 s and 1,011 MiB, 14.0 s and 1,621 MiB; at 1.3 times the
// first took 9.2 s. With compact endpoint chains the live data of the
// first two stays under the floor, where the factor does not matter
// (50,000 mixed x 5 and plain x 10: 909 MiB either way), and mixed x 10
// peaks at 735 MB live: at 1.4 times it took 9.7-10.6 s and 1,029 MiB, at
// 1.3 times 8.9-9.6 s and 962 MiB, at 1.25 times 10.1-10.5 s and
// 922-952 MiB (3 interleaved runs each). Since the nft renderer lowers
// its dispatch entries a window at a time and the compile keeps less of
// its endpoints and sorts its chain entries in place, mixed x 10 peaks at
// about 700 MB live (of which about 200 MB were allocated during the
// collection that counted them), under the 725 MB at which the limit
// leaves the floor: 912-953 MiB in 10 runs.
// GOMEMLIMIT=off removes the limit. A process that then keeps its heap
// for long (kpc apply --watch) calls Steady once it is built.
package gcpolicy

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The policy's settings.
const (
	Percent      = 400
	MemoryLimit  = 900 << 20
	LimitPerLive = 1.3
	// SteadyPerLive is the share of the live heap that Steady leaves for
	// allocation between collections.
	SteadyPerLive = 0.25
)

// floor is the soft memory limit's floor while Apply's policy holds (0:
// it does not).
var floor atomic.Int64

// Apply sets the policy for the rest of the process, except what GOGC and
// GOMEMLIMIT set.
func Apply() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(Percent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		floor.Store(MemoryLimit)
		debug.SetMemoryLimit(MemoryLimit)
		go followLiveHeap()
	}
}

// Steady is for a process that keeps, after building it, a large heap
// that then changes little: kpc apply --watch, once it has applied the
// whole input and counted every Service's part. The heap it keeps is
// fragmented by what the building freed (at 50,000 Services, 220 MB of
// its spans held no object), and the soft limit, sized for the build,
// then sits so close to the memory in use that every few changes (about
// 10 MB each) started a collection, which marks the whole heap: changes
// that took 60-100 ms took 350-560 ms when one ran. Steady collects,
// returns what it can to the system, and raises the limit's floor to the
// memory in use after that plus SteadyPerLive of the live heap, so that
// collections come after that much allocation. It does nothing unless
// Apply set the limit.
func Steady() {
	if floor.Load() == 0 {
		return
	}
	debug.FreeOSMemory()
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return
		}
	}
	inUse := s[0].Value.Uint64() - s[1].Value.Uint64()
	raise := int64(inUse) + int64(float64(s[2].Value.Uint64())*SteadyPerLive)
	for { // followLiveHeap sets the limit within a tick
		old := floor.Load()
		if raise <= old || floor.CompareAndSwap(old, raise) {
			return
		}
	}
}

// followLiveHeap keeps the soft memory limit at limitFor the live heap
// and the floor whenever that is more than the limit. It looks every few
// milliseconds (the live heap changes at each collection). The limit
// only rises.
func followLiveHeap() {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for range time.Tick(10 * time.Millisecond) {
		metrics.Read(live)
		if live[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if want := limitFor(live[0].Value.Uint64(), floor.Load()); want > debug.SetMemoryLimit(-1) {
			debug.SetMemoryLimit(want)
		}
	}
}

// limitFor returns the soft memory limit for a live heap of live bytes:
// LimitPerLive times it, but not less than floor.
func limitFor(live uint64, floor int64) int64 {
	return max(floor, int64(float64(live)*LimitPerLive))
}
