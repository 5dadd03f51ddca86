// Package alert owns alert delivery: it turns a run event (a failure, a
// success, a missed SLA, failed data checks) into a generic JSON webhook
// POST, a Slack-compatible incoming-webhook message or an e-mail sent over
// SMTP, as the pipeline's spec.Alert entries say.
//
// Delivery never gets in the way of a run: Notifier.Notify only queues
// the event and returns; a goroutine per alert sends it, retrying
// transient failures (connection errors, HTTP 5xx and 429, SMTP 4xx) with
// jittered exponential backoff, and logs each outcome with slog. Close
// waits, up to its context's end, for what is queued or in flight, then
// stops everything and reports what was dropped. Secrets (passwords,
// header values, the path and query of webhook URLs, which carry Slack's
// token) never appear in logs or errors.
//
// alert depends on the standard library and spec only: it must not import
// coordinator, engine, connectors or cmd. The caller fills an Event from
// its own run result.
package alert
