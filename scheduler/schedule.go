package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/liminal-data/liminal/runstore"
)

// parser reads the five standard fields (minute hour day-of-month month
// day-of-week) and the macros (@daily...); @every is not a cron schedule
// and is refused.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a cron expression read in a time zone.
//
// Slots are wall-clock times in that zone, and each fires exactly once:
// a slot that falls into the hour skipped when daylight saving time starts
// (02:30 on the last Sunday of March in Europe/Berlin) fires at the first
// instant after the gap (03:00 CEST); a slot in the hour repeated when it
// ends fires at its first occurrence (02:30 CEST, not again at 02:30 CET).
// This is what cron does for fixed-time jobs, and it keeps a daily
// pipeline at one run a day all year.
type Schedule struct {
	expr string
	loc  *time.Location
	spec *cron.SpecSchedule // evaluated on wall-clock times labelled UTC
}

// Parse reads a cron expression and an IANA time zone ("" is UTC).
func Parse(expr, tz string) (*Schedule, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", tz)
		}
		loc = l
	}
	if strings.HasPrefix(expr, "@every") || strings.Contains(expr, "TZ=") {
		return nil, fmt.Errorf("schedule %q: want five cron fields or a macro such as @daily", expr)
	}
	sc, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", expr, err)
	}
	spec, ok := sc.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("schedule %q: want five cron fields or a macro such as @daily", expr)
	}
	spec.Location = time.UTC
	return &Schedule{expr: expr, loc: loc, spec: spec}, nil
}

// String is the expression and its zone.
func (s *Schedule) String() string { return s.expr + " (" + s.loc.String() + ")" }

// Location is the zone the schedule is read in.
func (s *Schedule) Location() *time.Location { return s.loc }

// wall is t's wall-clock reading in loc, labelled UTC.
func wall(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant is the first instant whose wall-clock reading in loc is w, or,
// when w falls into a gap (the hour skipped by daylight saving time), the
// instant the gap ends.
func instant(w time.Time, loc *time.Location) time.Time {
	var best time.Time
	// The offsets in force around w: zone transitions are months apart,
	// so two days either side see both offsets of any transition near w.
	for _, probe := range []time.Time{w.Add(-48 * time.Hour), w, w.Add(48 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		t := w.Add(-time.Duration(off) * time.Second)
		if wall(t, loc).Equal(w) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	r := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	start, end := r.ZoneBounds()
	if wall(r, loc).After(w) {
		return start
	}
	return end
}

// Next is the first slot strictly after t, or the zero time when the
// expression never fires (e.g. 30 February).
func (s *Schedule) Next(t time.Time) time.Time {
	w := wall(t, s.loc)
	for range 100 { // more than the slots that one DST gap can merge
		c := s.spec.Next(w)
		if c.IsZero() {
			return time.Time{}
		}
		if at := instant(c, s.loc); at.After(t) {
			return at.UTC()
		}
		w = c
	}
	return time.Time{}
}

// Between returns the slots in (after, upTo], oldest first: the last
// limit of them when limit > 0, and how many there were in all.
func (s *Schedule) Between(after, upTo time.Time, limit int) (slots []time.Time, total int) {
	for t := s.Next(after); !t.IsZero() && !t.After(upTo); t = s.Next(t) {
		total++
		slots = append(slots, t)
		if limit > 0 && len(slots) > 2*limit {
			slots = append(slots[:0], slots[len(slots)-limit:]...)
		}
	}
	if limit > 0 && len(slots) > limit {
		slots = slots[len(slots)-limit:]
	}
	return slots, total
}

// Latest is the last slot at or before t; ok is false when there was none
// in the five years before t.
func (s *Schedule) Latest(t time.Time) (slot time.Time, ok bool) {
	for _, back := range []time.Duration{time.Hour, 26 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 367 * 24 * time.Hour} {
		if slots, _ := s.Between(t.Add(-back), t, 1); len(slots) == 1 {
			return slots[0], true
		}
	}
	return time.Time{}, false
}

// Slot is one schedule slot to run, and why.
type Slot struct {
	Time    time.Time
	Trigger runstore.Trigger
}

// Decision is what to do with the slots of one pipeline that came due.
type Decision struct {
	// Run are the slots to run, oldest first.
	Run []Slot
	// Skipped counts the due slots not run; LastSkipped is the newest of
	// them, FirstSkipped the oldest.
	Skipped                   int
	FirstSkipped, LastSkipped time.Time
}

// Decide says which slots of s to run at now, when the slots up to after
// have been handled (recorded in the run history, or processed by a
// running scheduler); a zero after means nothing was ever recorded, and
// then only the latest slot is due.
//
// The newest due slot always runs (trigger schedule). With catchup the
// older ones run too (trigger catchup), at most maxCatchup of them, the
// newest; the rest are skipped. Without catchup every older slot is
// skipped.
func Decide(s *Schedule, after, now time.Time, catchup bool, maxCatchup int) Decision {
	var d Decision
	if after.IsZero() {
		if t, ok := s.Latest(now); ok {
			d.Run = []Slot{{Time: t, Trigger: runstore.TriggerSchedule}}
		}
		return d
	}
	keep := 1
	if catchup {
		keep = max(maxCatchup, 0) + 1
	}
	slots, total := s.Between(after, now, keep)
	if total == 0 {
		return d
	}
	if d.Skipped = total - len(slots); d.Skipped > 0 {
		d.FirstSkipped = s.Next(after)
		d.LastSkipped = lastBefore(s, slots[0])
	}
	for i, t := range slots {
		tr := runstore.TriggerCatchup
		if i == len(slots)-1 {
			tr = runstore.TriggerSchedule
		}
		d.Run = append(d.Run, Slot{Time: t, Trigger: tr})
	}
	return d
}

// lastBefore is the slot just before t (t being a slot).
func lastBefore(s *Schedule, t time.Time) time.Time {
	p, _ := s.Latest(t.Add(-time.Nanosecond))
	return p
}

// RunID is the deterministic id of a pipeline's run for a slot.
func RunID(pipeline string, slot time.Time) string {
	return pipeline + "-" + slot.UTC().Format("20060102T150405Z")
}
