package scheduler

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/liminal-data/liminal/runstore"
)

func mustParse(t interface{ Fatal(...any) }, expr, tz string) *Schedule {
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// In 2026 Europe/Berlin springs forward on 29 March at 02:00 CET (01:00Z)
// and falls back on 25 October at 03:00 CEST (01:00Z).
func TestNext(t *testing.T) {
	tests := map[string]struct {
		expr, tz string
		after    string
		want     []string // the next slots, in UTC
	}{
		"every minute": {"* * * * *", "", "2026-01-01T10:00:30Z",
			[]string{"2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"}},
		"daily macro in UTC": {"@daily", "", "2026-01-01T00:00:00Z",
			[]string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}},
		"daily in Berlin winter and summer": {"0 3 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"}},
		"slot in the spring gap fires when the gap ends": {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		"slot in the repeated autumn hour fires once, first": {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		"hourly across the spring gap": {"0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		"hourly across the autumn repeat: wall 02:00 once": {"0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
		"every 15 minutes inside the gap collapse to one": {"*/15 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}},
		"weekdays by name": {"0 9 * * MON-FRI", "America/New_York", "2026-01-02T15:00:00Z", // Friday 10:00 EST
			[]string{"2026-01-05T14:00:00Z", "2026-01-06T14:00:00Z"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := mustParse(t, tc.expr, tc.tz)
			at := utc(tc.after)
			var got []string
			for range tc.want {
				at = s.Next(at)
				got = append(got, at.Format(time.RFC3339))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ expr, tz string }{
		{"61 * * * *", ""}, {"* * * *", ""}, {"@every 1m", ""}, {"@fortnightly", ""}, {"0 3 * * *", "Mars/Base"}, {"CRON_TZ=UTC 0 3 * * *", ""},
	} {
		if _, err := Parse(tc.expr, tc.tz); err == nil {
			t.Errorf("Parse(%q, %q): no error", tc.expr, tc.tz)
		}
	}
}

// Properties over random schedules, zones and times: slots are strictly
// increasing, each wall-clock slot fires once, none is later than the
// cron slot it stands for by more than a DST gap, and Next(t) never
// skips a slot (checked against a minute-by-minute scan).
func TestNextProperties(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"}
	rapid.Check(t, func(rt *rapid.T) {
		minute := rapid.SampledFrom([]string{"0", "30", "*/15", "5,45", "*"}).Draw(rt, "minute")
		hour := rapid.SampledFrom([]string{"*", "2", "1-3", "0", "23", "*/6"}).Draw(rt, "hour")
		tz := rapid.SampledFrom(zones).Draw(rt, "tz")
		s := mustParse(rt, minute+" "+hour+" * * *", tz)
		// Times around the 2026 transitions of most of these zones.
		base := rapid.SampledFrom([]string{"2026-03-08T00:00:00Z", "2026-03-28T20:00:00Z", "2026-10-24T20:00:00Z", "2026-11-01T00:00:00Z", "2026-04-04T10:00:00Z", "2026-10-03T10:00:00Z"}).Draw(rt, "base")
		at := utc(base).Add(time.Duration(rapid.IntRange(0, 48*60).Draw(rt, "offset")) * time.Minute)
		seen := map[time.Time]bool{}
		for range 30 {
			n := s.Next(at)
			if !n.After(at) {
				rt.Fatalf("Next(%v) = %v, not after", at, n)
			}
			// No slot between at and n: scan minute by minute for a wall
			// time the expression matches that maps to an instant in
			// (at, n).
			for u := at.Truncate(time.Minute).Add(time.Minute); u.Before(n); u = u.Add(time.Minute) {
				w := wall(u, s.loc)
				if s.spec.Next(w.Add(-time.Second)).Equal(w) && !seen[w] && instant(w, s.loc).Equal(u) {
					rt.Fatalf("Next(%v) = %v skips the slot %v (wall %v)", at, n, u, w)
				}
			}
			w := wall(n, s.loc)
			if seen[w] {
				rt.Fatalf("wall time %v fired twice", w)
			}
			seen[w] = true
			at = n
		}
	})
}

func TestDecide(t *testing.T) {
	every := mustParse(t, "* * * * *", "")
	now := utc("2026-01-01T10:05:30Z")
	ts := func(ss ...string) []Slot {
		var out []Slot
		for i, s := range ss {
			tr := runstore.TriggerCatchup
			if i == len(ss)-1 {
				tr = runstore.TriggerSchedule
			}
			out = append(out, Slot{Time: utc("2026-01-01T" + s + "Z"), Trigger: tr})
		}
		return out
	}
	tests := map[string]struct {
		after      time.Time
		catchup    bool
		maxCatchup int
		run        []Slot
		skipped    int
	}{
		"nothing recorded: the latest slot": {time.Time{}, true, 100, ts("10:05:00"), 0},
		"catchup after downtime":            {utc("2026-01-01T10:00:00Z"), true, 100, ts("10:01:00", "10:02:00", "10:03:00", "10:04:00", "10:05:00"), 0},
		"catchup bounded, newest kept":      {utc("2026-01-01T10:00:00Z"), true, 2, ts("10:03:00", "10:04:00", "10:05:00"), 2},
		"no catchup: latest only":           {utc("2026-01-01T10:00:00Z"), false, 100, ts("10:05:00"), 4},
		"up to date":                        {utc("2026-01-01T10:05:00Z"), true, 100, nil, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := Decide(every, tc.after, now, tc.catchup, tc.maxCatchup)
			if fmt.Sprint(d.Run) != fmt.Sprint(tc.run) || d.Skipped != tc.skipped {
				t.Fatalf("got %v skipped %d\nwant %v skipped %d", d.Run, d.Skipped, tc.run, tc.skipped)
			}
			if d.Skipped > 0 && (!d.FirstSkipped.Equal(utc("2026-01-01T10:01:00Z")) || !d.LastSkipped.Equal(d.Run[0].Time.Add(-time.Minute))) {
				t.Fatalf("skipped range %v..%v", d.FirstSkipped, d.LastSkipped)
			}
		})
	}
}

func TestRunID(t *testing.T) {
	slot := time.Date(2026, 3, 29, 3, 0, 0, 0, time.FixedZone("CEST", 7200))
	if got := RunID("nightly", slot); got != "nightly-20260329T010000Z" {
		t.Fatal(got)
	}
}
