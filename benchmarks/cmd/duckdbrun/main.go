// Command duckdbrun runs one SQL statement in an in-memory DuckDB (the
// duckdb-go build Liminal links, so both sides of a comparison use the same
// DuckDB) with a given thread count, and prints the elapsed seconds of that
// statement. It is the "DuckDB alone" side of benchmarks/compare.sh.
//
//	duckdbrun -threads 2 -sql "COPY (SELECT ...) TO 'out.parquet' (FORMAT parquet)"
//
// Statements given with -setup (repeatable, e.g. CREATE VIEW) run first and
// are not timed.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, "; ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	threads := flag.Int("threads", runtime.NumCPU(), "DuckDB threads (SET threads)")
	query := flag.String("sql", "", "the statement to time")
	var setup multi
	flag.Var(&setup, "setup", "a statement to run before the timed one (repeatable)")
	flag.Parse()
	if *query == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: duckdbrun [-threads N] [-setup SQL]... -sql SQL")
		os.Exit(2)
	}
	if err := run(*threads, setup, *query); err != nil {
		fmt.Fprintf(os.Stderr, "duckdbrun: %v\n", err)
		os.Exit(1)
	}
}

func run(threads int, setup []string, query string) error {
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection, so that SET and the query share a session.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	pre := append([]string{fmt.Sprintf("SET threads = %d", threads), "SET enable_progress_bar = false"}, setup...)
	for _, q := range pre {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, query); err != nil {
		return err
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	return nil
}
