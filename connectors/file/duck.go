package file

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"
)

// meta is a small in-memory DuckDB used for footers, schemas and CSV
// sniffing at planning time; the executor has its own instances.
var meta struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func metaDB() (*sql.DB, error) {
	meta.once.Do(func() {
		c, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
			_, err := execer.ExecContext(context.Background(), "SET threads=1", nil)
			return err
		})
		if err != nil {
			meta.err = err
			return
		}
		meta.db = sql.OpenDB(c)
		meta.db.SetMaxOpenConns(4)
	})
	return meta.db, meta.err
}

// quote renders s as a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident renders s as a SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func list(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = quote(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// duckErr keeps the lines of a DuckDB error that say what went wrong, on
// one line, without its search-space dump and "Possible fixes".
func duckErr(err error) error {
	if err == nil {
		return nil
	}
	var keep []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Possible fixes") || strings.HasPrefix(l, "The search space") {
			break
		}
		keep = append(keep, l)
	}
	return fmt.Errorf("%s", strings.Join(keep, "; "))
}
