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
// it: a heap that grows by half of its live data between collections).
//
// Measured on the 2-core reference machine: 10,000 Services x 10
// endpoints compile about 20 % faster than with Go's defaults for about
// 120 MB more; 50,000 plain Services (725 MB of live data at the peak) in
// 8 s and 1.1 GB instead of 8.5-10 s and 1.5-1.7 GB; the mixed cluster of
// 50,000 (1.2 GB live) in 16-18 s and 1.8 GB instead of 15 s and 2.7 GB
// (a fixed 900 MiB limit took 22 s). GOMEMLIMIT=off removes the limit.
package gcpolicy

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The policy's settings.
const (
	Percent      = 400
	MemoryLimit  = 900 << 20
	LimitPerLive = 1.5
)

// Apply sets the policy for the rest of the process, except what GOGC and
// GOMEMLIMIT set.
func Apply() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(Percent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		go followLiveHeap(MemoryLimit)
	}
}

// followLiveHeap sets the soft memory limit to limit and raises it to
// LimitPerLive times the live heap whenever that is more. It looks every
// few milliseconds (the live heap changes at each collection).
func followLiveHeap(limit int64) {
	debug.SetMemoryLimit(limit)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for range time.Tick(10 * time.Millisecond) {
		metrics.Read(live)
		if live[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if want := int64(float64(live[0].Value.Uint64()) * LimitPerLive); want > limit {
			limit = want
			debug.SetMemoryLimit(limit)
		}
	}
}
