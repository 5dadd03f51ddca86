package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/engine"
)

var _ coordinator.Checker = (*Worker)(nil)

// Check implements coordinator.Checker: the checks run as DuckDB queries
// over the staged files of every attempt about to be committed, with the
// task's sources available by name (relationships, custom SQL).
func (w *Worker) Check(ctx context.Context, t *coordinator.Task, plan *coordinator.TaskPlan, staged []connectors.Manifest) ([]checks.Result, error) {
	output, err := stagedTable(plan, staged)
	if err != nil {
		return nil, err
	}
	tables := map[string]string{}
	all := map[string]connectors.Source{}
	for n, src := range t.CheckSources {
		all[n] = src
	}
	for n, src := range t.Sources {
		all[n] = src
	}
	for _, name := range sortedNames(all) {
		if ns, ok := all[name].(connectors.NativeSource); ok {
			scan, err := ns.ScanSQL(nil)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", name, err)
			}
			tables[name] = "(SELECT * FROM " + scan + ")"
		}
	}
	var res []checks.Result
	err = w.eng.WithConn(ctx, func(c engine.Conn) error {
		res = checks.Run(ctx, c, output, t.Checks, tables)
		return ctx.Err()
	})
	return res, err
}

// stagedTable is a DuckDB table expression over the staged files; with no
// files, an empty table of the plan's columns.
func stagedTable(plan *coordinator.TaskPlan, staged []connectors.Manifest) (string, error) {
	var parquet, csv []string
	for _, m := range staged {
		for _, f := range m.Files {
			switch strings.ToLower(filepath.Ext(f.Staged)) {
			case ".parquet":
				parquet = append(parquet, f.Staged)
			case ".csv":
				csv = append(csv, f.Staged)
			default:
				return "", connectors.Permanent(fmt.Errorf("data checks read Parquet or CSV output; %s is neither", f.Staged))
			}
		}
	}
	sort.Strings(parquet)
	sort.Strings(csv)
	switch {
	case len(parquet) > 0 && len(csv) > 0:
		return "", connectors.Permanent(errors.New("data checks: staged output mixes Parquet and CSV"))
	case len(parquet) > 0:
		return fmt.Sprintf("read_parquet(%s, hive_partitioning = true)", list(parquet)), nil
	case len(csv) > 0:
		return fmt.Sprintf("read_csv(%s, header = true, hive_partitioning = true)", list(csv)), nil
	}
	var cols []engine.Column
	if len(plan.Columns) > 0 {
		if err := json.Unmarshal(plan.Columns, &cols); err != nil {
			return "", err
		}
	}
	if len(cols) == 0 {
		return "(SELECT NULL AS empty_output LIMIT 0)", nil
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, ident(c.Name))
	}
	return "(SELECT " + strings.Join(parts, ", ") + " LIMIT 0)", nil
}

func list(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}
