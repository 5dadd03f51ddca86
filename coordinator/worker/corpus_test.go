package worker_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// corpus: every query must give, partitioned, the answer of one DuckDB over
// the whole input. kind is the plan the planner should choose; ordered
// says the result order is defined by the query.
var corpus = []struct {
	q       string
	kind    engine.Kind
	ordered bool
}{
	{"SELECT * FROM events", engine.Local, false},
	{"SELECT event_id, amount FROM events WHERE event_type = 'purchase' AND amount > 50", engine.Local, false},
	{"SELECT event_id, upper(country) AS c, amount * 2 AS a2 FROM events WHERE device IS NULL", engine.Local, false},
	{"SELECT count(*) FROM events", engine.TwoStage, false},
	{"SELECT count(*), count(device), sum(amount), avg(amount), min(ts), max(ts) FROM events", engine.TwoStage, false},
	{"SELECT country, count(*) AS n FROM events GROUP BY country", engine.TwoStage, false},
	{"SELECT country, event_type, sum(amount) AS s, avg(quantity) AS q FROM events GROUP BY ALL", engine.Single, false},
	{"SELECT country, count(DISTINCT customer_id) AS buyers FROM events GROUP BY country", engine.TwoStage, false},
	{"SELECT count(DISTINCT customer_id) FROM events", engine.TwoStage, false},
	{"SELECT event_type, count(DISTINCT customer_id) AS buyers, sum(amount) AS s, count(*) AS n, avg(DISTINCT customer_id) AS a FROM events GROUP BY event_type HAVING count(DISTINCT customer_id) > 10 ORDER BY event_type", engine.TwoStage, true},
	{"SELECT count(DISTINCT device), count(DISTINCT country) FROM events", engine.Single, false},
	{"SELECT median(amount), quantile_cont(amount, 0.9) FROM events", engine.Single, false},
	{"SELECT country, percentile_disc(0.5) WITHIN GROUP (ORDER BY session_ms) AS p50 FROM events GROUP BY country", engine.Single, false},
	{"SELECT DISTINCT country FROM events", engine.TwoStage, false},
	{"SELECT DISTINCT country, device FROM events ORDER BY country, device NULLS FIRST", engine.TwoStage, true},
	{"SELECT event_id, amount FROM events ORDER BY event_id DESC LIMIT 10", engine.TwoStage, true},
	{"SELECT event_id, amount FROM events ORDER BY amount DESC, event_id LIMIT 25 OFFSET 5", engine.TwoStage, true},
	{"SELECT * FROM events ORDER BY event_id LIMIT 100", engine.TwoStage, true},
	{"SELECT event_id, country FROM events ORDER BY amount DESC, event_id LIMIT 20", engine.TwoStage, true},
	{"SELECT event_id FROM events WHERE amount < 0 ORDER BY session_ms * 2 + event_id", engine.TwoStage, true},
	{"SELECT event_id, row_number() OVER (PARTITION BY customer_id ORDER BY ts, event_id) AS rn FROM events", engine.Single, false},
	{"SELECT event_id, sum(amount) OVER (PARTITION BY customer_id) AS total FROM events", engine.Single, false},
	{"SELECT e.event_id, c.segment FROM events e JOIN customers c USING (customer_id) WHERE c.segment = 'enterprise'", engine.Local, false},
	{"SELECT c.segment, count(*) AS n, sum(e.amount) AS s FROM events e JOIN customers c ON e.customer_id = c.customer_id GROUP BY c.segment", engine.TwoStage, false},
	{"SELECT e.event_id, c.name FROM events e LEFT JOIN customers c USING (customer_id)", engine.Local, false},
	{"SELECT c.customer_id, count(e.event_id) AS n FROM customers c LEFT JOIN events e USING (customer_id) GROUP BY c.customer_id", engine.Single, false},
	{"SELECT * FROM events WHERE customer_id IN (SELECT customer_id FROM customers WHERE segment = 'smb')", engine.Local, false},
	{"SELECT country, sum(amount) AS s FROM events GROUP BY country HAVING count(*) > 1000 ORDER BY s DESC LIMIT 3", engine.TwoStage, true},
	{"SELECT dt, count(*) AS n, round(avg(amount), 4) AS a FROM events GROUP BY dt ORDER BY dt", engine.TwoStage, true},
	{"SELECT event_type, bool_and(amount >= 0) AS all_pos, bool_or(quantity > 3) AS any_big FROM events GROUP BY 1", engine.TwoStage, false},
	{"SELECT sum(amount) FROM events WHERE false", engine.TwoStage, false},
	{"SELECT country, count(*) FROM events WHERE false GROUP BY country", engine.TwoStage, false},
	{"SELECT * FROM events WHERE event_id < 0", engine.Local, false},
	{"SELECT event_id FROM events UNION ALL SELECT customer_id FROM customers", engine.Single, false},
	{"WITH big AS (SELECT * FROM events WHERE amount > 100) SELECT country, count(*) AS n FROM big GROUP BY country", engine.Single, false},
	{"SELECT string_agg(DISTINCT country, ',' ORDER BY country) AS cs FROM events", engine.Single, false},
	{"SELECT year(ts) AS y, month(ts) AS m, count(*) AS n FROM events GROUP BY year(ts), month(ts) ORDER BY 1, 2", engine.TwoStage, true},
	{"SELECT customer_id, max(amount) - min(amount) AS spread FROM events GROUP BY customer_id", engine.TwoStage, false},
	{"SELECT count(*) FILTER (WHERE event_type = 'refund') AS refunds, sum(amount) FILTER (WHERE amount > 0) AS pos FROM events", engine.TwoStage, false},
	{"SELECT price, count(*) AS n FROM events GROUP BY price", engine.TwoStage, false},
	{"SELECT avg(price) AS a, sum(price) AS s FROM events", engine.TwoStage, false},
	{"SELECT is_mobile, CAST(avg(session_ms) AS BIGINT) AS a FROM events GROUP BY is_mobile", engine.TwoStage, false},
	{"SELECT * FROM events e SEMI JOIN customers c ON e.customer_id = c.customer_id AND c.segment = 'consumer'", engine.Local, false},
	{"SELECT e.country, c.country AS home, count(*) AS n FROM events e JOIN customers c USING (customer_id) GROUP BY e.country, c.country", engine.TwoStage, false},
	{"SELECT customer_id, count(*) AS n FROM events GROUP BY customer_id ORDER BY n DESC, customer_id LIMIT 5", engine.TwoStage, true},
	{"SELECT event_type, avg(amount) FILTER (WHERE amount <> 0) AS avg_nonzero, count(quantity) AS q FROM events GROUP BY event_type ORDER BY event_type", engine.TwoStage, true},
	// Aggregates DuckDB defines as macros or lists as aggregates without a
	// partial form: one partition, never a local plan (issue 12).
	{"SELECT count_if(amount > 50) AS n FROM events", engine.Single, false},
	{"SELECT country, geomean(session_ms + 1) AS g, json_group_array(event_id) IS NOT NULL AS j FROM events GROUP BY country", engine.Single, false},
	// An output alias that shadows an input column, in ORDER BY (issue 12).
	{"SELECT event_id, -amount AS amount FROM events ORDER BY amount, event_id LIMIT 5", engine.TwoStage, true},
	{"SELECT event_id, -amount AS amount FROM events ORDER BY amount + 0, event_id LIMIT 5", engine.Single, true},
	{"SELECT event_id, session_ms % 1000 AS session_ms FROM events ORDER BY session_ms DESC, event_id LIMIT 6", engine.TwoStage, true},
	{"SELECT event_id, amount * 2 AS a FROM events;  -- a trailing semicolon and comment", engine.Local, false},
	{"SELECT country AS event_type, count(*) AS n FROM events GROUP BY country ORDER BY event_type DESC LIMIT 3", engine.TwoStage, true},
	{"SELECT event_type AS country, sum(amount) AS amount FROM events GROUP BY event_type ORDER BY amount DESC, country LIMIT 2", engine.TwoStage, true},
	{"SELECT customer_id AS event_id, max(event_id) AS m FROM events GROUP BY customer_id ORDER BY event_id LIMIT 4", engine.TwoStage, true},
	{"SELECT event_id AS customer_id, customer_id AS event_id FROM events ORDER BY customer_id DESC LIMIT 3", engine.TwoStage, true},
	{"SELECT event_id AS customer_id, customer_id AS event_id FROM events ORDER BY event_id, customer_id LIMIT 3", engine.TwoStage, true},
}

