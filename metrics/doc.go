// Package metrics owns Liminal's Prometheus metrics: runs, partitions, rows,
// bytes, durations, retries, active runs and worker slots, queued
// partitions and data checks, registered on a private prometheus.Registry
// (never the global one) and served by Handler or pushed to a Pushgateway
// by Push (one-shot CLI runs).
//
// A Metrics receives a run's events three ways: RunStarted/RunFinished
// around the run, the coordinator.Progress events (a *Run from StartRun per
// run, safe when runs overlap; or the *Metrics itself for a process that
// runs one run at a time), and an Executor wrapper (Run.Executor) that times
// partition attempts and counts busy worker slots. MultiProgress fans
// progress events out to several receivers.
//
// Metric names (all prefixed liminal_) are listed in Names; the Grafana
// dashboard in deploy/grafana uses them and a test keeps the two in step.
//
// metrics imports coordinator (for its types) and client_golang; it must
// not import engine, infer, connectors' implementations or api.
package metrics
