// Package scheduler runs pipelines on their cron schedules.
//
// The scheduling decisions are pure functions of a Schedule, the last
// recorded slot and the time (Due, Schedule.Next, Schedule.Between), tested
// without waiting; Scheduler is the loop around them, with an injectable
// Clock, that starts runs through a RunFunc the caller provides (the CLI's
// execution path) and records each in a runstore.Store.
//
// Scheduled runs get deterministic ids, <pipeline>-<slot in UTC>, so a
// scheduler restarted in the middle of a slot re-runs the same id and the
// sinks' idempotent commit keeps the output exactly once.
//
// It must not import the engine, the connectors or the CLI.
package scheduler