func TestCorpusMatchesDuckDB(t *testing.T) {
	for _, format := range []string{"parquet", "csv"} {
		t.Run(format, func(t *testing.T) {
			csv := format == "csv"
			if csv && testing.Short() {
				t.Skip("short")
			}
			dir := t.TempDir()
			fixture(t, dir, csv)
			eng, err := engine.New(engine.Options{Slots: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			refs := map[string][][]any{} // one reference per query, shared by the partition counts
			counts := []int{1, 3, 17}
			if csv {
				counts = []int{1, 3, 6} // CSV splits by file: 6 files
			}
			for ci, n := range counts {
				var o partition.Options
				if !csv {
					o = optionsFor(t, dir, n)
				} else if n == 1 {
					o.By = partition.None
				}
				if csv && n > 1 {
					o.TargetRows = int64(10000/n + 1)
					if n == 6 {
						o.TargetRows = 1 // one file per partition
					}
				}
				for qi, c := range corpus {
					t.Run(fmt.Sprintf("p%d/q%02d", n, qi), func(t *testing.T) {
						want, ok := refs[c.q]
						if !ok {
							want = reference(t, dir, c.q, csv)
							refs[c.q] = want
						}
						out := filepath.Join(t.TempDir(), "out")
						res, err := runQuery(t, eng, dir, c.q, out, o, csv)
						if err != nil {
							t.Fatalf("%s: %v", c.q, err)
						}
						tr := res.Tasks[0]
						wantKind := c.kind
						if n == 1 && wantKind != engine.Single {
							wantKind = engine.Local // one partition runs the query as written
						}
						if string(wantKind) != tr.Plan {
							t.Errorf("%s: plan %s, want %s", c.q, tr.Plan, wantKind)
						}
						if c.kind == engine.Single && len(tr.Warnings) == 0 {
							t.Errorf("%s: single-partition plan without a warning", c.q)
						}
						if c.kind != engine.Single && tr.Partitions != n {
							t.Errorf("%s: %d partitions, want %d", c.q, tr.Partitions, n)
						}
						got := readOutput(t, out)
						if d := sameRows(got, want, c.ordered); d != "" {
							t.Fatalf("%s\n(%d partitions, plan %s): %s", c.q, tr.Partitions, tr.Plan, d)
						}
					})
				}
				_ = ci
			}
		})
	}
}

func TestCorpusSize(t *testing.T) {
	if len(corpus) < 30 {
		t.Fatalf("corpus has %d queries; keep at least 30", len(corpus))
	}
	kinds := map[engine.Kind]int{}
	for _, c := range corpus {
		kinds[c.kind]++
		if strings.TrimSpace(c.q) == "" {
			t.Fatal("empty query")
		}
	}
	if kinds[engine.Local] == 0 || kinds[engine.TwoStage] == 0 || kinds[engine.Single] == 0 {
		t.Fatalf("corpus must exercise every plan kind: %v", kinds)
	}
}
