package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/lease"
)

// BenchmarkCoordinator is the coordinator's side of a cluster at scale:
// the Server (scheduler behind its mutex, token bookkeeping, the bbolt
// journal with its fsyncs) and the Executor waiting for every partition,
// as the run loop does, against thousands of in-process fake workers that
// call the same methods the gRPC service dispatches to (no network) and
// complete each attempt at once. ns/partition is wall time per partition
// on this machine (fake workers included); heap-MB-peak is the largest
// HeapAlloc sampled during the run, minus the baseline before it.
func BenchmarkCoordinator(b *testing.B) {
	const parts = 100_000
	for _, workers := range []int{1_000, 4_000} {
		b.Run(fmt.Sprintf("workers=%d,partitions=%d", workers, parts), func(b *testing.B) {
			for range b.N {
				simulateCluster(b, workers, parts)
			}
		})
	}
}

func simulateCluster(b *testing.B, workers, parts int) {
	j, err := OpenJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	srv, err := NewServer(Config{Journal: j, Lease: lease.Options{LeaseTTL: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	var completed atomic.Int64
	for i := range workers {
		id := fmt.Sprintf("w%05d", i)
		if _, err := srv.register(ctx, &RegisterRequest{Worker: id, Slots: 4}); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := srv.acquire(ctx, &AcquireRequest{Worker: id, WaitMS: 50})
				if err != nil {
					return
				}
				for _, a := range resp.Assignments {
					res, _ := json.Marshal(coordinator.AttemptResult{RowsOut: 1,
						Manifest: &connectors.Manifest{SplitID: a.Split.ID, Attempt: int(a.Token), Rows: 1}})
					if r, err := srv.complete(ctx, &CompleteRequest{Worker: id, Token: a.Token, Result: res}); err == nil && r.Accepted {
						completed.Add(1)
					}
				}
			}
		})
	}
	ex := srv.Executor(&fakeExec{runs: map[string]int{}})
	sp := splits(parts)
	res, errs := runAll(ctx, ex, "bench", sp)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	close(stopSampling)
	<-sampled
	for i, err := range errs {
		if err != nil || res[i].Manifest == nil {
			b.Fatalf("%s: %v", sp[i].ID, err)
		}
	}
	if completed.Load() != int64(parts) {
		b.Fatalf("%d completions accepted, want %d", completed.Load(), parts)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(parts), "ns/partition")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapAlloc))/(1<<20), "heap-MB-peak")
}
