package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/liminal-data/liminal/alert"
	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/spec"
)

// alertWait bounds how long a finished run waits for its alerts to be
// delivered before the process exits; delivery never changes the outcome.
const alertWait = 15 * time.Second

// sendAlerts raises the pipeline's alerts for a finished run: failure or
// success, an SLA miss, failed data checks.
func sendAlerts(p *spec.Pipeline, res *coordinator.RunResult, log *slog.Logger) {
	if p == nil || len(p.Alerts) == 0 || res == nil || res.Status == statusSkipped {
		return
	}
	n := alert.New(p.Alerts, alert.Options{Logger: log, Lookup: os.Getenv})
	for _, ev := range alertEvents(p, res) {
		n.Notify(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), alertWait)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		log.Warn("alerts not delivered", "error", err)
	}
}

// alertEvents are the events a run result raises.
func alertEvents(p *spec.Pipeline, res *coordinator.RunResult) []alert.Event {
	sla, _ := time.ParseDuration(p.SLA)
	base := alert.Event{Pipeline: res.Pipeline, RunID: res.RunID, Spec: res.Spec, Status: res.Status, Error: res.Error,
		StartedAt: res.StartedAt, FinishedAt: res.FinishedAt, Duration: time.Duration(res.DurationMS) * time.Millisecond, SLA: sla}
	var failedChecks []string
	for _, t := range res.Tasks {
		ts := alert.TaskSummary{Task: t.Task, Status: t.Status, RowsOut: t.RowsOut, Error: t.Error}
		for _, c := range checks.Failed(t.Checks) {
			msg := c.Message
			if msg == "" {
				msg = c.Name + ": " + c.Error
			}
			ts.FailedChecks = append(ts.FailedChecks, msg)
			failedChecks = append(failedChecks, t.Task+": "+msg)
		}
		base.Tasks = append(base.Tasks, ts)
	}
	base.Checks = failedChecks
	var evs []alert.Event
	add := func(kind string) {
		ev := base
		ev.Kind = kind
		evs = append(evs, ev)
	}
	if res.Status == coordinator.StatusSucceeded {
		add(alert.KindSuccess)
	} else {
		add(alert.KindFailure)
	}
	if sla > 0 && base.Duration > sla {
		add(alert.KindSLAMiss)
	}
	if len(failedChecks) > 0 {
		add(alert.KindCheckFailure)
	}
	return evs
}
