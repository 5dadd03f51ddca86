package engine

import (
	"context"
	"testing"
)

func TestPlanSmoke(t *testing.T) {
	e, err := New(Options{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tables := []PlanTable{
		{Name: "ev", Scan: "(SELECT i AS id, i % 7 AS k, i * 1.5 AS x, CAST(i AS INTEGER) AS n, 'c' || (i % 3) AS s FROM range(10) t(i))"},
		{Name: "dim", Scan: "(SELECT i AS k, 'name' || i AS name FROM range(7) t(i))"},
	}
	for _, q := range []string{
		"SELECT id, x FROM ev WHERE k > 2",
		"SELECT k, sum(x), count(*), avg(n), min(s) FROM ev GROUP BY k ORDER BY 1",
		"SELECT count(*) FROM ev",
		"SELECT sum(n) AS total FROM ev",
		"SELECT k, count(DISTINCT s) FROM ev GROUP BY k",
		"SELECT DISTINCT s FROM ev ORDER BY s",
		"SELECT id FROM ev ORDER BY x DESC LIMIT 3 OFFSET 1",
		"SELECT ev.id, dim.name FROM ev JOIN dim USING (k)",
		"SELECT name, sum(x) FROM ev JOIN dim USING (k) GROUP BY name HAVING sum(x) > 3 ORDER BY 2 DESC LIMIT 2",
		"SELECT id, row_number() OVER (ORDER BY id) FROM ev",
		"SELECT median(x) FROM ev",
		"SELECT * FROM dim LEFT JOIN ev USING (k)",
		"SELECT k + 1 AS kk, round(avg(x), 2) FROM ev GROUP BY k + 1",
	} {
		p, err := e.PlanSQL(context.Background(), PlanInput{Query: q, Tables: tables, Sizes: map[string]int64{"ev": 100, "dim": 1}})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		t.Logf("%s\n  kind=%s reason=%s\n  partial=%s\n  final=%s\n  cols=%v", q, p.Kind, p.Reason, p.Partial, p.Final, p.Columns)
	}
	for _, q := range []string{"SELEC 1", "SELECT nope FROM ev", "SELECT * FROM missing", "CREATE TABLE x AS SELECT 1"} {
		_, err := e.PlanSQL(context.Background(), PlanInput{Query: q, Tables: tables})
		t.Logf("%s -> %v", q, err)
	}
}
