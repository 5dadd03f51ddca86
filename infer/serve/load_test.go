package serve

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/infer"
)

var loadTest = flag.Bool("serve.load", false, "run TestLoad, the HTTP load generator")

// TestLoad drives a real loopback listener with 32 concurrent keep-alive
// clients against the XGBoost binary_logistic fixture (8 features), with
// and without micro-batching, and reports latency percentiles and
// throughput. Run it with
//
//	go test ./infer/serve -run TestLoad -serve.load -v -count=1
//
// Each configuration stops after its request count or 8 s, whichever
// comes first, so the whole test stays under a minute.
func TestLoad(t *testing.T) {
	if !*loadTest {
		t.Skip("load test; enable with -serve.load")
	}
	const clients = 32
	model := openModel(t, "../testdata/xgboost/binary_logistic.model.json")
	_, fixture := readFixture(t, "../testdata/xgboost/binary_logistic.input.csv")
	runs := []struct {
		rows, requests int
		delay          time.Duration
		spin           time.Duration // CPU burnt per Predict call
	}{
		{1, 20000, -1, 0},
		{1, 20000, 2 * time.Millisecond, 0},
		{100, 10000, -1, 0},
		{100, 10000, 2 * time.Millisecond, 0},
		// A model with a fixed cost per call (a runtime session, a
		// process round trip), simulated by 200µs of CPU per Predict.
		{1, 10000, -1, 200 * time.Microsecond},
		{1, 10000, 2 * time.Millisecond, 200 * time.Microsecond},
	}
	t.Logf("GOMAXPROCS %d, %d clients, model xgboost binary_logistic (8 features)", gomaxprocs(), clients)
	t.Logf("%-5s %-9s %-6s %8s %9s %9s %9s %11s %8s", "rows", "batching", "spin", "requests", "p50", "p99", "req/s", "rows/s", "rows/call")
	for _, r := range runs {
		// 64 distinct bodies of r.rows fixture rows each, as v1 arrays.
		bodies := make([][]byte, 64)
		for i := range bodies {
			var b bytes.Buffer
			b.WriteString(`{"instances": [`)
			for j := range r.rows {
				if j > 0 {
					b.WriteByte(',')
				}
				jsonRow(&b, fixture[(i*r.rows+j)%len(fixture)])
			}
			b.WriteString(`]}`)
			bodies[i] = b.Bytes()
		}
		var m infer.Model = model
		if r.spin > 0 {
			m = &spinModel{Model: model, spin: r.spin}
		}
		srv, err := New(map[string]infer.Model{"m": m}, Options{MaxDelay: r.delay, MaxBatchRows: 1024})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)
		url := "http://" + ln.Addr().String() + "/v1/models/m:predict"
		tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
		client := &http.Client{Transport: tr}
		shoot := func(n int, lat []time.Duration, budget time.Duration) (int, time.Duration) {
			var next atomic.Int64
			var failed atomic.Value
			deadline := time.Now().Add(budget)
			start := time.Now()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= n || time.Now().After(deadline) {
							return
						}
						t0 := time.Now()
						resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
						if err != nil {
							failed.Store(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							failed.Store(fmt.Errorf("status %d", resp.StatusCode))
							return
						}
						if lat != nil {
							lat[i] = time.Since(t0)
						}
					}
				})
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				t.Fatal(err)
			}
			return min(n, int(next.Load())), time.Since(start)
		}
		shoot(500, nil, 5*time.Second) // warm up: connections, pools
		calls0 := srv.Predicts("m")
		lat := make([]time.Duration, r.requests)
		done, elapsed := shoot(r.requests, lat, 8*time.Second)
		calls := srv.Predicts("m") - calls0
		lat = slices.DeleteFunc(lat[:done], func(d time.Duration) bool { return d == 0 })
		slices.Sort(lat)
		mode := "off"
		if r.delay > 0 {
			mode = r.delay.String()
		}
		t.Logf("%-5d %-9s %-6s %8d %9s %9s %9.0f %11.0f %8.1f", r.rows, mode, r.spin, len(lat),
			lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond),
			float64(len(lat))/elapsed.Seconds(), float64(len(lat)*r.rows)/elapsed.Seconds(),
			float64(len(lat)*r.rows)/float64(max(calls, 1)))
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.Shutdown(ctx)
		_ = srv.Shutdown(ctx)
		cancel()
	}
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

// spinModel burns CPU for spin on every Predict call before scoring.
type spinModel struct {
	infer.Model
	spin time.Duration
}

func (m *spinModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	for t0 := time.Now(); time.Since(t0) < m.spin; {
	}
	return m.Model.Predict(ctx, in)
}
