// Package api is the coordinator's REST API (liminal coordinator --http):
// JSON endpoints under /api/v1 to submit, list, inspect and cancel runs and
// read their logs, /healthz, /readyz and /metrics. The OpenAPI 3 document
// is api/openapi.json, embedded and served at /api/v1/openapi.json; a test
// validates every response of the test suite against it.
//
// Until the cluster mode exists the server runs submitted runs in-process:
// each run gets its own executor from Config.NewExecutor (the command wires
// an engine and a local worker), at most Config.MaxRuns run at once and the
// others wait in a first-come-first-served queue.
//
// Authentication: every endpoint but /healthz and /readyz needs
// "Authorization: Bearer TOKEN" (constant-time comparison; the token is
// never logged). Errors are {"error": {"code", "message", "details"}} with
// the stable codes Code*.
//
// State: runs are kept in memory, and with Config.StateDir also as one JSON
// file per run under DIR/runs/, rewritten atomically on every change of
// status, so that a restarted coordinator lists the runs it had. A run that
// was queued or running when the process stopped is marked failed with the
// error "coordinator restarted" at the next start: its partitions' work is
// lost (nothing partial was committed) and it is not resumed. Run logs are
// kept only in memory (a ring of Config.LogLines lines per run). The
// scale-out work replaces this directory with a journal.
//
// api imports coordinator, metrics and spec; it must not import engine or
// infer (the executor comes from Config.NewExecutor).
package api
