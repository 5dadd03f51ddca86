//go:build unix

package lease

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSchedulerSimulation runs one run of 100,000 partitions against
// 1,000 (and 10,000) in-process fake workers with 4 slots each on the
// simulated clock (1s mean attempts, 5% stragglers, 1% transient failures,
// 0.1% crashes, heartbeats every TTL/3, a coordinator Tick every TTL/4).
// cpu-ns/partition is the process CPU time of the same (GC included),
// steadier than wall time on a shared machine.
// ns/partition is the wall time of the whole simulation — scheduler calls
// plus the harness's own event heap, so an upper bound on scheduling
// overhead — divided by partitions. heap-MB figures are HeapAlloc after a
// GC, minus the baseline before the Scheduler was created: right after
// AddRun, and the peak of samples taken every 20,000 events (the harness's
// event heap is included; it is small next to the scheduler).
func BenchmarkSchedulerSimulation(b *testing.B) {
	const parts = 100_000
	for _, workers := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("workers=%d,partitions=%d", workers, parts), func(b *testing.B) {
			cfg := simConfig{Seed: 1, Workers: workers, Slots: 4, Partitions: parts, Work: time.Second,
				PStraggle: 0.05, PTransient: 0.01, PCrash: 0.001,
				Opts: Options{LeaseTTL: 10 * time.Second, MaxAttemptsPerPartition: 8, MaxFailuresPerWorker: 3, Speculative: true},
			}
			var st simStats
			var total, cpuTotal time.Duration
			for b.Loop() {
				start, cpu0 := time.Now(), cpuTime()
				st = runSim(b, cfg, New(cfg.Opts), "bench")
				total += time.Since(start)
				cpuTotal += cpuTime() - cpu0
				if !st.Done {
					b.Fatal("run did not finish")
				}
			}
			// Memory: one more run, untimed, sampling the heap after a GC.
			b.StopTimer()
			heapNow := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			base := heapNow()
			var added, peak uint64
			cfg.AfterAdd = func() { added = heapNow(); peak = added }
			cfg.Sample, cfg.SampleEvery = func() { peak = max(peak, heapNow()) }, 20_000
			runSim(b, cfg, New(cfg.Opts), "bench")
			b.StartTimer()
			mb := func(v uint64) float64 { return float64(int64(v)-int64(base)) / (1 << 20) }
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N)/parts, "ns/partition")
			b.ReportMetric(float64(cpuTotal.Nanoseconds())/float64(b.N)/parts, "cpu-ns/partition")
			b.ReportMetric(mb(added), "heap-MB-added")
			b.ReportMetric(mb(peak), "heap-MB-peak")
			b.ReportMetric(float64(st.Events), "events")
			b.ReportMetric(float64(st.Leases), "leases")
		})
	}
}

// cpuTime is the process's user+system CPU time (GC included), which unlike
// wall time does not grow when the machine is shared.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
