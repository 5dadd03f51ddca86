package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/metrics"
)

// TestMetricsDashboard checks that the Grafana dashboard is valid JSON and
// that every metric it queries is one the registry has.
func TestMetricsDashboard(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/liminal-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	// The registered families, after a run so that every vector has a child.
	m := metrics.New()
	r := m.StartRun("p")
	simulate(t, r)
	r.Finish(&coordinator.RunResult{Status: coordinator.StatusSucceeded})
	m.Checks("p", "a", "error", 1, 1)
	m.SetQueuedRuns(0)
	fams := gather(t, m)

	name := regexp.MustCompile(`\bliminal_[a-z_]+`)
	exprs := []string{}
	for _, tv := range dash.Templating.List {
		exprs = append(exprs, tv.Definition)
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			family := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(n, suffix); ok && fams[base] != nil && fams[base].GetType().String() == "HISTOGRAM" {
					family = base
				}
			}
			if fams[family] == nil {
				t.Errorf("dashboard queries %s, which the registry does not have (in %q)", n, e)
			}
			used[family] = true
		}
	}
	for _, n := range metrics.Names {
		if !used[n] {
			t.Errorf("the dashboard shows no panel of %s", n)
		}
	}
	percentiles := 0
	for _, p := range dash.Panels {
		if strings.Contains(p.Title, "p50") {
			percentiles++
		}
	}
	if percentiles == 0 {
		t.Errorf("no duration percentile panel")
	}
}
