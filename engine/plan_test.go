package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

var planTables = []PlanTable{
	{Name: "ev", Scan: "(SELECT i AS id, i % 7 AS k, i * 1.5 AS x, CAST(i AS INTEGER) AS n, 'c' || (i % 3) AS s FROM range(10) t(i))"},
	{Name: "dim", Scan: "(SELECT i AS k, 'name' || i AS name FROM range(7) t(i))"},
}

func TestPlanKinds(t *testing.T) {
	e := newEngine(t, 1)
	tests := map[string]struct {
		q      string
		kind   Kind
		reason string
	}{
		"filter":           {"SELECT id, x FROM ev WHERE k > 2", Local, ""},
		"broadcast join":   {"SELECT ev.id, dim.name FROM ev JOIN dim USING (k)", Local, ""},
		"grouped":          {"SELECT k, sum(x), count(*), avg(n), min(s) FROM ev GROUP BY k ORDER BY 1", TwoStage, ""},
		"global count":     {"SELECT count(*) FROM ev", TwoStage, ""},
		"having top-n":     {"SELECT name, sum(x) FROM ev JOIN dim USING (k) GROUP BY name HAVING sum(x) > 3 ORDER BY 2 DESC LIMIT 2", TwoStage, ""},
		"group expression": {"SELECT k + 1 AS kk, round(avg(x), 2) FROM ev GROUP BY k + 1", TwoStage, ""},
		"distinct":         {"SELECT DISTINCT s FROM ev ORDER BY s", TwoStage, ""},
		"count distinct":   {"SELECT k, count(DISTINCT s), sum(x), count(*) FROM ev GROUP BY k", TwoStage, ""},
		"global distinct":  {"SELECT count(DISTINCT s), avg(DISTINCT n) FILTER (WHERE true) FROM ev", Single, "FILTER"},
		"two distincts":    {"SELECT count(DISTINCT s), count(DISTINCT k) FROM ev", Single, "different expressions"},
		"median":           {"SELECT median(x) FROM ev", Single, "median"},
		"window":           {"SELECT id, row_number() OVER (ORDER BY id) FROM ev", Single, "window"},
		"outer side":       {"SELECT * FROM dim LEFT JOIN ev USING (k)", Single, "outer join"},
		"order by hidden":  {"SELECT id FROM ev ORDER BY x DESC LIMIT 3", TwoStage, ""},
		"distinct hidden":  {"SELECT DISTINCT s FROM ev ORDER BY x", Single, "ORDER BY"},
		"union":            {"SELECT id FROM ev UNION ALL SELECT k FROM dim", Single, "set operations"},
		"no source":        {"SELECT 42 AS answer", Single, "no partitionable source"},
		"self join":        {"SELECT a.id FROM ev a JOIN ev b USING (id)", Single, "read 2 times"},
		"grouping sets":    {"SELECT k, s, count(*) FROM ev GROUP BY GROUPING SETS ((k), (s))", Single, "GROUPING SETS"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := e.PlanSQL(context.Background(), PlanInput{Query: tc.q, Tables: planTables, Sizes: map[string]int64{"ev": 100, "dim": 1}})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.kind || !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("kind %s (%s), want %s (%s)\npartial: %s\nfinal: %s", p.Kind, p.Reason, tc.kind, tc.reason, p.Partial, p.Final)
			}
			if p.Kind == TwoStage && (p.Final == "" || p.Partial == tc.q) {
				t.Fatalf("two-stage plan without stages: %+v", p)
			}
		})
	}
}

func TestPlanGather(t *testing.T) {
	e := newEngine(t, 1)
	p, err := e.PlanSQL(context.Background(), PlanInput{Query: "SELECT id FROM ev", Tables: planTables, Gather: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != Local || p.Final != "SELECT * FROM "+PartialsTable {
		t.Fatalf("%+v", p)
	}
}

func TestPlanSQLErrors(t *testing.T) {
	e := newEngine(t, 1)
	tests := map[string]string{
		"syntax":         "SELEC 1",
		"unknown column": "SELECT nope FROM ev",
		"unknown table":  "SELECT * FROM missing",
		"not a select":   "CREATE TABLE x AS SELECT 1",
		"two statements": "SELECT 1; SELECT 2",
	}
	for name, q := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := e.PlanSQL(context.Background(), PlanInput{Query: q, Tables: planTables})
			var se *SQLError
			if !errors.As(err, &se) || strings.Contains(err.Error(), "DESCRIBE") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: %v", q, err)
			}
		})
	}
}

// FuzzPlanSQL: the planner never panics; it plans or returns an error, and
// a plan always binds (the partial and final stages were checked).
func FuzzPlanSQL(f *testing.F) {
	for _, q := range []string{
		"SELECT * FROM ev", "SELECT k, sum(x) FROM ev GROUP BY k", "SELECT count(*) FROM ev JOIN dim USING (k)",
		"SELECT DISTINCT s FROM ev ORDER BY 1 LIMIT 2", "SELECT avg(n) FILTER (WHERE k > 1) FROM ev GROUP BY ALL",
		"WITH a AS (SELECT * FROM ev) SELECT * FROM a", "SELECT k, max(id) - min(id) FROM ev GROUP BY 1 HAVING count(*) > 1",
	} {
		f.Add(q)
	}
	e, err := New(Options{Slots: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	f.Fuzz(func(t *testing.T, q string) {
		p, err := e.PlanSQL(context.Background(), PlanInput{Query: q, Tables: planTables, Sizes: map[string]int64{"ev": 2}})
		if err != nil {
			return
		}
		if p.Kind == "" || p.Partial == "" {
			t.Fatalf("empty plan for %q", q)
		}
	})
}

// TestPlanMacroAggregates: aggregates that DuckDB defines as macros
// (geomean, json_group_array, wavg) or that the catalog lists among its
// aggregates (count_if) are aggregates to the planner: never a local plan,
// which returned one row per partition.
func TestPlanMacroAggregates(t *testing.T) {
	e := newEngine(t, 1)
	in := func(q string) PlanInput {
		return PlanInput{Query: q, Tables: []PlanTable{{Name: "ev", Scan: "(SELECT range AS id, range % 7 AS k, range * 1.5 AS x FROM range(100))"}},
			Sizes: map[string]int64{"ev": 100}}
	}
	for _, q := range []string{
		"SELECT geomean(x + 1) FROM ev",
		"SELECT k, json_group_array(id) FROM ev GROUP BY k",
		"SELECT wavg(x, id) FROM ev",
		"SELECT count_if(x > 3) FROM ev",
		"SELECT k, geometric_mean(x + 1) AS g FROM ev GROUP BY k",
	} {
		p, err := e.PlanSQL(context.Background(), in(q))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if p.Kind == Local {
			t.Errorf("%s: local plan", q)
		}
	}
	p, err := e.PlanSQL(context.Background(), in("SELECT nullif(k, 3) AS n, upper(CAST(id AS VARCHAR)) AS s FROM ev"))
	if err != nil || p.Kind != Local {
		t.Errorf("scalar macros: %v %v, want local", p, err)
	}
}
