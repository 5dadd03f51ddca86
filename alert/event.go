package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event kinds: the values of spec.Alert.On.
const (
	KindFailure      = "failure"
	KindSuccess      = "success"
	KindSLAMiss      = "sla_miss"
	KindCheckFailure = "check_failure"
)

// Event is what an alert reports. The coordinator fills it from its run
// result: Pipeline, RunID, Spec, Status, Error, StartedAt and FinishedAt
// as they are there, Duration from DurationMS, SLA from the pipeline's
// sla, Tasks from the task results, Checks from the failed data checks.
// The generic webhook receives it as JSON (durations as milliseconds).
type Event struct {
	// Kind is failure, success, sla_miss or check_failure.
	Kind     string `json:"kind"`
	Pipeline string `json:"pipeline,omitempty"`
	RunID    string `json:"run_id"`
	Spec     string `json:"spec,omitempty"`
	// Status is the run's status (succeeded, failed, cancelled; running
	// for an sla_miss of a run that goes on).
	Status string `json:"status"`
	// Error is the run's error, if any.
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Duration is how long the run took (or has taken, for sla_miss).
	Duration time.Duration `json:"-"`
	// SLA is the pipeline's SLA; 0 when it has none.
	SLA   time.Duration `json:"-"`
	Tasks []TaskSummary `json:"tasks,omitempty"`
	// Checks are the one-line messages of the failed data checks.
	Checks []string `json:"checks,omitempty"`
}

// TaskSummary is one task's part of an Event.
type TaskSummary struct {
	Task    string `json:"task"`
	Status  string `json:"status"`
	RowsOut int64  `json:"rows_out"`
	Error   string `json:"error,omitempty"`
	// FailedChecks are the one-line messages of the task's failed checks.
	FailedChecks []string `json:"failed_checks,omitempty"`
}

// MarshalJSON writes the event with its durations in milliseconds
// (duration_ms, sla_ms).
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // without this method
	return json.Marshal(struct {
		plain
		DurationMS int64 `json:"duration_ms"`
		SLAMS      int64 `json:"sla_ms,omitempty"`
	}{plain(e), e.Duration.Milliseconds(), e.SLA.Milliseconds()})
}

// Title is the event in a few words, e.g. "nightly failed (run r1)": the
// subject of an e-mail, the first line of a Slack message.
func (e Event) Title() string {
	name := e.Pipeline
	if name == "" {
		name = "run"
	}
	var what string
	switch e.Kind {
	case KindFailure:
		what = "failed"
		if e.Status != "" && e.Status != "failed" {
			what = e.Status
		}
	case KindSuccess:
		what = "succeeded"
	case KindSLAMiss:
		what = "missed its SLA"
		if e.SLA > 0 {
			what += " of " + e.SLA.String()
		}
	case KindCheckFailure:
		what = "failed data checks"
	default:
		what = e.Kind
	}
	return oneLine(fmt.Sprintf("%s %s (run %s)", name, what, e.RunID))
}

// field is one labelled line of a message.
type field struct{ label, value string }

// fields are the event's details, in the order messages show them.
func (e Event) fields() []field {
	var fs []field
	add := func(label, value string) {
		if value != "" {
			fs = append(fs, field{label, value})
		}
	}
	add("Pipeline", e.Pipeline)
	add("Spec", e.Spec)
	add("Run", e.RunID)
	add("Status", e.Status)
	add("Error", clip(e.Error, 500))
	if !e.StartedAt.IsZero() {
		add("Started", e.StartedAt.UTC().Format(time.RFC3339))
	}
	if !e.FinishedAt.IsZero() {
		add("Finished", e.FinishedAt.UTC().Format(time.RFC3339))
	}
	switch {
	case e.Duration > 0 && e.SLA > 0:
		add("Duration", fmt.Sprintf("%s (SLA %s)", round(e.Duration), e.SLA))
	case e.Duration > 0:
		add("Duration", round(e.Duration).String())
	case e.SLA > 0:
		add("SLA", e.SLA.String())
	}
	return fs
}

// failedChecks are the messages of the failed checks: the event's own,
// else those of its tasks, prefixed with the task.
func (e Event) failedChecks() []string {
	if len(e.Checks) > 0 {
		return e.Checks
	}
	var out []string
	for _, t := range e.Tasks {
		for _, c := range t.FailedChecks {
			out = append(out, t.Task+": "+c)
		}
	}
	return out
}

// maxListed bounds the checks and tasks a message lists.
const maxListed = 10

// text is the plain-text body of an e-mail.
func (e Event) text() string {
	var b strings.Builder
	b.WriteString("liminal: " + e.Title() + "\n\n")
	fs := e.fields()
	width := 0
	for _, f := range fs {
		width = max(width, len(f.label))
	}
	for _, f := range fs {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.label+":", f.value)
	}
	if len(e.Tasks) > 0 {
		b.WriteString("\nTasks:\n")
		for i, t := range e.Tasks {
			if i == maxListed {
				fmt.Fprintf(&b, "  ... and %d more\n", len(e.Tasks)-i)
				break
			}
			fmt.Fprintf(&b, "  %-20s %-10s %d rows", t.Task, t.Status, t.RowsOut)
			if t.Error != "" {
				b.WriteString("  " + clip(t.Error, 300))
			}
			b.WriteString("\n")
		}
	}
	if cs := e.failedChecks(); len(cs) > 0 {
		b.WriteString("\nFailed checks:\n")
		for i, c := range cs {
			if i == maxListed {
				fmt.Fprintf(&b, "  ... and %d more\n", len(cs)-i)
				break
			}
			b.WriteString("  - " + oneLine(c) + "\n")
		}
	}
	return b.String()
}

// slack is the text of a Slack message: a one-line summary, then a few
// lines in Slack markdown.
func (e Event) slack() string {
	icon := map[string]string{
		KindFailure:      ":red_circle:",
		KindSuccess:      ":large_green_circle:",
		KindSLAMiss:      ":hourglass:",
		KindCheckFailure: ":warning:",
	}[e.Kind]
	var b strings.Builder
	if icon != "" {
		b.WriteString(icon + " ")
	}
	b.WriteString("*liminal:* " + slackEscape(e.Title()))
	for _, f := range e.fields() {
		if f.label == "Started" || f.label == "Finished" || f.label == "Spec" {
			continue // the summary stays short
		}
		v := slackEscape(oneLine(f.value))
		if f.label == "Run" {
			v = "`" + v + "`"
		}
		b.WriteString("\n*" + f.label + ":* " + v)
	}
	if cs := e.failedChecks(); len(cs) > 0 {
		b.WriteString("\n*Failed checks:*")
		for i, c := range cs {
			if i == 5 {
				fmt.Fprintf(&b, "\n• … and %d more", len(cs)-i)
				break
			}
			b.WriteString("\n• " + slackEscape(oneLine(c)))
		}
	}
	return b.String()
}

// slackEscape escapes the three characters Slack's markdown reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// oneLine folds line breaks into spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// clip cuts s to n characters.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// round shortens a duration for people: whole seconds above a minute.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d
}
